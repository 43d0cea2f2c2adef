//! Gateways (trunks to carriers): a Domain's own (`routing.read` / `routing.write`) and the
//! platform's (`gateways.manage`), granted to Domains. The password is write-only; the state
//! each FreeSWITCH node reports (`sofia::gateway_state`) is shown with the gateway.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::gateways::{self, GatewayPatch, GatewayView, Owner};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::ForceQuery;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// A gateway's state on one FreeSWITCH node.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayStateDto {
    /// The node.
    #[schema(example = "fs1")]
    pub node: String,
    /// sofia's registration state: `NOREG` (not registering), `TRYING`, `REGISTER`, `REGED`
    /// (registered), `UNREGED`, `FAILED`, `FAIL_WAIT`, `EXPIRED`, `UNREGISTER`, `TIMEOUT`.
    #[schema(example = "REGED")]
    pub state: String,
    /// `UP`, `DOWN` or `INVALID` when the gateway is pinged.
    pub ping_status: Option<String>,
    /// The carrier's last answer, e.g. `200 OK` or `403 Forbidden`.
    pub status: Option<String>,
    /// When the node reported it.
    pub at: DateTime<Utc>,
}

/// A gateway (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayDto {
    /// Id.
    pub id: Uuid,
    /// The owning Domain; null for a platform gateway.
    pub domain_id: Option<Uuid>,
    /// Name, unique per owner.
    #[schema(example = "carrier-a")]
    pub name: String,
    /// Free text.
    pub description: String,
    /// The carrier's host or address, with an optional port.
    #[schema(example = "sip.carrier.example:5060")]
    pub proxy: String,
    /// Authentication realm (default: the proxy's host).
    pub realm: Option<String>,
    /// User name at the carrier.
    pub username: Option<String>,
    /// Whether a password is set (it is never shown).
    pub has_password: bool,
    /// Registers with the carrier.
    pub register: bool,
    /// `udp`, `tcp` or `tls`.
    #[schema(example = "udp")]
    pub transport: String,
    /// The caller ID goes in the From header (else the account's user name).
    pub caller_id_in_from: bool,
    /// OPTIONS ping interval in seconds; null: not pinged.
    pub ping_secs: Option<i32>,
    /// Registration expiry in seconds.
    pub expire_secs: i32,
    /// Domain in the From header.
    pub from_domain: Option<String>,
    /// Other addresses or networks the carrier sends calls from, besides its proxy's
    /// (canonical: `203.0.113.7/32`).
    #[schema(example = json!(["203.0.113.7/32", "198.51.100.0/24"]))]
    pub inbound_addresses: Vec<String>,
    /// In service.
    pub enabled: bool,
    /// Domains it is granted to (platform gateways; empty for a Domain's own).
    pub granted_domain_ids: Vec<Uuid>,
    /// Its name in FreeSWITCH (`sofia status gateway <name>`).
    #[schema(example = "sb_0192f0c8e6a37d2b9c1f4e5a6b7c8d9e")]
    pub freeswitch_name: String,
    /// Its state on each FreeSWITCH node that reported it.
    pub state: Vec<GatewayStateDto>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

fn dto(state: &AppState, v: GatewayView) -> GatewayDto {
    let g = v.gateway;
    let inbound_addresses = gateways::inbound_networks(&g)
        .iter()
        .map(ToString::to_string)
        .collect();
    GatewayDto {
        id: g.id,
        domain_id: g.domain_id,
        name: g.name,
        description: g.description,
        proxy: g.proxy,
        realm: g.realm,
        username: g.username,
        has_password: v.has_password,
        register: g.register,
        transport: g.transport,
        caller_id_in_from: g.caller_id_in_from,
        ping_secs: g.ping_secs,
        expire_secs: g.expire_secs,
        inbound_addresses,
        from_domain: g.from_domain,
        enabled: g.enabled,
        granted_domain_ids: v.granted_domain_ids,
        state: state
            .bridge
            .gateway_states()
            .of(&v.freeswitch_name)
            .into_iter()
            .map(|s| GatewayStateDto {
                node: s.node,
                state: s.state,
                ping_status: s.ping_status,
                status: s.status,
                at: s.at,
            })
            .collect(),
        freeswitch_name: v.freeswitch_name,
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

/// A gateway to create, or a change to one: omitted fields stay, `null` clears. On creation
/// `name` and `proxy` are required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayInput {
    /// 1–64 letters, digits, spaces, dots, dashes or underscores; unique per owner.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "carrier-a")]
    pub name: Option<String>,
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String)]
    pub description: Option<String>,
    /// Host name or IP address, optional `:port`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "sip.carrier.example:5060")]
    pub proxy: Option<String>,
    /// Authentication realm.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub realm: Option<Option<String>>,
    /// User name at the carrier.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// Password (write-only; stored encrypted); `null` removes it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
    /// Register with the carrier (needs `username` and `password`).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = bool)]
    pub register: Option<bool>,
    /// `udp` (default), `tcp` or `tls`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = String, example = "udp")]
    pub transport: Option<String>,
    /// Caller ID in the From header (default true).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = bool)]
    pub caller_id_in_from: Option<bool>,
    /// OPTIONS ping interval, 5–3600 s; `null`: no ping.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>)]
    pub ping_secs: Option<Option<i32>>,
    /// Registration expiry, 60–86400 s (default 600).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = i32)]
    pub expire_secs: Option<i32>,
    /// Domain in the From header.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub from_domain: Option<Option<String>>,
    /// Other addresses or networks (`203.0.113.7`, `198.51.100.0/24`; at most 32, none wider
    /// than /8) the carrier sends calls from besides its proxy's: let in by the carriers' ACL
    /// and accepted in `public` like the proxy's. Replaces the list; `[]` clears it.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = Vec<String>, example = json!(["203.0.113.7", "198.51.100.0/24"]))]
    pub inbound_addresses: Option<Vec<String>>,
    /// In service (default true).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = bool)]
    pub enabled: Option<bool>,
}

impl From<GatewayInput> for GatewayPatch {
    fn from(i: GatewayInput) -> Self {
        Self {
            name: i.name,
            description: i.description,
            proxy: i.proxy,
            realm: i.realm,
            username: i.username,
            password: i.password,
            register: i.register,
            transport: i.transport,
            caller_id_in_from: i.caller_id_in_from,
            ping_secs: i.ping_secs,
            expire_secs: i.expire_secs,
            from_domain: i.from_domain,
            inbound_addresses: i.inbound_addresses,
            enabled: i.enabled,
        }
    }
}

/// The gateways of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayList {
    /// By name: the Domain's own first, then the platform gateways granted to it.
    pub items: Vec<GatewayDto>,
}

/// Create a Domain's own gateway (`routing.write`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = GatewayInput,
    responses(
        (status = 201, description = "Created; FreeSWITCH loads it at once", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/gateways")]
pub async fn create_domain_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<GatewayInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let g = gateways::create(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        Owner::Domain(domain_id),
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/gateways/{}", g.gateway.id),
        ))
        .json(dto(&state, g)))
}

/// List the gateways a Domain's routes may use: its own and the platform's granted to it
/// (`routing.read`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The gateways", body = GatewayList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/gateways")]
pub async fn list_domain_gateways(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<GatewayList>> {
    let found = gateways::list(&state.db, caller.ctx(), Owner::Domain(path.into_inner())).await?;
    Ok(web::Json(GatewayList {
        items: found.into_iter().map(|g| dto(&state, g)).collect(),
    }))
}

/// Read a Domain's own gateway with its state (`routing.read`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Gateway id")),
    responses(
        (status = 200, description = "The gateway", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such gateway of this Domain", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/gateways/{id}")]
pub async fn get_domain_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<GatewayDto>> {
    let (domain_id, id) = path.into_inner();
    let g = gateways::get(&state.db, caller.ctx(), Owner::Domain(domain_id), id).await?;
    Ok(web::Json(dto(&state, g)))
}

/// Change a Domain's own gateway (`routing.write`); FreeSWITCH replaces it at once.
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Gateway id")),
    request_body = GatewayInput,
    responses(
        (status = 200, description = "Changed", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such gateway of this Domain", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/gateways/{id}")]
pub async fn update_domain_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<GatewayInput>,
) -> ApiResult<web::Json<GatewayDto>> {
    let (domain_id, id) = path.into_inner();
    let g = gateways::update(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        Owner::Domain(domain_id),
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(dto(&state, g)))
}

/// Delete a Domain's own gateway (`routing.write`). While Outbound Routes use it, answers 409
/// `in_use` naming them, unless `?force=true`, which takes it off them.
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Gateway id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted; FreeSWITCH drops it at once"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`routing.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such gateway of this Domain", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`in_use`: Outbound Routes use it", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/gateways/{id}")]
pub async fn delete_domain_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    force: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    gateways::delete(
        &state.db,
        &state.events,
        caller.ctx(),
        Owner::Domain(domain_id),
        id,
        force.0.force,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create a platform gateway (platform `gateways.manage`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    request_body = GatewayInput,
    responses(
        (status = 201, description = "Created", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/gateways")]
pub async fn create_platform_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<GatewayInput>,
) -> ApiResult<HttpResponse> {
    let g = gateways::create(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        Owner::Platform,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/gateways/{}", g.gateway.id),
        ))
        .json(dto(&state, g)))
}

/// List the platform gateways with their grants (platform `gateways.manage`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The platform gateways", body = GatewayList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/gateways")]
pub async fn list_platform_gateways(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<GatewayList>> {
    let found = gateways::list(&state.db, caller.ctx(), Owner::Platform).await?;
    Ok(web::Json(GatewayList {
        items: found.into_iter().map(|g| dto(&state, g)).collect(),
    }))
}

/// Read a platform gateway (platform `gateways.manage`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Gateway id")),
    responses(
        (status = 200, description = "The gateway", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such platform gateway", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/gateways/{id}")]
pub async fn get_platform_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<GatewayDto>> {
    let g = gateways::get(&state.db, caller.ctx(), Owner::Platform, path.into_inner()).await?;
    Ok(web::Json(dto(&state, g)))
}

/// Change a platform gateway (platform `gateways.manage`).
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Gateway id")),
    request_body = GatewayInput,
    responses(
        (status = 200, description = "Changed", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such platform gateway", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/gateways/{id}")]
pub async fn update_platform_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<GatewayInput>,
) -> ApiResult<web::Json<GatewayDto>> {
    let g = gateways::update(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        Owner::Platform,
        path.into_inner(),
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(dto(&state, g)))
}

/// Delete a platform gateway (platform `gateways.manage`); 409 `in_use` while routes use it,
/// unless `?force=true`.
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Gateway id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such platform gateway", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`in_use`: Outbound Routes use it", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/gateways/{id}")]
pub async fn delete_platform_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    force: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    gateways::delete(
        &state.db,
        &state.events,
        caller.ctx(),
        Owner::Platform,
        path.into_inner(),
        force.0.force,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Grant a platform gateway to a Domain (platform `gateways.manage`); idempotent.
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Gateway id"), ("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "Granted", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such platform gateway or Domain", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/gateways/{id}/grants/{domain_id}")]
pub async fn grant_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<GatewayDto>> {
    let (id, domain_id) = path.into_inner();
    let g =
        gateways::set_grant(&state.db, &state.events, caller.ctx(), id, domain_id, true).await?;
    Ok(web::Json(dto(&state, g)))
}

/// Revoke a Domain's grant of a platform gateway (platform `gateways.manage`); its routes
/// then skip the gateway. Idempotent.
#[utoipa::path(
    tag = "gateways",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Gateway id"), ("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "Revoked", body = GatewayDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Platform `gateways.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such platform gateway or Domain", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/gateways/{id}/grants/{domain_id}")]
pub async fn revoke_gateway(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<GatewayDto>> {
    let (id, domain_id) = path.into_inner();
    let g =
        gateways::set_grant(&state.db, &state.events, caller.ctx(), id, domain_id, false).await?;
    Ok(web::Json(dto(&state, g)))
}
