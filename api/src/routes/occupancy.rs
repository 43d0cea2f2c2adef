//! Who sits where (`hotdesk.others`): a Domain's active hot-desk sessions and Location
//! sign-ins, with filters, and ending them in bulk with a reason.

use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::hotdesk::Deps;
use switchboard_domain::services::occupancy::{
    self, ActiveSession, ActiveSignIn, EndRequest, Filter, Scope,
};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// An active hot-desk session, named.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveSessionDto {
    /// The session's id.
    pub id: Uuid,
    /// The hot-desk phone.
    pub device_id: Uuid,
    /// Its label.
    #[schema(example = "Desk 4.12")]
    pub device_label: String,
    /// The Location the phone is in, if any.
    pub location_id: Option<Uuid>,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub extension_number: String,
    /// Its display name.
    #[schema(example = "Bob Baker")]
    pub extension_name: String,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code` (`*11`), `api` or `admin`.
    #[schema(value_type = crate::dto::SessionOrigin, example = "feature_code")]
    pub started_via: String,
    /// Who started it (email, key name or `system`).
    pub started_by: String,
}

impl From<ActiveSession> for ActiveSessionDto {
    fn from(s: ActiveSession) -> Self {
        Self {
            id: s.id,
            device_id: s.device_id,
            device_label: s.device_label,
            location_id: s.location_id,
            extension_id: s.extension_id,
            extension_number: s.extension_number,
            extension_name: s.extension_name,
            started_at: s.started_at,
            started_via: s.started_via,
            started_by: s.started_by,
        }
    }
}

/// An Extension signed in to a Location, named.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveSignInDto {
    /// The Extension.
    pub extension_id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub extension_number: String,
    /// Its display name.
    #[schema(example = "Bob Baker")]
    pub extension_name: String,
    /// The Location.
    pub location_id: Uuid,
    /// Its name.
    #[schema(example = "Berlin, 4th floor")]
    pub location_name: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Who signed it in.
    pub signed_in_by: String,
}

impl From<ActiveSignIn> for ActiveSignInDto {
    fn from(s: ActiveSignIn) -> Self {
        Self {
            extension_id: s.extension_id,
            extension_number: s.extension_number,
            extension_name: s.extension_name,
            location_id: s.location_id,
            location_name: s.location_name,
            since: s.since,
            signed_in_by: s.signed_in_by,
        }
    }
}

/// The active sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveSessionList {
    /// Oldest first.
    pub items: Vec<ActiveSessionDto>,
}

/// The active sign-ins.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveSignInList {
    /// Oldest first.
    pub items: Vec<ActiveSignInDto>,
}

/// Filters (all given must hold).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OccupancyQuery {
    /// Sessions on the phones of this Location; sign-ins to it.
    pub location_id: Option<Uuid>,
    /// This Extension's sessions and sign-in.
    pub extension_id: Option<Uuid>,
    /// The session on this phone (no sign-in matches a phone).
    pub device_id: Option<Uuid>,
    /// Started (signed in) before this moment (RFC 3339).
    pub started_before: Option<DateTime<Utc>>,
}

impl From<OccupancyQuery> for Filter {
    fn from(q: OccupancyQuery) -> Self {
        Self {
            location_id: q.location_id,
            extension_id: q.extension_id,
            device_id: q.device_id,
            started_before: q.started_before,
        }
    }
}

/// A bulk ending: exactly one of `location_id`, `extension_id`, `device_id` or `all`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndBody {
    /// The sessions on this Location's phones and the sign-ins to it.
    pub location_id: Option<Uuid>,
    /// This Extension's sessions on every phone, and its sign-in.
    pub extension_id: Option<Uuid>,
    /// The session on this phone.
    pub device_id: Option<Uuid>,
    /// `true`: everything in the Domain.
    #[serde(default)]
    pub all: bool,
    /// Only what started before this moment (e.g. left over from yesterday).
    pub started_before: Option<DateTime<Utc>>,
    /// End hot-desk sessions (default `true`).
    #[serde(default = "yes")]
    pub sessions: bool,
    /// End Location sign-ins (default `true`).
    #[serde(default = "yes")]
    pub sign_ins: bool,
    /// Why (required, at most 200 characters): audited with each ending.
    #[schema(example = "office closes at 20:00")]
    pub reason: String,
}

fn yes() -> bool {
    true
}

/// What was ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndedDto {
    /// The sessions ended (those phones are logged out).
    pub sessions: Vec<ActiveSessionDto>,
    /// The sign-ins ended.
    pub sign_ins: Vec<ActiveSignInDto>,
}

/// The one scope given, or `None` when not exactly one was (the domain answers 422, after
/// checking the caller may end anything at all).
fn scope_of(body: &EndBody) -> Option<Scope> {
    let chosen = [
        body.location_id.map(Scope::Location),
        body.extension_id.map(Scope::Extension),
        body.device_id.map(Scope::Device),
        body.all.then_some(Scope::Domain),
    ];
    let mut given = chosen.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(scope), None) => Some(scope),
        _ => None,
    }
}

/// The Domain's active hot-desk sessions (`hotdesk.others`), oldest first, with the phone,
/// its Location and the person.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), OccupancyQuery),
    responses(
        (status = 200, description = "The sessions", body = ActiveSessionList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.others` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A filter that is not an id or a time, or an unknown filter", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/hotdesk/sessions")]
pub async fn list_active_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Query<OccupancyQuery>,
) -> ApiResult<web::Json<ActiveSessionList>> {
    let items = occupancy::sessions(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        query.into_inner().into(),
    )
    .await?;
    Ok(web::Json(ActiveSessionList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Who is signed in to the Domain's Locations (`hotdesk.others`), oldest first;
/// `?location_id=` answers who is in one Location.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), OccupancyQuery),
    responses(
        (status = 200, description = "The sign-ins", body = ActiveSignInList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.others` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A filter that is not an id or a time, or an unknown filter", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/location-sign-ins")]
pub async fn list_sign_ins(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Query<OccupancyQuery>,
) -> ApiResult<web::Json<ActiveSignInList>> {
    let items = occupancy::sign_ins(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        query.into_inner().into(),
    )
    .await?;
    Ok(web::Json(ActiveSignInList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Ends hot-desk sessions and Location sign-ins in bulk (`hotdesk.others`): a Location, an
/// Extension everywhere, one phone, or the whole Domain, optionally only what started before
/// a moment. One transaction; each ending is audited with the reason
/// (`hotdesk.session.end` with `forced_by_admin`, `location.sign_out`) and the phones are
/// updated through FreeSWITCH after the commit, as one batch. What ended meanwhile is
/// skipped; nothing to end is not an error.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = EndBody,
    responses(
        (status = 200, description = "What was ended", body = EndedDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.others` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not exactly one scope, an unknown Location, Extension or Device of this Domain, nothing to end, or a missing or too long reason", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/hotdesk/end")]
pub async fn end_in_bulk(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<EndBody>,
) -> ApiResult<web::Json<EndedDto>> {
    let body = body.into_inner();
    let scope = scope_of(&body);
    let ended = occupancy::end(
        Deps {
            db: &state.db,
            bus: &state.events,
        },
        caller.ctx(),
        path.into_inner(),
        EndRequest {
            scope,
            started_before: body.started_before,
            sessions: body.sessions,
            sign_ins: body.sign_ins,
            reason: body.reason,
        },
    )
    .await?;
    Ok(web::Json(EndedDto {
        sessions: ended.sessions.into_iter().map(Into::into).collect(),
        sign_ins: ended.sign_ins.into_iter().map(Into::into).collect(),
    }))
}

/// What a person reads on the phone they stand at.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindPhoneQuery {
    /// The phone's label, or the SIP user name its screen shows (exactly; case and surrounding
    /// spaces do not matter; 2–100 characters).
    #[param(example = "Desk 4.12")]
    pub q: String,
}

/// A hot-desk phone found.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundPhoneDto {
    /// The phone (log in with `PUT /api/v1/me/hotdesk/{device_id}`).
    pub device_id: Uuid,
    /// Its Domain.
    pub domain_id: Uuid,
    /// Its label.
    #[schema(example = "Desk 4.12")]
    pub label: String,
    /// Its Location, if any.
    pub location_id: Option<Uuid>,
    /// The Location's name.
    pub location_name: Option<String>,
    /// Someone is logged in to it.
    pub in_use: bool,
    /// The one logged in is my own Extension.
    pub mine: bool,
}

/// The phones found.
#[derive(Debug, Serialize, ToSchema)]
pub struct FoundPhoneList {
    /// At most 20, by label.
    pub items: Vec<FoundPhoneDto>,
}

/// Find the hot-desk phone I stand at (`hotdesk.self`), by its label or the SIP user name its
/// screen shows, in the Domains where I may hot-desk. Exact matches only: nobody can list
/// every phone this way.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(FindPhoneQuery),
    responses(
        (status = 200, description = "The phones that match (none is an empty list)", body = FoundPhoneList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` in no Domain", body = Problem, content_type = PROBLEM),
        (status = 422, description = "`q` missing, shorter than 2 or longer than 100 characters", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/hotdesk/phones")]
pub async fn find_my_phone(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<FindPhoneQuery>,
) -> ApiResult<web::Json<FoundPhoneList>> {
    let found = occupancy::find_phones(&state.db, caller.ctx(), &query.into_inner().q).await?;
    Ok(web::Json(FoundPhoneList {
        items: found
            .into_iter()
            .map(|p| FoundPhoneDto {
                device_id: p.device_id,
                domain_id: p.domain_id,
                label: p.label,
                location_id: p.location_id,
                location_name: p.location_name,
                in_use: p.in_use,
                mine: p.mine,
            })
            .collect(),
    }))
}
