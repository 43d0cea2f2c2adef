//! Location sign-in: an Extension signed in to at most one Location, whose devices then ring
//! for it (`…/extensions/{id}/location` and `/api/v1/me/location`).

use actix_web::{HttpResponse, delete, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::hotdesk::Deps;
use switchboard_domain::services::signin::{self, SignInView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// An Extension's Location sign-in.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInDto {
    /// The Extension.
    pub extension_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl From<SignInView> for SignInDto {
    fn from(v: SignInView) -> Self {
        Self {
            extension_id: v.extension_id,
            location_id: v.location_id,
            since: v.since,
        }
    }
}

/// Which Location to sign in to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInBody {
    /// The Location.
    pub location_id: Uuid,
}

/// Which Location to sign in to, in which Domain (self-service).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MySignInBody {
    /// The Domain of my Extension.
    pub domain_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
}

/// The Domain to sign my Extension out in.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MySignOutQuery {
    /// The Domain of my Extension.
    pub domain_id: Uuid,
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        bus: &state.events,
    }
}

/// Sign an Extension in to a Location (`hotdesk.others`, or `hotdesk.self` for my own
/// Extension); signing in elsewhere replaces the previous sign-in.
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    request_body = SignInBody,
    responses(
        (status = 200, description = "Signed in (or already was)", body = SignInDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Someone else's Extension without `hotdesk.others`", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The Extension is disabled or a placeholder", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown Location, or its policy does not let this Extension sign in (`sign_in_not_allowed`)", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/extensions/{id}/location")]
pub async fn sign_in_to_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<SignInBody>,
) -> ApiResult<web::Json<SignInDto>> {
    let (domain_id, id) = path.into_inner();
    let view = signin::sign_in(
        deps(&state),
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().location_id,
    )
    .await?;
    Ok(web::Json(view.into()))
}

/// Sign an Extension out of its Location (same permissions as signing in; idempotent).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 204, description = "Signed out (or was not signed in)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Someone else's Extension without `hotdesk.others`", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/extensions/{id}/location")]
pub async fn sign_out_of_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    signin::sign_out(deps(&state), caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sign my own Extension of a Domain in to a Location (`hotdesk.self`).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    request_body = MySignInBody,
    responses(
        (status = 200, description = "Signed in (or already was)", body = SignInDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "No Extension of mine in the Domain (`no_extension`), or it is disabled", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown Location, or its policy does not let me sign in", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/me/location")]
pub async fn put_my_location(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<MySignInBody>,
) -> ApiResult<web::Json<SignInDto>> {
    let body = body.into_inner();
    let view =
        signin::sign_in_self(deps(&state), caller.ctx(), body.domain_id, body.location_id).await?;
    Ok(web::Json(view.into()))
}

/// Sign my own Extension of a Domain out of its Location (`hotdesk.self`; idempotent).
#[utoipa::path(
    tag = "hotdesk",
    security(("bearer" = [])),
    params(MySignOutQuery),
    responses(
        (status = 204, description = "Signed out (or was not signed in)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`hotdesk.self` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "No Extension of mine in the Domain (`no_extension`)", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/me/location")]
pub async fn delete_my_location(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<MySignOutQuery>,
) -> ApiResult<HttpResponse> {
    signin::sign_out_self(deps(&state), caller.ctx(), query.into_inner().domain_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
