//! A Domain's calling settings: hot-desk defaults, emergency numbers, ring timeout, PIN lockout.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::ending::{Ending, end_for_change};
use super::{Context, audit, scope};
use crate::bindings::hotdesk::ChangeCause;
use crate::error::{DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::store::{calling_settings, devices, extensions, hotdesk_sessions};
use crate::telephony::policy::{AutoLogout, LoggedOutMode};
use crate::telephony::values::{CallerIdName, CallerIdNumber, TimeOfDay, parse_emergency_numbers};

/// Emergency numbers of a new Domain.
pub const DEFAULT_EMERGENCY_NUMBERS: &str = "911,112,999";

/// How long a new Domain keeps its call history.
pub const DEFAULT_CALL_HISTORY_DAYS: i32 = 365;

/// The settings of a Domain that never saved any.
pub fn defaults(domain_id: Uuid) -> calling_settings::Model {
    calling_settings::Model {
        domain_id,
        logged_out_mode: LoggedOutMode::Full.as_str().to_owned(),
        placeholder_extension_id: None,
        one_phone_at_a_time: true,
        auto_logout: AutoLogout::Never.as_str().to_owned(),
        auto_logout_hours: None,
        auto_logout_at: None,
        emergency_numbers: DEFAULT_EMERGENCY_NUMBERS.to_owned(),
        emergency_caller_id_name: None,
        emergency_caller_id_number: None,
        default_ring_timeout_secs: 30,
        pin_max_failures: 5,
        pin_window_secs: 900,
        pin_min_length: 4,
        country_code: None,
        national_prefix: "0".to_owned(),
        international_prefix: "00".to_owned(),
        outbound_caller_id_name: None,
        outbound_caller_id_number: None,
        present_any_caller_id: false,
        call_history_days: DEFAULT_CALL_HISTORY_DAYS,
        updated_at: Utc::now(),
    }
}

/// The stored settings, or the defaults. No authorization: for use inside other use cases.
pub async fn load<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<calling_settings::Model> {
    Ok(calling_settings::Entity::find_by_id(domain_id)
        .one(db)
        .await?
        .unwrap_or_else(|| defaults(domain_id)))
}

/// Reads the settings (`domains.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<calling_settings::Model> {
    scope::enter(db, ctx, domain_id, Permission::DomainsRead).await?;
    load(db, domain_id).await
}

/// A change to the settings; absent fields stay as they are, `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    /// `full` or `placeholder`.
    pub logged_out_mode: Option<String>,
    /// The placeholder Extension (must be one flagged `placeholder`).
    pub placeholder_extension_id: Option<Option<Uuid>>,
    /// Logging in on a second phone ends the first session.
    pub one_phone_at_a_time: Option<bool>,
    /// `never`, `after_hours` or `daily_at`.
    pub auto_logout: Option<String>,
    /// Hours for `after_hours` (1–168).
    pub auto_logout_hours: Option<Option<i32>>,
    /// `HH:MM` for `daily_at`.
    pub auto_logout_at: Option<Option<String>>,
    /// Emergency numbers.
    pub emergency_numbers: Option<Vec<String>>,
    /// The Domain's emergency caller ID name.
    pub emergency_caller_id_name: Option<Option<String>>,
    /// The Domain's emergency caller ID number (E.164).
    pub emergency_caller_id_number: Option<Option<String>>,
    /// Default ring timeout, 5–300 s.
    pub default_ring_timeout_secs: Option<i32>,
    /// PIN failures before lockout, 1–20.
    pub pin_max_failures: Option<i32>,
    /// PIN lockout window, 60–86400 s.
    pub pin_window_secs: Option<i32>,
    /// The fewest digits a new PIN may have, 4–12.
    pub pin_min_length: Option<i32>,
    /// Country calling code (1–3 digits, no `+`).
    pub country_code: Option<Option<String>>,
    /// National trunk prefix (0–2 digits).
    pub national_prefix: Option<String>,
    /// International access prefix (1–4 digits).
    pub international_prefix: Option<String>,
    /// The Domain's default outbound caller ID name.
    pub outbound_caller_id_name: Option<Option<String>>,
    /// The Domain's default outbound caller ID number (E.164).
    pub outbound_caller_id_number: Option<Option<String>>,
    /// May present numbers it does not own (platform `domains.manage` only).
    pub present_any_caller_id: Option<bool>,
    /// Days the call history is kept, 1–3650.
    pub call_history_days: Option<i32>,
}

/// Changes the settings (`settings.write`), validating the whole result.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    patch: SettingsPatch,
) -> DomainResult<calling_settings::Model> {
    let domain = scope::enter(db, ctx, domain_id, Permission::SettingsWrite).await?;
    let txn = crate::db::begin_write(db).await?;
    // The row is created (once) and locked before it is read, so concurrent changes queue up
    // behind each other: none is lost, none collides on the insert (SQLite: the transaction
    // holds the write lock already).
    calling_settings::Entity::insert(calling_settings::ActiveModel::from(defaults(domain_id)))
        .on_conflict_do_nothing_on([calling_settings::Column::DomainId])
        .exec_without_returning(&txn)
        .await?;
    let existing = calling_settings::Entity::find_by_id(domain_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let before = existing.clone().unwrap_or_else(|| defaults(domain_id));
    let mut s = before.clone();
    if let Some(v) = patch.logged_out_mode {
        s.logged_out_mode = v;
    }
    if let Some(v) = patch.placeholder_extension_id {
        s.placeholder_extension_id = v;
    }
    if let Some(v) = patch.one_phone_at_a_time {
        s.one_phone_at_a_time = v;
    }
    if let Some(v) = patch.auto_logout {
        s.auto_logout = v;
    }
    if let Some(v) = patch.auto_logout_hours {
        s.auto_logout_hours = v;
    }
    if let Some(v) = patch.auto_logout_at {
        s.auto_logout_at = v;
    }
    if let Some(v) = patch.emergency_caller_id_name {
        s.emergency_caller_id_name = v;
    }
    if let Some(v) = patch.emergency_caller_id_number {
        s.emergency_caller_id_number = v;
    }
    if let Some(v) = patch.default_ring_timeout_secs {
        s.default_ring_timeout_secs = v;
    }
    if let Some(v) = patch.pin_max_failures {
        s.pin_max_failures = v;
    }
    if let Some(v) = patch.pin_window_secs {
        s.pin_window_secs = v;
    }
    if let Some(v) = patch.pin_min_length {
        s.pin_min_length = v;
    }
    if let Some(v) = patch.country_code {
        s.country_code = v.map(|c| c.trim().trim_start_matches('+').to_owned());
    }
    if let Some(v) = patch.national_prefix {
        s.national_prefix = v.trim().to_owned();
    }
    if let Some(v) = patch.international_prefix {
        s.international_prefix = v.trim().to_owned();
    }
    if let Some(v) = patch.outbound_caller_id_name {
        s.outbound_caller_id_name = v;
    }
    if let Some(v) = patch.outbound_caller_id_number {
        s.outbound_caller_id_number = v;
    }
    let mut errors = FieldErrors::new();
    if let Some(v) = patch.present_any_caller_id
        && v != s.present_any_caller_id
    {
        if crate::identity::authz::authorize_platform(&ctx.actor, Permission::DomainsManage).is_ok()
        {
            s.present_any_caller_id = v;
        } else {
            errors.add(
                "present_any_caller_id",
                "platform_only",
                "only the platform decides whether a Domain may present numbers it does not own",
            );
        }
    }

    if let Some(numbers) = patch.emergency_numbers {
        if let Some(joined) = errors.check("emergency_numbers", parse_emergency_numbers(&numbers)) {
            s.emergency_numbers = joined;
        }
    }
    match LoggedOutMode::parse(&s.logged_out_mode) {
        Ok(LoggedOutMode::Inherit) | Err(_) => errors.add(
            "logged_out_mode",
            "invalid_choice",
            "must be one of: full, placeholder",
        ),
        Ok(LoggedOutMode::Placeholder) if s.placeholder_extension_id.is_none() => errors.add(
            "placeholder_extension_id",
            "required",
            "placeholder mode needs a placeholder Extension",
        ),
        Ok(_) => {}
    }
    if let Some(id) = s.placeholder_extension_id {
        let ext = extensions::Entity::find_by_id(id)
            .filter(extensions::Column::DomainId.eq(domain_id))
            .one(&txn)
            .await?;
        super::extensions::check_placeholder_ref(
            ext.as_ref(),
            "placeholder_extension_id",
            "no such Extension in this Domain",
            &mut errors,
        );
    }
    validate_auto_logout(
        &mut errors,
        &s.auto_logout,
        s.auto_logout_hours,
        s.auto_logout_at.as_deref(),
        false,
    );
    if let Some(name) = &s.emergency_caller_id_name {
        errors.check("emergency_caller_id_name", CallerIdName::parse(name));
    }
    if let Some(number) = &s.emergency_caller_id_number {
        if let Some(n) = errors.check(
            "emergency_caller_id_number",
            CallerIdNumber::parse_e164(number),
        ) {
            s.emergency_caller_id_number = Some(n.into_string());
        }
    }
    if !(5..=300).contains(&s.default_ring_timeout_secs) {
        errors.add(
            "default_ring_timeout_secs",
            "out_of_range",
            "must be between 5 and 300 seconds",
        );
    }
    if !(1..=20).contains(&s.pin_max_failures) {
        errors.add(
            "pin_max_failures",
            "out_of_range",
            "must be between 1 and 20",
        );
    }
    if !(60..=86_400).contains(&s.pin_window_secs) {
        errors.add(
            "pin_window_secs",
            "out_of_range",
            "must be between 60 and 86400 seconds",
        );
    }
    if let Some(v) = patch.call_history_days {
        s.call_history_days = v;
    }
    if !(1..=3650).contains(&s.call_history_days) {
        errors.add(
            "call_history_days",
            "out_of_range",
            "must be between 1 and 3650 days",
        );
    }
    if !(4..=12).contains(&s.pin_min_length) {
        errors.add("pin_min_length", "out_of_range", "must be between 4 and 12");
    }
    let digits = |v: &str, min: usize, max: usize| {
        (min..=max).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
    };
    if let Some(cc) = &s.country_code
        && (!digits(cc, 1, 3) || cc.starts_with('0'))
    {
        errors.add(
            "country_code",
            "invalid_country_code",
            "a country calling code is 1 to 3 digits without + (e.g. 49, 1, 353)",
        );
    }
    if !digits(&s.national_prefix, 0, 2) {
        errors.add(
            "national_prefix",
            "invalid_prefix",
            "the national trunk prefix is 0 to 2 digits (e.g. 0; empty for none)",
        );
    }
    if !digits(&s.international_prefix, 1, 4) {
        errors.add(
            "international_prefix",
            "invalid_prefix",
            "the international access prefix is 1 to 4 digits (e.g. 00, 011)",
        );
    }
    if let Some(name) = &s.outbound_caller_id_name {
        errors.check("outbound_caller_id_name", CallerIdName::parse(name));
    }
    if let Some(number) = &s.outbound_caller_id_number {
        if let Some(n) = errors.check(
            "outbound_caller_id_number",
            CallerIdNumber::parse_e164(number),
        ) {
            s.outbound_caller_id_number = Some(n.into_string());
        }
    }
    if let Some(number) = &s.outbound_caller_id_number
        && before.outbound_caller_id_number.as_ref() != Some(number)
        && !s.present_any_caller_id
    {
        let owned = crate::store::numbers::Entity::find()
            .filter(crate::store::numbers::Column::Number.eq(number.as_str()))
            .filter(crate::store::numbers::Column::DomainId.eq(domain_id))
            .one(&txn)
            .await?
            .is_some();
        if !owned {
            errors.add(
                "outbound_caller_id_number",
                "not_owned",
                "the Domain presents only its own Numbers: assign this Number to it first",
            );
        }
    }
    errors.into_result()?;
    s.updated_at = ctx.now;
    let saved = match existing {
        Some(row) => {
            let mut active = row.into_active_model();
            active.logged_out_mode = Set(s.logged_out_mode.clone());
            active.placeholder_extension_id = Set(s.placeholder_extension_id);
            active.one_phone_at_a_time = Set(s.one_phone_at_a_time);
            active.auto_logout = Set(s.auto_logout.clone());
            active.auto_logout_hours = Set(s.auto_logout_hours);
            active.auto_logout_at = Set(s.auto_logout_at.clone());
            active.emergency_numbers = Set(s.emergency_numbers.clone());
            active.emergency_caller_id_name = Set(s.emergency_caller_id_name.clone());
            active.emergency_caller_id_number = Set(s.emergency_caller_id_number.clone());
            active.default_ring_timeout_secs = Set(s.default_ring_timeout_secs);
            active.pin_max_failures = Set(s.pin_max_failures);
            active.pin_window_secs = Set(s.pin_window_secs);
            active.pin_min_length = Set(s.pin_min_length);
            active.country_code = Set(s.country_code.clone());
            active.national_prefix = Set(s.national_prefix.clone());
            active.international_prefix = Set(s.international_prefix.clone());
            active.outbound_caller_id_name = Set(s.outbound_caller_id_name.clone());
            active.outbound_caller_id_number = Set(s.outbound_caller_id_number.clone());
            active.present_any_caller_id = Set(s.present_any_caller_id);
            active.call_history_days = Set(s.call_history_days);
            active.updated_at = Set(s.updated_at);
            active.update(&txn).await?
        }
        None => {
            calling_settings::ActiveModel::from(s.clone())
                .insert(&txn)
                .await?
        }
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "calling_settings.update",
            target_kind: "calling_settings",
            target_id: Some(domain_id.to_string()),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&saved).ok(),
        },
    )
    .await?;
    // Turning one phone at a time on keeps each Extension on its newest phone only.
    let ended = if s.one_phone_at_a_time && !before.one_phone_at_a_time {
        let extra = sessions_beyond_the_newest(&txn, domain_id).await?;
        let ending = Ending {
            devices: &extra,
            ..Ending::default()
        };
        end_for_change(
            &txn,
            ctx,
            domain_id,
            &domain.sip_domain,
            ending,
            ChangeCause::OnePhoneAtATime,
        )
        .await?
    } else {
        Vec::new()
    };
    // The Domain's emergency caller ID and ring timeout are in every SIP user's directory
    // answer (the place's fallback, the Extension's dial string): all of them are re-read.
    // Otherwise only the hot-desk phones, whose logged-out identity follows these settings.
    let everyone = before.emergency_caller_id_name != saved.emergency_caller_id_name
        || before.emergency_caller_id_number != saved.emergency_caller_id_number
        || before.emergency_numbers != saved.emergency_numbers
        || before.default_ring_timeout_secs != saved.default_ring_timeout_secs;
    let mut devices_query = devices::Entity::find().filter(devices::Column::DomainId.eq(domain_id));
    if !everyone {
        devices_query = devices_query.filter(devices::Column::Mode.eq("hotdesk"));
    }
    let mut refresh: Vec<String> = devices_query
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| d.sip_username)
        .collect();
    if everyone {
        refresh.extend(
            extensions::Entity::find()
                .select_only()
                .column(extensions::Column::Number)
                .filter(extensions::Column::DomainId.eq(domain_id))
                .into_tuple::<String>()
                .all(&txn)
                .await?,
        );
    }
    txn.commit().await?;
    bus.publish(
        ended.into_iter().chain([ChangeEvent::new(
            domain_id,
            &domain.sip_domain,
            ChangeKind::CallingSettingsUpdated,
            domain_id,
            ctx.now,
        )
        .refresh(refresh)]),
    );
    Ok(saved)
}

/// The devices whose active session is not their Extension's newest one.
async fn sessions_beyond_the_newest<C: ConnectionTrait>(
    txn: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<Uuid>> {
    let sessions = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .order_by_desc(hotdesk_sessions::Column::StartedAt)
        .order_by_desc(hotdesk_sessions::Column::Id)
        .all(txn)
        .await?;
    let mut seen = std::collections::HashSet::new();
    Ok(sessions
        .into_iter()
        .filter(|s| !seen.insert(s.extension_id))
        .map(|s| s.device_id)
        .collect())
}

/// Checks an auto-logout policy and its parameters (`inherit` only where `allow_inherit`).
pub fn validate_auto_logout(
    errors: &mut FieldErrors,
    policy: &str,
    hours: Option<i32>,
    at: Option<&str>,
    allow_inherit: bool,
) {
    validate_auto_end(errors, "auto_logout", policy, hours, at, allow_inherit);
}

/// Validates a "when it ends by itself" policy whose fields are `<field>`, `<field>_hours` and
/// `<field>_at` (hot-desk auto-logout, Location auto sign-out).
pub fn validate_auto_end(
    errors: &mut FieldErrors,
    field: &str,
    policy: &str,
    hours: Option<i32>,
    at: Option<&str>,
    allow_inherit: bool,
) {
    match AutoLogout::parse(policy) {
        Err(e) => errors.push(crate::FieldError {
            field: field.into(),
            ..e
        }),
        Ok(AutoLogout::Inherit) if !allow_inherit => errors.add(
            field,
            "invalid_choice",
            "must be one of: never, after_hours, daily_at",
        ),
        Ok(AutoLogout::AfterHours) => match hours {
            Some(h) if (1..=168).contains(&h) => {}
            _ => errors.add(
                format!("{field}_hours"),
                "out_of_range",
                format!("after_hours needs {field}_hours between 1 and 168"),
            ),
        },
        Ok(AutoLogout::DailyAt) => match at {
            Some(t) => {
                errors.check(&format!("{field}_at"), TimeOfDay::parse(t));
            }
            None => errors.add(
                format!("{field}_at"),
                "required",
                format!("daily_at needs {field}_at as HH:MM"),
            ),
        },
        Ok(_) => {}
    }
}

/// The emergency numbers as a list.
pub fn emergency_numbers(settings: &calling_settings::Model) -> Vec<String> {
    settings
        .emergency_numbers
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}
