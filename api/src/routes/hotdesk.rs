//! Hot-desk sessions: an Extension logged in to a hot-desk Device, as a resource of the device
//! (`…/devices/{id}/session`) and as self-service (`/api/v1/me/hotdesk/{device_id}`).

use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use switchboard_domain::provisioning::keys::LoginChoice;
use switchboard_domain::services::hotdesk::{self, Deps, LoginInput, SessionView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// An active hot-desk session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    /// The session's id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// The hot-desk Device.
    pub device_id: Uuid,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub extension_number: String,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code` (`*11`), `api` (the person, with the PIN) or `admin` (`hotdesk.others`).
    #[schema(value_type = crate::dto::SessionOrigin, example = "api")]
    pub started_via: String,
    /// Who started it (email, key name or `system`).
    pub started_by: String,
}

impl From<SessionView> for SessionDto {
    fn from(v: SessionView) -> Self {
        Self {
            id: v.id,
            domain_id: v.domain_id,
            device_id: v.device_id,
            extension_id: v.extension_id,
            extension_number: v.extension_number,
            started_at: v.started_at,
            started_via: v.started_via,
            started_by: v.started_by,
        }
    }
}

/// A login to a hot-desk Device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The Extension's number.
    #[schema(example = "201")]
    pub extension: String,
    /// Its PIN; callers holding `hotdesk.others` may omit it.
    #[schema(value_type = Option<String>, example = "4711")]
    pub pin: Option<SecretString>,
    /// The Model Layout for this phone, one of those the Extension may choose for its model
    /// (`GET …/devices/{id}/provisioning/choices?extension=…`); omitted: the only or first one.
    #[serde(default)]
    pub layout_id: Option<Uuid>,
    /// The provisioning template for this phone, one of those the Extension's group lists for
    /// its vendor; omitted: the group's first, else the phone's own.
    #[serde(default)]
    pub template_id: Option<Uuid>,
}

/// A self-service login: the caller's own Extension, with its PIN.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfLoginBody {
    /// The PIN of the caller's Extension.
    #[schema(value_type = String, example = "4711")]
    pub pin: SecretString,
    /// The Model Layout for this phone, one of those the Extension may choose for its model
    /// (`GET …/devices/{id}/provisioning/choices?extension=…`); omitted: the only or first one.
    #[serde(default)]
    pub layout_id: Option<Uuid>,
    /// The provisioning template for this phone, one of those the Extension's group lists for
    /// its vendor; omitted: the group's first, else the phone's own.
    #[serde(default)]
    pub template_id: Option<Uuid>,
}

/// Why an admin logs a device out.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct LogoutQuery {
    /// A note for the audit log (`hotdesk.others` only; ignored otherwise).
    pub reason: Option<String>,
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        bus: &state.events,
    }
}

fn client_address(req: &HttpRequest) -> Option<String> {
    crate::client_address::client_ip_text(req)
}

/// The Device's active hot-desk session (`devices.read`, `hotdesk.self` or `hotdesk.others`).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The active session", body = SessionDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "No hot-desk or device permission", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine, or nobody logged in (`no_session`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/session")]
pub async fn get_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<SessionDto>> {
    let (domain_id, id) = path.into_inner();
    let view = hotdesk::get(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(view.into()))
}

/// Log an Extension in to a hot-desk Device. `hotdesk.others` logs in without a PIN and
/// replaces whoever is logged in; `hotdesk.self` needs the Extension's PIN and a free device.
/// With one phone at a time, the Extension's other session ends. After too many wrong PINs
/// (per Extension, device and client address) attempts answer 423 with `Retry-After`, even
/// with the right PIN.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in (or already was)", body = SessionDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not a hot-desk device (`device_not_hotdesk`), disabled (`device_disabled`), in use by someone else (`device_in_use`), or the Extension is on another phone (`extension_in_use`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown Extension, one that may not hot-desk (placeholder, disabled, not allowed), or a missing or wrong PIN (`pin`)", body = Problem, content_type = PROBLEM),
        (status = 423, description = "PIN lockout: try again after `Retry-After` seconds", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/devices/{id}/session")]
pub async fn put_session(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<LoginBody>,
) -> ApiResult<web::Json<SessionDto>> {
    let (domain_id, id) = path.into_inner();
    let body = body.into_inner();
    let input = LoginInput {
        extension: body.extension,
        pin: body.pin,
        client_address: client_address(&req),
        choice: LoginChoice {
            layout_id: body.layout_id,
            template_id: body.template_id,
        },
    };
    let view = hotdesk::login(deps(&state), caller.ctx(), domain_id, id, input).await?;
    Ok(web::Json(view.into()))
}

/// Log a hot-desk Device out. `hotdesk.others` ends any session (with an optional `reason`);
/// `hotdesk.self` only the session of the caller's own Extension (409 otherwise). Nobody
/// logged in is fine.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id"), LogoutQuery),
    responses(
        (status = 204, description = "Logged out (or nobody was logged in)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Not a hot-desk device, someone else's session (`device_in_use`), or no Extension of mine (`no_extension`)", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/devices/{id}/session")]
pub async fn delete_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: Query<LogoutQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    hotdesk::logout(
        deps(&state),
        caller.ctx(),
        domain_id,
        id,
        query.into_inner().reason,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Log my own Extension in to a hot-desk Device (`hotdesk.self`, PIN required).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("device_id" = Uuid, Path, description = "Device id")),
    request_body = SelfLoginBody,
    responses(
        (status = 200, description = "Logged in (or already was)", body = SessionDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "No Extension of mine in the device's Domain (`no_extension`), not a hot-desk device, or in use", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Wrong PIN, or my Extension may not hot-desk", body = Problem, content_type = PROBLEM),
        (status = 423, description = "PIN lockout: try again after `Retry-After` seconds", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/me/hotdesk/{device_id}")]
pub async fn put_my_session(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: Json<SelfLoginBody>,
) -> ApiResult<web::Json<SessionDto>> {
    let body = body.into_inner();
    let view = hotdesk::login_self(
        deps(&state),
        caller.ctx(),
        path.into_inner(),
        Some(body.pin),
        client_address(&req),
        LoginChoice {
            layout_id: body.layout_id,
            template_id: body.template_id,
        },
    )
    .await?;
    Ok(web::Json(view.into()))
}

/// Log my own Extension out of a hot-desk Device (`hotdesk.self`).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("device_id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 204, description = "Logged out (or nobody was logged in)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Someone else is logged in, or no Extension of mine (`no_extension`)", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/me/hotdesk/{device_id}")]
pub async fn delete_my_session(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    hotdesk::logout_self(deps(&state), caller.ctx(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
