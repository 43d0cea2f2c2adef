//! Extensions: calling identities in a Domain.
//!
//! Create and update share one path: start from the defaults (or the stored row), apply the
//! patch, validate the complete result, save in one transaction with its audit entry, publish
//! the change after commit.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::ending::{Ending, end_for_change};
use super::{Context, audit, calling_settings, numbers, scope};
use crate::bindings::hotdesk::ChangeCause;
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::password::hash_secret;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{
    calling_settings as settings_store, devices, domains, extension_groups, extensions,
    location_extensions, role_assignments, search,
};
use crate::telephony::internal_allow::InternalAllow;
use crate::telephony::policy::RecordingPolicy;
use crate::telephony::secrets::{SecretCipher, generate_sip_secret};
use crate::telephony::values::{
    AccountCode, CallGroup, CallerIdName, CallerIdNumber, Destination, DialplanContext,
    ExtensionNumber, Pin, parse_toll_allow,
};

/// A change to one call-forwarding rule.
#[derive(Debug, Clone, Default)]
pub struct ForwardPatch {
    /// On or off.
    pub enabled: Option<bool>,
    /// Where to (`Some(None)` clears).
    pub destination: Option<Option<String>>,
}

/// A change to an Extension: absent fields stay, `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct ExtensionPatch {
    /// The number (2–10 digits).
    pub number: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Internal caller ID name.
    pub internal_caller_id_name: Option<Option<String>>,
    /// Internal caller ID number.
    pub internal_caller_id_number: Option<Option<String>>,
    /// Outbound caller ID name.
    pub outbound_caller_id_name: Option<Option<String>>,
    /// Outbound caller ID number (E.164).
    pub outbound_caller_id_number: Option<Option<String>>,
    /// Emergency caller ID name fallback.
    pub emergency_caller_id_name: Option<Option<String>>,
    /// Emergency caller ID number fallback (E.164).
    pub emergency_caller_id_number: Option<Option<String>>,
    /// Voicemail on or off.
    pub voicemail_enabled: Option<bool>,
    /// New PIN (`Some(None)` removes it).
    pub pin: Option<Option<SecretString>>,
    /// Ring timeout (none: the Domain default).
    pub ring_timeout_secs: Option<Option<i32>>,
    /// Do-Not-Disturb.
    pub dnd: Option<bool>,
    /// Forward every call.
    pub forward_always: Option<ForwardPatch>,
    /// Forward when busy.
    pub forward_busy: Option<ForwardPatch>,
    /// Forward when not answered.
    pub forward_no_answer: Option<ForwardPatch>,
    /// Forward when nothing is registered.
    pub forward_not_registered: Option<ForwardPatch>,
    /// Recording of inbound calls.
    pub record_inbound: Option<String>,
    /// Recording of outbound calls.
    pub record_outbound: Option<String>,
    /// Dialplan context (none: the Domain's SIP domain).
    pub context: Option<Option<String>>,
    /// Toll-allow classes.
    pub toll_allow: Option<Vec<String>>,
    /// Account code.
    pub account_code: Option<Option<String>>,
    /// Call group.
    pub call_group: Option<Option<String>>,
    /// May log in to hot-desk phones.
    pub hotdesk_allowed: Option<bool>,
    /// Stands in for logged-out phones.
    pub placeholder: Option<bool>,
    /// A placeholder whose logged-out phones ring when it is called.
    pub placeholder_rings: Option<bool>,
    /// The internal numbers it may dial (`Some(None)`: every one).
    pub internal_allow: Option<Option<Vec<String>>>,
    /// Its hot-desk group (`Some(None)`: none).
    pub group_id: Option<Option<Uuid>>,
    /// Direct SIP registration on or off.
    pub sip_registration_enabled: Option<bool>,
    /// Cap on simultaneous direct registrations (1–20).
    pub max_registrations: Option<i32>,
    /// The dashboard User it belongs to.
    pub user_id: Option<Option<Uuid>>,
    /// In service.
    pub enabled: Option<bool>,
}

/// Filters of the Extension list.
#[derive(Debug, Clone, Default)]
pub struct ExtensionFilter {
    /// Number prefix or part of the display name.
    pub q: Option<String>,
    /// Only placeholders, or only non-placeholders.
    pub placeholder: Option<bool>,
    /// Only enabled, or only disabled.
    pub enabled: Option<bool>,
}

fn new_row(domain_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> extensions::Model {
    extensions::Model {
        id: Uuid::now_v7(),
        domain_id,
        number: String::new(),
        display_name: String::new(),
        internal_caller_id_name: None,
        internal_caller_id_number: None,
        outbound_caller_id_name: None,
        outbound_caller_id_number: None,
        emergency_caller_id_name: None,
        emergency_caller_id_number: None,
        voicemail_enabled: true,
        pin_hash: None,
        ring_timeout_secs: None,
        dnd: false,
        forward_always_enabled: false,
        forward_always_destination: None,
        forward_busy_enabled: false,
        forward_busy_destination: None,
        forward_no_answer_enabled: false,
        forward_no_answer_destination: None,
        forward_not_registered_enabled: false,
        forward_not_registered_destination: None,
        record_inbound: RecordingPolicy::Never.as_str().to_owned(),
        record_outbound: RecordingPolicy::Never.as_str().to_owned(),
        context: None,
        toll_allow: "local,domestic".to_owned(),
        account_code: None,
        call_group: None,
        hotdesk_allowed: true,
        placeholder: false,
        placeholder_rings: false,
        internal_allow: None,
        group_id: None,
        sip_registration_enabled: false,
        sip_secret_encrypted: None,
        max_registrations: 3,
        user_id: None,
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

fn apply_forward(
    enabled: &mut bool,
    destination: &mut Option<String>,
    patch: Option<ForwardPatch>,
) {
    if let Some(p) = patch {
        set(enabled, p.enabled);
        set(destination, p.destination);
    }
}

/// Applies a patch (except the PIN, which is hashed separately).
pub(crate) fn apply(row: &mut extensions::Model, p: ExtensionPatch) {
    set(&mut row.number, p.number);
    set(&mut row.display_name, p.display_name);
    set(&mut row.internal_caller_id_name, p.internal_caller_id_name);
    set(
        &mut row.internal_caller_id_number,
        p.internal_caller_id_number,
    );
    set(&mut row.outbound_caller_id_name, p.outbound_caller_id_name);
    set(
        &mut row.outbound_caller_id_number,
        p.outbound_caller_id_number,
    );
    set(
        &mut row.emergency_caller_id_name,
        p.emergency_caller_id_name,
    );
    set(
        &mut row.emergency_caller_id_number,
        p.emergency_caller_id_number,
    );
    set(&mut row.voicemail_enabled, p.voicemail_enabled);
    set(&mut row.ring_timeout_secs, p.ring_timeout_secs);
    set(&mut row.dnd, p.dnd);
    apply_forward(
        &mut row.forward_always_enabled,
        &mut row.forward_always_destination,
        p.forward_always,
    );
    apply_forward(
        &mut row.forward_busy_enabled,
        &mut row.forward_busy_destination,
        p.forward_busy,
    );
    apply_forward(
        &mut row.forward_no_answer_enabled,
        &mut row.forward_no_answer_destination,
        p.forward_no_answer,
    );
    apply_forward(
        &mut row.forward_not_registered_enabled,
        &mut row.forward_not_registered_destination,
        p.forward_not_registered,
    );
    set(&mut row.record_inbound, p.record_inbound);
    set(&mut row.record_outbound, p.record_outbound);
    set(&mut row.context, p.context);
    if let Some(classes) = p.toll_allow {
        row.toll_allow = classes.join(",");
    }
    set(&mut row.account_code, p.account_code);
    set(&mut row.call_group, p.call_group);
    set(&mut row.hotdesk_allowed, p.hotdesk_allowed);
    set(&mut row.placeholder, p.placeholder);
    set(&mut row.placeholder_rings, p.placeholder_rings);
    if let Some(list) = p.internal_allow {
        // Stored as given; `validate` parses and normalises it.
        row.internal_allow = list.map(|l| serde_json::Value::from(l).to_string());
    }
    set(&mut row.group_id, p.group_id);
    set(
        &mut row.sip_registration_enabled,
        p.sip_registration_enabled,
    );
    set(&mut row.max_registrations, p.max_registrations);
    set(&mut row.user_id, p.user_id);
    set(&mut row.enabled, p.enabled);
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

/// Validates (and normalises) a complete Extension against the pure rules.
pub fn validate(
    row: &mut extensions::Model,
    rules: &NumberingRules,
    pin: Option<&SecretString>,
) -> FieldErrors {
    let emergency_numbers = &rules.emergency_numbers;
    let mut errors = FieldErrors::new();
    if let Some(n) = errors.check("number", ExtensionNumber::parse(&row.number)) {
        if emergency_numbers.iter().any(|e| e == n.as_str()) {
            errors.add(
                "number",
                "emergency_number",
                "this number is one of the Domain's emergency numbers",
            );
        }
        row.number = n.into_string();
    }
    let name = row.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add(
            "display_name",
            "invalid_name",
            "a display name is 1 to 100 characters without control characters",
        );
    } else {
        row.display_name = name.to_owned();
    }
    normalise_optional(
        &mut errors,
        "internal_caller_id_name",
        &mut row.internal_caller_id_name,
        |v| CallerIdName::parse(v).map(|x| x.into_string()),
    );
    normalise_optional(
        &mut errors,
        "internal_caller_id_number",
        &mut row.internal_caller_id_number,
        |v| CallerIdNumber::parse_internal(v).map(|x| x.into_string()),
    );
    normalise_optional(
        &mut errors,
        "outbound_caller_id_name",
        &mut row.outbound_caller_id_name,
        |v| CallerIdName::parse(v).map(|x| x.into_string()),
    );
    normalise_optional(
        &mut errors,
        "outbound_caller_id_number",
        &mut row.outbound_caller_id_number,
        |v| CallerIdNumber::parse_e164(v).map(|x| x.into_string()),
    );
    normalise_optional(
        &mut errors,
        "emergency_caller_id_name",
        &mut row.emergency_caller_id_name,
        |v| CallerIdName::parse(v).map(|x| x.into_string()),
    );
    normalise_optional(
        &mut errors,
        "emergency_caller_id_number",
        &mut row.emergency_caller_id_number,
        |v| CallerIdNumber::parse_e164(v).map(|x| x.into_string()),
    );
    if let Some(t) = row.ring_timeout_secs
        && !(5..=300).contains(&t)
    {
        errors.add(
            "ring_timeout_secs",
            "out_of_range",
            "must be between 5 and 300 seconds",
        );
    }
    let number = row.number.clone();
    for (field, enabled, destination) in [
        (
            "forwarding.always",
            row.forward_always_enabled,
            &mut row.forward_always_destination,
        ),
        (
            "forwarding.busy",
            row.forward_busy_enabled,
            &mut row.forward_busy_destination,
        ),
        (
            "forwarding.no_answer",
            row.forward_no_answer_enabled,
            &mut row.forward_no_answer_destination,
        ),
        (
            "forwarding.not_registered",
            row.forward_not_registered_enabled,
            &mut row.forward_not_registered_destination,
        ),
    ] {
        let field = format!("{field}.destination");
        normalise_optional(&mut errors, &field, destination, |v| {
            Destination::parse(v).map(|x| x.into_string())
        });
        match destination.as_deref() {
            None if enabled => {
                errors.add(&field, "required", "an enabled forward needs a destination")
            }
            Some(d) if d == number => errors.add(
                &field,
                "forward_loop",
                "an Extension cannot forward to itself",
            ),
            _ => {}
        }
    }
    for (field, value) in [
        ("recording.inbound", &row.record_inbound),
        ("recording.outbound", &row.record_outbound),
    ] {
        if let Err(e) = RecordingPolicy::parse(value) {
            errors.push(FieldError {
                field: field.into(),
                ..e
            });
        }
    }
    normalise_optional(&mut errors, "context", &mut row.context, |v| {
        DialplanContext::parse(v).map(|x| x.into_string())
    });
    let classes: Vec<String> = row
        .toll_allow
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(joined) = errors.check("toll_allow", parse_toll_allow(&classes)) {
        row.toll_allow = joined;
    }
    normalise_optional(&mut errors, "account_code", &mut row.account_code, |v| {
        AccountCode::parse(v).map(|x| x.into_string())
    });
    normalise_optional(&mut errors, "call_group", &mut row.call_group, |v| {
        CallGroup::parse(v).map(|x| x.into_string())
    });
    if let Some(stored) = row.internal_allow.as_deref() {
        let list: Result<Vec<String>, _> = serde_json::from_str(stored);
        match list.map_err(|_| {
            FieldError::new(
                "internal_allow",
                "invalid_type",
                "a list of extension numbers and ranges",
            )
        }) {
            Ok(list) => {
                if let Some(allow) = errors.check("internal_allow", InternalAllow::parse(&list)) {
                    row.internal_allow = Some(allow.to_stored());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if row.placeholder_rings && !row.placeholder {
        errors.add(
            "placeholder_rings",
            "placeholder_only",
            "only a placeholder Extension rings its logged-out phones",
        );
    }
    if row.placeholder {
        if row.user_id.is_some() {
            errors.add(
                "user_id",
                "placeholder_has_no_user",
                "a placeholder Extension cannot be linked to a User",
            );
        }
        if row.hotdesk_allowed {
            errors.add(
                "hotdesk_allowed",
                "placeholder_cannot_hotdesk",
                "a placeholder Extension cannot log in to phones",
            );
        }
        if row.sip_registration_enabled {
            errors.add(
                "sip_registration.enabled",
                "placeholder_cannot_register",
                "a placeholder Extension does not register directly",
            );
        }
    }
    if !(1..=20).contains(&row.max_registrations) {
        errors.add(
            "sip_registration.max_registrations",
            "out_of_range",
            "must be between 1 and 20",
        );
    }
    if let Some(pin) = pin
        && let Some(pin) = errors.check("pin", Pin::parse(pin.expose_secret(), Some(&row.number)))
        && pin.expose().len() < rules.pin_min_length
    {
        errors.add(
            "pin",
            "pin_too_short",
            format!(
                "this Domain's PINs have at least {} digits",
                rules.pin_min_length
            ),
        );
    }
    errors
}

/// The rule for an Extension named as a placeholder under `field` (by a Device, a group or the
/// Domain's settings): `found` is the Extension the reference names (`None`: not found, and
/// `not_found` says where it was looked for); it must be flagged `placeholder`.
pub fn check_placeholder_ref(
    found: Option<&extensions::Model>,
    field: &str,
    not_found: &str,
    errors: &mut FieldErrors,
) {
    match found {
        None => errors.add(field, "not_found", not_found),
        Some(e) if !e.placeholder => errors.add(
            field,
            "not_a_placeholder",
            "the Extension is not flagged as a placeholder",
        ),
        Some(_) => {}
    }
}

/// The Domain's rules an Extension is checked against: numbers it may not take, and how long
/// its PIN must be.
#[derive(Debug, Clone)]
pub struct NumberingRules {
    /// The Domain's emergency numbers.
    pub emergency_numbers: Vec<String>,
    /// The fewest digits a new PIN may have.
    pub pin_min_length: usize,
}

impl NumberingRules {
    /// The rules of a Domain's calling settings.
    pub fn of(settings: &settings_store::Model) -> Self {
        Self {
            emergency_numbers: calling_settings::emergency_numbers(settings),
            pin_min_length: usize::try_from(settings.pin_min_length).unwrap_or(4).max(4),
        }
    }
}

/// Checks the references that need the database: the linked User must hold a role in this
/// Domain.
pub(crate) async fn validate_references<C: ConnectionTrait>(
    db: &C,
    row: &extensions::Model,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    if let Some(user_id) = row.user_id {
        let member = role_assignments::Entity::find()
            .filter(role_assignments::Column::UserId.eq(user_id))
            .filter(role_assignments::Column::DomainId.eq(row.domain_id))
            .count(db)
            .await?;
        if member == 0 {
            errors.add("user_id", "not_found", "no such User in this Domain");
        }
    }
    if let Some(group_id) = row.group_id {
        let found = extension_groups::Entity::find_by_id(group_id)
            .filter(extension_groups::Column::DomainId.eq(row.domain_id))
            .count(db)
            .await?;
        if found == 0 {
            errors.add("group_id", "not_found", "no such group in this Domain");
        }
    }
    Ok(())
}

/// The SIP users whose directory answer depends on this Extension: its own number and the
/// devices it owns or stands in for.
pub(crate) async fn dependent_sip_users<C: ConnectionTrait>(
    db: &C,
    ext: &extensions::Model,
) -> DomainResult<Vec<String>> {
    let mut users = vec![ext.number.clone()];
    users.extend(dependent_devices(db, ext).await?);
    for user in depending_devices(db, ext).await? {
        if !users.contains(&user) {
            users.push(user);
        }
    }
    Ok(users)
}

/// The SIP users of the Devices that show the Extension's identity (owned, or its placeholder
/// while logged out): they re-read their configuration when its name or number changes.
async fn dependent_devices<C: ConnectionTrait>(
    db: &C,
    ext: &extensions::Model,
) -> DomainResult<Vec<String>> {
    let devices = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(ext.domain_id))
        .filter(
            Condition::any()
                .add(devices::Column::OwnerExtensionId.eq(ext.id))
                .add(devices::Column::PlaceholderExtensionId.eq(ext.id)),
        )
        .all(db)
        .await?;
    Ok(devices.into_iter().map(|d| d.sip_username).collect())
}

/// The SIP users of the Devices whose directory entry depends on the Extension besides those:
/// its home desks, the phones it logged out of last (its group's logout action applies), and
/// for a placeholder every hot-desk phone (any of them may be logged out to it, through a
/// group, the phone or the Domain).
async fn depending_devices<C: ConnectionTrait>(
    db: &C,
    ext: &extensions::Model,
) -> DomainResult<Vec<String>> {
    let mut which = Condition::any()
        .add(devices::Column::HomeExtensionId.eq(ext.id))
        .add(devices::Column::LastExtensionId.eq(ext.id));
    if ext.placeholder {
        which = which.add(devices::Column::Mode.eq("hotdesk"));
    }
    let devices = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(ext.domain_id))
        .filter(which)
        .all(db)
        .await?;
    Ok(devices.into_iter().map(|d| d.sip_username).collect())
}

/// The associated data binding an Extension's encrypted SIP secret to its row.
pub fn secret_context(id: Uuid) -> String {
    format!("extension:{id}")
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<extensions::Model> {
    extensions::Entity::find_by_id(id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("extension"))
}

/// Everything a save needs besides the row.
#[derive(Debug, Clone, Copy)]
pub struct Deps<'a> {
    /// The database.
    pub db: &'a DatabaseConnection,
    /// The SIP secret cipher.
    pub cipher: &'a SecretCipher,
    /// Where committed changes go.
    pub bus: &'a EventBus,
}

/// Creates an Extension (`extensions.write`).
pub async fn create(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    patch: ExtensionPatch,
) -> DomainResult<extensions::Model> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let (row, pin, errors) = draft(domain_id, ctx.now, patch);
    errors.into_result()?;
    save(deps, ctx, &domain, None, row, pin.map(Some)).await
}

/// A new Extension from a create patch, not yet validated: the defaults with the patch applied,
/// the PIN taken out for hashing, and the errors of missing required fields. Shared by
/// [`create`] and bulk import, which then run [`validate`] on the row.
pub fn draft(
    domain_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
    mut patch: ExtensionPatch,
) -> (extensions::Model, Option<SecretString>, FieldErrors) {
    let mut errors = FieldErrors::new();
    if patch.number.is_none() {
        errors.add("number", "required", "an Extension needs a number");
    }
    if patch.display_name.is_none() {
        errors.add(
            "display_name",
            "required",
            "an Extension needs a display name",
        );
    }
    let pin = patch.pin.take().flatten();
    let mut row = new_row(domain_id, now);
    apply(&mut row, patch);
    (row, pin, errors)
}

/// Changes an Extension (`extensions.write`).
pub async fn update(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    mut patch: ExtensionPatch,
) -> DomainResult<extensions::Model> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let before = find(deps.db, domain_id, id).await?;
    let pin = patch.pin.take();
    let mut row = before.clone();
    apply(&mut row, patch);
    row.updated_at = ctx.now;
    save(deps, ctx, &domain, Some(before), row, pin).await
}

/// Validates and writes a new or changed row with its audit entry, then publishes.
async fn save(
    deps: Deps<'_>,
    ctx: &Context,
    domain: &domains::Model,
    before: Option<extensions::Model>,
    mut row: extensions::Model,
    pin: Option<Option<SecretString>>,
) -> DomainResult<extensions::Model> {
    let settings = calling_settings::load(deps.db, domain.id).await?;
    let rules = NumberingRules::of(&settings);
    let new_pin = pin.clone().flatten();
    let mut errors = validate(&mut row, &rules, new_pin.as_ref());
    validate_references(deps.db, &row, &mut errors).await?;
    if let Some(before) = &before
        && before.placeholder
        && !row.placeholder
        && placeholder_in_use(deps.db, before).await?
    {
        return Err(DomainError::Conflict {
            code: "in_use",
            message: "the Extension is the placeholder of phones or of the Domain's settings"
                .into(),
            field: Some("placeholder".into()),
        });
    }
    if let Some(before) = &before
        && !before.placeholder
        && row.placeholder
        && person_in_use(deps.db, before).await?
    {
        return Err(DomainError::Conflict {
            code: "in_use",
            message: "the Extension owns fixed phones or is listed for a Location; a placeholder stands in for nobody".into(),
            field: Some("placeholder".into()),
        });
    }
    errors.into_result()?;
    match pin {
        Some(Some(pin)) => row.pin_hash = Some(hash_secret(pin).await?),
        Some(None) => row.pin_hash = None,
        None => {}
    }
    // A first secret: nothing can be registered with it yet, so no registration is dropped.
    if row.sip_registration_enabled && row.sip_secret_encrypted.is_none() {
        row.sip_secret_encrypted = Some(deps.cipher.encrypt(
            generate_sip_secret().expose_secret(),
            &secret_context(row.id),
        ));
    }

    // Hot-desk sessions and sign-ins of an Extension that can no longer have them end with
    // the change (and stay ended when it is undone).
    let cause = match &before {
        Some(b) if b.enabled && !row.enabled => Some(ChangeCause::ExtensionDisabled),
        Some(b) if !b.placeholder && row.placeholder => Some(ChangeCause::ExtensionMadePlaceholder),
        Some(b) if b.hotdesk_allowed && !row.hotdesk_allowed => {
            Some(ChangeCause::HotdeskNotAllowed)
        }
        _ => None,
    };
    let txn = crate::db::begin_write(deps.db).await?;
    // A call flow's number is the Domain's too: checked with the Domain's row shared, so a
    // flow saved at the same moment is judged before or after this one, never beside it.
    if before.as_ref().is_none_or(|b| b.number != row.number) {
        super::call_flows::share_domain(&txn, domain.id).await?;
        if let Some(owner) = super::call_flows::number_owner(&txn, domain.id, &row.number).await? {
            return Err(DomainError::Conflict {
                code: "already_exists",
                message: format!("{} dials {owner} in this Domain", row.number),
                field: Some("number".into()),
            });
        }
    }
    let ended = match cause {
        Some(cause) => {
            let ids = [row.id];
            let ending = Ending {
                extensions: &ids,
                // Not being allowed to hot-desk still lets it sign in to Locations.
                signed_in: if cause == ChangeCause::HotdeskNotAllowed {
                    &[]
                } else {
                    &ids
                },
                ..Ending::default()
            };
            end_for_change(&txn, ctx, domain.id, &domain.sip_domain, ending, cause).await?
        }
        None => Vec::new(),
    };
    let saved = match &before {
        None => extensions::ActiveModel::from(row).insert(&txn).await?,
        Some(_) => row.into_active_model().reset_all().update(&txn).await?,
    };
    let action = if before.is_some() {
        "extension.update"
    } else {
        "extension.create"
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action,
            target_kind: "extension",
            target_id: Some(saved.id.to_string()),
            before: before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
            after: serde_json::to_value(&saved).ok(),
        },
    )
    .await?;
    let mut users = dependent_sip_users(&txn, &saved).await?;
    if let Some(b) = &before
        && b.number != saved.number
    {
        users.push(b.number.clone());
    }
    // The phones that show this Extension's name or number re-read their configuration
    // (not for any other setting: a re-sync may restart a phone).
    let renamed = before
        .as_ref()
        .is_some_and(|b| b.display_name != saved.display_name || b.number != saved.number);
    let mut phones = if renamed {
        dependent_devices(&txn, &saved).await?
    } else {
        Vec::new()
    };
    // And the phones with a BLF key of it (its label, number, or the key itself).
    if renamed || before.as_ref().is_some_and(|b| b.enabled != saved.enabled) {
        phones.extend(super::provisioning::watching(&txn, domain.id, saved.id).await?);
    }
    txn.commit().await?;

    let kind = if before.is_some() {
        ChangeKind::ExtensionUpdated
    } else {
        ChangeKind::ExtensionCreated
    };
    let mut event = ChangeEvent::new(domain.id, &domain.sip_domain, kind, saved.id, ctx.now)
        .refresh(users)
        .check_sync(phones);
    let lost_registration = before.as_ref().is_some_and(|b| {
        b.sip_registration_enabled
            && (!saved.sip_registration_enabled || !saved.enabled || b.number != saved.number)
    });
    if lost_registration {
        let old = before.as_ref().map(|b| b.number.clone());
        event = event.drop_registrations(old);
    }
    deps.bus.publish(ended.into_iter().chain([event]));
    Ok(saved)
}

/// True when a person's Extension is bound in ways a placeholder cannot be: owning fixed
/// devices, or being listed as allowed to sign in to a Location.
pub(crate) async fn person_in_use<C: ConnectionTrait>(
    db: &C,
    ext: &extensions::Model,
) -> DomainResult<bool> {
    let owned = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(ext.domain_id))
        .filter(devices::Column::OwnerExtensionId.eq(ext.id))
        .count(db)
        .await?;
    let listed = location_extensions::Entity::find()
        .filter(location_extensions::Column::DomainId.eq(ext.domain_id))
        .filter(location_extensions::Column::ExtensionId.eq(ext.id))
        .count(db)
        .await?;
    Ok(owned + listed > 0)
}

pub(crate) async fn placeholder_in_use<C: ConnectionTrait>(
    db: &C,
    ext: &extensions::Model,
) -> DomainResult<bool> {
    let devices = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(ext.domain_id))
        .filter(devices::Column::PlaceholderExtensionId.eq(ext.id))
        .count(db)
        .await?;
    let settings = settings_store::Entity::find_by_id(ext.domain_id)
        .filter(settings_store::Column::PlaceholderExtensionId.eq(ext.id))
        .count(db)
        .await?;
    let groups = extension_groups::Entity::find()
        .filter(extension_groups::Column::DomainId.eq(ext.domain_id))
        .filter(extension_groups::Column::PlaceholderExtensionId.eq(ext.id))
        .count(db)
        .await?;
    Ok(devices + settings + groups > 0)
}

/// Reads one Extension (`extensions.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<extensions::Model> {
    scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    find(db, domain_id, id).await
}

/// Lists Extensions (`extensions.read`), in creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &ExtensionFilter,
    page: &PageRequest,
) -> DomainResult<Page<extensions::Model>> {
    scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    let mut query = extensions::Entity::find().filter(extensions::Column::DomainId.eq(domain_id));
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(extensions::Column::Number.like(search::starts_with(q)))
                .add(
                    Expr::expr(Func::lower(Expr::col(extensions::Column::DisplayName)))
                        .like(search::contains(&q.to_lowercase())),
                ),
        );
    }
    if let Some(p) = filter.placeholder {
        query = query.filter(extensions::Column::Placeholder.eq(p));
    }
    if let Some(e) = filter.enabled {
        query = query.filter(extensions::Column::Enabled.eq(e));
    }
    fetch_page(db, query, extensions::Column::Id, |m| m.id, page).await
}

/// Deletes an Extension (`extensions.write`). One that owns devices, is a placeholder in use or
/// is the destination of Numbers (ringing it or its voicemail) is refused with 409 naming them
/// unless `force`, which turns its fixed devices into logged-out hot-desk phones, clears it as
/// placeholder and clears those Numbers' destinations (audited), in the same transaction.
pub async fn delete(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    force: bool,
) -> DomainResult<()> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let ext = find(deps.db, domain_id, id).await?;
    let txn = crate::db::begin_write(deps.db).await?;
    let users = dependent_sip_users(&txn, &ext).await?;
    let owned_ids: Vec<Uuid> = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::OwnerExtensionId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let owned = owned_ids.len();
    let placeholder_ids: Vec<Uuid> = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::PlaceholderExtensionId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let in_use = placeholder_in_use(&txn, &ext).await?;
    super::call_flows::share_domain(&txn, domain_id).await?;
    let pointing = numbers::pointing_at(&txn, domain_id, id).await?;
    let flows: Vec<String> = super::call_flows::flows_naming_extension(&txn, domain_id, id)
        .await?
        .iter()
        .map(|f| format!("the {} {:?}", f.kind.label(), f.name))
        .collect();
    if (owned > 0 || in_use || !pointing.is_empty() || !flows.is_empty()) && !force {
        let mut uses = Vec::new();
        if owned > 0 {
            uses.push(format!("owns {owned} device(s)"));
        }
        if in_use {
            uses.push("is a placeholder in use".to_owned());
        }
        if !pointing.is_empty() {
            let listed: Vec<&str> = pointing.iter().map(|n| n.number.as_str()).collect();
            uses.push(format!(
                "is the destination of the Number(s) {}",
                listed.join(", ")
            ));
        }
        if !flows.is_empty() {
            uses.push(format!("is named by {}", flows.join(", ")));
        }
        return Err(DomainError::Conflict {
            code: "in_use",
            message: format!(
                "the Extension {}; delete with ?force=true to unbind them",
                uses.join(" and ")
            ),
            field: None,
        });
    }
    devices::Entity::update_many()
        .col_expr(devices::Column::Mode, Expr::value("hotdesk"))
        .col_expr(
            devices::Column::OwnerExtensionId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(devices::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::OwnerExtensionId.eq(id))
        .exec(&txn)
        .await?;
    devices::Entity::update_many()
        .col_expr(devices::Column::LoggedOutMode, Expr::value("inherit"))
        .col_expr(
            devices::Column::PlaceholderExtensionId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(devices::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::PlaceholderExtensionId.eq(id))
        .exec(&txn)
        .await?;
    let settings_cleared = settings_store::Entity::update_many()
        .col_expr(settings_store::Column::LoggedOutMode, Expr::value("full"))
        .col_expr(
            settings_store::Column::PlaceholderExtensionId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(settings_store::Column::DomainId.eq(domain_id))
        .filter(settings_store::Column::PlaceholderExtensionId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected
        > 0;
    let groups_cleared: Vec<Uuid> = extension_groups::Entity::find()
        .filter(extension_groups::Column::DomainId.eq(domain_id))
        .filter(extension_groups::Column::PlaceholderExtensionId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    extension_groups::Entity::update_many()
        .col_expr(
            extension_groups::Column::LoggedOutMode,
            Expr::value("inherit"),
        )
        .col_expr(
            extension_groups::Column::PlaceholderExtensionId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(extension_groups::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(extension_groups::Column::DomainId.eq(domain_id))
        .filter(extension_groups::Column::PlaceholderExtensionId.eq(id))
        .exec(&txn)
        .await?;
    // The phones with a BLF key of it lose the key.
    let watching = super::provisioning::watching(&txn, domain_id, id).await?;
    let ids = [id];
    let ending = Ending {
        extensions: &ids,
        signed_in: &ids,
        ..Ending::default()
    };
    let ended = end_for_change(
        &txn,
        ctx,
        domain_id,
        &domain.sip_domain,
        ending,
        ChangeCause::ExtensionDeleted,
    )
    .await?;
    // Nobody's desk any more, and nobody who logged out.
    for column in [
        devices::Column::HomeExtensionId,
        devices::Column::LastExtensionId,
    ] {
        devices::Entity::update_many()
            .col_expr(column, Expr::value(Option::<Uuid>::None))
            .filter(devices::Column::DomainId.eq(domain_id))
            .filter(column.eq(id))
            .exec(&txn)
            .await?;
    }
    extensions::Entity::delete_by_id(id).exec(&txn).await?;
    // Read again after the delete: a Number pointed at it meanwhile (it waited for the
    // Extension's row, PostgreSQL) is seen now.
    let pointing = numbers::pointing_at(&txn, domain_id, id).await?;
    if !pointing.is_empty() && !force {
        return Err(DomainError::conflict(
            "in_use",
            "a Number was pointed at the Extension meanwhile; delete with ?force=true",
        ));
    }
    let flow_events = super::call_flows::forget_extension(&txn, ctx, &domain, id).await?;
    let cleared_numbers: Vec<String> = pointing.iter().map(|n| n.number.clone()).collect();
    let number_events =
        numbers::clear_destinations(&txn, ctx, &domain, &pointing, "extension_deleted").await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "extension.delete",
            target_kind: "extension",
            target_id: Some(id.to_string()),
            before: serde_json::to_value(&ext).ok(),
            after: Some(json!({
                "forced": force,
                "unbound_devices": owned_ids,
                "placeholder_cleared_devices": placeholder_ids,
                "placeholder_cleared_in_settings": settings_cleared,
                "placeholder_cleared_in_groups": groups_cleared,
                "cleared_numbers": cleared_numbers,
            })),
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus.publish(
        ended
            .into_iter()
            .chain([ChangeEvent::new(
                domain_id,
                &domain.sip_domain,
                ChangeKind::ExtensionDeleted,
                id,
                ctx.now,
            )
            .refresh(users)
            .drop_registrations([ext.number])
            .check_sync(watching)])
            .chain(number_events)
            .chain(flow_events),
    );
    Ok(())
}

/// Generates a new SIP secret for the Extension's direct registration (`extensions.write`);
/// its current registrations are dropped so phones re-register with the new one.
pub async fn rotate_secret(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(deps.db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let ext = find(deps.db, domain_id, id).await?;
    if !ext.sip_registration_enabled {
        return Err(DomainError::conflict(
            "no_sip_registration",
            "the Extension does not register directly; enable sip_registration first",
        ));
    }
    let txn = crate::db::begin_write(deps.db).await?;
    extensions::Entity::update_many()
        .col_expr(
            extensions::Column::SipSecretEncrypted,
            Expr::value(
                deps.cipher
                    .encrypt(generate_sip_secret().expose_secret(), &secret_context(id)),
            ),
        )
        .col_expr(extensions::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(extensions::Column::Id.eq(id))
        .filter(extensions::Column::DomainId.eq(domain_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "extension.rotate_secret",
            target_kind: "extension",
            target_id: Some(id.to_string()),
            before: None,
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus.publish([ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::ExtensionUpdated,
        id,
        ctx.now,
    )
    .drop_registrations([ext.number])]);
    Ok(())
}

/// Reads the Extension's SIP secret in clear (`secrets.read`); every read is audited.
pub async fn read_secret(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<(String, SecretString, String)> {
    let domain = scope::enter(db, ctx, domain_id, Permission::SecretsRead).await?;
    let ext = find(db, domain_id, id).await?;
    let Some(stored) = ext
        .sip_secret_encrypted
        .as_deref()
        .filter(|_| ext.sip_registration_enabled)
    else {
        return Err(DomainError::conflict(
            "no_sip_registration",
            "the Extension does not register directly",
        ));
    };
    let secret = cipher
        .decrypt(stored, &secret_context(id))
        .map_err(|e| DomainError::Internal(format!("extension {id}: {e}")))?;
    audit::record(
        db,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "extension.read_secret",
            target_kind: "extension",
            target_id: Some(id.to_string()),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok((ext.number, secret, domain.sip_domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> extensions::Model {
        let mut row = new_row(Uuid::nil(), chrono::Utc::now());
        row.number = "201".into();
        row.display_name = "Ada".into();
        row
    }

    fn fields(row: &mut extensions::Model, pin: Option<&str>) -> Vec<String> {
        let pin = pin.map(|p| SecretString::from(p.to_owned()));
        let rules = NumberingRules {
            emergency_numbers: vec!["911".into(), "112".into()],
            pin_min_length: 4,
        };
        validate(row, &rules, pin.as_ref())
            .into_vec()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_minimal_extension_is_valid() {
        assert!(fields(&mut valid(), Some("2580")).is_empty());
    }

    #[test]
    fn bad_values_name_their_fields() {
        type Mutate = fn(&mut extensions::Model);
        let table: Vec<(&str, Mutate)> = vec![
            ("number", |r| r.number = "2x1".into()),
            ("number", |r| r.number = "911".into()),
            ("display_name", |r| r.display_name = " ".into()),
            ("outbound_caller_id_number", |r| {
                r.outbound_caller_id_number = Some("0301234".into())
            }),
            ("emergency_caller_id_number", |r| {
                r.emergency_caller_id_number = Some("12".into())
            }),
            ("internal_caller_id_name", |r| {
                r.internal_caller_id_name = Some("a\u{7}b".into())
            }),
            ("ring_timeout_secs", |r| r.ring_timeout_secs = Some(1)),
            ("forwarding.busy.destination", |r| {
                r.forward_busy_enabled = true
            }),
            ("forwarding.always.destination", |r| {
                r.forward_always_enabled = true;
                r.forward_always_destination = Some("201".into());
            }),
            ("forwarding.no_answer.destination", |r| {
                r.forward_no_answer_destination = Some("abc".into())
            }),
            ("recording.inbound", |r| {
                r.record_inbound = "sometimes".into()
            }),
            ("context", |r| r.context = Some("bad context".into())),
            ("toll_allow", |r| {
                r.toll_allow = "local,in ternational".into()
            }),
            ("call_group", |r| r.call_group = Some("sales team".into())),
            ("user_id", |r| {
                r.placeholder = true;
                r.hotdesk_allowed = false;
                r.user_id = Some(Uuid::nil());
            }),
            ("hotdesk_allowed", |r| r.placeholder = true),
            ("sip_registration.max_registrations", |r| {
                r.max_registrations = 0
            }),
        ];
        for (field, mutate) in table {
            let mut row = valid();
            mutate(&mut row);
            assert_eq!(fields(&mut row, None), vec![field.to_owned()], "{field}");
        }
    }

    #[test]
    fn pins_are_checked_against_the_number() {
        assert_eq!(fields(&mut valid(), Some("201")), vec!["pin".to_owned()]);
        assert_eq!(fields(&mut valid(), Some("1111")), vec!["pin".to_owned()]);
    }

    #[test]
    fn values_are_normalised() {
        let mut row = valid();
        row.outbound_caller_id_number = Some("+49 30 123456".into());
        row.call_group = Some("Sales".into());
        row.toll_allow = "Local,local,international".into();
        row.context = Some(" ".into());
        assert!(fields(&mut row, None).is_empty());
        assert_eq!(
            row.outbound_caller_id_number.as_deref(),
            Some("+4930123456")
        );
        assert_eq!(row.call_group.as_deref(), Some("sales"));
        assert_eq!(row.toll_allow, "local,international");
        assert_eq!(row.context, None);
    }
}
