//! Liveness and readiness.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `ok` while the process serves HTTP.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The state of one dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `up`, `degraded` (some FreeSWITCH links down), `down` or `disabled`.
    #[schema(example = "up")]
    pub status: &'static str,
    /// Why, when not up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The database.
    pub database: Check,
    /// The FreeSWITCH links (`disabled` until nodes are configured).
    pub freeswitch: Check,
}

/// The process is alive.
#[utoipa::path(tag = "health", responses((status = 200, description = "Alive", body = Live)))]
#[get("/health/live")]
pub async fn live() -> web::Json<Live> {
    web::Json(Live { status: "ok" })
}

/// The server can do its work: the database answers.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "A dependency is down", body = Ready),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = match state.db.ping().await {
        Ok(()) => Check {
            status: "up",
            detail: None,
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database does not answer");
            Check {
                status: "down",
                detail: Some("the database does not answer".to_owned()),
            }
        }
    };
    let freeswitch = freeswitch_check(&state).await;
    // With nodes configured, at least one link must be up: without any, no change reaches
    // FreeSWITCH.
    let ok = database.status == "up" && freeswitch.status != "down";
    let body = Ready {
        status: if ok { "ready" } else { "not_ready" },
        database,
        freeswitch,
    };
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `disabled` without nodes; `up` when every link is up; `degraded` when some are; `down` when
/// none is. The detail names the nodes whose link is not up.
async fn freeswitch_check(state: &AppState) -> Check {
    if !state.bridge.enabled() {
        return Check {
            status: "disabled",
            detail: Some("no FreeSWITCH nodes are configured".to_owned()),
        };
    }
    // The links other switchboard nodes drive count as they report them.
    let nodes = match crate::routes::freeswitch_nodes::merged(state).await {
        Ok(nodes) => nodes,
        Err(e) => {
            tracing::warn!(error = %e, "readiness: cannot read the links other nodes drive");
            state
                .bridge
                .nodes()
                .into_iter()
                .map(crate::routes::freeswitch_nodes::NodeDto::from)
                .collect()
        }
    };
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| n.state != "connected")
        .map(|n| format!("{} is {}", n.name, n.state))
        .collect();
    let status = match down.len() {
        0 => "up",
        n if n == nodes.len() => "down",
        _ => "degraded",
    };
    Check {
        status,
        detail: (!down.is_empty()).then(|| down.join(", ")),
    }
}
