//! A Domain's calling settings: hot-desk defaults, emergency numbers, ring timeout, PIN lockout.

use actix_web::{get, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::calling_settings::{self, SettingsPatch, emergency_numbers};
use switchboard_domain::store::calling_settings as store;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// The Domain's calling settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallingSettingsDto {
    /// The Domain.
    pub domain_id: Uuid,
    /// What a logged-out hot-desk phone does: `full` (only login codes and emergency
    /// numbers) or `placeholder` (acts as the placeholder Extension).
    #[schema(value_type = crate::dto::LoggedOutMode, example = "full")]
    pub logged_out_mode: String,
    /// The placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Logging in on a second phone ends the first session.
    pub one_phone_at_a_time: bool,
    /// When hot-desk sessions end by themselves: `never`, `after_hours`, `daily_at`.
    #[schema(value_type = crate::dto::AutoLogout, example = "daily_at")]
    pub auto_logout: String,
    /// Hours for `after_hours`.
    pub auto_logout_hours: Option<i32>,
    /// `HH:MM` in the Domain's time zone for `daily_at`.
    #[schema(example = "02:00")]
    pub auto_logout_at: Option<String>,
    /// Numbers dialable from any phone, even logged out.
    #[schema(example = json!(["911", "112", "999"]))]
    pub emergency_numbers: Vec<String>,
    /// The Domain's emergency caller ID name (after the phone's and its Location's).
    pub emergency_caller_id_name: Option<String>,
    /// The Domain's emergency caller ID number, E.164.
    pub emergency_caller_id_number: Option<String>,
    /// Default ring timeout in seconds.
    #[schema(example = 30)]
    pub default_ring_timeout_secs: i32,
    /// Wrong PINs per Extension within the window before lockout.
    #[schema(example = 5)]
    pub pin_max_failures: i32,
    /// The PIN lockout window in seconds.
    #[schema(example = 900)]
    pub pin_window_secs: i32,
    /// The fewest digits a new PIN may have (a 4-digit PIN's hash falls to an offline guess in
    /// minutes: raise it where the database could be read).
    #[schema(example = 6)]
    pub pin_min_length: i32,
    /// Country calling code without `+` (national numbers become `+<code>…` on the way out).
    #[schema(example = "49")]
    pub country_code: Option<String>,
    /// The national trunk prefix dialled before national numbers (empty for none).
    #[schema(example = "0")]
    pub national_prefix: String,
    /// The international access prefix (`00`, `011`).
    #[schema(example = "00")]
    pub international_prefix: String,
    /// The Domain's default outbound caller ID name.
    pub outbound_caller_id_name: Option<String>,
    /// The Domain's default outbound caller ID number (E.164), used when the caller has none
    /// the Domain may present.
    #[schema(example = "+4930123456")]
    pub outbound_caller_id_number: Option<String>,
    /// May present caller IDs that are not its own Numbers (set by the platform only).
    pub present_any_caller_id: bool,
    /// Days the call history is kept; older calls are purged (their recordings' files stay
    /// on the FreeSWITCH node).
    #[schema(example = 365)]
    pub call_history_days: i32,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<store::Model> for CallingSettingsDto {
    fn from(s: store::Model) -> Self {
        Self {
            emergency_numbers: emergency_numbers(&s),
            domain_id: s.domain_id,
            logged_out_mode: s.logged_out_mode,
            placeholder_extension_id: s.placeholder_extension_id,
            one_phone_at_a_time: s.one_phone_at_a_time,
            auto_logout: s.auto_logout,
            auto_logout_hours: s.auto_logout_hours,
            auto_logout_at: s.auto_logout_at,
            emergency_caller_id_name: s.emergency_caller_id_name,
            emergency_caller_id_number: s.emergency_caller_id_number,
            default_ring_timeout_secs: s.default_ring_timeout_secs,
            pin_max_failures: s.pin_max_failures,
            pin_window_secs: s.pin_window_secs,
            pin_min_length: s.pin_min_length,
            country_code: s.country_code,
            national_prefix: s.national_prefix,
            international_prefix: s.international_prefix,
            outbound_caller_id_name: s.outbound_caller_id_name,
            outbound_caller_id_number: s.outbound_caller_id_number,
            present_any_caller_id: s.present_any_caller_id,
            call_history_days: s.call_history_days,
            updated_at: s.updated_at,
        }
    }
}

/// A change to the calling settings; omitted fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingSettingsInput {
    /// `full` or `placeholder`.
    #[schema(value_type = Option<crate::dto::LoggedOutMode>)]
    pub logged_out_mode: Option<String>,
    /// An Extension flagged `placeholder` in this Domain.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub placeholder_extension_id: Option<Option<Uuid>>,
    /// Logging in on a second phone ends the first session.
    pub one_phone_at_a_time: Option<bool>,
    /// `never`, `after_hours` or `daily_at`.
    #[schema(value_type = Option<crate::dto::AutoLogout>)]
    pub auto_logout: Option<String>,
    /// 1–168, for `after_hours`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<i32>)]
    pub auto_logout_hours: Option<Option<i32>>,
    /// `HH:MM`, for `daily_at`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub auto_logout_at: Option<Option<String>>,
    /// 2–6 digits each, at least one.
    pub emergency_numbers: Option<Vec<String>>,
    /// The Domain's emergency caller ID name.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_name: Option<Option<String>>,
    /// The Domain's emergency caller ID number, E.164.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub emergency_caller_id_number: Option<Option<String>>,
    /// 5–300 seconds.
    pub default_ring_timeout_secs: Option<i32>,
    /// 1–20.
    pub pin_max_failures: Option<i32>,
    /// 60–86400 seconds.
    pub pin_window_secs: Option<i32>,
    /// 4–12 digits; applies to PINs set from now on.
    pub pin_min_length: Option<i32>,
    /// 1–3 digits without `+`; `null` clears (numbers are then sent as dialled unless they
    /// start with `+` or the international prefix).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub country_code: Option<Option<String>>,
    /// 0–2 digits.
    pub national_prefix: Option<String>,
    /// 1–4 digits.
    pub international_prefix: Option<String>,
    /// The Domain's default outbound caller ID name.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub outbound_caller_id_name: Option<Option<String>>,
    /// The Domain's default outbound caller ID number, E.164.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub outbound_caller_id_number: Option<Option<String>>,
    /// Platform `domains.manage` only (422 `platform_only` otherwise).
    pub present_any_caller_id: Option<bool>,
    /// Days the call history is kept, 1–3650.
    pub call_history_days: Option<i32>,
}

const PROBLEM: &str = "application/problem+json";

/// Read the Domain's calling settings (`domains.read`); defaults until first changed.
#[utoipa::path(
    tag = "calling-settings",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The settings", body = CallingSettingsDto),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/calling-settings")]
pub async fn get_calling_settings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<CallingSettingsDto>> {
    Ok(web::Json(
        calling_settings::get(&state.db, caller.ctx(), path.into_inner())
            .await?
            .into(),
    ))
}

/// Change the Domain's calling settings (`settings.write`); the whole result is validated.
#[utoipa::path(
    tag = "calling-settings",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = CallingSettingsInput,
    responses(
        (status = 200, description = "Changed", body = CallingSettingsDto),
        (status = 403, description = "`settings.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/calling-settings")]
pub async fn update_calling_settings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<CallingSettingsInput>,
) -> ApiResult<web::Json<CallingSettingsDto>> {
    let i = body.into_inner();
    let patch = SettingsPatch {
        logged_out_mode: i.logged_out_mode,
        placeholder_extension_id: i.placeholder_extension_id,
        one_phone_at_a_time: i.one_phone_at_a_time,
        auto_logout: i.auto_logout,
        auto_logout_hours: i.auto_logout_hours,
        auto_logout_at: i.auto_logout_at,
        emergency_numbers: i.emergency_numbers,
        emergency_caller_id_name: i.emergency_caller_id_name,
        emergency_caller_id_number: i.emergency_caller_id_number,
        default_ring_timeout_secs: i.default_ring_timeout_secs,
        pin_max_failures: i.pin_max_failures,
        pin_window_secs: i.pin_window_secs,
        pin_min_length: i.pin_min_length,
        country_code: i.country_code,
        national_prefix: i.national_prefix,
        international_prefix: i.international_prefix,
        outbound_caller_id_name: i.outbound_caller_id_name,
        outbound_caller_id_number: i.outbound_caller_id_number,
        present_any_caller_id: i.present_any_caller_id,
        call_history_days: i.call_history_days,
    };
    let saved = calling_settings::update(
        &state.db,
        &state.events,
        caller.ctx(),
        path.into_inner(),
        patch,
    )
    .await?;
    Ok(web::Json(saved.into()))
}
