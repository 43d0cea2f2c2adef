//! Presence: every Extension's user status and telephone status, and setting one's own.

use actix_web::{get, put, web};
use serde::{Deserialize, Serialize};
use switchboard_domain::bindings::presence::{ExtensionPresence, UserStatus};
use switchboard_domain::services::presence;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// One endpoint bound to an Extension and what it does.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointPresenceDto {
    /// The SIP user.
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_user: String,
    /// `offline`, `available`, `ringing` or `in_call`.
    #[schema(value_type = crate::dto::TelephoneStatus, example = "available")]
    pub status: String,
}

/// The presence of one Extension.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceDto {
    /// The Extension.
    pub extension_id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub number: String,
    /// What the person set: `available`, `away` or `dnd` (the Extension's DND flag).
    #[schema(value_type = crate::dto::PresenceStatus, example = "away")]
    pub status: String,
    /// Their message.
    #[schema(example = "back at 2pm")]
    pub message: Option<String>,
    /// What the phones do, over exactly the endpoints of its ring plan (the busiest wins):
    /// `offline`, `available`, `ringing` or `in_call`.
    #[schema(value_type = crate::dto::TelephoneStatus, example = "available")]
    pub telephone: String,
    /// Each endpoint of its ring plan.
    pub endpoints: Vec<EndpointPresenceDto>,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<ExtensionPresence> for PresenceDto {
    fn from(p: ExtensionPresence) -> Self {
        let (status, message) = match p.user {
            UserStatus::Available { message } => ("available", message),
            UserStatus::Away { message } => ("away", message),
            UserStatus::Dnd { message } => ("dnd", message),
        };
        Self {
            extension_id: p.extension.id,
            number: p.extension.number,
            status: status.to_owned(),
            message,
            telephone: name(&p.telephone),
            endpoints: p
                .endpoints
                .into_iter()
                .map(|e| EndpointPresenceDto {
                    status: name(&e.status),
                    sip_user: e.sip_user,
                })
                .collect(),
        }
    }
}

/// The presence of every enabled Extension.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceList {
    /// By number.
    pub items: Vec<PresenceDto>,
}

/// Every enabled Extension's user and telephone status, by number (`presence.read`).
#[utoipa::path(
    tag = "presence",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "Presence of every Extension", body = PresenceList),
        (status = 403, description = "`presence.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/presence")]
pub async fn list_presence(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<PresenceList>> {
    let items = presence::list(&state.db, caller.ctx(), path.into_inner(), &state.lines).await?;
    Ok(web::Json(PresenceList {
        items: items.into_iter().map(PresenceDto::from).collect(),
    }))
}

/// A status to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPresence {
    /// The Domain of my Extension.
    pub domain_id: Uuid,
    /// `available`, `away` or `dnd`.
    #[schema(value_type = crate::dto::PresenceStatus, example = "dnd")]
    pub status: String,
    /// Up to 200 characters; omitted or empty clears it.
    #[schema(example = "in a meeting until 3pm")]
    pub message: Option<String>,
}

/// Set my presence: for the Extension linked to my User in the Domain. `dnd` switches the
/// Extension's Do-Not-Disturb on (calls get busy); `available` and `away` switch it off.
/// Audited; published as `presence.changed`.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = SetPresence,
    responses(
        (status = 200, description = "My presence now", body = PresenceDto),
        (status = 404, description = "No such Domain", body = Problem, content_type = PROBLEM),
        (status = 409, description = "No Extension of mine in the Domain (`no_extension`), or it is disabled (`extension_disabled`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid status or message", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/me/presence")]
pub async fn set_my_presence(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<SetPresence>,
) -> ApiResult<web::Json<PresenceDto>> {
    let body = body.into_inner();
    let status = presence::parse_status(&body.status, body.message.as_deref())?;
    let now = presence::set_my_status(
        &state.db,
        &state.events,
        caller.ctx(),
        body.domain_id,
        &status,
        &state.lines,
    )
    .await?;
    Ok(web::Json(now.into()))
}
