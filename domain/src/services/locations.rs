//! Locations (pascom-style): desks, offices, home offices that Extensions sign in to. While an
//! Extension is signed in, every device of the Location rings for it, in the Location's ring
//! order; an emergency call from those devices carries the Location's emergency identity
//! unless the device has its own.
//!
//! Same shape as the other calling-model use cases: apply the patch, validate the whole row
//! (pure rules, then references), save with the listing of allowed Extensions and the audit
//! entry in one transaction, publish after commit.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::calling_settings::validate_auto_end;
use super::ending::{Ending, end_for_change};
use super::roles::{RoleTarget, resolve_roles};
use super::{Context, audit, scope};
use crate::bindings::hotdesk::ChangeCause;
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{devices, domains, extensions, location_extensions, locations, search};
use crate::telephony::policy::{AutoLogout, RingStrategy, SignInPolicy};
use crate::telephony::values::{CallerIdName, CallerIdNumber};

/// The most digits of a Location's short code.
pub const MAX_SHORT_CODE_DIGITS: usize = 6;

/// The most Extensions, and the most roles, a Location may list.
pub const MAX_LISTED: usize = 1_000;

/// A change to a Location: absent fields stay, `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct LocationPatch {
    /// Name, unique in the Domain (1–100 characters).
    pub name: Option<String>,
    /// Free text (up to 500 characters).
    pub description: Option<String>,
    /// Emergency caller ID name of the place.
    pub emergency_caller_id_name: Option<Option<String>>,
    /// Emergency caller ID number (E.164) of the place.
    pub emergency_caller_id_number: Option<Option<String>>,
    /// Street address for emergency services (up to 500 characters, may span lines).
    pub emergency_address: Option<Option<String>>,
    /// `simultaneous` or `sequential`.
    pub ring_strategy: Option<String>,
    /// `everyone` or `listed`.
    pub sign_in_policy: Option<String>,
    /// Extensions that may sign in under `listed` (replaces the list).
    pub allowed_extension_ids: Option<Vec<Uuid>>,
    /// Roles whose holders' Extensions may sign in under `listed`: built-in role names or
    /// custom role ids of the Domain (replaces the list).
    pub allowed_roles: Option<Vec<String>>,
    /// When sign-ins end by themselves: `never`, `after_hours`, `daily_at`.
    pub auto_sign_out: Option<String>,
    /// Hours for `after_hours` (1–168).
    pub auto_sign_out_hours: Option<Option<i32>>,
    /// HH:MM (Domain time zone) for `daily_at`.
    pub auto_sign_out_at: Option<Option<String>>,
    /// 1–6 digits dialled after `*14` to sign in from a phone; unique in the Domain.
    pub short_code: Option<Option<String>>,
}

/// Filters of the Location list.
#[derive(Debug, Clone, Default)]
pub struct LocationFilter {
    /// Part of the name (case-insensitive).
    pub q: Option<String>,
}

/// A Location with what belongs to it.
#[derive(Debug, Clone)]
pub struct LocationView {
    /// The Location row.
    pub location: locations::Model,
    /// Extensions listed as allowed to sign in (by id).
    pub allowed_extension_ids: Vec<Uuid>,
    /// Its devices in ring order (position, then creation).
    pub devices: Vec<devices::Model>,
}

impl LocationView {
    /// The listed role keys.
    pub fn allowed_roles(&self) -> Vec<String> {
        role_keys(&self.location.allowed_roles)
    }
}

fn role_keys(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A new Location row with the defaults (simultaneous ring, everyone may sign in).
pub fn new_row(domain_id: Uuid, now: chrono::DateTime<chrono::Utc>) -> locations::Model {
    locations::Model {
        id: Uuid::now_v7(),
        domain_id,
        name: String::new(),
        description: String::new(),
        emergency_caller_id_name: None,
        emergency_caller_id_number: None,
        emergency_address: None,
        ring_strategy: RingStrategy::Simultaneous.as_str().to_owned(),
        sign_in_policy: SignInPolicy::Everyone.as_str().to_owned(),
        allowed_roles: json!([]),
        auto_sign_out: AutoLogout::Never.as_str().to_owned(),
        auto_sign_out_hours: None,
        auto_sign_out_at: None,
        short_code: None,
        created_at: now,
        updated_at: now,
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Applies a patch to the row; the allowed Extensions are kept apart (their own table).
pub fn apply(row: &mut locations::Model, p: &LocationPatch) {
    set(&mut row.name, p.name.clone());
    set(&mut row.description, p.description.clone());
    set(
        &mut row.emergency_caller_id_name,
        p.emergency_caller_id_name.clone(),
    );
    set(
        &mut row.emergency_caller_id_number,
        p.emergency_caller_id_number.clone(),
    );
    set(&mut row.emergency_address, p.emergency_address.clone());
    set(&mut row.ring_strategy, p.ring_strategy.clone());
    set(&mut row.sign_in_policy, p.sign_in_policy.clone());
    if let Some(roles) = &p.allowed_roles {
        row.allowed_roles = json!(roles);
    }
    // Changing the policy drops the other policy's parameter unless it is given too.
    if let Some(policy) = &p.auto_sign_out {
        if policy != AutoLogout::AfterHours.as_str() && p.auto_sign_out_hours.is_none() {
            row.auto_sign_out_hours = None;
        }
        if policy != AutoLogout::DailyAt.as_str() && p.auto_sign_out_at.is_none() {
            row.auto_sign_out_at = None;
        }
        row.auto_sign_out = policy.clone();
    }
    set(&mut row.auto_sign_out_hours, p.auto_sign_out_hours);
    set(&mut row.auto_sign_out_at, p.auto_sign_out_at.clone());
    set(&mut row.short_code, p.short_code.clone());
}

/// Text that may span lines: no control characters but line breaks and tabs.
fn multiline_ok(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
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

/// Validates (and normalises) a complete Location and its list of allowed Extensions against
/// the pure rules. A `listed` Location must list at least one Extension or role: otherwise
/// nobody could sign in, which is never what was meant.
pub fn validate(row: &mut locations::Model, allowed_extension_ids: &[Uuid]) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let name = row.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add(
            "name",
            "invalid_name",
            "a name is 1 to 100 characters without control characters",
        );
    } else {
        row.name = name.to_owned();
    }
    let description = row.description.trim();
    if description.chars().count() > 500 || !multiline_ok(description) {
        errors.add(
            "description",
            "invalid_text",
            "at most 500 characters, without control characters",
        );
    } else {
        row.description = description.to_owned();
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
    normalise_optional(
        &mut errors,
        "emergency_address",
        &mut row.emergency_address,
        |v| {
            let t = v.trim();
            if t.chars().count() > 500 || !multiline_ok(t) {
                Err(FieldError::new(
                    "",
                    "invalid_text",
                    "at most 500 characters, without control characters",
                ))
            } else {
                Ok(t.to_owned())
            }
        },
    );
    if let Err(e) = RingStrategy::parse(&row.ring_strategy) {
        errors.push(FieldError {
            field: "ring_strategy".into(),
            ..e
        });
    }
    if let Some(at) = row.auto_sign_out_at.as_deref().map(str::trim) {
        row.auto_sign_out_at = (!at.is_empty()).then(|| at.to_owned());
    }
    validate_auto_end(
        &mut errors,
        "auto_sign_out",
        &row.auto_sign_out,
        row.auto_sign_out_hours,
        row.auto_sign_out_at.as_deref(),
        false,
    );
    if let Some(code) = row.short_code.as_deref().map(str::trim) {
        if code.is_empty() {
            row.short_code = None;
        } else if code.len() > MAX_SHORT_CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            errors.add(
                "short_code",
                "invalid_short_code",
                format!("1 to {MAX_SHORT_CODE_DIGITS} digits"),
            );
        } else {
            row.short_code = Some(code.to_owned());
        }
    }
    if row.auto_sign_out_hours.is_some() && row.auto_sign_out != AutoLogout::AfterHours.as_str() {
        errors.add(
            "auto_sign_out_hours",
            "not_applicable",
            "auto_sign_out_hours is only used with auto_sign_out `after_hours`",
        );
    }
    if row.auto_sign_out_at.is_some() && row.auto_sign_out != AutoLogout::DailyAt.as_str() {
        errors.add(
            "auto_sign_out_at",
            "not_applicable",
            "auto_sign_out_at is only used with auto_sign_out `daily_at`",
        );
    }
    let roles = role_keys(&row.allowed_roles);
    if allowed_extension_ids.len() > MAX_LISTED {
        errors.add(
            "allowed_extension_ids",
            "too_many",
            format!("at most {MAX_LISTED} Extensions"),
        );
    }
    if roles.len() > MAX_LISTED {
        errors.add(
            "allowed_roles",
            "too_many",
            format!("at most {MAX_LISTED} roles"),
        );
    }
    match errors.check("sign_in_policy", SignInPolicy::parse(&row.sign_in_policy)) {
        Some(SignInPolicy::Listed) if allowed_extension_ids.is_empty() && roles.is_empty() => {
            errors.add(
                "sign_in_policy",
                "nobody_listed",
                "`listed` needs at least one entry in allowed_extension_ids or allowed_roles",
            )
        }
        _ => {}
    }
    errors
}

/// Checks the listed Extensions (of this Domain, not placeholders) and resolves the listed
/// roles to their keys; errors name the item, e.g. `allowed_extension_ids[2]`.
async fn validate_references<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    extension_ids: &[Uuid],
    roles: Option<&[String]>,
    errors: &mut FieldErrors,
) -> DomainResult<Option<Vec<String>>> {
    if !extension_ids.is_empty() {
        let found: HashMap<Uuid, bool> = extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .filter(extensions::Column::Id.is_in(extension_ids.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|e| (e.id, e.placeholder))
            .collect();
        for (i, id) in extension_ids.iter().enumerate() {
            let field = format!("allowed_extension_ids[{i}]");
            match found.get(id) {
                None => errors.add(field, "not_found", "no such Extension in this Domain"),
                Some(true) => errors.add(
                    field,
                    "is_placeholder",
                    "a placeholder Extension never signs in",
                ),
                Some(false) => {}
            }
        }
    }
    match roles {
        None => Ok(None),
        Some(keys) => {
            let views = resolve_roles(
                db,
                RoleTarget::Domain(domain_id),
                keys,
                "allowed_roles",
                errors,
            )
            .await?;
            Ok(Some(views.into_iter().map(|v| v.key).collect()))
        }
    }
}

fn dedup(ids: Vec<Uuid>) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<locations::Model> {
    locations::Entity::find_by_id(id)
        .filter(locations::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("location"))
}

/// The listed Extensions of some Locations, by Location, ordered by id.
async fn listed_extensions<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    location_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<Uuid>>> {
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if location_ids.is_empty() {
        return Ok(out);
    }
    let rows = location_extensions::Entity::find()
        .filter(location_extensions::Column::DomainId.eq(domain_id))
        .filter(location_extensions::Column::LocationId.is_in(location_ids.iter().copied()))
        .order_by_asc(location_extensions::Column::ExtensionId)
        .all(db)
        .await?;
    for r in rows {
        out.entry(r.location_id).or_default().push(r.extension_id);
    }
    Ok(out)
}

/// The devices of some Locations, by Location, in ring order.
async fn devices_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    location_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<devices::Model>>> {
    let mut out: HashMap<Uuid, Vec<devices::Model>> = HashMap::new();
    if location_ids.is_empty() {
        return Ok(out);
    }
    let rows = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::LocationId.is_in(location_ids.iter().copied()))
        .order_by_asc(devices::Column::LocationPosition)
        .order_by_asc(devices::Column::Id)
        .all(db)
        .await?;
    for d in rows {
        if let Some(l) = d.location_id {
            out.entry(l).or_default().push(d);
        }
    }
    Ok(out)
}

/// Completes Location rows into views with two queries, whatever their number.
async fn views<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    rows: Vec<locations::Model>,
) -> DomainResult<Vec<LocationView>> {
    let ids: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let mut listed = listed_extensions(db, domain_id, &ids).await?;
    let mut devices = devices_of(db, domain_id, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|location| LocationView {
            allowed_extension_ids: listed.remove(&location.id).unwrap_or_default(),
            devices: devices.remove(&location.id).unwrap_or_default(),
            location,
        })
        .collect())
}

async fn view<C: ConnectionTrait>(
    db: &C,
    location: locations::Model,
) -> DomainResult<LocationView> {
    let domain_id = location.domain_id;
    views(db, domain_id, vec![location])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("location"))
}

/// The Location as the audit log shows it: the row with its listed Extensions.
pub(crate) fn audit_view(row: &locations::Model, allowed_extension_ids: &[Uuid]) -> Option<Value> {
    let mut value = serde_json::to_value(row).ok()?;
    if let Some(map) = value.as_object_mut() {
        map.insert("allowed_extension_ids".into(), json!(allowed_extension_ids));
    }
    Some(value)
}

/// Creates a Location (`locations.write`).
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    patch: LocationPatch,
) -> DomainResult<LocationView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::LocationsWrite).await?;
    if patch.name.is_none() {
        return Err(DomainError::invalid(
            "name",
            "required",
            "a Location needs a name",
        ));
    }
    let mut row = new_row(domain_id, ctx.now);
    apply(&mut row, &patch);
    save(db, bus, ctx, &domain, None, row, patch).await
}

/// Changes a Location (`locations.write`); its devices' directory entries are refreshed, as
/// their emergency identity and ring order follow the Location.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: LocationPatch,
) -> DomainResult<LocationView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::LocationsWrite).await?;
    let before = view(db, find(db, domain_id, id).await?).await?;
    let mut row = before.location.clone();
    apply(&mut row, &patch);
    row.updated_at = ctx.now;
    save(db, bus, ctx, &domain, Some(before), row, patch).await
}

/// Validates and writes a new or changed Location with its listing and audit entry, then
/// publishes.
async fn save(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain: &domains::Model,
    before: Option<LocationView>,
    mut row: locations::Model,
    patch: LocationPatch,
) -> DomainResult<LocationView> {
    let listing_changed = patch.allowed_extension_ids.is_some();
    let allowed = match patch.allowed_extension_ids {
        Some(ids) => dedup(ids),
        None => before
            .as_ref()
            .map(|b| b.allowed_extension_ids.clone())
            .unwrap_or_default(),
    };
    let mut errors = validate(&mut row, &allowed);
    let new_ids: Vec<Uuid> = if listing_changed {
        allowed.clone()
    } else {
        Vec::new()
    };
    let roles = validate_references(
        db,
        domain.id,
        &new_ids,
        patch.allowed_roles.as_deref(),
        &mut errors,
    )
    .await?;
    errors.into_result()?;
    if let Some(keys) = roles {
        row.allowed_roles = json!(keys);
    }

    let txn = crate::db::begin_write(db).await?;
    let saved = match &before {
        None => locations::ActiveModel::from(row).insert(&txn).await?,
        Some(_) => row.into_active_model().reset_all().update(&txn).await?,
    };
    if listing_changed {
        location_extensions::Entity::delete_many()
            .filter(location_extensions::Column::DomainId.eq(domain.id))
            .filter(location_extensions::Column::LocationId.eq(saved.id))
            .exec(&txn)
            .await?;
        if !allowed.is_empty() {
            location_extensions::Entity::insert_many(allowed.iter().map(|ext| {
                location_extensions::ActiveModel::from(location_extensions::Model {
                    domain_id: domain.id,
                    location_id: saved.id,
                    extension_id: *ext,
                })
            }))
            .exec(&txn)
            .await?;
        }
    }
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action: if before.is_some() {
                "location.update"
            } else {
                "location.create"
            },
            target_kind: "location",
            target_id: Some(saved.id.to_string()),
            before: before
                .as_ref()
                .and_then(|b| audit_view(&b.location, &b.allowed_extension_ids)),
            after: audit_view(&saved, &allowed),
        },
    )
    .await?;
    let result = view(&txn, saved).await?;
    txn.commit().await?;

    let kind = if before.is_some() {
        ChangeKind::LocationUpdated
    } else {
        ChangeKind::LocationCreated
    };
    bus.publish([ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        kind,
        result.location.id,
        ctx.now,
    )
    .refresh(result.devices.iter().map(|d| d.sip_username.clone()))]);
    Ok(result)
}

/// Reads one Location with its listing and devices (`locations.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<LocationView> {
    scope::enter(db, ctx, domain_id, Permission::LocationsRead).await?;
    view(db, find(db, domain_id, id).await?).await
}

/// Lists Locations (`locations.read`), in creation order, each with its listing and devices.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &LocationFilter,
    page: &PageRequest,
) -> DomainResult<Page<LocationView>> {
    scope::enter(db, ctx, domain_id, Permission::LocationsRead).await?;
    let mut query = locations::Entity::find().filter(locations::Column::DomainId.eq(domain_id));
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Expr::expr(Func::lower(Expr::col(locations::Column::Name)))
                .like(search::contains(&q.to_lowercase())),
        );
    }
    let page = fetch_page(db, query, locations::Column::Id, |m| m.id, page).await?;
    let items = views(db, domain_id, page.items).await?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Deletes a Location (`locations.write`). One that still has devices is refused with 409
/// `in_use` unless `force`, which takes the devices out of it in the same transaction.
/// Returns how many devices were taken out.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    force: bool,
) -> DomainResult<u64> {
    let domain = scope::enter(db, ctx, domain_id, Permission::LocationsWrite).await?;
    let before = view(db, find(db, domain_id, id).await?).await?;
    let count = before.devices.len() as u64;
    if count > 0 && !force {
        return Err(DomainError::Conflict {
            code: "in_use",
            message: format!(
                "the Location has {count} device(s); delete with ?force=true to take them out"
            ),
            field: None,
        });
    }
    let txn = crate::db::begin_write(db).await?;
    // Write first: on SQLite a transaction that reads before its first write may not be able
    // to write at all once another writer committed in between.
    location_extensions::Entity::delete_many()
        .filter(location_extensions::Column::DomainId.eq(domain_id))
        .filter(location_extensions::Column::LocationId.eq(id))
        .exec(&txn)
        .await?;
    let released = if force {
        devices::Entity::update_many()
            .col_expr(
                devices::Column::LocationId,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(devices::Column::LocationPosition, Expr::value(0))
            .col_expr(
                devices::Column::LocationRingTimeoutSecs,
                Expr::value(Option::<i32>::None),
            )
            .col_expr(devices::Column::UpdatedAt, Expr::value(ctx.now))
            .filter(devices::Column::DomainId.eq(domain_id))
            .filter(devices::Column::LocationId.eq(id))
            .exec(&txn)
            .await?
            .rows_affected
    } else {
        0
    };
    // A device may have joined since the check above; dropping the transaction undoes it all.
    let still_used = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::LocationId.eq(id))
        .count(&txn)
        .await?;
    if still_used > 0 {
        return Err(DomainError::conflict(
            "in_use",
            "a device joined the Location meanwhile; delete with ?force=true to take it out",
        ));
    }
    let ending = Ending {
        locations: &[id],
        ..Ending::default()
    };
    let signed_out = end_for_change(
        &txn,
        ctx,
        domain_id,
        &domain.sip_domain,
        ending,
        ChangeCause::LocationDeleted,
    )
    .await?;
    locations::Entity::delete_many()
        .filter(locations::Column::Id.eq(id))
        .filter(locations::Column::DomainId.eq(domain_id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "location.delete",
            target_kind: "location",
            target_id: Some(id.to_string()),
            before: audit_view(&before.location, &before.allowed_extension_ids),
            after: Some(json!({"forced": force, "released_devices": released})),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish(
        signed_out.into_iter().chain([ChangeEvent::new(
            domain_id,
            &domain.sip_domain,
            ChangeKind::LocationDeleted,
            id,
            ctx.now,
        )
        .refresh(before.devices.into_iter().map(|d| d.sip_username))]),
    );
    Ok(released)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> locations::Model {
        let mut row = new_row(Uuid::nil(), chrono::Utc::now());
        row.name = "Desk 4.12".into();
        row
    }

    fn fields(row: &mut locations::Model, listed: &[Uuid]) -> Vec<String> {
        validate(row, listed)
            .into_vec()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_minimal_location_is_valid() {
        assert!(fields(&mut valid(), &[]).is_empty());
    }

    #[test]
    fn bad_values_name_their_fields() {
        type Mutate = fn(&mut locations::Model);
        let table: Vec<(&str, Mutate)> = vec![
            ("name", |r| r.name = " ".into()),
            ("name", |r| r.name = "n".repeat(101)),
            ("name", |r| r.name = "a\nb".into()),
            ("description", |r| r.description = "d".repeat(501)),
            ("description", |r| r.description = "a\u{0}b".into()),
            ("emergency_caller_id_name", |r| {
                r.emergency_caller_id_name = Some("x".repeat(51))
            }),
            ("emergency_caller_id_number", |r| {
                r.emergency_caller_id_number = Some("112".into())
            }),
            ("emergency_address", |r| {
                r.emergency_address = Some("a".repeat(501))
            }),
            ("ring_strategy", |r| r.ring_strategy = "round_robin".into()),
            ("sign_in_policy", |r| r.sign_in_policy = "anyone".into()),
            ("sign_in_policy", |r| r.sign_in_policy = "listed".into()),
            ("allowed_roles", |r| {
                r.allowed_roles = json!(vec!["member"; MAX_LISTED + 1])
            }),
        ];
        for (field, mutate) in table {
            let mut row = valid();
            mutate(&mut row);
            assert_eq!(fields(&mut row, &[]), vec![field.to_owned()], "{field}");
        }
    }

    #[test]
    fn listed_needs_an_extension_or_a_role() {
        let mut row = valid();
        row.sign_in_policy = "listed".into();
        assert!(fields(&mut row, &[Uuid::nil()]).is_empty());
        let mut row = valid();
        row.sign_in_policy = "listed".into();
        row.allowed_roles = json!(["member"]);
        assert!(fields(&mut row, &[]).is_empty());
        // `everyone` with lists is fine: they are kept for a later switch to `listed`.
        let mut row = valid();
        row.allowed_roles = json!(["member"]);
        assert!(fields(&mut row, &[Uuid::nil()]).is_empty());
        let too_many = vec![Uuid::nil(); MAX_LISTED + 1];
        assert_eq!(
            fields(&mut valid(), &too_many),
            vec!["allowed_extension_ids".to_owned()]
        );
    }

    #[test]
    fn values_are_normalised() {
        let mut row = valid();
        row.name = "  HQ 2F ".into();
        row.emergency_caller_id_number = Some("+49 30 1234 5678".into());
        row.emergency_address = Some("  Main St 1\n10115 Berlin  ".into());
        row.emergency_caller_id_name = Some("".into());
        assert!(fields(&mut row, &[]).is_empty());
        assert_eq!(row.name, "HQ 2F");
        assert_eq!(
            row.emergency_caller_id_number.as_deref(),
            Some("+493012345678")
        );
        assert_eq!(
            row.emergency_address.as_deref(),
            Some("Main St 1\n10115 Berlin")
        );
        assert_eq!(row.emergency_caller_id_name, None);
    }

    #[test]
    fn patches_keep_what_they_do_not_mention() {
        let mut row = valid();
        row.emergency_address = Some("Main St 1".into());
        apply(
            &mut row,
            &LocationPatch {
                ring_strategy: Some("sequential".into()),
                emergency_caller_id_name: Some(None),
                ..Default::default()
            },
        );
        assert_eq!(row.ring_strategy, "sequential");
        assert_eq!(row.emergency_address.as_deref(), Some("Main St 1"));
        assert_eq!(dedup(vec![Uuid::nil(), Uuid::nil()]), vec![Uuid::nil()]);
    }
}
