//! Locations (desks, offices, home offices): Extensions sign in to one, and its devices then
//! ring for them in the Location's ring order. Emergency identity follows the Location.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::locations::{self, LocationFilter, LocationPatch, LocationView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::ForceQuery;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// A device of a Location, in ring order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationDeviceDto {
    /// The Device's id.
    pub id: Uuid,
    /// Its label.
    #[schema(example = "Desk 4.12 phone")]
    pub label: String,
    /// Its SIP user name.
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_username: String,
    /// Its place in the ring order (lower rings first; ties ring in creation order).
    pub position: i32,
    /// Seconds it rings in a sequential ring; null: the Domain's default ring timeout.
    pub ring_timeout_secs: Option<i32>,
    /// Whether the Device is in service.
    pub enabled: bool,
}

/// A Location.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationDto {
    /// Id.
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    #[schema(example = "Berlin HQ, desk 4.12")]
    pub name: String,
    /// Free text.
    pub description: String,
    /// Emergency caller ID name of the place (used for its devices that have none).
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number (E.164) of the place.
    #[schema(example = "+4930123456")]
    pub emergency_caller_id_number: Option<String>,
    /// Street address for emergency services.
    #[schema(example = "Main St 1, 10115 Berlin, 4th floor")]
    pub emergency_address: Option<String>,
    /// `simultaneous` (all devices at once) or `sequential` (in ring order, each for its ring
    /// timeout).
    #[schema(value_type = crate::dto::RingStrategy, example = "simultaneous")]
    pub ring_strategy: String,
    /// `everyone` (any Extension of the Domain may sign in) or `listed` (only
    /// `allowed_extension_ids` and the Extensions of holders of `allowed_roles`).
    #[schema(value_type = crate::dto::SignInPolicy, example = "everyone")]
    pub sign_in_policy: String,
    /// Extensions that may sign in under `listed` (kept, but unused, under `everyone`).
    pub allowed_extension_ids: Vec<Uuid>,
    /// Roles (built-in names or custom role ids) whose holders' Extensions may sign in under
    /// `listed` (kept, but unused, under `everyone`).
    #[schema(example = json!(["receptionist"]))]
    pub allowed_roles: Vec<String>,
    /// When sign-ins to it end by themselves: `never`, `after_hours` (after
    /// `auto_sign_out_hours`) or `daily_at` (at `auto_sign_out_at`, HH:MM in the Domain's time
    /// zone).
    #[schema(value_type = crate::dto::LocationAutoSignOut, example = "daily_at")]
    pub auto_sign_out: String,
    /// Hours, for `after_hours`.
    pub auto_sign_out_hours: Option<i32>,
    /// HH:MM, for `daily_at`.
    #[schema(example = "20:00")]
    pub auto_sign_out_at: Option<String>,
    /// Digits people dial after `*14` to sign in here from a phone (`*15` signs out).
    #[schema(example = "412")]
    pub short_code: Option<String>,
    /// Its devices, in ring order.
    pub devices: Vec<LocationDeviceDto>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<LocationView> for LocationDto {
    fn from(v: LocationView) -> Self {
        let allowed_roles = v.allowed_roles();
        let l = v.location;
        Self {
            id: l.id,
            domain_id: l.domain_id,
            name: l.name,
            description: l.description,
            emergency_caller_id_name: l.emergency_caller_id_name,
            emergency_caller_id_number: l.emergency_caller_id_number,
            emergency_address: l.emergency_address,
            ring_strategy: l.ring_strategy,
            sign_in_policy: l.sign_in_policy,
            allowed_extension_ids: v.allowed_extension_ids,
            allowed_roles,
            auto_sign_out: l.auto_sign_out,
            auto_sign_out_hours: l.auto_sign_out_hours,
            auto_sign_out_at: l.auto_sign_out_at,
            short_code: l.short_code,
            devices: v
                .devices
                .into_iter()
                .map(|d| LocationDeviceDto {
                    id: d.id,
                    label: d.label,
                    sip_username: d.sip_username,
                    position: d.location_position,
                    ring_timeout_secs: d.location_ring_timeout_secs,
                    enabled: d.enabled,
                })
                .collect(),
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// A Location to create, or a change to one. On creation only `name` is required; on change,
/// omitted fields stay as they are and `null` clears an optional field. Devices join a
/// Location through their own `location_id`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    /// 1–100 characters, unique in the Domain.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = String, example = "Berlin HQ, desk 4.12")]
    pub name: Option<String>,
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = String)]
    pub description: Option<String>,
    /// 1–50 characters.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_name: Option<Option<String>>,
    /// E.164, e.g. `+4930123456`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_number: Option<Option<String>>,
    /// Up to 500 characters; may span lines.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_address: Option<Option<String>>,
    /// `simultaneous` (default) or `sequential`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::RingStrategy)]
    pub ring_strategy: Option<String>,
    /// `everyone` (default) or `listed`. `listed` needs at least one allowed Extension or
    /// role (422 `nobody_listed` otherwise).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::SignInPolicy)]
    pub sign_in_policy: Option<String>,
    /// Extensions of this Domain, not placeholders; replaces the list.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = Vec<Uuid>)]
    pub allowed_extension_ids: Option<Vec<Uuid>>,
    /// Built-in Domain role names (`domain_admin`, `manager`, `receptionist`, `supervisor`,
    /// `agent`, `member`) or custom role ids of this Domain; replaces the list.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = Vec<String>, example = json!(["receptionist"]))]
    pub allowed_roles: Option<Vec<String>>,
    /// `never` (default), `after_hours` or `daily_at`: when sign-ins end by themselves.
    /// Changing it drops the other policy's parameter unless that is given too.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::LocationAutoSignOut)]
    pub auto_sign_out: Option<String>,
    /// 1–168, with `after_hours`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>, example = 9)]
    pub auto_sign_out_hours: Option<Option<i32>>,
    /// HH:MM in the Domain's time zone, with `daily_at`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "20:00")]
    pub auto_sign_out_at: Option<Option<String>>,
    /// 1–6 digits, unique in the Domain (409 `already_exists`): `*14<short code>` on a phone
    /// signs the Extension it calls as in here. `null` removes it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "412")]
    pub short_code: Option<Option<String>>,
}

impl From<LocationInput> for LocationPatch {
    fn from(i: LocationInput) -> Self {
        Self {
            name: i.name,
            description: i.description,
            emergency_caller_id_name: i.emergency_caller_id_name,
            emergency_caller_id_number: i.emergency_caller_id_number,
            emergency_address: i.emergency_address,
            ring_strategy: i.ring_strategy,
            sign_in_policy: i.sign_in_policy,
            allowed_extension_ids: i.allowed_extension_ids,
            allowed_roles: i.allowed_roles,
            auto_sign_out: i.auto_sign_out,
            auto_sign_out_hours: i.auto_sign_out_hours,
            auto_sign_out_at: i.auto_sign_out_at,
            short_code: i.short_code,
        }
    }
}

/// Filters of the Location list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocationListQuery {
    /// Part of the name (case-insensitive).
    pub q: Option<String>,
}

const PROBLEM: &str = "application/problem+json";

/// Create a Location (`locations.write`).
#[utoipa::path(
    tag = "locations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = LocationInput,
    responses(
        (status = 201, description = "Created", body = LocationDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`locations.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken in the Domain (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields; unknown or placeholder Extension (`allowed_extension_ids[i]`), unknown role (`allowed_roles[i]`), `listed` with nobody listed", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/locations")]
pub async fn create_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<LocationInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let location = locations::create(
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
            format!(
                "/api/v1/domains/{domain_id}/locations/{}",
                location.location.id
            ),
        ))
        .json(LocationDto::from(location)))
}

/// List Locations (`locations.read`), oldest first, each with its devices in ring order.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, LocationListQuery),
    responses(
        (status = 200, description = "One page", body = PageResponse<LocationDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`locations.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/locations")]
pub async fn list_locations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<LocationListQuery>,
) -> ApiResult<web::Json<PageResponse<LocationDto>>> {
    let page = page.0.to_request()?;
    let filter = LocationFilter {
        q: filter.into_inner().q,
    };
    let found = locations::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(found, LocationDto::from)))
}

/// Read a Location with its devices in ring order (`locations.read`).
#[utoipa::path(
    tag = "locations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Location id")),
    responses(
        (status = 200, description = "The Location", body = LocationDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`locations.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Location in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/locations/{id}")]
pub async fn get_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<LocationDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        locations::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change a Location (`locations.write`); omitted fields stay, `null` clears. The devices of
/// the Location are re-read by FreeSWITCH, as their emergency identity follows it.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Location id")),
    request_body = LocationInput,
    responses(
        (status = 200, description = "Changed", body = LocationDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`locations.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Location in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken in the Domain (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields or references", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/locations/{id}")]
pub async fn update_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<LocationInput>,
) -> ApiResult<web::Json<LocationDto>> {
    let (domain_id, id) = path.into_inner();
    let location = locations::update(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(location.into()))
}

/// Delete a Location (`locations.write`). While devices belong to it, answers 409 `in_use`
/// unless `?force=true`, which takes them out of it (no Location) in the same transaction.
#[utoipa::path(
    tag = "locations",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Location id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`locations.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Location in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`in_use`: devices belong to it; retry with ?force=true", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/locations/{id}")]
pub async fn delete_location(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    force: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    locations::delete(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        force.0.force,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
