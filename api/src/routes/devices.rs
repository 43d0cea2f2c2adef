//! Devices: desk phones and softphones with their own SIP identity (generated, never chosen),
//! bound to an owner Extension (`fixed`) or to whoever logs in (`hotdesk`).

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use switchboard_domain::services::devices::{self, Deps, DeviceFilter, DevicePatch};
use switchboard_domain::store::devices as store;
use switchboard_domain::telephony::values::MacAddress;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// A Device. Its SIP secret is never part of it: read it at `…/devices/{id}/sip-secret`
/// (`secrets.read`, audited).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDto {
    /// Id.
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Label.
    #[schema(example = "Reception 2F")]
    pub label: String,
    /// MAC address, `aa:bb:cc:dd:ee:ff`; null for softphones.
    #[schema(example = "00:15:65:ab:cd:ef")]
    pub mac_address: Option<String>,
    /// Vendor.
    #[schema(example = "Yealink")]
    pub vendor: Option<String>,
    /// Model.
    #[schema(example = "T54W")]
    pub model: Option<String>,
    /// The generated SIP user name, unique in the Domain.
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_username: String,
    /// `fixed` (bound to its owner) or `hotdesk` (bound to whoever is logged in).
    #[schema(value_type = crate::dto::DeviceMode, example = "hotdesk")]
    pub mode: String,
    /// The owner Extension of a fixed device.
    pub owner_extension_id: Option<Uuid>,
    /// The Location it belongs to.
    pub location_id: Option<Uuid>,
    /// Its place in the Location's ring order (lower rings first); null outside a Location.
    pub location_position: Option<i32>,
    /// Seconds it rings in the Location's sequential ring before the next device's turn;
    /// null: the Domain's default ring timeout.
    pub location_ring_timeout_secs: Option<i32>,
    /// Emergency caller ID name of the phone's place (falls back to its Location's, then the
    /// Domain's).
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number (E.164), same fallback.
    #[schema(example = "+4930123456")]
    pub emergency_caller_id_number: Option<String>,
    /// When nobody is logged in: `inherit` (the Domain's setting), `full` or `placeholder`.
    #[schema(value_type = crate::dto::DeviceLoggedOutMode, example = "inherit")]
    pub logged_out_mode: String,
    /// The placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// `inherit`, `never`, `after_hours` or `daily_at`.
    #[schema(value_type = crate::dto::DeviceAutoLogout, example = "inherit")]
    pub auto_logout: String,
    /// Hours for `after_hours`.
    pub auto_logout_hours: Option<i32>,
    /// `HH:MM` in the Domain's time zone, for `daily_at`.
    pub auto_logout_at: Option<String>,
    /// The desk's own person: a visitor's logout returns the phone to this Extension.
    pub home_extension_id: Option<Uuid>,
    /// Who logged out of the phone last (their group's logout action applies while nobody is
    /// logged in).
    pub last_extension_id: Option<Uuid>,
    /// The tenant template the phone's main file is rendered with (null: the built-in one
    /// of its vendor); see `…/provisioning/templates`.
    pub template_id: Option<Uuid>,
    /// When the phone last fetched its configuration from `/provision/…`.
    pub last_provisioned_at: Option<DateTime<Utc>>,
    /// In service.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<store::Model> for DeviceDto {
    fn from(d: store::Model) -> Self {
        Self {
            id: d.id,
            domain_id: d.domain_id,
            label: d.label,
            mac_address: d.mac_address.map(|m| match MacAddress::parse(&m) {
                Ok(mac) => mac.colon_separated(),
                Err(_) => m,
            }),
            vendor: d.vendor,
            model: d.model,
            sip_username: d.sip_username,
            mode: d.mode,
            owner_extension_id: d.owner_extension_id,
            location_position: d.location_id.map(|_| d.location_position),
            location_id: d.location_id,
            location_ring_timeout_secs: d.location_ring_timeout_secs,
            emergency_caller_id_name: d.emergency_caller_id_name,
            emergency_caller_id_number: d.emergency_caller_id_number,
            logged_out_mode: d.logged_out_mode,
            placeholder_extension_id: d.placeholder_extension_id,
            auto_logout: d.auto_logout,
            auto_logout_hours: d.auto_logout_hours,
            auto_logout_at: d.auto_logout_at,
            home_extension_id: d.home_extension_id,
            last_extension_id: d.last_extension_id,
            template_id: d.template_id,
            last_provisioned_at: d.last_provisioned_at,
            enabled: d.enabled,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A Device to create, or a change to one. On creation only `label` is required; on change,
/// omitted fields stay as they are and `null` clears an optional field. The SIP user name and
/// secret are generated and cannot be given.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceInput {
    /// 1–100 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = String, example = "Reception 2F")]
    pub label: Option<String>,
    /// MAC address in any common notation (`00:15:65:AB:CD:EF`, `00-15-…`, `0015.65ab.cdef`,
    /// `001565abcdef`), unique across the platform; `null` for a softphone.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "00:15:65:ab:cd:ef")]
    pub mac_address: Option<Option<String>>,
    /// Up to 64 characters.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "Yealink")]
    pub vendor: Option<Option<String>>,
    /// Up to 64 characters. For provisioning, a model of the catalogue: its id
    /// (`yealink-t54w`) or its name with `vendor` (`Yealink` + `T54W`).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "T54W")]
    pub model: Option<Option<String>>,
    /// `fixed` or `hotdesk` (default). Changing to `hotdesk` clears the owner; changing to
    /// `fixed` needs `owner_extension_id` and resets the hot-desk settings to `inherit`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::DeviceMode, example = "hotdesk")]
    pub mode: Option<String>,
    /// Required for, and only for, `fixed`: an Extension of this Domain that is not a
    /// placeholder.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_extension_id: Option<Option<Uuid>>,
    /// A Location of this Domain; `null` takes the device out of its Location.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub location_id: Option<Option<Uuid>>,
    /// 0–9999, lower rings first; default: after the Location's last device.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = i32)]
    pub location_position: Option<i32>,
    /// 5–300 seconds, for the Location's sequential ring.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>)]
    pub location_ring_timeout_secs: Option<Option<i32>>,
    /// 1–50 characters.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_name: Option<Option<String>>,
    /// E.164, e.g. `+4930123456`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_number: Option<Option<String>>,
    /// `inherit` (default), `full` or `placeholder`; hot-desk devices only.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::DeviceLoggedOutMode)]
    pub logged_out_mode: Option<String>,
    /// For `placeholder`: an Extension of this Domain flagged `placeholder`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub placeholder_extension_id: Option<Option<Uuid>>,
    /// `inherit` (default), `never`, `after_hours` or `daily_at`; hot-desk devices only.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::DeviceAutoLogout)]
    pub auto_logout: Option<String>,
    /// 1–168, with (and only with) `after_hours`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>)]
    pub auto_logout_hours: Option<Option<i32>>,
    /// `HH:MM`, with (and only with) `daily_at`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "02:00")]
    pub auto_logout_at: Option<Option<String>>,
    /// Hot-desk devices only: the desk's own person, an Extension of this Domain in service
    /// that may hot-desk. A visitor's logout returns the phone to it, and it is logged in at
    /// once if nobody is; visitors may always log in over it. `null`: none.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub home_extension_id: Option<Option<Uuid>>,
    /// A provisioning template of this Domain for the Device's vendor (its vendor and model
    /// must be in the catalogue, `GET /api/v1/phone-models`); `null`: the built-in one.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub template_id: Option<Option<Uuid>>,
    /// In service (default true). Disabling drops the phone's registrations.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = bool)]
    pub enabled: Option<bool>,
}

impl From<DeviceInput> for DevicePatch {
    fn from(i: DeviceInput) -> Self {
        Self {
            label: i.label,
            mac_address: i.mac_address,
            vendor: i.vendor,
            model: i.model,
            mode: i.mode,
            owner_extension_id: i.owner_extension_id,
            location_id: i.location_id,
            location_position: i.location_position,
            location_ring_timeout_secs: i.location_ring_timeout_secs,
            emergency_caller_id_name: i.emergency_caller_id_name,
            emergency_caller_id_number: i.emergency_caller_id_number,
            logged_out_mode: i.logged_out_mode,
            placeholder_extension_id: i.placeholder_extension_id,
            auto_logout: i.auto_logout,
            auto_logout_hours: i.auto_logout_hours,
            auto_logout_at: i.auto_logout_at,
            home_extension_id: i.home_extension_id,
            template_id: i.template_id,
            enabled: i.enabled,
        }
    }
}

/// Filters of the Device list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceListQuery {
    /// Part of the label (case-insensitive), of the SIP user name, or of the MAC address in
    /// any notation.
    pub q: Option<String>,
    /// `fixed` or `hotdesk`.
    #[param(value_type = Option<crate::dto::DeviceMode>)]
    pub mode: Option<String>,
    /// Only devices of this Location.
    pub location_id: Option<Uuid>,
    /// Only devices owned by this Extension.
    pub owner_extension_id: Option<Uuid>,
    /// Only enabled or only disabled devices.
    pub enabled: Option<bool>,
}

/// A Device's SIP credentials, to provision a phone by hand.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSipSecret {
    /// The SIP user name.
    #[schema(example = "d7kq2mxr9tbw")]
    pub sip_username: String,
    /// The SIP secret, in clear.
    pub sip_secret: String,
    /// The realm: the Domain's SIP domain.
    #[schema(example = "acme.pbx.example.net")]
    pub realm: String,
}

fn deps(state: &AppState) -> Deps<'_> {
    Deps {
        db: &state.db,
        cipher: &state.cipher,
        bus: &state.events,
    }
}

const PROBLEM: &str = "application/problem+json";

/// Create a Device (`devices.write`) with a generated SIP user name and secret.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = DeviceInput,
    responses(
        (status = 201, description = "Created", body = DeviceDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The MAC address is taken, in any Domain (`mac_address`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields, or a reference (owner, placeholder, Location) that is not in this Domain or of the wrong kind", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/devices")]
pub async fn create_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<DeviceInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let device = devices::create(
        deps(&state),
        caller.ctx(),
        domain_id,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/devices/{}", device.id),
        ))
        .json(DeviceDto::from(device)))
}

/// List Devices (`devices.read`), oldest first.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, DeviceListQuery),
    responses(
        (status = 200, description = "One page", body = PageResponse<DeviceDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad limit, cursor or mode", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices")]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<DeviceListQuery>,
) -> ApiResult<web::Json<PageResponse<DeviceDto>>> {
    let page = page.0.to_request()?;
    let f = filter.into_inner();
    let filter = DeviceFilter {
        q: f.q,
        mode: f.mode,
        location_id: f.location_id,
        owner_extension_id: f.owner_extension_id,
        enabled: f.enabled,
    };
    let found = devices::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(found, DeviceDto::from)))
}

/// Read a Device (`devices.read`).
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The Device", body = DeviceDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}")]
pub async fn get_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<DeviceDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        devices::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change a Device (`devices.write`); omitted fields stay, `null` clears.
///
/// `mode: "hotdesk"` clears the owner; `mode: "fixed"` needs `owner_extension_id` and resets
/// `logged_out_mode`, `placeholder_extension_id` and `auto_logout` to `inherit`. A new
/// `location_id` puts the device last in that Location's ring order unless
/// `location_position` is given. Disabling drops the phone's registrations.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    request_body = DeviceInput,
    responses(
        (status = 200, description = "Changed", body = DeviceDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The MAC address is taken (`mac_address`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields or references", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/devices/{id}")]
pub async fn update_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<DeviceInput>,
) -> ApiResult<web::Json<DeviceDto>> {
    let (domain_id, id) = path.into_inner();
    let device = devices::update(
        deps(&state),
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(device.into()))
}

/// Delete a Device (`devices.write`); its registrations are dropped.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/devices/{id}")]
pub async fn delete_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    devices::delete(deps(&state), caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Generate a new SIP secret (`devices.write`); the phone's registrations are dropped and it
/// must be provisioned with the new secret.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 204, description = "Rotated"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/devices/{id}/rotate-secret")]
pub async fn rotate_device_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    devices::rotate_secret(deps(&state), caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Read the Device's SIP credentials in clear (`secrets.read`; every read is audited as
/// `device.read_secret`, without the secret).
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The credentials", body = DeviceSipSecret),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`secrets.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/sip-secret")]
pub async fn read_device_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let credentials =
        devices::read_secret(&state.db, &state.cipher, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(DeviceSipSecret {
            sip_username: credentials.sip_username,
            sip_secret: credentials.sip_secret.expose_secret().to_owned(),
            realm: credentials.realm,
        }))
}
