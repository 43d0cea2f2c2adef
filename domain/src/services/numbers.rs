//! Numbers (DIDs): E.164 numbers unique platform-wide. Platform administrators
//! (`numbers.manage`) keep the platform's stock and assign Numbers to Domains; a Domain's
//! administrators (`numbers.read` / `numbers.write`) point their Numbers at a destination.
//!
//! Same shape as the other use cases: load → apply the change and check it (pure rules, then
//! references inside the write transaction) → save with its audit entry → publish after
//! commit, one change event per Domain the change touches (the dialplan of each is recompiled).
//! A Number that leaves a Domain (unassigned, moved, its Domain deleted) loses its destination:
//! what it pointed at belongs to the old Domain.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::authorize_platform;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::routing::destination::{Destination, HangUpWith};
use crate::store::{audit_log, domains, extensions, numbers, search};
use crate::telephony::values::CallerIdNumber;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;
/// Values per `IN (…)` list of the import's look-ups.
const LOOKUP_CHUNK: usize = 500;
/// Rows per multi-row `INSERT` of the import (10 columns each).
const INSERT_CHUNK: usize = 500;

/// A Number to add to the platform (`numbers.manage`).
#[derive(Debug, Clone, Default)]
pub struct NewNumber {
    /// The number; normalised to E.164.
    pub number: String,
    /// Assign it to this Domain right away; `None`: into the stock.
    pub domain_id: Option<Uuid>,
    /// Free text (up to 500 characters).
    pub description: Option<String>,
    /// Where it points (needs a Domain).
    pub destination: Option<Destination>,
}

/// A platform change to a Number: absent fields stay, `Some(None)` clears.
#[derive(Debug, Clone, Default)]
pub struct NumberPatch {
    /// Free text.
    pub description: Option<String>,
    /// Assign (`Some(Some)`), move, or return to the stock (`Some(None)`); a Number that
    /// leaves its Domain loses its destination.
    pub domain_id: Option<Option<Uuid>>,
    /// A new destination (`Some(None)`: none); checked against the Domain it ends up in.
    pub destination: Option<Option<Destination>>,
}

/// A Domain's change to one of its Numbers: absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct DestinationPatch {
    /// Free text.
    pub description: Option<String>,
    /// Where it points; `Some(None)`: nowhere (calls to it end as unallocated).
    pub destination: Option<Option<Destination>>,
}

/// Filters of the platform's list.
#[derive(Debug, Clone, Default)]
pub struct StockFilter {
    /// Only the Numbers of this Domain.
    pub domain_id: Option<Uuid>,
    /// `true`: only assigned Numbers; `false`: only the stock.
    pub assigned: Option<bool>,
    /// Part of the number (spaces, `-`, `(`, `)` ignored).
    pub q: Option<String>,
}

/// Filters of a Domain's list.
#[derive(Debug, Clone, Default)]
pub struct DomainNumberFilter {
    /// Part of the number (spaces, `-`, `(`, `)` ignored).
    pub q: Option<String>,
    /// Only Numbers pointing at this kind (`extension`, `voicemail`, `external`, `hang_up`),
    /// or `none` for those pointing nowhere.
    pub destination_type: Option<String>,
    /// Only Numbers pointing at this Extension (ringing it or its voicemail).
    pub extension_id: Option<Uuid>,
}

/// The kinds `destination_type` can filter on, besides `none`.
const DESTINATION_KINDS: &[&str] = &[
    "extension",
    "voicemail",
    "external",
    "hang_up",
    "ring_group",
    "ivr",
    "time_condition",
];

fn number_field(input: &str) -> Result<String, FieldError> {
    CallerIdNumber::parse_e164(input)
        .map(CallerIdNumber::into_string)
        .map_err(|e| FieldError {
            field: "number".into(),
            ..e
        })
}

fn description_field(input: &str) -> Result<String, FieldError> {
    let d = input.trim();
    if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
        return Err(FieldError::new(
            "description",
            "invalid_text",
            format!("at most {MAX_DESCRIPTION} characters, without control characters"),
        ));
    }
    Ok(d.to_owned())
}

/// Normalises a destination and checks its database-free rules; errors are named under
/// `field` (e.g. `destination.number`).
fn normalise_destination(field: &str, d: Destination) -> Result<Destination, FieldError> {
    let d = match d {
        Destination::External { number } => Destination::External {
            number: number.trim().to_owned(),
        },
        other => other,
    };
    d.validate().map_err(|e| FieldError {
        field: e.field.replacen("destination", field, 1),
        ..e
    })?;
    Ok(d)
}

/// [`normalise_destination`] under `destination`, keeping the error's own field (e.g.
/// `destination.number`).
fn checked_destination(errors: &mut FieldErrors, d: Destination) -> Option<Destination> {
    match normalise_destination("destination", d) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// The search text of `q`: the characters a number can hold.
fn search_text(q: &str) -> Option<String> {
    let t: String = q
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    (!t.is_empty()).then_some(t)
}

/// Checks that an Extension destination names an Extension of `domain_id`, holding a share
/// lock on it (PostgreSQL) until the transaction ends, so a concurrent delete of the
/// Extension waits and then sees the Number. Another Domain's Extension is the same
/// `not_found` as a missing one.
async fn check_extension<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    destination: &Destination,
    field: &str,
) -> DomainResult<()> {
    if destination.flow_id().is_some() {
        // Shared with every other writer of the Domain's graph, exclusive to a flow's own
        // write: a flow deleted meanwhile is either seen gone here or sees this Number.
        super::call_flows::share_domain(db, domain_id).await?;
        return super::call_flows::check_flow_target(db, domain_id, destination, field).await;
    }
    let Some(extension_id) = destination.extension_id() else {
        return Ok(());
    };
    let found = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::Id.eq(extension_id))
        .lock_shared()
        .one(db)
        .await?;
    if found.is_none() {
        return Err(DomainError::invalid(
            format!("{field}.extension_id"),
            "not_found",
            "no such Extension in this Domain",
        ));
    }
    Ok(())
}

async fn find_any<C: ConnectionTrait>(db: &C, id: Uuid) -> DomainResult<numbers::Model> {
    numbers::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("number"))
}

async fn find_in_domain<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<numbers::Model> {
    numbers::Entity::find_by_id(id)
        .filter(numbers::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("number"))
}

/// The Domain a Number is assigned to; a missing one is a 422 on `domain_id` (a platform
/// administrator sees every Domain, so nothing is hidden by saying so). The row is share-locked
/// (PostgreSQL) so a concurrent Domain delete waits for this transaction.
async fn target_domain<C: ConnectionTrait>(db: &C, id: Uuid) -> DomainResult<domains::Model> {
    domains::Entity::find_by_id(id)
        .lock_shared()
        .one(db)
        .await?
        .ok_or_else(|| DomainError::invalid("domain_id", "not_found", "no such Domain"))
}

async fn domains_by_id<C: ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = Uuid>,
) -> DomainResult<HashMap<Uuid, domains::Model>> {
    let ids: Vec<Uuid> = ids
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(domains::Entity::find()
        .filter(domains::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect())
}

fn audit_view(row: &numbers::Model) -> Option<Value> {
    serde_json::to_value(row).ok()
}

/// The change events a Number's move from `before` to `after` (Domains, `None` = stock)
/// means: `number.created` in the Domain it arrives in, `number.deleted` in the one it
/// leaves, `number.updated` when it stays.
fn events_for(
    id: Uuid,
    before: Option<Uuid>,
    after: Option<Uuid>,
    domains: &HashMap<Uuid, domains::Model>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<ChangeEvent> {
    let event = |domain_id: Uuid, kind| {
        domains
            .get(&domain_id)
            .map(|d| ChangeEvent::new(domain_id, &d.sip_domain, kind, id, now))
    };
    match (before, after) {
        (Some(b), Some(a)) if a == b => event(a, ChangeKind::NumberUpdated).into_iter().collect(),
        (b, a) => b
            .and_then(|b| event(b, ChangeKind::NumberDeleted))
            .into_iter()
            .chain(a.and_then(|a| event(a, ChangeKind::NumberCreated)))
            .collect(),
    }
}

/// Adds a Number to the platform (platform `numbers.manage`), optionally assigned and
/// pointed somewhere. A number already on the platform is 409 `number_taken`, decided by the
/// unique index, so also when two requests race.
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    input: NewNumber,
) -> DomainResult<numbers::Model> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    let mut errors = FieldErrors::new();
    let number = errors.check("number", number_field(&input.number));
    let description = errors.check(
        "description",
        description_field(input.description.as_deref().unwrap_or("")),
    );
    let destination = match input.destination {
        Some(d) => checked_destination(&mut errors, d),
        None => None,
    };
    if destination.is_some() && input.domain_id.is_none() {
        errors.add(
            "destination",
            "unassigned",
            "a Number in the stock points nowhere; assign it to a Domain (domain_id) first",
        );
    }
    errors.into_result()?;
    let (Some(number), Some(description)) = (number, description) else {
        return Err(DomainError::Internal("validated values missing".into()));
    };
    let mut row = numbers::Model {
        id: Uuid::now_v7(),
        number,
        domain_id: input.domain_id,
        description,
        destination_type: None,
        destination_id: None,
        destination_value: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    row.set_destination(destination.as_ref());

    let txn = crate::db::begin_write(db).await?;
    let mut domain_rows = HashMap::new();
    if let Some(domain_id) = row.domain_id {
        let domain = target_domain(&txn, domain_id).await?;
        if let Some(d) = &destination {
            check_extension(&txn, domain_id, d, "destination").await?;
        }
        domain_rows.insert(domain.id, domain);
    }
    let saved = numbers::ActiveModel::from(row).insert(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: saved.domain_id,
            action: "number.create",
            target_kind: "number",
            target_id: Some(saved.id.to_string()),
            before: None,
            after: audit_view(&saved),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish(events_for(
        saved.id,
        None,
        saved.domain_id,
        &domain_rows,
        ctx.now,
    ));
    Ok(saved)
}

/// Lists the platform's Numbers (platform `numbers.manage`), in creation order.
pub async fn list_all(
    db: &DatabaseConnection,
    ctx: &Context,
    filter: &StockFilter,
    page: &PageRequest,
) -> DomainResult<Page<numbers::Model>> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    let mut query = numbers::Entity::find();
    if let Some(domain_id) = filter.domain_id {
        query = query.filter(numbers::Column::DomainId.eq(domain_id));
    }
    match filter.assigned {
        Some(true) => query = query.filter(numbers::Column::DomainId.is_not_null()),
        Some(false) => query = query.filter(numbers::Column::DomainId.is_null()),
        None => {}
    }
    if let Some(q) = filter.q.as_deref().and_then(search_text) {
        query = query.filter(numbers::Column::Number.like(search::contains(&q)));
    }
    fetch_page(db, query, numbers::Column::Id, |m| m.id, page).await
}

/// Reads any Number (platform `numbers.manage`).
pub async fn get_any(
    db: &DatabaseConnection,
    ctx: &Context,
    id: Uuid,
) -> DomainResult<numbers::Model> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    find_any(db, id).await
}

/// Changes a Number at platform level (platform `numbers.manage`): description, Domain and
/// destination. A Number that leaves its Domain (unassigned or moved) loses its destination,
/// unless the same change gives it a new one in the new Domain.
pub async fn update_any(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
    patch: NumberPatch,
) -> DomainResult<numbers::Model> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    let mut errors = FieldErrors::new();
    let description = match &patch.description {
        Some(d) => errors.check("description", description_field(d)),
        None => None,
    };
    let destination = match patch.destination {
        Some(Some(d)) => checked_destination(&mut errors, d).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    errors.into_result()?;

    let txn = crate::db::begin_write(db).await?;
    let before = find_any(&txn, id).await?;
    let mut row = before.clone();
    if let Some(d) = description {
        row.description = d;
    }
    if let Some(domain_id) = patch.domain_id {
        row.domain_id = domain_id;
    }
    let moved = row.domain_id != before.domain_id;
    if moved {
        row.set_destination(None);
    }
    if let Some(d) = &destination {
        row.set_destination(d.as_ref());
    }
    let mut domain_rows = domains_by_id(&txn, before.domain_id).await?;
    if let Some(domain_id) = row.domain_id {
        let domain = target_domain(&txn, domain_id).await?;
        domain_rows.insert(domain.id, domain);
        if let Some(d) = row.destination() {
            check_extension(&txn, domain_id, &d, "destination").await?;
        }
    } else if row.destination_type.is_some() {
        return Err(DomainError::invalid(
            "destination",
            "unassigned",
            "a Number in the stock points nowhere; assign it to a Domain (domain_id) first",
        ));
    }
    row.updated_at = ctx.now;
    let saved = row.into_active_model().reset_all().update(&txn).await?;
    let action = match (moved, saved.domain_id) {
        (true, Some(_)) => "number.assign",
        (true, None) => "number.unassign",
        (false, _) => "number.update",
    };
    // Seen in the audit log of each Domain it touches (the platform's when none).
    let audit_scopes: Vec<Option<Uuid>> = match (before.domain_id, saved.domain_id) {
        (Some(b), Some(a)) if a != b => vec![Some(b), Some(a)],
        (b, a) => vec![a.or(b)],
    };
    for domain_id in audit_scopes {
        audit::record(
            &txn,
            ctx,
            audit::Entry {
                domain_id,
                action,
                target_kind: "number",
                target_id: Some(saved.id.to_string()),
                before: audit_view(&before),
                after: audit_view(&saved),
            },
        )
        .await?;
    }
    txn.commit().await?;
    bus.publish(events_for(
        saved.id,
        before.domain_id,
        saved.domain_id,
        &domain_rows,
        ctx.now,
    ));
    Ok(saved)
}

/// Deletes a Number from the platform (platform `numbers.manage`).
pub async fn delete_any(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
) -> DomainResult<()> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    let txn = crate::db::begin_write(db).await?;
    let before = find_any(&txn, id).await?;
    let domain_rows = domains_by_id(&txn, before.domain_id).await?;
    numbers::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: before.domain_id,
            action: "number.delete",
            target_kind: "number",
            target_id: Some(id.to_string()),
            before: audit_view(&before),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish(events_for(
        id,
        before.domain_id,
        None,
        &domain_rows,
        ctx.now,
    ));
    Ok(())
}

/// Lists the Domain's Numbers (`numbers.read`), in creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &DomainNumberFilter,
    page: &PageRequest,
) -> DomainResult<Page<numbers::Model>> {
    scope::enter(db, ctx, domain_id, Permission::NumbersRead).await?;
    let mut query = numbers::Entity::find().filter(numbers::Column::DomainId.eq(domain_id));
    if let Some(q) = filter.q.as_deref().and_then(search_text) {
        query = query.filter(numbers::Column::Number.like(search::contains(&q)));
    }
    if let Some(kind) = filter.destination_type.as_deref().map(str::trim) {
        if kind == "none" {
            query = query.filter(numbers::Column::DestinationType.is_null());
        } else if DESTINATION_KINDS.contains(&kind) {
            query = query.filter(numbers::Column::DestinationType.eq(kind));
        } else {
            return Err(DomainError::invalid(
                "destination_type",
                "invalid_choice",
                "must be one of: extension, voicemail, external, hang_up, ring_group, ivr, time_condition, none",
            ));
        }
    }
    if let Some(extension_id) = filter.extension_id {
        query = query.filter(points_at(extension_id));
    }
    fetch_page(db, query, numbers::Column::Id, |m| m.id, page).await
}

/// Numbers whose destination is the Extension or its voicemail.
fn points_at(extension_id: Uuid) -> Condition {
    Condition::all()
        .add(numbers::Column::DestinationType.is_in(["extension", "voicemail"]))
        .add(numbers::Column::DestinationId.eq(extension_id))
}

/// Reads one of the Domain's Numbers (`numbers.read`); another Domain's is a 404.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<numbers::Model> {
    scope::enter(db, ctx, domain_id, Permission::NumbersRead).await?;
    find_in_domain(db, domain_id, id).await
}

/// Points one of the Domain's Numbers somewhere, or changes its description
/// (`numbers.write`). An Extension destination must be an Extension of this Domain (422 on
/// `destination.extension_id` otherwise).
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: DestinationPatch,
) -> DomainResult<numbers::Model> {
    let domain = scope::enter(db, ctx, domain_id, Permission::NumbersWrite).await?;
    let mut errors = FieldErrors::new();
    let description = match &patch.description {
        Some(d) => errors.check("description", description_field(d)),
        None => None,
    };
    let destination = match patch.destination {
        Some(Some(d)) => checked_destination(&mut errors, d).map(Some),
        Some(None) => Some(None),
        None => None,
    };
    errors.into_result()?;

    let txn = crate::db::begin_write(db).await?;
    let before = find_in_domain(&txn, domain_id, id).await?;
    let mut row = before.clone();
    if let Some(d) = description {
        row.description = d;
    }
    if let Some(d) = &destination {
        if let Some(d) = d {
            check_extension(&txn, domain_id, d, "destination").await?;
        }
        row.set_destination(d.as_ref());
    }
    row.updated_at = ctx.now;
    let saved = row.into_active_model().reset_all().update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "number.update",
            target_kind: "number",
            target_id: Some(saved.id.to_string()),
            before: audit_view(&before),
            after: audit_view(&saved),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::NumberUpdated,
        saved.id,
        ctx.now,
    )]);
    Ok(saved)
}

/// Every Number of one Domain, by number: what the dialplan compiles.
pub async fn load_for_domain<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<numbers::Model>> {
    Ok(numbers::Entity::find()
        .filter(numbers::Column::DomainId.eq(domain_id))
        .order_by_asc(numbers::Column::Number)
        .all(db)
        .await?)
}

/// The Numbers of the Domain pointing at an Extension (ringing it or its voicemail), for the
/// Extension's delete.
pub(crate) async fn pointing_at<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Vec<numbers::Model>> {
    Ok(numbers::Entity::find()
        .filter(numbers::Column::DomainId.eq(domain_id))
        .filter(points_at(extension_id))
        .order_by_asc(numbers::Column::Number)
        .all(db)
        .await?)
}

/// Clears the destination of `rows` (Numbers of `domain_id`) inside the caller's
/// transaction, auditing each as `number.update` with `reason`. Returns their change events,
/// to publish after commit.
pub(crate) async fn clear_destinations<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain: &domains::Model,
    rows: &[numbers::Model],
    reason: &str,
) -> DomainResult<Vec<ChangeEvent>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    numbers::Entity::update_many()
        .col_expr(
            numbers::Column::DestinationType,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            numbers::Column::DestinationId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            numbers::Column::DestinationValue,
            Expr::value(Option::<String>::None),
        )
        .col_expr(numbers::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(numbers::Column::DomainId.eq(domain.id))
        .filter(numbers::Column::Id.is_in(rows.iter().map(|r| r.id)))
        .exec(txn)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for before in rows {
        let mut after = before.clone();
        after.set_destination(None);
        after.updated_at = ctx.now;
        let mut after_view = audit_view(&after);
        if let Some(map) = after_view.as_mut().and_then(Value::as_object_mut) {
            map.insert("reason".into(), json!(reason));
        }
        audit::record(
            txn,
            ctx,
            audit::Entry {
                domain_id: Some(domain.id),
                action: "number.update",
                target_kind: "number",
                target_id: Some(before.id.to_string()),
                before: audit_view(before),
                after: after_view,
            },
        )
        .await?;
        events.push(ChangeEvent::new(
            domain.id,
            &domain.sip_domain,
            ChangeKind::NumberUpdated,
            before.id,
            ctx.now,
        ));
    }
    Ok(events)
}

/// Returns the Numbers of a Domain being deleted to the stock (no Domain, no destination),
/// inside the deleting transaction, audited at platform level as `number.unassign`. Returns
/// their numbers.
pub(crate) async fn release_domain<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<Vec<String>> {
    let rows = load_for_domain(txn, domain_id).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    numbers::Entity::update_many()
        .col_expr(numbers::Column::DomainId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            numbers::Column::DestinationType,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            numbers::Column::DestinationId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            numbers::Column::DestinationValue,
            Expr::value(Option::<String>::None),
        )
        .col_expr(numbers::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(numbers::Column::DomainId.eq(domain_id))
        .exec(txn)
        .await?;
    let entries: Vec<audit_log::Model> = rows
        .iter()
        .map(|before| {
            let mut after = before.clone();
            after.domain_id = None;
            after.set_destination(None);
            after.updated_at = ctx.now;
            let mut after_view = audit_view(&after);
            if let Some(map) = after_view.as_mut().and_then(Value::as_object_mut) {
                map.insert("reason".into(), json!("domain_deleted"));
            }
            audit::row(
                ctx,
                audit::Entry {
                    domain_id: None,
                    action: "number.unassign",
                    target_kind: "number",
                    target_id: Some(before.id.to_string()),
                    before: audit_view(before),
                    after: after_view,
                },
            )
        })
        .collect();
    insert_audit(txn, entries).await?;
    Ok(rows.into_iter().map(|r| r.number).collect())
}

async fn insert_audit<C: ConnectionTrait>(
    txn: &C,
    entries: Vec<audit_log::Model>,
) -> DomainResult<()> {
    for chunk in entries.chunks(INSERT_CHUNK / 2) {
        audit_log::Entity::insert_many(chunk.iter().cloned().map(audit_log::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bulk import

/// One row of a Number import, as read from JSON or CSV. A row describes the Number
/// completely: an existing Number (matched by number) is set to exactly this.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    /// The number (E.164).
    pub number: Option<String>,
    /// The SIP domain of the Domain to assign it to; empty: the stock.
    pub domain: Option<String>,
    /// Free text; empty: none.
    pub description: Option<String>,
    /// `extension`, `voicemail`, `external`, `hang_up`; empty: points nowhere.
    pub destination_type: Option<String>,
    /// The Extension's number (extension, voicemail), the external number, or the cause.
    pub destination: Option<String>,
}

/// A row with the number it is reported under (JSON: 1-based position; CSV: its line).
#[derive(Debug, Clone)]
pub struct NumberedRow {
    /// The row number.
    pub row: usize,
    /// The row.
    pub value: ImportRow,
}

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportError {
    /// The row it is about.
    pub row: usize,
    /// The field (column).
    pub field: String,
    /// The stable code of the rule that failed.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

impl ImportError {
    /// Attaches a field error to a row.
    pub fn new(row: usize, error: FieldError) -> Self {
        Self {
            row,
            field: error.field,
            code: error.code,
            message: error.message,
        }
    }
}

/// The outcome of an import or a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// True when every row passed.
    pub valid: bool,
    /// True when nothing was to be written.
    pub dry_run: bool,
    /// True when the rows were written.
    pub imported: bool,
    /// Rows in the file.
    pub rows: usize,
    /// Numbers created (or that would be).
    pub created: usize,
    /// Existing Numbers changed (or that would be).
    pub updated: usize,
    /// Existing Numbers already exactly as their row says.
    pub unchanged: usize,
    /// Every problem, ordered by row.
    pub errors: Vec<ImportError>,
}

/// A checked row: the Number as it will be, and as it was.
struct Planned {
    after: numbers::Model,
    before: Option<numbers::Model>,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().map(str::trim).unwrap_or("")
}

/// Imports (or with `dry_run` only checks) Numbers (platform `numbers.manage`), all or
/// nothing. Invalid rows are not an `Err`: the report lists them and nothing is written. A
/// number that a concurrent request added between the checks and the insert is 409
/// `number_taken`, and nothing is written either.
pub async fn import(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    rows: Vec<NumberedRow>,
    unreadable: Vec<ImportError>,
    dry_run: bool,
) -> DomainResult<ImportReport> {
    authorize_platform(&ctx.actor, Permission::NumbersManage)?;
    let row_count = rows.len() + unreadable.len();
    if row_count == 0 {
        return Err(DomainError::invalid(
            "rows",
            "empty",
            "the file has no rows to import",
        ));
    }
    let mut errors = unreadable;

    // Pure rules first, and duplicates within the file.
    struct Parsed {
        row: usize,
        number: String,
        domain: Option<String>,
        description: String,
        kind: Option<String>,
        value: String,
    }
    let mut parsed: Vec<Parsed> = Vec::with_capacity(rows.len());
    let mut first_row: HashMap<String, usize> = HashMap::new();
    for NumberedRow { row, value } in rows {
        let mut fe = FieldErrors::new();
        let number = match text(&value.number) {
            "" => {
                fe.add("number", "required", "every row needs a number");
                None
            }
            n => fe.check("number", number_field(n)),
        };
        let description = fe.check("description", description_field(text(&value.description)));
        let domain = Some(text(&value.domain).to_ascii_lowercase()).filter(|d| !d.is_empty());
        let kind =
            Some(text(&value.destination_type).to_ascii_lowercase()).filter(|k| !k.is_empty());
        let dest_value = text(&value.destination).to_owned();
        match kind.as_deref() {
            None if !dest_value.is_empty() => fe.add(
                "destination_type",
                "required",
                "a destination needs its destination_type",
            ),
            Some(k) if !DESTINATION_KINDS.contains(&k) => fe.add(
                "destination_type",
                "invalid_choice",
                "must be one of: extension, voicemail, external, hang_up, ring_group, ivr, time_condition (or empty)",
            ),
            Some(_) if dest_value.is_empty() => fe.add(
                "destination",
                "required",
                "the Extension's number, the external number, the hang-up cause, or the call flow's name",
            ),
            Some(_) if domain.is_none() => fe.add(
                "destination_type",
                "unassigned",
                "a Number in the stock points nowhere; give it a domain",
            ),
            _ => {}
        }
        if let Some(n) = &number {
            if let Some(first) = first_row.get(n) {
                fe.add(
                    "number",
                    "duplicate_in_file",
                    format!("the number is already on row {first} of this file"),
                );
            } else {
                first_row.insert(n.clone(), row);
            }
        }
        errors.extend(fe.into_vec().into_iter().map(|e| ImportError::new(row, e)));
        if let (Some(number), Some(description)) = (number, description) {
            parsed.push(Parsed {
                row,
                number,
                domain,
                description,
                kind,
                value: dest_value,
            });
        }
    }

    // References: Domains by SIP domain, Extensions by number, existing Numbers.
    let reads = db.begin().await?;
    let wanted_domains: Vec<String> = parsed
        .iter()
        .filter_map(|p| p.domain.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut domain_by_name: HashMap<String, domains::Model> = HashMap::new();
    for chunk in wanted_domains.chunks(LOOKUP_CHUNK) {
        for d in domains::Entity::find()
            .filter(domains::Column::SipDomain.is_in(chunk.iter().cloned()))
            .all(&reads)
            .await?
        {
            domain_by_name.insert(d.sip_domain.clone(), d);
        }
    }
    let mut wanted_extensions: HashMap<Uuid, HashSet<String>> = HashMap::new();
    for p in &parsed {
        if matches!(p.kind.as_deref(), Some("extension" | "voicemail")) {
            if let Some(d) = p.domain.as_ref().and_then(|d| domain_by_name.get(d)) {
                wanted_extensions
                    .entry(d.id)
                    .or_default()
                    .insert(p.value.clone());
            }
        }
    }
    let mut extension_ids: HashMap<(Uuid, String), Uuid> = HashMap::new();
    for (domain_id, numbers_wanted) in &wanted_extensions {
        let list: Vec<String> = numbers_wanted.iter().cloned().collect();
        for chunk in list.chunks(LOOKUP_CHUNK) {
            for e in extensions::Entity::find()
                .filter(extensions::Column::DomainId.eq(*domain_id))
                .filter(extensions::Column::Number.is_in(chunk.iter().cloned()))
                .all(&reads)
                .await?
            {
                extension_ids.insert((*domain_id, e.number), e.id);
            }
        }
    }
    // Call flows by (Domain, kind, lower-case name), for the Domains whose rows name one.
    let mut flow_ids: HashMap<(Uuid, String, String), Uuid> = HashMap::new();
    let flow_domains: HashSet<Uuid> = parsed
        .iter()
        .filter(|p| {
            matches!(
                p.kind.as_deref(),
                Some("ring_group" | "ivr" | "time_condition")
            )
        })
        .filter_map(|p| p.domain.as_ref().and_then(|d| domain_by_name.get(d)))
        .map(|d| d.id)
        .collect();
    for domain_id in flow_domains {
        for f in super::call_flows::load(&reads, domain_id).await? {
            flow_ids.insert((domain_id, f.kind, f.name.to_lowercase()), f.id);
        }
    }
    let all_numbers: Vec<String> = parsed.iter().map(|p| p.number.clone()).collect();
    let mut existing: HashMap<String, numbers::Model> = HashMap::new();
    for chunk in all_numbers.chunks(LOOKUP_CHUNK) {
        for n in numbers::Entity::find()
            .filter(numbers::Column::Number.is_in(chunk.iter().cloned()))
            .all(&reads)
            .await?
        {
            existing.insert(n.number.clone(), n);
        }
    }
    reads.rollback().await?;

    let mut planned: Vec<Planned> = Vec::with_capacity(parsed.len());
    for p in parsed {
        let mut fe = FieldErrors::new();
        let domain = match &p.domain {
            None => None,
            Some(name) => match domain_by_name.get(name) {
                Some(d) => Some(d),
                None => {
                    fe.add(
                        "domain",
                        "not_found",
                        format!("no Domain with SIP domain {name}"),
                    );
                    None
                }
            },
        };
        let destination = match (p.kind.as_deref(), domain) {
            (Some(kind @ ("extension" | "voicemail")), Some(d)) => {
                match extension_ids.get(&(d.id, p.value.clone())) {
                    Some(id) if kind == "extension" => {
                        Some(Destination::Extension { extension_id: *id })
                    }
                    Some(id) => Some(Destination::Voicemail { extension_id: *id }),
                    None => {
                        fe.add(
                            "destination",
                            "not_found",
                            format!("no Extension {} in {}", p.value, d.sip_domain),
                        );
                        None
                    }
                }
            }
            (Some("external"), Some(_)) => fe.check(
                "destination",
                normalise_destination(
                    "destination",
                    Destination::External {
                        number: p.value.clone(),
                    },
                )
                .map_err(|e| FieldError {
                    field: "destination".into(),
                    ..e
                }),
            ),
            (Some(kind @ ("ring_group" | "ivr" | "time_condition")), Some(d)) => {
                match flow_ids.get(&(d.id, kind.to_owned(), p.value.to_lowercase())) {
                    Some(id) => {
                        crate::routing::flows::FlowKind::parse(kind).map(|k| k.destination(*id))
                    }
                    None => {
                        fe.add(
                            "destination",
                            "not_found",
                            format!(
                                "no {} named {:?} in {}",
                                kind.replace('_', " "),
                                p.value,
                                d.sip_domain
                            ),
                        );
                        None
                    }
                }
            }
            (Some("hang_up"), Some(_)) => fe
                .check(
                    "destination",
                    HangUpWith::parse(&p.value.to_ascii_lowercase()),
                )
                .map(|cause| Destination::HangUp { cause }),
            _ => None,
        };
        let errs = fe.into_vec();
        if !errs.is_empty() {
            errors.extend(errs.into_iter().map(|e| ImportError::new(p.row, e)));
            continue;
        }
        let before = existing.get(&p.number).cloned();
        let mut after = match &before {
            Some(b) => b.clone(),
            None => numbers::Model {
                id: Uuid::now_v7(),
                number: p.number.clone(),
                domain_id: None,
                description: String::new(),
                destination_type: None,
                destination_id: None,
                destination_value: None,
                created_at: ctx.now,
                updated_at: ctx.now,
            },
        };
        after.domain_id = domain.map(|d| d.id);
        after.description = p.description;
        after.set_destination(destination.as_ref());
        planned.push(Planned { after, before });
    }

    errors.sort_by(|a, b| (a.row, &a.field).cmp(&(b.row, &b.field)));
    let unchanged = |p: &Planned| {
        p.before.as_ref().is_some_and(|b| {
            b.domain_id == p.after.domain_id
                && b.description == p.after.description
                && b.destination_type == p.after.destination_type
                && b.destination_id == p.after.destination_id
                && b.destination_value == p.after.destination_value
        })
    };
    let mut report = ImportReport {
        valid: errors.is_empty(),
        dry_run,
        imported: false,
        rows: row_count,
        created: planned.iter().filter(|p| p.before.is_none()).count(),
        updated: planned
            .iter()
            .filter(|p| p.before.is_some() && !unchanged(p))
            .count(),
        unchanged: planned.iter().filter(|p| unchanged(p)).count(),
        errors,
    };
    if !report.valid || dry_run {
        return Ok(report);
    }

    let import_id = Uuid::now_v7();
    let changes: Vec<Planned> = planned.into_iter().filter(|p| !unchanged(p)).collect();
    let txn = crate::db::begin_write(db).await?;
    // Hold the Domains against a concurrent delete until this commits (PostgreSQL).
    let touched_domains: HashSet<Uuid> = changes
        .iter()
        .flat_map(|p| {
            [
                p.after.domain_id,
                p.before.as_ref().and_then(|b| b.domain_id),
            ]
        })
        .flatten()
        .collect();
    let touched: Vec<Uuid> = touched_domains.iter().copied().collect();
    let mut domain_rows: HashMap<Uuid, domains::Model> = HashMap::new();
    for chunk in touched.chunks(LOOKUP_CHUNK) {
        for d in domains::Entity::find()
            .filter(domains::Column::Id.is_in(chunk.iter().copied()))
            .lock_shared()
            .all(&txn)
            .await?
        {
            domain_rows.insert(d.id, d);
        }
    }
    if domain_rows.len() != touched.len() {
        return Err(DomainError::conflict(
            "domain_gone",
            "a Domain of the file was deleted meanwhile; nothing was imported, check and retry",
        ));
    }
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for p in &changes {
        let mut after = p.after.clone();
        after.updated_at = ctx.now;
        if p.before.is_none() {
            inserts.push(after);
        } else {
            updates.push(after);
        }
    }
    for chunk in inserts.chunks(INSERT_CHUNK) {
        numbers::Entity::insert_many(chunk.iter().cloned().map(numbers::ActiveModel::from))
            .exec_without_returning(&txn)
            .await?;
    }
    for row in &updates {
        row.clone()
            .into_active_model()
            .reset_all()
            .update(&txn)
            .await?;
    }
    let with_import = |view: Option<Value>| {
        view.map(|mut v| {
            if let Some(map) = v.as_object_mut() {
                map.insert("import_id".into(), json!(import_id));
            }
            v
        })
    };
    let mut entries = Vec::with_capacity(changes.len() + 1);
    for p in &changes {
        let moved = p.before.as_ref().map(|b| b.domain_id) != Some(p.after.domain_id);
        let action = match (&p.before, moved, p.after.domain_id) {
            (None, _, _) => "number.create",
            (Some(_), true, Some(_)) => "number.assign",
            (Some(_), true, None) => "number.unassign",
            (Some(_), false, _) => "number.update",
        };
        entries.push(audit::row(
            ctx,
            audit::Entry {
                domain_id: p.after.domain_id,
                action,
                target_kind: "number",
                target_id: Some(p.after.id.to_string()),
                before: p.before.as_ref().and_then(audit_view),
                after: with_import(audit_view(&p.after)),
            },
        ));
    }
    entries.push(audit::row(
        ctx,
        audit::Entry {
            domain_id: None,
            action: "number.import",
            target_kind: "import",
            target_id: Some(import_id.to_string()),
            before: None,
            after: Some(json!({
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            })),
        },
    ));
    insert_audit(&txn, entries).await?;
    txn.commit().await?;

    // One event per Domain the import touched: its dialplan is recompiled once.
    let mut touched: Vec<&domains::Model> = domain_rows.values().collect();
    touched.sort_by_key(|d| d.id);
    bus.publish(touched.into_iter().map(|d| {
        ChangeEvent::new(
            d.id,
            &d.sip_domain,
            ChangeKind::ImportCompleted,
            import_id,
            ctx.now,
        )
    }));
    report.imported = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stored_in_e164() {
        assert_eq!(
            number_field("+49 30 123-456").ok().as_deref(),
            Some("+4930123456")
        );
        let e = number_field("030123456").err().map(|e| (e.field, e.code));
        assert_eq!(e, Some(("number".to_owned(), "invalid_e164".to_owned())));
    }

    #[test]
    fn an_external_destination_is_checked_and_trimmed() {
        let d = normalise_destination(
            "destination",
            Destination::External {
                number: " +4930999 ".into(),
            },
        );
        assert_eq!(
            d.ok(),
            Some(Destination::External {
                number: "+4930999".into()
            })
        );
        let e = normalise_destination(
            "destination",
            Destination::External {
                number: "sip:x@y".into(),
            },
        )
        .err()
        .map(|e| e.field);
        assert_eq!(e.as_deref(), Some("destination.number"));
    }

    #[test]
    fn moving_a_number_tells_both_domains() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let domain = |id: Uuid, name: &str| domains::Model {
            id,
            name: name.into(),
            sip_domain: name.into(),
            enabled: true,
            timezone: "UTC".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let rows: HashMap<Uuid, domains::Model> =
            [(a, domain(a, "a.example")), (b, domain(b, "b.example"))].into();
        let kinds = |before, after| {
            events_for(Uuid::nil(), before, after, &rows, chrono::Utc::now())
                .into_iter()
                .map(|e| (e.domain_id, e.kind))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(Some(a), Some(b)),
            [
                (a, ChangeKind::NumberDeleted),
                (b, ChangeKind::NumberCreated)
            ]
        );
        assert_eq!(kinds(Some(a), Some(a)), [(a, ChangeKind::NumberUpdated)]);
        assert_eq!(kinds(None, Some(b)), [(b, ChangeKind::NumberCreated)]);
        assert_eq!(kinds(Some(a), None), [(a, ChangeKind::NumberDeleted)]);
        assert!(kinds(None, None).is_empty());
    }

    #[test]
    fn search_ignores_separators() {
        assert_eq!(search_text(" +49 30-1 ").as_deref(), Some("+49301"));
        assert_eq!(search_text("  "), None);
    }
}
