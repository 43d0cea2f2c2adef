//! Registrations: which phones are registered, on which FreeSWITCH node, from where, until
//! when — as FreeSWITCH reports them over the Event Socket.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::registrations::{self, RegistrationFilter};
use switchboard_domain::store::registrations as store;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Query;
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// A live registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// The FreeSWITCH node (its configured name).
    #[schema(example = "fs1")]
    pub node: String,
    /// The sofia profile.
    #[schema(example = "internal")]
    pub profile: String,
    /// The SIP user (a Device's SIP user name, or an Extension's number).
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_user: String,
    /// The SIP Call-ID of the registration.
    pub call_id: String,
    /// The Contact the phone registered.
    #[schema(example = "\"\" <sip:d7kq2mxr9tbw@192.0.2.10:5060;transport=UDP>")]
    pub contact: String,
    /// The address the REGISTER came from.
    #[schema(example = "192.0.2.10")]
    pub network_ip: String,
    /// Its port.
    #[schema(example = 5060)]
    pub network_port: i32,
    /// The phone's User-Agent, when reported.
    #[schema(example = "Yealink SIP-T54W 96.86.0.100")]
    pub user_agent: Option<String>,
    /// First seen.
    pub registered_at: DateTime<Utc>,
    /// When it lapses unless the phone refreshes it.
    pub expires_at: DateTime<Utc>,
}

impl From<store::Model> for RegistrationDto {
    fn from(r: store::Model) -> Self {
        Self {
            id: r.id,
            domain_id: r.domain_id,
            node: r.node,
            profile: r.profile,
            sip_user: r.sip_user,
            call_id: r.call_id,
            contact: r.contact,
            network_ip: r.network_ip,
            network_port: r.network_port,
            user_agent: r.user_agent,
            registered_at: r.registered_at,
            expires_at: r.expires_at,
        }
    }
}

/// Filters of the registration list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegistrationListQuery {
    /// Only this SIP user (case-insensitive).
    pub sip_user: Option<String>,
    /// Only this FreeSWITCH node.
    pub node: Option<String>,
    /// How many items (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List the Domain's live registrations (`registrations.read`), oldest first.
#[utoipa::path(
    tag = "registrations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), RegistrationListQuery),
    responses(
        (status = 200, description = "One page", body = PageResponse<RegistrationDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`registrations.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad limit, cursor or an unknown parameter", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/registrations")]
pub async fn list_registrations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Query<RegistrationListQuery>,
) -> ApiResult<web::Json<PageResponse<RegistrationDto>>> {
    let q = query.into_inner();
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .to_request()?;
    let filter = RegistrationFilter {
        sip_user: q.sip_user,
        node: q.node,
    };
    let found =
        registrations::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(
        found,
        RegistrationDto::from,
    )))
}
