//! Devices: desk phones and softphones with their own SIP identity.
//!
//! Create and update share one path, like Extensions: start from the defaults (or the stored
//! row), apply the patch, validate the complete result (pure rules, then the references that
//! need the database), save in one transaction with its audit entry, publish after commit.
//!
//! The SIP user name and secret are generated here and never taken from input; the secret is
//! stored encrypted (bound to `device:<id>`) and only [`read_secret`] returns it in clear.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::ending::{Ending, end_for_change};
use super::{Context, audit, calling_settings, scope};
use crate::bindings::hotdesk::ChangeCause;
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind};
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{devices, domains, extensions, locations, search};
use crate::telephony::policy::{AutoLogout, DeviceMode, LoggedOutMode};
use crate::telephony::secrets::{SecretCipher, generate_sip_secret, generate_sip_username};
use crate::telephony::values::{CallerIdName, CallerIdNumber, MacAddress, TimeOfDay};

pub use super::extensions::Deps;

/// The largest `location_position` accepted (positions order a Location's sequential ring).
pub const MAX_LOCATION_POSITION: i32 = 9_999;

/// A change to a Device: absent fields stay, `Some(None)` clears an optional field.
///
/// The SIP user name and secret are not part of it: they are generated.
#[derive(Debug, Clone, Default)]
pub struct DevicePatch {
    /// Label, e.g. "Reception 2F" (1–100 characters).
    pub label: Option<String>,
    /// MAC address in any common notation; `Some(None)` for a softphone.
    pub mac_address: Option<Option<String>>,
    /// Vendor, e.g. "Yealink".
    pub vendor: Option<Option<String>>,
    /// Model, e.g. "T54W".
    pub model: Option<Option<String>>,
    /// `fixed` or `hotdesk`. Turning a device `hotdesk` clears its owner; turning it `fixed`
    /// resets its hot-desk settings (logged-out mode, placeholder, auto-logout) to `inherit`.
    pub mode: Option<String>,
    /// The owner Extension of a fixed device.
    pub owner_extension_id: Option<Option<Uuid>>,
    /// The Location; moving to another one puts the device at the end of its ring order
    /// unless a position is given. `Some(None)` also clears position and ring timeout.
    pub location_id: Option<Option<Uuid>>,
    /// Position in the Location's ring order (0–9999, lower rings first).
    pub location_position: Option<i32>,
    /// Seconds it rings in the Location's sequential ring (5–300).
    pub location_ring_timeout_secs: Option<Option<i32>>,
    /// Emergency caller ID name of the phone's physical place.
    pub emergency_caller_id_name: Option<Option<String>>,
    /// Emergency caller ID number (E.164) of the phone's physical place.
    pub emergency_caller_id_number: Option<Option<String>>,
    /// `inherit`, `full` or `placeholder` (hot-desk devices only).
    pub logged_out_mode: Option<String>,
    /// The placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Option<Uuid>>,
    /// `inherit`, `never`, `after_hours` or `daily_at` (hot-desk devices only).
    pub auto_logout: Option<String>,
    /// Hours for `after_hours` (1–168).
    pub auto_logout_hours: Option<Option<i32>>,
    /// `HH:MM` for `daily_at`.
    pub auto_logout_at: Option<Option<String>>,
    /// The desk's own person (hot-desk devices only): a visitor's logout returns the phone to
    /// this Extension. Setting it on a phone nobody is logged in to logs the person in.
    pub home_extension_id: Option<Option<Uuid>>,
    /// The tenant template its vendor's main file is rendered with (null: the built-in one).
    pub template_id: Option<Option<Uuid>>,
    /// In service.
    pub enabled: Option<bool>,
}

/// Filters of the Device list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Part of the label, the MAC address (any notation) or the SIP user name.
    pub q: Option<String>,
    /// Only `fixed` or only `hotdesk` devices.
    pub mode: Option<String>,
    /// Only devices of this Location.
    pub location_id: Option<Uuid>,
    /// Only devices owned by this Extension.
    pub owner_extension_id: Option<Uuid>,
    /// Only enabled, or only disabled.
    pub enabled: Option<bool>,
}

/// A Device's SIP credentials, for provisioning a phone by hand.
#[derive(Debug, Clone)]
pub struct SipCredentials {
    /// The SIP user name.
    pub sip_username: String,
    /// The SIP secret in clear.
    pub sip_secret: SecretString,
    /// The realm: the Domain's SIP domain.
    pub realm: String,
}

/// A new Device row with the defaults (hot-desk, everything inherited, enabled), before its
/// SIP identity is generated.
pub fn new_row(domain_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> devices::Model {
    devices::Model {
        id: Uuid::now_v7(),
        domain_id,
        label: String::new(),
        mac_address: None,
        vendor: None,
        model: None,
        sip_username: String::new(),
        sip_secret_encrypted: String::new(),
        mode: DeviceMode::Hotdesk.as_str().to_owned(),
        owner_extension_id: None,
        location_id: None,
        location_position: 0,
        location_ring_timeout_secs: None,
        emergency_caller_id_name: None,
        emergency_caller_id_number: None,
        logged_out_mode: LoggedOutMode::Inherit.as_str().to_owned(),
        placeholder_extension_id: None,
        auto_logout: AutoLogout::Inherit.as_str().to_owned(),
        auto_logout_hours: None,
        auto_logout_at: None,
        home_extension_id: None,
        last_extension_id: None,
        template_id: None,
        provisioning_password_encrypted: None,
        last_provisioned_at: None,
        last_provisioned_from: None,
        last_provisioned_agent: None,
        enabled: true,
        created_at: now,
        updated_at: now,
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Applies a patch, including the knock-on changes a caller would otherwise have to spell out:
/// leaving `fixed` drops the owner, entering `fixed` resets the hot-desk settings, leaving a
/// Location drops the position and timeout, leaving `placeholder` drops the placeholder, and a
/// new auto-logout policy drops the parameters of the old one. Explicit values always win.
pub fn apply(row: &mut devices::Model, p: DevicePatch) {
    let mode_changed = p.mode.as_deref().is_some_and(|m| m != row.mode);
    let location_cleared = matches!(p.location_id, Some(None)) && row.location_id.is_some();
    set(&mut row.label, p.label);
    set(&mut row.mac_address, p.mac_address);
    set(&mut row.vendor, p.vendor);
    set(&mut row.model, p.model);
    set(&mut row.mode, p.mode);
    if mode_changed && row.mode == DeviceMode::Hotdesk.as_str() && p.owner_extension_id.is_none() {
        row.owner_extension_id = None;
    }
    if mode_changed && row.mode == DeviceMode::Fixed.as_str() {
        if p.logged_out_mode.is_none() {
            row.logged_out_mode = LoggedOutMode::Inherit.as_str().to_owned();
        }
        if p.auto_logout.is_none() {
            row.auto_logout = AutoLogout::Inherit.as_str().to_owned();
        }
        if p.home_extension_id.is_none() {
            row.home_extension_id = None;
        }
    }
    set(&mut row.owner_extension_id, p.owner_extension_id);
    set(&mut row.location_id, p.location_id);
    if location_cleared {
        row.location_position = 0;
        row.location_ring_timeout_secs = None;
    }
    set(&mut row.location_position, p.location_position);
    set(
        &mut row.location_ring_timeout_secs,
        p.location_ring_timeout_secs,
    );
    set(
        &mut row.emergency_caller_id_name,
        p.emergency_caller_id_name,
    );
    set(
        &mut row.emergency_caller_id_number,
        p.emergency_caller_id_number,
    );
    set(&mut row.logged_out_mode, p.logged_out_mode);
    if row.logged_out_mode != LoggedOutMode::Placeholder.as_str()
        && p.placeholder_extension_id.is_none()
    {
        row.placeholder_extension_id = None;
    }
    set(
        &mut row.placeholder_extension_id,
        p.placeholder_extension_id,
    );
    if let Some(policy) = p.auto_logout {
        if policy != AutoLogout::AfterHours.as_str() && p.auto_logout_hours.is_none() {
            row.auto_logout_hours = None;
        }
        if policy != AutoLogout::DailyAt.as_str() && p.auto_logout_at.is_none() {
            row.auto_logout_at = None;
        }
        row.auto_logout = policy;
    }
    set(&mut row.auto_logout_hours, p.auto_logout_hours);
    set(&mut row.auto_logout_at, p.auto_logout_at);
    set(&mut row.home_extension_id, p.home_extension_id);
    set(&mut row.template_id, p.template_id);
    set(&mut row.enabled, p.enabled);
}

/// Trims an optional free-text field (vendor, model): empty means none; at most `max`
/// characters, no control characters.
fn optional_text(errors: &mut FieldErrors, field: &str, value: &mut Option<String>, max: usize) {
    if let Some(v) = value.as_deref() {
        let t = v.trim();
        if t.is_empty() {
            *value = None;
        } else if t.chars().count() > max || t.chars().any(char::is_control) {
            errors.add(
                field,
                "invalid_text",
                format!("at most {max} characters, without control characters"),
            );
        } else {
            *value = Some(t.to_owned());
        }
    }
}

fn normalise_optional(
    errors: &mut FieldErrors,
    field: &str,
    value: &mut Option<String>,
    parse: impl Fn(&str) -> Result<String, FieldError>,
) {
    if let Some(v) = value.as_deref() {
        if v.trim().is_empty() {
            *value = None;
        } else if let Some(parsed) = errors.check(field, parse(v)) {
            *value = Some(parsed);
        }
    }
}

/// Validates (and normalises) a complete Device against the pure rules. References to other
/// rows are checked separately ([`validate_references`]).
pub fn validate(row: &mut devices::Model) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let label = row.label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        errors.add(
            "label",
            "invalid_label",
            "a label is 1 to 100 characters without control characters",
        );
    } else {
        row.label = label.to_owned();
    }
    normalise_optional(&mut errors, "mac_address", &mut row.mac_address, |v| {
        MacAddress::parse(v).map(MacAddress::into_string)
    });
    optional_text(&mut errors, "vendor", &mut row.vendor, 64);
    optional_text(&mut errors, "model", &mut row.model, 64);

    let mode = errors.check("mode", DeviceMode::parse(&row.mode));
    match (mode, row.owner_extension_id) {
        (Some(DeviceMode::Fixed), None) => errors.add(
            "owner_extension_id",
            "required",
            "a fixed device needs an owner Extension",
        ),
        (Some(DeviceMode::Hotdesk), Some(_)) => errors.add(
            "owner_extension_id",
            "hotdesk_has_no_owner",
            "a hot-desk device has no owner; it rings for whoever is logged in",
        ),
        _ => {}
    }
    let fixed = mode == Some(DeviceMode::Fixed);

    if row.location_id.is_none() {
        if row.location_position != 0 {
            errors.add(
                "location_position",
                "requires_location",
                "a position only applies to a device in a Location",
            );
        }
        if row.location_ring_timeout_secs.is_some() {
            errors.add(
                "location_ring_timeout_secs",
                "requires_location",
                "a ring timeout only applies to a device in a Location",
            );
        }
    } else if !(0..=MAX_LOCATION_POSITION).contains(&row.location_position) {
        errors.add(
            "location_position",
            "out_of_range",
            format!("must be between 0 and {MAX_LOCATION_POSITION}"),
        );
    }
    if let Some(t) = row.location_ring_timeout_secs
        && !(5..=300).contains(&t)
    {
        errors.add(
            "location_ring_timeout_secs",
            "out_of_range",
            "must be between 5 and 300 seconds",
        );
    }

    normalise_optional(
        &mut errors,
        "emergency_caller_id_name",
        &mut row.emergency_caller_id_name,
        |v| CallerIdName::parse(v).map(CallerIdName::into_string),
    );
    normalise_optional(
        &mut errors,
        "emergency_caller_id_number",
        &mut row.emergency_caller_id_number,
        |v| CallerIdNumber::parse_e164(v).map(CallerIdNumber::into_string),
    );

    match errors.check(
        "logged_out_mode",
        LoggedOutMode::parse(&row.logged_out_mode),
    ) {
        Some(LoggedOutMode::Inherit) | None => {}
        Some(_) if fixed => errors.add(
            "logged_out_mode",
            "hotdesk_only",
            "only hot-desk devices have a logged-out mode; a fixed device keeps `inherit`",
        ),
        Some(LoggedOutMode::Placeholder) if row.placeholder_extension_id.is_none() => errors.add(
            "placeholder_extension_id",
            "required",
            "placeholder mode needs a placeholder Extension",
        ),
        Some(_) => {}
    }
    if row.placeholder_extension_id.is_some()
        && row.logged_out_mode != LoggedOutMode::Placeholder.as_str()
    {
        errors.add(
            "placeholder_extension_id",
            "placeholder_mode_only",
            "a placeholder Extension is only used with logged_out_mode `placeholder`",
        );
    }

    if fixed && row.home_extension_id.is_some() {
        errors.add(
            "home_extension_id",
            "hotdesk_only",
            "only a hot-desk device has a home Extension; a fixed device has its owner",
        );
    }

    if row
        .auto_logout_at
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        row.auto_logout_at = None;
    }
    let mut policy_errors = FieldErrors::new();
    calling_settings::validate_auto_logout(
        &mut policy_errors,
        &row.auto_logout,
        row.auto_logout_hours,
        row.auto_logout_at.as_deref(),
        true,
    );
    if policy_errors.is_empty() {
        if fixed && row.auto_logout != AutoLogout::Inherit.as_str() {
            errors.add(
                "auto_logout",
                "hotdesk_only",
                "only hot-desk devices log out by themselves; a fixed device keeps `inherit`",
            );
        }
        if row.auto_logout_hours.is_some() && row.auto_logout != AutoLogout::AfterHours.as_str() {
            errors.add(
                "auto_logout_hours",
                "not_applicable",
                "auto_logout_hours is only used with auto_logout `after_hours`",
            );
        }
        match row.auto_logout_at.as_deref().map(TimeOfDay::parse) {
            Some(_) if row.auto_logout != AutoLogout::DailyAt.as_str() => errors.add(
                "auto_logout_at",
                "not_applicable",
                "auto_logout_at is only used with auto_logout `daily_at`",
            ),
            Some(Ok(t)) => row.auto_logout_at = Some(t.to_string()),
            _ => {}
        }
    }
    for e in policy_errors.into_vec() {
        errors.push(e);
    }
    errors
}

/// What the reference checks found: the Extensions a device points at, for the events.
#[derive(Debug, Default)]
struct References {
    owner_number: Option<String>,
}

/// Checks the references that need the database, for those that are new or changed: the
/// owner must be a non-placeholder Extension of this Domain, the placeholder a placeholder
/// Extension of this Domain, the Location one of this Domain.
async fn validate_references<C: ConnectionTrait>(
    db: &C,
    row: &devices::Model,
    before: Option<&devices::Model>,
    errors: &mut FieldErrors,
) -> DomainResult<References> {
    let owner = match row.owner_extension_id {
        Some(id) => find_extension(db, row.domain_id, id).await?,
        None => None,
    };
    let placeholder = match row.placeholder_extension_id {
        Some(id) if before.is_none_or(|b| b.placeholder_extension_id != Some(id)) => {
            find_extension(db, row.domain_id, id).await?
        }
        _ => None,
    };
    let location_found = match row.location_id {
        Some(id) if before.is_none_or(|b| b.location_id != Some(id)) => {
            locations::Entity::find_by_id(id)
                .filter(locations::Column::DomainId.eq(row.domain_id))
                .one(db)
                .await?
                .is_some()
        }
        _ => true,
    };
    check_references(
        row,
        before,
        owner.as_ref(),
        placeholder.as_ref(),
        location_found,
        errors,
    );
    if let Some(id) = row.home_extension_id
        && before.is_none_or(|b| b.home_extension_id != Some(id))
    {
        let home = find_extension(db, row.domain_id, id).await?;
        check_home(home.as_ref(), errors);
    }
    if let Some(id) = row.template_id
        && before.is_none_or(|b| b.template_id != Some(id))
    {
        check_template(db, row, id, errors).await?;
    }
    Ok(References {
        owner_number: owner.map(|ext| ext.number),
    })
}

/// A Device's template must be one of its Domain's, for the Device's vendor.
async fn check_template<C: ConnectionTrait>(
    db: &C,
    row: &devices::Model,
    id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    let template = crate::store::provisioning_templates::Entity::find_by_id(id)
        .filter(crate::store::provisioning_templates::Column::DomainId.eq(row.domain_id))
        .one(db)
        .await?;
    template_fits(template.as_ref().map(|t| t.vendor.as_str()), row, errors);
    Ok(())
}

/// The template rule over what the look-up found: `vendor` is the vendor of the Domain's
/// template the row names (`None`: no such template in the Domain). Shared by single saves and
/// bulk import.
pub fn template_fits(vendor: Option<&str>, row: &devices::Model, errors: &mut FieldErrors) {
    let device_vendor =
        crate::provisioning::keys::phone_model(row.vendor.as_deref(), row.model.as_deref())
            .map(|m| m.vendor.as_str());
    match vendor {
        None => errors.add("template_id", "not_found", "no such template in the Domain"),
        Some(v) if Some(v) != device_vendor => errors.add(
            "template_id",
            "wrong_vendor",
            format!(
                "a {v} template cannot render this Device (set a vendor and model of the catalogue)"
            ),
        ),
        Some(_) => {}
    }
}

/// The reference rules over what the look-ups found, for the references that are new or
/// changed: the owner must exist and not be a placeholder, the placeholder must exist and be
/// one, the Location must exist. `owner` and `placeholder` are the Extensions the row's ids
/// name in its Domain (`None`: not found), `location_found` whether its Location is there.
/// Shared by single saves and bulk import (which looks many rows up at once).
pub fn check_references(
    row: &devices::Model,
    before: Option<&devices::Model>,
    owner: Option<&extensions::Model>,
    placeholder: Option<&extensions::Model>,
    location_found: bool,
    errors: &mut FieldErrors,
) {
    if let Some(id) = row.owner_extension_id {
        match owner {
            None => errors.add(
                "owner_extension_id",
                "not_found",
                "no such Extension in this Domain",
            ),
            Some(ext) => {
                let changed = before.is_none_or(|b| b.owner_extension_id != Some(id));
                if changed && ext.placeholder {
                    errors.add(
                        "owner_extension_id",
                        "is_placeholder",
                        "a placeholder Extension cannot own a device",
                    );
                }
            }
        }
    }
    if let Some(id) = row.placeholder_extension_id
        && before.is_none_or(|b| b.placeholder_extension_id != Some(id))
    {
        super::extensions::check_placeholder_ref(
            placeholder,
            "placeholder_extension_id",
            "no such Extension in this Domain",
            errors,
        );
    }
    if let Some(id) = row.location_id
        && before.is_none_or(|b| b.location_id != Some(id))
        && !location_found
    {
        errors.add(
            "location_id",
            "not_found",
            "no such Location in this Domain",
        );
    }
}

/// The rule for a new or changed home Extension (`home`: the Extension the row names in its
/// Domain, `None`: not found): an Extension in service that may hot-desk.
pub fn check_home(home: Option<&extensions::Model>, errors: &mut FieldErrors) {
    match home {
        None => errors.add(
            "home_extension_id",
            "not_found",
            "no such Extension in this Domain",
        ),
        Some(ext) if ext.placeholder => errors.add(
            "home_extension_id",
            "is_placeholder",
            "a placeholder Extension is nobody's desk",
        ),
        Some(ext) if !ext.hotdesk_allowed || !ext.enabled => errors.add(
            "home_extension_id",
            "hotdesk_not_allowed",
            "the Extension is disabled or may not hot-desk",
        ),
        Some(_) => {}
    }
}

async fn find_extension<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<Option<extensions::Model>> {
    Ok(extensions::Entity::find_by_id(id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(db)
        .await?)
}

/// The position after the last device of a Location (0 for an empty one).
pub async fn end_of_location<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    location_id: Uuid,
) -> DomainResult<i32> {
    let last: Option<Option<i32>> = devices::Entity::find()
        .select_only()
        .column_as(devices::Column::LocationPosition.max(), "last")
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::LocationId.eq(location_id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(match last.flatten() {
        Some(p) => Ord::min(p.saturating_add(1), MAX_LOCATION_POSITION),
        None => 0,
    })
}

/// The associated data binding a Device's encrypted SIP secret to its row.
pub fn secret_context(id: Uuid) -> String {
    format!("device:{id}")
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<devices::Model> {
    devices::Entity::find_by_id(id)
        .filter(devices::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("device"))
}

/// The row as it goes to the audit log: everything but the secret (not even its ciphertext).
pub(crate) fn audit_view(row: &devices::Model) -> Option<serde_json::Value> {
    let mut value = serde_json::to_value(row).ok()?;
    if let Some(map) = value.as_object_mut() {
        for secret in [
            "sip_secret_encrypted",
            "provisioning_password_encrypted",
            "last_provisioned_at",
            "last_provisioned_from",
            "last_provisioned_agent",
        ] {
            map.remove(secret);
        }
    }
    Some(value)
}

/// Creates a Device (`devices.write`) with a generated SIP user name and secret.
pub async fn create(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    patch: DevicePatch,
) -> DomainResult<devices::Model> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::DevicesWrite).await?;
    let position_given = patch.location_position.is_some();
    let (mut row, errors) = draft(domain_id, ctx.now, patch);
    errors.into_result()?;
    row.sip_username = generate_sip_username();
    row.sip_secret_encrypted = deps.cipher.encrypt(
        generate_sip_secret().expose_secret(),
        &secret_context(row.id),
    );
    row.provisioning_password_encrypted =
        Some(super::provisioning::new_password(deps.cipher, row.id));
    save(deps, ctx, &domain, None, row, position_given).await
}

/// A new Device from a create patch, not yet validated and without its SIP identity: the
/// defaults with the patch applied, and the errors of missing required fields. Shared by
/// [`create`] and bulk import, which then run [`validate`] and [`check_references`].
pub fn draft(
    domain_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    patch: DevicePatch,
) -> (devices::Model, FieldErrors) {
    let mut errors = FieldErrors::new();
    if patch.label.is_none() {
        errors.add("label", "required", "a Device needs a label");
    }
    let mut row = new_row(domain_id, now);
    apply(&mut row, patch);
    (row, errors)
}

/// Changes a Device (`devices.write`).
pub async fn update(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: DevicePatch,
) -> DomainResult<devices::Model> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::DevicesWrite).await?;
    let before = find(deps.db, domain_id, id).await?;
    let position_given = patch.location_position.is_some();
    let mut row = before.clone();
    apply(&mut row, patch);
    row.updated_at = ctx.now;
    save(deps, ctx, &domain, Some(before), row, position_given).await
}

/// Validates and writes a new or changed row with its audit entry, then publishes.
async fn save(
    deps: Deps<'_>,
    ctx: &Context,
    domain: &domains::Model,
    before: Option<devices::Model>,
    mut row: devices::Model,
    position_given: bool,
) -> DomainResult<devices::Model> {
    let mut errors = validate(&mut row);
    let refs = validate_references(deps.db, &row, before.as_ref(), &mut errors).await?;
    errors.into_result()?;
    let moved = before.as_ref().map(|b| b.location_id) != Some(row.location_id);
    if let Some(location_id) = row.location_id
        && moved
        && !position_given
    {
        // Read outside the write transaction: two devices joining at once may share a
        // position, which only means they ring in creation order.
        row.location_position = end_of_location(deps.db, domain.id, location_id).await?;
    }
    let old_owner = match &before {
        Some(b) if b.owner_extension_id != row.owner_extension_id => match b.owner_extension_id {
            Some(id) => find_extension(deps.db, domain.id, id)
                .await?
                .map(|e| e.number),
            None => None,
        },
        _ => None,
    };

    // Sessions on a device made fixed or disabled end with the change (and stay ended).
    let cause = match &before {
        Some(b) if b.enabled && !row.enabled => Some(ChangeCause::DeviceDisabled),
        Some(b) if b.mode != "fixed" && row.mode == "fixed" => Some(ChangeCause::DeviceFixed),
        _ => None,
    };
    let txn = crate::db::begin_write(deps.db).await?;
    let ended = match cause {
        Some(cause) => {
            let ending = Ending {
                devices: &[row.id],
                ..Ending::default()
            };
            end_for_change(&txn, ctx, domain.id, &domain.sip_domain, ending, cause).await?
        }
        None => Vec::new(),
    };
    let saved = match &before {
        None => devices::ActiveModel::from(row).insert(&txn).await?,
        Some(_) => row.into_active_model().reset_all().update(&txn).await?,
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action: if before.is_some() {
                "device.update"
            } else {
                "device.create"
            },
            target_kind: "device",
            target_id: Some(saved.id.to_string()),
            before: before.as_ref().and_then(audit_view),
            after: audit_view(&saved),
        },
    )
    .await?;
    // A new home on a phone nobody is logged in to: the person is at their desk.
    let home_event = if saved.home_extension_id.is_some()
        && before.as_ref().map(|b| b.home_extension_id) != Some(saved.home_extension_id)
    {
        super::settle::home_now(&txn, ctx, domain.id, saved.id).await?
    } else {
        None
    };
    txn.commit().await?;

    let kind = if before.is_some() {
        ChangeKind::DeviceUpdated
    } else {
        ChangeKind::DeviceCreated
    };
    // The owners' dial strings include their fixed devices: both old and new owner change.
    let users = [
        Some(saved.sip_username.clone()),
        refs.owner_number,
        old_owner,
    ]
    .into_iter()
    .flatten();
    let mut event =
        ChangeEvent::new(domain.id, &domain.sip_domain, kind, saved.id, ctx.now).refresh(users);
    if before.as_ref().is_some_and(|b| b.enabled && !saved.enabled) {
        event = event.drop_registrations([saved.sip_username.clone()]);
    } else if before.as_ref().is_some_and(|b| {
        saved.enabled
            && (b.label != saved.label
                || b.mode != saved.mode
                || b.owner_extension_id != saved.owner_extension_id
                || b.placeholder_extension_id != saved.placeholder_extension_id
                || b.template_id != saved.template_id
                || b.vendor != saved.vendor
                || b.model != saved.model)
    }) {
        // Another name or identity on the same registration: the phone re-reads its config.
        event = event.check_sync([saved.sip_username.clone()]);
    }
    deps.bus
        .publish(ended.into_iter().chain([event]).chain(home_event));
    Ok(saved)
}

/// Reads one Device (`devices.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<devices::Model> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    find(db, domain_id, id).await
}

/// The hex digits of a search term that looks like (part of) a MAC address.
fn mac_fragment(q: &str) -> Option<String> {
    let hex: String = q
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect::<String>()
        .to_ascii_lowercase();
    let looks_like_mac = !hex.is_empty()
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && q.chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
    looks_like_mac.then_some(hex)
}

/// Lists Devices (`devices.read`), in creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &DeviceFilter,
    page: &PageRequest,
) -> DomainResult<Page<devices::Model>> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let mut query = devices::Entity::find().filter(devices::Column::DomainId.eq(domain_id));
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let lower = q.to_lowercase();
        let mut any = Condition::any()
            .add(
                Expr::expr(Func::lower(Expr::col(devices::Column::Label)))
                    .like(search::contains(&lower)),
            )
            .add(devices::Column::SipUsername.like(search::contains(&lower)));
        if let Some(hex) = mac_fragment(q) {
            any = any.add(devices::Column::MacAddress.like(search::contains(&hex)));
        }
        query = query.filter(any);
    }
    if let Some(mode) = filter.mode.as_deref() {
        let mut errors = FieldErrors::new();
        errors.check("mode", DeviceMode::parse(mode));
        errors.into_result()?;
        query = query.filter(devices::Column::Mode.eq(mode));
    }
    if let Some(l) = filter.location_id {
        query = query.filter(devices::Column::LocationId.eq(l));
    }
    if let Some(o) = filter.owner_extension_id {
        query = query.filter(devices::Column::OwnerExtensionId.eq(o));
    }
    if let Some(e) = filter.enabled {
        query = query.filter(devices::Column::Enabled.eq(e));
    }
    fetch_page(db, query, devices::Column::Id, |m| m.id, page).await
}

/// Deletes a Device (`devices.write`); its registrations are dropped.
pub async fn delete(deps: Deps<'_>, ctx: &Context, domain_id: Uuid, id: Uuid) -> DomainResult<()> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::DevicesWrite).await?;
    let device = find(deps.db, domain_id, id).await?;
    let owner = match device.owner_extension_id {
        Some(o) => find_extension(deps.db, domain_id, o)
            .await?
            .map(|e| e.number),
        None => None,
    };
    let txn = crate::db::begin_write(deps.db).await?;
    let ending = Ending {
        devices: &[id],
        ..Ending::default()
    };
    let ended = end_for_change(
        &txn,
        ctx,
        domain_id,
        &domain.sip_domain,
        ending,
        ChangeCause::DeviceDeleted,
    )
    .await?;
    devices::Entity::delete_many()
        .filter(devices::Column::Id.eq(id))
        .filter(devices::Column::DomainId.eq(domain_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "device.delete",
            target_kind: "device",
            target_id: Some(id.to_string()),
            before: audit_view(&device),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus.publish(
        ended.into_iter().chain([ChangeEvent::new(
            domain_id,
            &domain.sip_domain,
            ChangeKind::DeviceDeleted,
            id,
            ctx.now,
        )
        .refresh(owner)
        .drop_registrations([device.sip_username])]),
    );
    Ok(())
}

/// Generates a new SIP secret for the Device (`devices.write`); its registrations are dropped
/// so the phone must re-register with the new one.
pub async fn rotate_secret(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::DevicesWrite).await?;
    let device = find(deps.db, domain_id, id).await?;
    let encrypted = deps
        .cipher
        .encrypt(generate_sip_secret().expose_secret(), &secret_context(id));
    let txn = crate::db::begin_write(deps.db).await?;
    devices::Entity::update_many()
        .col_expr(devices::Column::SipSecretEncrypted, Expr::value(encrypted))
        .col_expr(devices::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(devices::Column::Id.eq(id))
        .filter(devices::Column::DomainId.eq(domain_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "device.rotate_secret",
            target_kind: "device",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"sip_username": device.sip_username})),
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus.publish([ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::DeviceUpdated,
        id,
        ctx.now,
    )
    .drop_registrations([device.sip_username])]);
    Ok(())
}

/// Reads the Device's SIP credentials in clear (`secrets.read`); every read is audited.
pub async fn read_secret(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<SipCredentials> {
    let domain = scope::enter(db, ctx, domain_id, Permission::SecretsRead).await?;
    let device = find(db, domain_id, id).await?;
    let secret = cipher
        .decrypt(&device.sip_secret_encrypted, &secret_context(id))
        .map_err(|e| DomainError::Internal(format!("device {id}: {e}")))?;
    audit::record(
        db,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "device.read_secret",
            target_kind: "device",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"sip_username": device.sip_username})),
        },
    )
    .await?;
    Ok(SipCredentials {
        sip_username: device.sip_username,
        sip_secret: secret,
        realm: domain.sip_domain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> devices::Model {
        let mut row = new_row(Uuid::nil(), chrono::Utc::now());
        row.label = "Reception 2F".into();
        row
    }

    fn fields(row: &mut devices::Model) -> Vec<String> {
        validate(row)
            .into_vec()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_minimal_hotdesk_device_is_valid() {
        assert!(fields(&mut valid()).is_empty());
    }

    #[test]
    fn bad_values_name_their_fields() {
        type Mutate = fn(&mut devices::Model);
        let table: Vec<(&str, Mutate)> = vec![
            ("label", |r| r.label = "  ".into()),
            ("label", |r| r.label = "x".repeat(101)),
            ("mac_address", |r| {
                r.mac_address = Some("00:15:65:ab:cd".into())
            }),
            ("mac_address", |r| {
                r.mac_address = Some("zz:15:65:ab:cd:ef".into())
            }),
            ("mac_address", |r| {
                r.mac_address = Some("01:00:5e:00:00:01".into())
            }),
            ("vendor", |r| r.vendor = Some("a\u{7}b".into())),
            ("model", |r| r.model = Some("m".repeat(65))),
            ("mode", |r| r.mode = "shared".into()),
            ("owner_extension_id", |r| r.mode = "fixed".into()),
            ("owner_extension_id", |r| {
                r.owner_extension_id = Some(Uuid::nil())
            }),
            ("location_position", |r| r.location_position = 2),
            ("location_position", |r| {
                r.location_id = Some(Uuid::nil());
                r.location_position = -1;
            }),
            ("location_ring_timeout_secs", |r| {
                r.location_ring_timeout_secs = Some(20)
            }),
            ("location_ring_timeout_secs", |r| {
                r.location_id = Some(Uuid::nil());
                r.location_ring_timeout_secs = Some(4);
            }),
            ("location_ring_timeout_secs", |r| {
                r.location_id = Some(Uuid::nil());
                r.location_ring_timeout_secs = Some(301);
            }),
            ("emergency_caller_id_number", |r| {
                r.emergency_caller_id_number = Some("0301234".into())
            }),
            ("emergency_caller_id_name", |r| {
                r.emergency_caller_id_name = Some("n".repeat(51))
            }),
            ("logged_out_mode", |r| r.logged_out_mode = "off".into()),
            ("logged_out_mode", |r| {
                r.mode = "fixed".into();
                r.owner_extension_id = Some(Uuid::nil());
                r.logged_out_mode = "full".into();
            }),
            ("placeholder_extension_id", |r| {
                r.logged_out_mode = "placeholder".into()
            }),
            ("placeholder_extension_id", |r| {
                r.placeholder_extension_id = Some(Uuid::nil())
            }),
            ("auto_logout", |r| r.auto_logout = "sometimes".into()),
            ("auto_logout", |r| {
                r.mode = "fixed".into();
                r.owner_extension_id = Some(Uuid::nil());
                r.auto_logout = "never".into();
            }),
            ("auto_logout_hours", |r| {
                r.auto_logout = "after_hours".into()
            }),
            ("auto_logout_hours", |r| {
                r.auto_logout = "after_hours".into();
                r.auto_logout_hours = Some(169);
            }),
            ("auto_logout_hours", |r| {
                r.auto_logout = "never".into();
                r.auto_logout_hours = Some(8);
            }),
            ("auto_logout_at", |r| r.auto_logout = "daily_at".into()),
            ("auto_logout_at", |r| {
                r.auto_logout = "daily_at".into();
                r.auto_logout_at = Some("25:00".into());
            }),
            ("auto_logout_at", |r| {
                r.auto_logout = "inherit".into();
                r.auto_logout_at = Some("02:00".into());
            }),
        ];
        for (field, mutate) in table {
            let mut row = valid();
            mutate(&mut row);
            assert_eq!(fields(&mut row), vec![field.to_owned()], "{field}");
        }
    }

    #[test]
    fn good_combinations_are_accepted() {
        type Mutate = fn(&mut devices::Model);
        let table: Vec<Mutate> = vec![
            |r| {
                r.mode = "fixed".into();
                r.owner_extension_id = Some(Uuid::nil());
            },
            |r| {
                r.logged_out_mode = "placeholder".into();
                r.placeholder_extension_id = Some(Uuid::nil());
            },
            |r| {
                r.location_id = Some(Uuid::nil());
                r.location_position = 3;
                r.location_ring_timeout_secs = Some(15);
            },
            |r| {
                r.auto_logout = "after_hours".into();
                r.auto_logout_hours = Some(10);
            },
            |r| {
                r.auto_logout = "daily_at".into();
                r.auto_logout_at = Some("23:30".into());
            },
            |r| r.mac_address = Some("".into()),
        ];
        for (i, mutate) in table.into_iter().enumerate() {
            let mut row = valid();
            mutate(&mut row);
            assert!(fields(&mut row).is_empty(), "case {i}");
        }
    }

    #[test]
    fn values_are_normalised() {
        let mut row = valid();
        row.label = "  Desk 4 ".into();
        row.mac_address = Some("00-15-65-AB-CD-EF".into());
        row.vendor = Some(" ".into());
        row.emergency_caller_id_number = Some("+1 (555) 010-0199".into());
        row.auto_logout = "daily_at".into();
        row.auto_logout_at = Some(" 02:30 ".into());
        assert!(fields(&mut row).is_empty());
        assert_eq!(row.label, "Desk 4");
        assert_eq!(row.mac_address.as_deref(), Some("001565abcdef"));
        assert_eq!(row.vendor, None);
        assert_eq!(
            row.emergency_caller_id_number.as_deref(),
            Some("+15550100199")
        );
        assert_eq!(row.auto_logout_at.as_deref(), Some("02:30"));
    }

    #[test]
    fn switching_modes_carries_the_knock_on_changes() {
        let owner = Uuid::now_v7();
        let mut row = valid();
        row.mode = "fixed".into();
        row.owner_extension_id = Some(owner);
        apply(
            &mut row,
            DevicePatch {
                mode: Some("hotdesk".into()),
                ..Default::default()
            },
        );
        assert_eq!(row.owner_extension_id, None);
        assert!(fields(&mut row).is_empty());

        let mut row = valid();
        row.logged_out_mode = "placeholder".into();
        row.placeholder_extension_id = Some(Uuid::now_v7());
        row.auto_logout = "never".into();
        apply(
            &mut row,
            DevicePatch {
                mode: Some("fixed".into()),
                owner_extension_id: Some(Some(owner)),
                ..Default::default()
            },
        );
        assert_eq!(
            (
                row.logged_out_mode.as_str(),
                row.placeholder_extension_id,
                row.auto_logout.as_str()
            ),
            ("inherit", None, "inherit")
        );
        assert!(fields(&mut row).is_empty());

        // hotdesk → fixed without an owner is refused, naming the owner.
        let mut row = valid();
        apply(
            &mut row,
            DevicePatch {
                mode: Some("fixed".into()),
                ..Default::default()
            },
        );
        assert_eq!(fields(&mut row), vec!["owner_extension_id".to_owned()]);
    }

    #[test]
    fn leaving_a_location_or_a_policy_drops_its_parameters() {
        let mut row = valid();
        row.location_id = Some(Uuid::now_v7());
        row.location_position = 4;
        row.location_ring_timeout_secs = Some(20);
        row.auto_logout = "daily_at".into();
        row.auto_logout_at = Some("02:00".into());
        apply(
            &mut row,
            DevicePatch {
                location_id: Some(None),
                auto_logout: Some("after_hours".into()),
                auto_logout_hours: Some(Some(9)),
                ..Default::default()
            },
        );
        assert_eq!(
            (
                row.location_position,
                row.location_ring_timeout_secs,
                row.auto_logout_at.clone()
            ),
            (0, None, None)
        );
        assert!(fields(&mut row).is_empty());
    }

    #[test]
    fn mac_search_terms_are_recognised() {
        assert_eq!(mac_fragment("AB:CD"), Some("abcd".into()));
        assert_eq!(mac_fragment("reception"), None);
        assert_eq!(mac_fragment("::"), None);
    }
}
