//! The call history: CDRs in, calls out.
//!
//! - [`ingest`] stores one leg's CDR once (FreeSWITCH retries, and a spooled CDR may also have
//!   been posted: the leg's id decides) and re-summarises its call (`history::record`) in the
//!   same transaction, under a per-call lock, so legs arriving side by side never lose each
//!   other.
//! - [`list`], [`get`], [`export_batch`], [`list_mine`] read it (`calls.read`, or the person's
//!   own calls), newest first, by a UUIDv7 id that is also the time.
//! - [`purge`] deletes what is older than each Domain's `call_history_days`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use super::{Context, scope};
use crate::db::{begin_write, is_transient, lock_keys};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::history::cdr::LegFacts;
use crate::history::record::{self, CallRecord, Direction, id_bounds, root_hint, summarize};
use crate::identity::authz::visible_domains;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page_desc};
use crate::services::calling_settings::DEFAULT_CALL_HISTORY_DAYS;
use crate::store::{call_legs, calling_settings, calls, domains, extensions, search};

/// What became of a CDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored; the call it belongs to (once its first leg is known).
    Stored {
        /// The history's id of the call, when its first leg has arrived.
        call_id: Option<Uuid>,
    },
    /// This leg was stored before: nothing changed.
    Duplicate,
}

fn key(id: Uuid) -> String {
    format!("cdr:{id}")
}

/// Stores one leg and re-summarises its call. Retries what concurrency makes transient
/// (deadlocks between two legs of one call, a busy SQLite), a few times.
pub async fn ingest(
    db: &DatabaseConnection,
    leg: &LegFacts,
    now: DateTime<Utc>,
) -> DomainResult<Ingested> {
    let mut out = ingest_batch(db, std::slice::from_ref(leg), now).await?;
    out.pop()
        .ok_or_else(|| DomainError::Internal("a CDR batch answered nothing".into()))
}

/// The most legs [`ingest_batch`] takes at once (its statements bind a few values per leg and
/// 29 per call).
pub const MAX_BATCH: usize = 256;

/// Stores several legs in one transaction and re-summarises their calls: one answer per leg,
/// in order (a leg twice in `legs` is stored once, the second answer is `Duplicate`). Group
/// commit for CDRs arriving side by side: the same few statements whatever the number of legs,
/// one commit. Retries what concurrency makes transient a few times; any other error fails
/// the whole batch (nothing of it is stored).
pub async fn ingest_batch(
    db: &DatabaseConnection,
    legs: &[LegFacts],
    now: DateTime<Utc>,
) -> DomainResult<Vec<Ingested>> {
    if legs.len() > MAX_BATCH {
        return Err(DomainError::Internal(format!(
            "{} legs in one batch (at most {MAX_BATCH})",
            legs.len()
        )));
    }
    let mut attempt = 0;
    loop {
        match ingest_once(db, legs, now).await {
            Err(DomainError::Database(e)) if is_transient(&e) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// What one statement sent to PostgreSQL should stay under. sqlx does not set `TCP_NODELAY`:
/// a larger message goes out in two writes, and the second waits for the server's delayed
/// ACK, 40 ms a statement (measured: 64 CDRs in one `INSERT` took 100 ms a batch). SQLite is
/// in-process and does not care, but the same chunks do it no harm.
const STATEMENT_BYTES: usize = 12 * 1024;

/// The bytes of a leg's row besides its facts (ids, times, the statement's text).
const ROW_OVERHEAD_BYTES: usize = 160;

/// Calls per upsert: 29 values each, about 600 bytes, stays under [`STATEMENT_BYTES`].
const CALLS_PER_UPSERT: usize = 16;

async fn insert_legs<C: ConnectionTrait>(
    db: &C,
    rows: Vec<call_legs::ActiveModel>,
) -> DomainResult<()> {
    if !rows.is_empty() {
        call_legs::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// One leg of the batch that was not stored before.
struct NewLeg {
    leg: LegFacts,
    /// The root of its call, as far as this batch and the stored legs say.
    root: Uuid,
}

async fn ingest_once(
    db: &DatabaseConnection,
    legs: &[LegFacts],
    now: DateTime<Utc>,
) -> DomainResult<Vec<Ingested>> {
    if legs.is_empty() {
        return Ok(Vec::new());
    }
    let txn = begin_write(db).await?;
    // Each leg's own key and its hinted root's: a leg and the legs naming it serialise.
    let mut keys: Vec<String> = Vec::with_capacity(legs.len() * 2);
    for leg in legs {
        keys.push(key(leg.uuid));
        keys.push(key(root_hint(leg)));
    }
    lock_keys(&txn, &keys).await?;

    // What is stored already: the batch's legs (duplicates) and their hinted parents.
    let mut wanted: Vec<Uuid> = legs.iter().flat_map(|l| [l.uuid, root_hint(l)]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let stored: HashMap<Uuid, Uuid> = call_legs::Entity::find()
        .select_only()
        .column(call_legs::Column::Id)
        .column(call_legs::Column::CallUuid)
        .filter(call_legs::Column::Id.is_in(wanted))
        .into_tuple::<(Uuid, Uuid)>()
        .all(&txn)
        .await?
        .into_iter()
        .collect();

    // Each new leg's root, in the batch's order: the hinted leg may itself belong to an
    // earlier one (a leg bridged from a forward's loopback), whose call is then ours; legs
    // that arrived before a leg and named it belong to its call.
    let mut new: Vec<NewLeg> = Vec::new();
    let mut answers: Vec<Option<usize>> = Vec::with_capacity(legs.len());
    let mut in_batch: HashMap<Uuid, usize> = HashMap::new();
    let mut extra_locks: Vec<String> = Vec::new();
    for leg in legs {
        if stored.contains_key(&leg.uuid) || in_batch.contains_key(&leg.uuid) {
            answers.push(None);
            continue;
        }
        let hint = root_hint(leg);
        let parent_root = in_batch
            .get(&hint)
            .map(|&i| new[i].root)
            .or_else(|| stored.get(&hint).copied());
        let root = match parent_root {
            Some(r) if hint != leg.uuid && r != hint => {
                extra_locks.push(key(r));
                r
            }
            _ => hint,
        };
        if root != leg.uuid {
            for earlier in new.iter_mut().filter(|n| n.root == leg.uuid) {
                earlier.root = root;
            }
        }
        in_batch.insert(leg.uuid, new.len());
        answers.push(Some(new.len()));
        new.push(NewLeg {
            leg: leg.clone(),
            root,
        });
    }
    if new.is_empty() {
        txn.commit().await?;
        return Ok(answers.iter().map(|_| Ingested::Duplicate).collect());
    }
    lock_keys(&txn, &extra_locks).await?;
    forget_unknown_domains(&txn, &mut new).await?;

    // Several statements when the legs are many: see `STATEMENT_BYTES`.
    let mut rows = Vec::new();
    let mut bytes = 0;
    for n in &new {
        let facts = serde_json::to_string(&n.leg)
            .map_err(|e| DomainError::Internal(format!("serialising a leg: {e}")))?;
        bytes += facts.len() + ROW_OVERHEAD_BYTES;
        rows.push(call_legs::ActiveModel {
            id: Set(n.leg.uuid),
            call_uuid: Set(n.root),
            domain_id: Set(n.leg.domain_id),
            started_at: Set(n.leg.started_at),
            facts: Set(facts),
            received_at: Set(now),
        });
        if bytes >= STATEMENT_BYTES {
            insert_legs(&txn, std::mem::take(&mut rows)).await?;
            bytes = 0;
        }
    }
    insert_legs(&txn, rows).await?;

    // Stored legs that named a new leg as their call, where that leg belongs to another:
    // one statement for the batch (it matches nothing in the usual order, first leg first).
    let moved: Vec<(Uuid, Uuid)> = new
        .iter()
        .filter(|n| n.root != n.leg.uuid)
        .map(|n| (n.leg.uuid, n.root))
        .collect();
    if !moved.is_empty() {
        let mut case = Expr::case(
            call_legs::Column::CallUuid.eq(moved[0].0),
            Expr::value(moved[0].1),
        );
        for (from, to) in &moved[1..] {
            case = case.case(call_legs::Column::CallUuid.eq(*from), Expr::value(*to));
        }
        call_legs::Entity::update_many()
            .col_expr(
                call_legs::Column::CallUuid,
                case.finally(Expr::col(call_legs::Column::CallUuid)).into(),
            )
            .filter(call_legs::Column::CallUuid.is_in(moved.iter().map(|(from, _)| *from)))
            .exec(&txn)
            .await?;
    }

    let mut roots: Vec<Uuid> = new.iter().map(|n| n.root).collect();
    roots.sort_unstable();
    roots.dedup();
    let fresh: HashMap<Uuid, &LegFacts> = new.iter().map(|n| (n.leg.uuid, &n.leg)).collect();
    let summaries = summarize_calls(&txn, &roots, &fresh, now).await?;
    txn.commit().await?;
    Ok(answers
        .into_iter()
        .map(|a| match a {
            None => Ingested::Duplicate,
            Some(i) => Ingested::Stored {
                call_id: summaries.get(&new[i].root).copied(),
            },
        })
        .collect())
}

/// A leg naming a Domain that is no more (deleted while the call went on, or a stray id) is
/// kept without one: it cannot go with a Domain's history that is gone, and refusing it would
/// have FreeSWITCH retry it forever.
async fn forget_unknown_domains<C: ConnectionTrait>(
    db: &C,
    new: &mut [NewLeg],
) -> DomainResult<()> {
    let mut named: Vec<Uuid> = new.iter().filter_map(|n| n.leg.domain_id).collect();
    if named.is_empty() {
        return Ok(());
    }
    named.sort_unstable();
    named.dedup();
    let known: std::collections::HashSet<Uuid> = domains::Entity::find()
        .select_only()
        .column(domains::Column::Id)
        .filter(domains::Column::Id.is_in(named))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    for n in new.iter_mut() {
        if let Some(d) = n.leg.domain_id
            && !known.contains(&d)
        {
            tracing::warn!(leg = %n.leg.uuid, domain = %d, "a CDR names a Domain that does not exist; kept without it");
            n.leg.domain_id = None;
        }
    }
    Ok(())
}

/// Re-summarises the calls of `roots` from their stored legs (`fresh`: the legs this
/// transaction stored, already parsed). Answers each call's id, for the calls whose root leg
/// is known.
async fn summarize_calls<C: ConnectionTrait>(
    db: &C,
    roots: &[Uuid],
    fresh: &HashMap<Uuid, &LegFacts>,
    now: DateTime<Utc>,
) -> DomainResult<HashMap<Uuid, Uuid>> {
    let rows: Vec<(Uuid, Uuid, Option<Uuid>, String)> = call_legs::Entity::find()
        .select_only()
        .column(call_legs::Column::Id)
        .column(call_legs::Column::CallUuid)
        .column(call_legs::Column::DomainId)
        .column(call_legs::Column::Facts)
        .filter(call_legs::Column::CallUuid.is_in(roots.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    let mut by_call: HashMap<Uuid, (Vec<LegFacts>, bool)> = HashMap::new();
    for (id, call_uuid, domain_id, facts) in rows {
        let parsed = match fresh.get(&id) {
            Some(leg) => Some((*leg).clone()),
            None => serde_json::from_str::<LegFacts>(&facts).ok(),
        };
        let entry = by_call.entry(call_uuid).or_default();
        entry.1 |= domain_id.is_none();
        entry.0.extend(parsed);
    }
    let mut ids = HashMap::new();
    let mut records = Vec::new();
    // In the order of `roots` (sorted): two transactions upsert shared calls in one order.
    for &root in roots {
        let Some((legs, domainless)) = by_call.remove(&root) else {
            continue;
        };
        let Some(first) = legs.iter().find(|l| l.uuid == root) else {
            continue;
        };
        let rec = summarize(first, &legs);
        if let Some(domain_id) = rec.domain_id
            && domainless
        {
            // Every leg goes with its Domain (deleting the Domain deletes them).
            call_legs::Entity::update_many()
                .col_expr(call_legs::Column::DomainId, Expr::value(domain_id))
                .filter(call_legs::Column::CallUuid.eq(root))
                .filter(call_legs::Column::DomainId.is_null())
                .exec(db)
                .await?;
        }
        ids.insert(root, rec.id);
        records.push(active(rec, now));
    }
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<calls::ActiveModel> = records.by_ref().take(CALLS_PER_UPSERT).collect();
        calls::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::column(calls::Column::Id)
                    .update_columns(UPDATABLE)
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(ids)
}

const UPDATABLE: [calls::Column; 29] = [
    calls::Column::DomainId,
    calls::Column::Direction,
    calls::Column::CallerNumber,
    calls::Column::CallerName,
    calls::Column::CalleeNumber,
    calls::Column::CalleeName,
    calls::Column::CallerExtensionId,
    calls::Column::CallerExtensionNumber,
    calls::Column::CallerDeviceId,
    calls::Column::CallerLocationId,
    calls::Column::CalleeExtensionId,
    calls::Column::CalleeExtensionNumber,
    calls::Column::CalleeDeviceId,
    calls::Column::CalleeLocationId,
    calls::Column::RouteId,
    calls::Column::GatewayId,
    calls::Column::StartedAt,
    calls::Column::AnsweredAt,
    calls::Column::EndedAt,
    calls::Column::BilledSecs,
    calls::Column::HangupCause,
    calls::Column::RecordingPath,
    calls::Column::RecordingMs,
    calls::Column::Emergency,
    calls::Column::Node,
    calls::Column::Legs,
    calls::Column::UpdatedAt,
    calls::Column::RootUuid,
    calls::Column::Id,
];

fn active(r: CallRecord, now: DateTime<Utc>) -> calls::ActiveModel {
    calls::ActiveModel {
        id: Set(r.id),
        root_uuid: Set(r.root_uuid),
        domain_id: Set(r.domain_id),
        direction: Set(r.direction.as_str().to_owned()),
        caller_number: Set(r.caller_number),
        caller_name: Set(r.caller_name),
        callee_number: Set(r.callee_number),
        callee_name: Set(r.callee_name),
        caller_extension_id: Set(r.caller_extension_id),
        caller_extension_number: Set(r.caller_extension_number),
        caller_device_id: Set(r.caller_device_id),
        caller_location_id: Set(r.caller_location_id),
        callee_extension_id: Set(r.callee_extension_id),
        callee_extension_number: Set(r.callee_extension_number),
        callee_device_id: Set(r.callee_device_id),
        callee_location_id: Set(r.callee_location_id),
        route_id: Set(r.route_id),
        gateway_id: Set(r.gateway_id),
        started_at: Set(r.started_at),
        answered_at: Set(r.answered_at),
        ended_at: Set(r.ended_at),
        billed_secs: Set(r.billed_secs),
        hangup_cause: Set(r.hangup_cause),
        recording_path: Set(r.recording_path),
        recording_ms: Set(r.recording_ms),
        emergency: Set(r.emergency),
        node: Set(r.node),
        legs: Set(i32::try_from(r.legs).unwrap_or(i32::MAX)),
        updated_at: Set(now),
    }
}

/// Filters of the call history.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Calls started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Calls started at or before.
    pub to: Option<DateTime<Utc>>,
    /// Calls made or received by this Extension (the person).
    pub extension_id: Option<Uuid>,
    /// Calls made from or answered on this Device.
    pub device_id: Option<Uuid>,
    /// Calls made from or answered in this Location.
    pub location_id: Option<Uuid>,
    /// `internal`, `inbound` or `outbound`.
    pub direction: Option<String>,
    /// Part of the caller's or the callee's number.
    pub number: Option<String>,
    /// Only answered (or only unanswered) calls.
    pub answered: Option<bool>,
    /// Only emergency calls (or only others).
    pub emergency: Option<bool>,
}

impl CallFilter {
    /// Validates the filter (422 on a bad direction or an empty time range).
    pub fn validate(&self) -> DomainResult<()> {
        let mut errors = FieldErrors::new();
        if let Some(d) = &self.direction
            && Direction::parse(d).is_none()
        {
            errors.add(
                "direction",
                "invalid_choice",
                "must be one of: internal, inbound, outbound",
            );
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            errors.add("from", "invalid_range", "from must not be after to");
        }
        if self
            .number
            .as_deref()
            .is_some_and(|n| n.chars().count() > 64)
        {
            errors.add("number", "too_long", "at most 64 characters");
        }
        errors.into_result()
    }

    fn apply(&self, mut q: Select<calls::Entity>) -> Select<calls::Entity> {
        if self.from.is_some() || self.to.is_some() {
            let (low, high) = id_bounds(
                self.from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                self.to
                    .unwrap_or_else(|| Utc::now() + Duration::days(36_500)),
            );
            q = q.filter(calls::Column::Id.between(low, high));
        }
        let either = |a: calls::Column, b: calls::Column, v: Uuid| {
            Condition::any().add(a.eq(v)).add(b.eq(v))
        };
        if let Some(v) = self.extension_id {
            q = q.filter(either(
                calls::Column::CallerExtensionId,
                calls::Column::CalleeExtensionId,
                v,
            ));
        }
        if let Some(v) = self.device_id {
            q = q.filter(either(
                calls::Column::CallerDeviceId,
                calls::Column::CalleeDeviceId,
                v,
            ));
        }
        if let Some(v) = self.location_id {
            q = q.filter(either(
                calls::Column::CallerLocationId,
                calls::Column::CalleeLocationId,
                v,
            ));
        }
        if let Some(d) = &self.direction {
            q = q.filter(calls::Column::Direction.eq(d.as_str()));
        }
        if let Some(n) = self
            .number
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            q = q.filter(
                Condition::any()
                    .add(calls::Column::CallerNumber.like(search::contains(n)))
                    .add(calls::Column::CalleeNumber.like(search::contains(n)))
                    .add(calls::Column::CallerExtensionNumber.eq(n))
                    .add(calls::Column::CalleeExtensionNumber.eq(n)),
            );
        }
        match self.answered {
            Some(true) => q = q.filter(calls::Column::AnsweredAt.is_not_null()),
            Some(false) => q = q.filter(calls::Column::AnsweredAt.is_null()),
            None => {}
        }
        if let Some(e) = self.emergency {
            q = q.filter(calls::Column::Emergency.eq(e));
        }
        q
    }
}

/// One page of the Domain's calls, newest first (`calls.read`).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &CallFilter,
    page: &PageRequest,
) -> DomainResult<Page<calls::Model>> {
    scope::enter(db, ctx, domain_id, Permission::CallsRead).await?;
    filter.validate()?;
    let q = filter.apply(calls::Entity::find().filter(calls::Column::DomainId.eq(domain_id)));
    fetch_page_desc(db, q, calls::Column::Id, |m| m.id, page).await
}

/// Authorises an export of the Domain's calls (`calls.read`) and validates its filter; the
/// rows then come in batches from [`export_batch`].
pub async fn authorize_export(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &CallFilter,
) -> DomainResult<()> {
    scope::enter(db, ctx, domain_id, Permission::CallsRead).await?;
    filter.validate()
}

/// The next `limit` calls of an export, newest first, below `before` (no authorization:
/// [`authorize_export`] came first).
pub async fn export_batch(
    db: &DatabaseConnection,
    domain_id: Uuid,
    filter: &CallFilter,
    before: Option<Uuid>,
    limit: u64,
) -> DomainResult<Vec<calls::Model>> {
    let mut q = filter.apply(calls::Entity::find().filter(calls::Column::DomainId.eq(domain_id)));
    if let Some(b) = before {
        q = q.filter(calls::Column::Id.lt(b));
    }
    Ok(q.order_by_desc(calls::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// One call of the Domain with its legs (`calls.read`); another Domain's is a 404.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<(calls::Model, Vec<LegFacts>)> {
    scope::enter(db, ctx, domain_id, Permission::CallsRead).await?;
    let call = calls::Entity::find_by_id(id)
        .filter(calls::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("call"))?;
    let legs = legs_of(db, &call).await?;
    Ok((call, legs))
}

async fn legs_of(db: &DatabaseConnection, call: &calls::Model) -> DomainResult<Vec<LegFacts>> {
    let rows = call_legs::Entity::find()
        .filter(call_legs::Column::CallUuid.eq(call.root_uuid))
        .order_by_asc(call_legs::Column::StartedAt)
        .order_by_asc(call_legs::Column::Id)
        .all(db)
        .await?;
    let mut legs: Vec<LegFacts> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.facts).ok())
        .collect();
    // The call's first leg first (a bridged leg can carry the very same start time), then by
    // start.
    legs.sort_by_key(|l| (l.uuid != call.root_uuid, l.started_at, l.uuid));
    Ok(legs)
}

/// The Extensions of the acting User, in every Domain it belongs to.
async fn my_extensions(db: &DatabaseConnection, ctx: &Context) -> DomainResult<Vec<Uuid>> {
    // An API key or the system has no calls of its own.
    let Some(user_id) = ctx.actor.user_id() else {
        return Ok(Vec::new());
    };
    let mut q = extensions::Entity::find()
        .select_only()
        .column(extensions::Column::Id)
        .filter(extensions::Column::UserId.eq(user_id));
    if let Some(visible) = visible_domains(&ctx.actor) {
        q = q.filter(extensions::Column::DomainId.is_in(visible));
    }
    Ok(q.into_tuple().all(db).await?)
}

fn mine(ids: &[Uuid]) -> Condition {
    Condition::any()
        .add(calls::Column::CallerExtensionId.is_in(ids.to_vec()))
        .add(calls::Column::CalleeExtensionId.is_in(ids.to_vec()))
}

/// One page of the calls the acting User's Extensions made or received, newest first.
pub async fn list_mine(
    db: &DatabaseConnection,
    ctx: &Context,
    filter: &CallFilter,
    page: &PageRequest,
) -> DomainResult<Page<calls::Model>> {
    filter.validate()?;
    let ids = my_extensions(db, ctx).await?;
    if ids.is_empty() {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    }
    let q = filter.apply(calls::Entity::find().filter(mine(&ids)));
    fetch_page_desc(db, q, calls::Column::Id, |m| m.id, page).await
}

/// One of the acting User's calls with its legs; anyone else's is a 404.
pub async fn get_mine(
    db: &DatabaseConnection,
    ctx: &Context,
    id: Uuid,
) -> DomainResult<(calls::Model, Vec<LegFacts>)> {
    let ids = my_extensions(db, ctx).await?;
    if ids.is_empty() {
        return Err(DomainError::NotFound("call"));
    }
    let call = calls::Entity::find_by_id(id)
        .filter(mine(&ids))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("call"))?;
    let legs = legs_of(db, &call).await?;
    Ok((call, legs))
}

/// Deletes the calls (and legs) older than each Domain's `call_history_days` at `now`, and
/// calls that never named a Domain after the default period. Returns how many calls went.
pub async fn purge(db: &DatabaseConnection, now: DateTime<Utc>) -> DomainResult<u64> {
    let domain_ids: Vec<Uuid> = domains::Entity::find()
        .select_only()
        .column(domains::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let kept: std::collections::HashMap<Uuid, i32> = calling_settings::Entity::find()
        .select_only()
        .column(calling_settings::Column::DomainId)
        .column(calling_settings::Column::CallHistoryDays)
        .into_tuple::<(Uuid, i32)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut purged = 0;
    for domain_id in domain_ids {
        let days = kept
            .get(&domain_id)
            .copied()
            .unwrap_or(DEFAULT_CALL_HISTORY_DAYS);
        purged += purge_before(db, Some(domain_id), now - Duration::days(i64::from(days))).await?;
    }
    purged += purge_before(
        db,
        None,
        now - Duration::days(i64::from(DEFAULT_CALL_HISTORY_DAYS)),
    )
    .await?;
    Ok(purged)
}

async fn purge_before(
    db: &DatabaseConnection,
    domain_id: Option<Uuid>,
    cutoff: DateTime<Utc>,
) -> DomainResult<u64> {
    let (bound, _) = id_bounds(cutoff, cutoff);
    let calls_of = match domain_id {
        Some(d) => calls::Column::DomainId.eq(d),
        None => calls::Column::DomainId.is_null(),
    };
    let legs_of = match domain_id {
        Some(d) => call_legs::Column::DomainId.eq(d),
        None => call_legs::Column::DomainId.is_null(),
    };
    let gone = calls::Entity::delete_many()
        .filter(calls_of)
        .filter(calls::Column::Id.lt(bound))
        .exec(db)
        .await?
        .rows_affected;
    call_legs::Entity::delete_many()
        .filter(legs_of)
        .filter(call_legs::Column::StartedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(gone)
}

/// Runs [`purge`] every `interval`, forever; failures are logged and retried next time.
pub async fn purge_forever(db: DatabaseConnection, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match purge(&db, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(calls = n, "call history purged"),
            Err(e) => tracing::warn!(error = %e, "call history purge failed"),
        }
    }
}

/// The id of the call whose first leg is `root`, as the history computes it (for tests and
/// tools that know a leg's FreeSWITCH id).
pub fn call_id_of(root: &LegFacts) -> Uuid {
    record::call_id(root)
}
