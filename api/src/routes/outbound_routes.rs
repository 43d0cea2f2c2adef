//! Outbound Routes of a Domain (`routing.read` / `routing.write`), tried in `position` order:
//! dial patterns, rewriting, toll class, gateways in failover order.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::outbound_routes::{self, RoutePatch, RouteView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// The class of number a route reaches.
#[derive(Debug, ToSchema)]
#[schema(as = TollClass)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
#[derive(Serialize)]
pub enum TollClassDto {
    /// Emergency services: never refused by a toll class.
    Emergency,
    /// Local.
    Local,
    /// National fixed lines.
    National,
    /// Mobile networks.
    Mobile,
    /// Abroad.
    International,
    /// Premium-rate services.
    Premium,
}

/// An Outbound Route.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundRouteDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    #[schema(example = "National")]
    pub name: String,
    /// Order: lower is tried first; the first route whose pattern matches decides.
    pub position: i32,
    /// Dial patterns: digits, `+ * #`, `X` (0–9), `Z` (1–9), `N` (2–9), `[1-5]`, and `.`
    /// (one or more) or `!` (zero or more) at the end.
    #[schema(example = json!(["0Z.", "+49."]))]
    pub patterns: Vec<String>,
    /// Leading digits removed.
    pub strip_digits: i32,
    /// Prepended after stripping.
    pub prepend: String,
    /// The toll class of what it reaches; the caller's `toll_allow` must name it
    /// (`domestic` names local, national and mobile), except `emergency`.
    #[schema(value_type = TollClassDto, example = "national")]
    pub toll_class: String,
    /// Gateways in failover order.
    pub gateway_ids: Vec<Uuid>,
    /// In service.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<RouteView> for OutboundRouteDto {
    fn from(v: RouteView) -> Self {
        let r = v.route;
        Self {
            id: r.id,
            domain_id: r.domain_id,
            name: r.name,
            position: r.position,
            patterns: v.patterns,
            strip_digits: r.strip_digits,
            prepend: r.prepend,
            toll_class: r.toll_class,
            gateway_ids: v.gateway_ids,
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A route to create, or a change to one (omitted fields stay). On creation `name`,
/// `patterns` and `toll_class` are required; `position` defaults to after the last route.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboundRouteInput {
    /// 1–100 characters, unique in the Domain.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "National")]
    pub name: Option<String>,
    /// 0–100000; lower is tried first.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = i32)]
    pub position: Option<i32>,
    /// 1–50 dial patterns (replaces the list).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = Vec<String>, example = json!(["0Z."]))]
    pub patterns: Option<Vec<String>>,
    /// 0–20 leading digits removed.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = i32)]
    pub strip_digits: Option<i32>,
    /// Up to 10 characters (digits, optional leading `+`) prepended after stripping.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String)]
    pub prepend: Option<String>,
    /// `emergency`, `local`, `national`, `mobile`, `international` or `premium`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = TollClassDto)]
    pub toll_class: Option<String>,
    /// Gateways (the Domain's own, or granted to it) in failover order; replaces the list.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = Vec<Uuid>)]
    pub gateway_ids: Option<Vec<Uuid>>,
    /// In service (default true).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = bool)]
    pub enabled: Option<bool>,
}

impl From<OutboundRouteInput> for RoutePatch {
    fn from(i: OutboundRouteInput) -> Self {
        Self {
            name: i.name,
            position: i.position,
            patterns: i.patterns,
            strip_digits: i.strip_digits,
            prepend: i.prepend,
            toll_class: i.toll_class,
            gateway_ids: i.gateway_ids,
            enabled: i.enabled,
        }
    }
}

/// The routes of a Domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboundRouteList {
    /// In the order they are tried.
    pub items: Vec<OutboundRouteDto>,
}

/// Create an Outbound Route (`routing.write`).
#[utoipa::path(
    tag = "outbound-routes",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = OutboundRouteInput,
    responses(
        (status = 201, description = "Created", body = OutboundRouteDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields: a bad pattern (`patterns[i]`), a gateway the Domain cannot use (`gateway_ids[i]`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/outbound-routes")]
pub async fn create_outbound_route(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<OutboundRouteInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let r = outbound_routes::create(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/outbound-routes/{}", r.route.id),
        ))
        .json(OutboundRouteDto::from(r)))
}

/// List the Domain's Outbound Routes in the order they are tried (`routing.read`).
#[utoipa::path(
    tag = "outbound-routes",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The routes", body = OutboundRouteList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/outbound-routes")]
pub async fn list_outbound_routes(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<OutboundRouteList>> {
    let found = outbound_routes::list(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(OutboundRouteList {
        items: found.into_iter().map(Into::into).collect(),
    }))
}

/// Read an Outbound Route (`routing.read`).
#[utoipa::path(
    tag = "outbound-routes",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Route id")),
    responses(
        (status = 200, description = "The route", body = OutboundRouteDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such route in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/outbound-routes/{id}")]
pub async fn get_outbound_route(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<OutboundRouteDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        outbound_routes::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change an Outbound Route (`routing.write`).
#[utoipa::path(
    tag = "outbound-routes",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Route id")),
    request_body = OutboundRouteInput,
    responses(
        (status = 200, description = "Changed", body = OutboundRouteDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such route in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/outbound-routes/{id}")]
pub async fn update_outbound_route(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<OutboundRouteInput>,
) -> ApiResult<web::Json<OutboundRouteDto>> {
    let (domain_id, id) = path.into_inner();
    let r = outbound_routes::update(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(r.into()))
}

/// Delete an Outbound Route (`routing.write`).
#[utoipa::path(
    tag = "outbound-routes",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Route id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such route in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/outbound-routes/{id}")]
pub async fn delete_outbound_route(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    outbound_routes::delete(&state.db, &state.events, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
