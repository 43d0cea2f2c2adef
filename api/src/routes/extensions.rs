//! Extensions: calling identities (numbers), kept apart from dashboard users.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::extensions::{
    self, Deps, ExtensionFilter, ExtensionPatch, ForwardPatch,
};
use switchboard_domain::store::extensions as store;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::ForceQuery;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// One call-forwarding rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forward {
    /// Whether the rule applies.
    pub enabled: bool,
    /// Where calls go: a number, optionally `+E.164`.
    #[schema(example = "+4930123456")]
    pub destination: Option<String>,
}

/// The four call-forwarding rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forwarding {
    /// Every call.
    pub always: Forward,
    /// When busy.
    pub busy: Forward,
    /// When not answered within the ring timeout.
    pub no_answer: Forward,
    /// When nothing is registered.
    pub not_registered: Forward,
}

/// Call recording policy: `always`, `never` or `on_demand`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recording {
    /// Inbound calls.
    #[schema(value_type = crate::dto::RecordingMode, example = "never")]
    pub inbound: String,
    /// Outbound calls.
    #[schema(value_type = crate::dto::RecordingMode, example = "on_demand")]
    pub outbound: String,
}

/// Direct SIP registration of the Extension itself (softphones, simple setups). Its SIP user
/// is the number; read the secret at `…/extensions/{id}/sip-secret` (`secrets.read`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SipRegistration {
    /// Whether the Extension may register directly.
    pub enabled: bool,
    /// Cap on simultaneous registrations.
    #[schema(example = 3)]
    pub max_registrations: i32,
}

/// An Extension.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionDto {
    /// Id.
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// The number, unique in the Domain.
    #[schema(example = "201")]
    pub number: String,
    /// Display name.
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    /// Caller ID name on internal calls (default: the display name).
    pub internal_caller_id_name: Option<String>,
    /// Caller ID number on internal calls (default: the number).
    pub internal_caller_id_number: Option<String>,
    /// Caller ID name on outside calls.
    pub outbound_caller_id_name: Option<String>,
    /// Caller ID number (E.164) on outside calls.
    #[schema(example = "+4930123456")]
    pub outbound_caller_id_number: Option<String>,
    /// Emergency caller ID name, used when neither the phone nor its Location has one.
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number (E.164), same fallback.
    pub emergency_caller_id_number: Option<String>,
    /// Voicemail box enabled.
    pub voicemail_enabled: bool,
    /// Whether a PIN is set (the PIN itself is never shown).
    pub pin_set: bool,
    /// Seconds to ring before the no-answer outcome; null: the Domain default.
    pub ring_timeout_secs: Option<i32>,
    /// Do-Not-Disturb.
    pub dnd: bool,
    /// Call forwarding.
    pub forwarding: Forwarding,
    /// Call recording.
    pub recording: Recording,
    /// Dialplan context; null: the Domain's SIP domain.
    pub context: Option<String>,
    /// Toll-allow classes.
    #[schema(example = json!(["local", "domestic"]))]
    pub toll_allow: Vec<String>,
    /// Account code for CDRs.
    pub account_code: Option<String>,
    /// Call group.
    pub call_group: Option<String>,
    /// May log in to hot-desk phones.
    pub hotdesk_allowed: bool,
    /// Stands in for logged-out phones (never a person).
    pub placeholder: bool,
    /// A placeholder whose logged-out phones ring when it is called.
    pub placeholder_rings: bool,
    /// The internal numbers it may dial (numbers and ranges like `200-299`); null: every one.
    #[schema(example = json!(["100", "200-299"]))]
    pub internal_allow: Option<Vec<String>>,
    /// Its hot-desk group (the logout action of its phones).
    pub group_id: Option<Uuid>,
    /// Direct registration.
    pub sip_registration: SipRegistration,
    /// The dashboard User it belongs to.
    pub user_id: Option<Uuid>,
    /// In service.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<store::Model> for ExtensionDto {
    fn from(e: store::Model) -> Self {
        Self {
            id: e.id,
            domain_id: e.domain_id,
            number: e.number,
            display_name: e.display_name,
            internal_caller_id_name: e.internal_caller_id_name,
            internal_caller_id_number: e.internal_caller_id_number,
            outbound_caller_id_name: e.outbound_caller_id_name,
            outbound_caller_id_number: e.outbound_caller_id_number,
            emergency_caller_id_name: e.emergency_caller_id_name,
            emergency_caller_id_number: e.emergency_caller_id_number,
            voicemail_enabled: e.voicemail_enabled,
            pin_set: e.pin_hash.is_some(),
            ring_timeout_secs: e.ring_timeout_secs,
            dnd: e.dnd,
            forwarding: Forwarding {
                always: Forward {
                    enabled: e.forward_always_enabled,
                    destination: e.forward_always_destination,
                },
                busy: Forward {
                    enabled: e.forward_busy_enabled,
                    destination: e.forward_busy_destination,
                },
                no_answer: Forward {
                    enabled: e.forward_no_answer_enabled,
                    destination: e.forward_no_answer_destination,
                },
                not_registered: Forward {
                    enabled: e.forward_not_registered_enabled,
                    destination: e.forward_not_registered_destination,
                },
            },
            recording: Recording {
                inbound: e.record_inbound,
                outbound: e.record_outbound,
            },
            context: e.context,
            toll_allow: e
                .toll_allow
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            account_code: e.account_code,
            call_group: e.call_group,
            hotdesk_allowed: e.hotdesk_allowed,
            placeholder: e.placeholder,
            placeholder_rings: e.placeholder_rings,
            internal_allow:
                switchboard_domain::telephony::internal_allow::InternalAllow::from_stored(
                    e.internal_allow.as_deref(),
                )
                .map(|a| a.texts()),
            group_id: e.group_id,
            sip_registration: SipRegistration {
                enabled: e.sip_registration_enabled,
                max_registrations: e.max_registrations,
            },
            user_id: e.user_id,
            enabled: e.enabled,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A change to one forwarding rule.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardInput {
    /// On or off.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    /// Destination; null clears it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub destination: Option<Option<String>>,
}

impl From<ForwardInput> for ForwardPatch {
    fn from(f: ForwardInput) -> Self {
        Self {
            enabled: f.enabled,
            destination: f.destination,
        }
    }
}

/// Changes to the forwarding rules.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardingInput {
    /// Every call.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub always: Option<ForwardInput>,
    /// When busy.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub busy: Option<ForwardInput>,
    /// When not answered.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub no_answer: Option<ForwardInput>,
    /// When nothing is registered.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub not_registered: Option<ForwardInput>,
}

/// Changes to the recording policy.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingInput {
    /// `always`, `never` or `on_demand`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = crate::dto::RecordingMode)]
    pub inbound: Option<String>,
    /// `always`, `never` or `on_demand`.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, value_type = crate::dto::RecordingMode)]
    pub outbound: Option<String>,
}

/// Changes to direct registration.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SipRegistrationInput {
    /// On or off; turning it on generates a SIP secret.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
    /// 1–20.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub max_registrations: Option<i32>,
}

/// An Extension to create, or a change to one. On creation `number` and `display_name` are
/// required and everything else has a default; on change, omitted fields stay as they are and
/// `null` clears an optional field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionInput {
    /// 2–10 digits, not starting with 0, unique in the Domain, not an emergency number.
    #[schema(example = "201")]
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub number: Option<String>,
    /// 1–100 characters.
    #[schema(example = "Ada Lovelace")]
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub display_name: Option<String>,
    /// Caller ID name on internal calls (1–50 characters).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub internal_caller_id_name: Option<Option<String>>,
    /// Caller ID number on internal calls (2–15 digits).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub internal_caller_id_number: Option<Option<String>>,
    /// Caller ID name on outside calls.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub outbound_caller_id_name: Option<Option<String>>,
    /// Caller ID number on outside calls, E.164 (`+4930123456`).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub outbound_caller_id_number: Option<Option<String>>,
    /// Emergency caller ID name fallback.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_name: Option<Option<String>>,
    /// Emergency caller ID number fallback, E.164.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_number: Option<Option<String>>,
    /// Voicemail on or off (default on).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub voicemail_enabled: Option<bool>,
    /// PIN for voicemail and hot-desk login: 4–12 digits, not trivial (1111, 1234, 4321, the
    /// number). Stored as an argon2id hash; `null` removes it.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>, example = "2580")]
    pub pin: Option<Option<SecretString>>,
    /// 5–300 seconds; `null`: the Domain default.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>)]
    pub ring_timeout_secs: Option<Option<i32>>,
    /// Do-Not-Disturb.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub dnd: Option<bool>,
    /// Call forwarding rules.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub forwarding: Option<ForwardingInput>,
    /// Call recording policy.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub recording: Option<RecordingInput>,
    /// Dialplan context; `null`: the Domain's SIP domain.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub context: Option<Option<String>>,
    /// Toll-allow classes (default `["local", "domestic"]`).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub toll_allow: Option<Vec<String>>,
    /// Account code for CDRs.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub account_code: Option<Option<String>>,
    /// Call group.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub call_group: Option<Option<String>>,
    /// May log in to hot-desk phones (default true).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub hotdesk_allowed: Option<bool>,
    /// Stands in for logged-out phones; cannot be linked to a User, log in to phones or
    /// register directly.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub placeholder: Option<bool>,
    /// A placeholder only: phones logged out to it ring when it is called (default false).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub placeholder_rings: Option<bool>,
    /// The internal numbers it may dial: numbers and ranges of numbers of one length
    /// (`["100", "200-299"]`, at most 100); `[]` none; `null` every one (the default). The
    /// Domain's emergency numbers are always allowed; outside numbers follow `toll_allow`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub internal_allow: Option<Option<Vec<String>>>,
    /// Its hot-desk group (`GET …/extension-groups`); `null`: none.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub group_id: Option<Option<Uuid>>,
    /// Direct registration.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub sip_registration: Option<SipRegistrationInput>,
    /// A dashboard User holding a role in this Domain; at most one Extension per User.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub user_id: Option<Option<Uuid>>,
    /// In service (default true).
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

impl From<ExtensionInput> for ExtensionPatch {
    fn from(i: ExtensionInput) -> Self {
        let forwarding = i.forwarding.unwrap_or_default();
        let recording = i.recording.unwrap_or_default();
        let sip = i.sip_registration.unwrap_or_default();
        Self {
            number: i.number,
            display_name: i.display_name,
            internal_caller_id_name: i.internal_caller_id_name,
            internal_caller_id_number: i.internal_caller_id_number,
            outbound_caller_id_name: i.outbound_caller_id_name,
            outbound_caller_id_number: i.outbound_caller_id_number,
            emergency_caller_id_name: i.emergency_caller_id_name,
            emergency_caller_id_number: i.emergency_caller_id_number,
            voicemail_enabled: i.voicemail_enabled,
            pin: i.pin,
            ring_timeout_secs: i.ring_timeout_secs,
            dnd: i.dnd,
            forward_always: forwarding.always.map(Into::into),
            forward_busy: forwarding.busy.map(Into::into),
            forward_no_answer: forwarding.no_answer.map(Into::into),
            forward_not_registered: forwarding.not_registered.map(Into::into),
            record_inbound: recording.inbound,
            record_outbound: recording.outbound,
            context: i.context,
            toll_allow: i.toll_allow,
            account_code: i.account_code,
            call_group: i.call_group,
            hotdesk_allowed: i.hotdesk_allowed,
            placeholder: i.placeholder,
            placeholder_rings: i.placeholder_rings,
            internal_allow: i.internal_allow,
            group_id: i.group_id,
            sip_registration_enabled: sip.enabled,
            max_registrations: sip.max_registrations,
            user_id: i.user_id,
            enabled: i.enabled,
        }
    }
}

/// Filters of the Extension list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExtensionListQuery {
    /// Number prefix or part of the display name.
    pub q: Option<String>,
    /// Only placeholders (`true`) or only people (`false`).
    pub placeholder: Option<bool>,
    /// Only enabled or only disabled Extensions.
    pub enabled: Option<bool>,
}

/// An Extension's SIP credentials for direct registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionSipSecret {
    /// The SIP user (the number).
    pub sip_username: String,
    /// The SIP secret, in clear.
    pub sip_secret: String,
    /// The realm (the Domain's SIP domain).
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

/// Create an Extension (`extensions.write`).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = ExtensionInput,
    responses(
        (status = 201, description = "Created", body = ExtensionDto),
        (status = 403, description = "`extensions.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Number taken (`number`), or User already has one (`user_id`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/extensions")]
pub async fn create_extension(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ExtensionInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let ext = extensions::create(
        deps(&state),
        caller.ctx(),
        domain_id,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/extensions/{}", ext.id),
        ))
        .json(ExtensionDto::from(ext)))
}

/// List Extensions (`extensions.read`), oldest first.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, ExtensionListQuery),
    responses(
        (status = 200, description = "One page", body = PageResponse<ExtensionDto>),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions")]
pub async fn list_extensions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<ExtensionListQuery>,
) -> ApiResult<web::Json<PageResponse<ExtensionDto>>> {
    let page = page.0.to_request()?;
    let f = filter.into_inner();
    let filter = ExtensionFilter {
        q: f.q,
        placeholder: f.placeholder,
        enabled: f.enabled,
    };
    let found =
        extensions::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(
        found,
        ExtensionDto::from,
    )))
}

/// Read an Extension (`extensions.read`).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "The Extension", body = ExtensionDto),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{id}")]
pub async fn get_extension(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<ExtensionDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        extensions::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change an Extension (`extensions.write`); omitted fields stay, `null` clears.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    request_body = ExtensionInput,
    responses(
        (status = 200, description = "Changed", body = ExtensionDto),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Conflict (number taken, placeholder in use)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/extensions/{id}")]
pub async fn update_extension(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<ExtensionInput>,
) -> ApiResult<web::Json<ExtensionDto>> {
    let (domain_id, id) = path.into_inner();
    let ext = extensions::update(
        deps(&state),
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(ext.into()))
}

/// Delete an Extension (`extensions.write`). If it owns devices or is a placeholder in use,
/// answers 409 unless `?force=true`, which turns its fixed devices into logged-out hot-desk
/// phones and clears it as placeholder, in the same transaction.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "In use; retry with ?force=true", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/extensions/{id}")]
pub async fn delete_extension(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    force: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    extensions::delete(deps(&state), caller.ctx(), domain_id, id, force.0.force).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Generate a new SIP secret for direct registration (`extensions.write`); registered phones
/// are dropped and must use the new secret.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 204, description = "Rotated"),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Direct registration is off", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/extensions/{id}/rotate-secret")]
pub async fn rotate_extension_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    extensions::rotate_secret(deps(&state), caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Read the SIP secret of direct registration in clear (`secrets.read`; audited).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "The credentials", body = ExtensionSipSecret),
        (status = 403, description = "`secrets.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Direct registration is off", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{id}/sip-secret")]
pub async fn read_extension_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let (number, secret, realm) =
        extensions::read_secret(&state.db, &state.cipher, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ExtensionSipSecret {
            sip_username: number,
            sip_secret: secret.expose_secret().to_owned(),
            realm,
        }))
}
