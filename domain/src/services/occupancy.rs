//! Who sits where, for the people who run a Domain (`hotdesk.others`): its active hot-desk
//! sessions and Location sign-ins, listed with filters, and ended in bulk with a reason (a
//! Location at closing time, an Extension everywhere, one phone, or the whole Domain).
//!
//! A bulk ending is one transaction: each session or sign-in still active when it runs is
//! ended and audited with the reason (one that ended meanwhile is skipped, not an error), and
//! the changes go to FreeSWITCH after the commit, as one batch.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::hotdesk::{Deps, end_events, end_row_if_active, left_pairs};
use super::settle::{Left, settle};
use super::{Context, audit, snapshot};
use crate::bindings::Bindings;
use crate::bindings::hotdesk::{EndReason, SessionEnd};
use crate::bindings::snapshot::LocationSignIn;
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind};
use crate::identity::authz::{authorize, can};
use crate::identity::permissions::Permission;
use crate::store::{devices, extensions, hotdesk_sessions, location_sign_ins, locations};

/// The longest reason an ending may carry.
pub const MAX_REASON_CHARS: usize = 200;

/// Filters of the lists: all given must hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Sessions on the phones of this Location; sign-ins to it.
    pub location_id: Option<Uuid>,
    /// Sessions and the sign-in of this Extension.
    pub extension_id: Option<Uuid>,
    /// The session on this phone (sign-ins are never on a phone: none match).
    pub device_id: Option<Uuid>,
    /// Started (signed in) before this moment.
    pub started_before: Option<DateTime<Utc>>,
}

/// An active hot-desk session, with the names an admin reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveSession {
    /// The session's id.
    pub id: Uuid,
    /// The phone.
    pub device_id: Uuid,
    /// Its label.
    pub device_label: String,
    /// The Location the phone is in, if any.
    pub location_id: Option<Uuid>,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// Its number.
    pub extension_number: String,
    /// Its display name.
    pub extension_name: String,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code`, `api` or `admin`.
    pub started_via: String,
    /// Who started it.
    pub started_by: String,
}

/// An Extension signed in to a Location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveSignIn {
    /// The Extension.
    pub extension_id: Uuid,
    /// Its number.
    pub extension_number: String,
    /// Its display name.
    pub extension_name: String,
    /// The Location.
    pub location_id: Uuid,
    /// Its name.
    pub location_name: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Who signed it in.
    pub signed_in_by: String,
}

/// What a bulk ending covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything in the Domain.
    Domain,
    /// The sessions on the Location's phones and the sign-ins to it.
    Location(Uuid),
    /// The Extension's sessions on every phone and its sign-in.
    Extension(Uuid),
    /// The session on one phone.
    Device(Uuid),
}

/// A bulk ending.
#[derive(Debug, Clone)]
pub struct EndRequest {
    /// What it covers; `None` when the caller did not name exactly one scope (422).
    pub scope: Option<Scope>,
    /// Only what started before this moment (e.g. sessions left over from yesterday).
    pub started_before: Option<DateTime<Utc>>,
    /// End hot-desk sessions.
    pub sessions: bool,
    /// End Location sign-ins.
    pub sign_ins: bool,
    /// Why, for the audit log and the people concerned (required).
    pub reason: String,
}

/// What a bulk ending ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// Hot-desk sessions ended (the phones logged out).
    pub sessions: Vec<ActiveSession>,
    /// Location sign-ins ended.
    pub sign_ins: Vec<ActiveSignIn>,
}

fn extension_names(b: &Bindings, id: Uuid) -> (String, String) {
    b.extensions
        .get(&id)
        .map(|e| (e.number.clone(), e.display_name.clone()))
        .unwrap_or_default()
}

fn session_matches(b: &Bindings, f: &Filter, device_id: Uuid, extension_id: Uuid) -> bool {
    f.device_id.is_none_or(|d| d == device_id)
        && f.extension_id.is_none_or(|e| e == extension_id)
        && f.location_id.is_none_or(|l| {
            b.devices
                .get(&device_id)
                .is_some_and(|d| d.location_id == Some(l))
        })
}

/// The Domain's active hot-desk sessions that match, oldest first.
pub async fn sessions(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: Filter,
) -> DomainResult<Vec<ActiveSession>> {
    authorize(&ctx.actor, Permission::HotdeskOthers, domain_id)?;
    let b = snapshot::load(db, domain_id).await?;
    sessions_of(db, &b, filter).await
}

async fn sessions_of(
    db: &DatabaseConnection,
    b: &Bindings,
    filter: Filter,
) -> DomainResult<Vec<ActiveSession>> {
    let domain_id = b.domain.id;
    let mut query = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .order_by_asc(hotdesk_sessions::Column::StartedAt)
        .order_by_asc(hotdesk_sessions::Column::Id);
    if let Some(before) = filter.started_before {
        query = query.filter(hotdesk_sessions::Column::StartedAt.lt(before));
    }
    let rows = query.all(db).await?;
    Ok(rows
        .into_iter()
        .filter(|r| session_matches(b, &filter, r.device_id, r.extension_id))
        .map(|r| {
            let (extension_number, extension_name) = extension_names(b, r.extension_id);
            let device = b.devices.get(&r.device_id);
            ActiveSession {
                id: r.id,
                device_id: r.device_id,
                device_label: device.map(|d| d.label.clone()).unwrap_or_default(),
                location_id: device.and_then(|d| d.location_id),
                extension_id: r.extension_id,
                extension_number,
                extension_name,
                started_at: r.started_at,
                started_via: r.started_via,
                started_by: r.started_by,
            }
        })
        .collect())
}

/// The Domain's Location sign-ins that match, oldest first.
pub async fn sign_ins(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: Filter,
) -> DomainResult<Vec<ActiveSignIn>> {
    authorize(&ctx.actor, Permission::HotdeskOthers, domain_id)?;
    let b = snapshot::load(db, domain_id).await?;
    sign_ins_of(db, &b, filter).await
}

async fn sign_ins_of(
    db: &DatabaseConnection,
    b: &Bindings,
    filter: Filter,
) -> DomainResult<Vec<ActiveSignIn>> {
    let domain_id = b.domain.id;
    if filter.device_id.is_some() {
        return Ok(Vec::new());
    }
    let mut query = location_sign_ins::Entity::find()
        .filter(location_sign_ins::Column::DomainId.eq(domain_id))
        .order_by_asc(location_sign_ins::Column::Since)
        .order_by_asc(location_sign_ins::Column::ExtensionId);
    if let Some(l) = filter.location_id {
        query = query.filter(location_sign_ins::Column::LocationId.eq(l));
    }
    if let Some(e) = filter.extension_id {
        query = query.filter(location_sign_ins::Column::ExtensionId.eq(e));
    }
    if let Some(before) = filter.started_before {
        query = query.filter(location_sign_ins::Column::Since.lt(before));
    }
    let rows = query.all(db).await?;
    Ok(rows.into_iter().map(|r| sign_in_view(b, r)).collect())
}

fn sign_in_view(b: &Bindings, r: location_sign_ins::Model) -> ActiveSignIn {
    let (extension_number, extension_name) = extension_names(b, r.extension_id);
    ActiveSignIn {
        extension_id: r.extension_id,
        extension_number,
        extension_name,
        location_id: r.location_id,
        location_name: b
            .locations
            .get(&r.location_id)
            .map(|l| l.name.clone())
            .unwrap_or_default(),
        since: r.since,
        signed_in_by: r.signed_in_by,
    }
}

fn validate(b: &Bindings, req: &EndRequest) -> DomainResult<String> {
    let mut errors = FieldErrors::new();
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() {
        errors.add("reason", "required", "say why (it is audited)");
    } else if reason.chars().count() > MAX_REASON_CHARS {
        errors.add(
            "reason",
            "too_long",
            format!("at most {MAX_REASON_CHARS} characters"),
        );
    }
    if !req.sessions && !req.sign_ins {
        errors.add(
            "sessions",
            "nothing_to_end",
            "end sessions, sign-ins or both",
        );
    }
    match req.scope {
        None => errors.add(
            "location_id",
            "one_scope",
            "give exactly one of location_id, extension_id, device_id or all: true",
        ),
        Some(Scope::Location(id)) if !b.locations.contains_key(&id) => {
            errors.add("location_id", "unknown", "no such Location in this Domain");
        }
        Some(Scope::Extension(id)) if !b.extensions.contains_key(&id) => {
            errors.add(
                "extension_id",
                "unknown",
                "no such Extension in this Domain",
            );
        }
        Some(Scope::Device(id)) if !b.devices.contains_key(&id) => {
            errors.add("device_id", "unknown", "no such Device in this Domain");
        }
        _ => {}
    }
    errors.into_result()?;
    Ok(reason)
}

fn filter_of(req: &EndRequest) -> Filter {
    let mut f = Filter {
        started_before: req.started_before,
        ..Filter::default()
    };
    match req.scope {
        None | Some(Scope::Domain) => {}
        Some(Scope::Location(id)) => f.location_id = Some(id),
        Some(Scope::Extension(id)) => f.extension_id = Some(id),
        Some(Scope::Device(id)) => f.device_id = Some(id),
    }
    f
}

/// Ends what `req` covers, in one transaction, each ending audited with the reason; the
/// changes reach FreeSWITCH after the commit as one batch. What ended meanwhile is skipped.
pub async fn end(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    req: EndRequest,
) -> DomainResult<Ended> {
    authorize(&ctx.actor, Permission::HotdeskOthers, domain_id)?;
    let b = snapshot::load(deps.db, domain_id).await?;
    let reason = validate(&b, &req)?;
    let filter = filter_of(&req);
    let sessions = if req.sessions {
        sessions_of(deps.db, &b, filter).await?
    } else {
        Vec::new()
    };
    let sign_ins = if req.sign_ins {
        sign_ins_of(deps.db, &b, filter).await?
    } else {
        Vec::new()
    };
    let end_reason = EndReason::ForcedByAdmin {
        note: Some(reason.clone()),
    };
    let txn = crate::db::begin_write(deps.db).await?;
    let mut ended = Ended {
        sessions: Vec::new(),
        sign_ins: Vec::new(),
    };
    let mut ends = Vec::new();
    for s in sessions {
        let Some(session) = b.sessions.get(&s.device_id).cloned() else {
            continue;
        };
        if session.extension_id != s.extension_id {
            continue;
        }
        let end = SessionEnd {
            session,
            reason: end_reason.clone(),
        };
        if end_row_if_active(&txn, ctx, &b, &end).await? {
            ends.push(end);
            ended.sessions.push(s);
        }
    }
    let mut events: Vec<ChangeEvent> = Vec::new();
    let why = format!("signed out by admin: {reason}");
    for s in sign_ins {
        let row = LocationSignIn {
            extension_id: s.extension_id,
            location_id: s.location_id,
            since: s.since,
        };
        if let Some(event) = end_sign_in(&txn, ctx, &b, &row, "forced_by_admin", &why).await? {
            events.push(event);
            ended.sign_ins.push(s);
        }
    }
    // The people an admin ends sessions for are not sent back to their desks; the desks
    // they leave return to their own people.
    let pairs = left_pairs(&ends);
    let leavers: Vec<Uuid> = pairs.iter().map(|(_, e)| *e).collect();
    let settled = settle(
        &txn,
        ctx,
        domain_id,
        Left {
            sessions: &pairs,
            keep_devices: &[],
            barred: &leavers,
        },
    )
    .await?;
    txn.commit().await?;
    let mut batch = end_events(&b, &ends, &BTreeSet::new(), &settled, ctx.now);
    batch.extend(events);
    if !batch.is_empty() {
        deps.bus.publish(batch);
    }
    if !ended.sessions.is_empty() || !ended.sign_ins.is_empty() {
        tracing::info!(
            domain = %domain_id,
            sessions = ended.sessions.len(),
            sign_ins = ended.sign_ins.len(),
            by = %ctx.actor.label,
            "hot-desk sessions and sign-ins ended in bulk"
        );
    }
    Ok(ended)
}

/// The most phones [`find_phones`] answers.
pub const MAX_FOUND: u64 = 20;

/// A hot-desk phone found by what a person reads on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundPhone {
    /// The phone.
    pub device_id: Uuid,
    /// Its Domain.
    pub domain_id: Uuid,
    /// Its label.
    pub label: String,
    /// Its Location, if any.
    pub location_id: Option<Uuid>,
    /// The Location's name.
    pub location_name: Option<String>,
    /// Someone is logged in to it.
    pub in_use: bool,
    /// The one logged in is the caller's own Extension.
    pub mine: bool,
}

/// Finds the hot-desk phone a person stands at, by its label or the SIP user name its screen
/// shows (exactly, ignoring case and surrounding spaces), in the Domains where the caller may
/// hot-desk (`hotdesk.self`). Exact matches only, so that nobody can list every phone.
pub async fn find_phones(
    db: &DatabaseConnection,
    ctx: &Context,
    q: &str,
) -> DomainResult<Vec<FoundPhone>> {
    let actor = &ctx.actor;
    let everywhere = can(actor, Permission::HotdeskSelf, None);
    let domains: Vec<Uuid> = actor
        .domains
        .keys()
        .copied()
        .filter(|d| can(actor, Permission::HotdeskSelf, Some(*d)))
        .collect();
    if !everywhere && domains.is_empty() {
        return Err(DomainError::Forbidden {
            permission: Permission::HotdeskSelf.as_str().to_owned(),
        });
    }
    let q = q.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut errors = FieldErrors::new();
    if q.chars().count() < 2 {
        errors.add("q", "too_short", "at least 2 characters");
    } else if q.chars().count() > 100 {
        errors.add("q", "too_long", "at most 100 characters");
    }
    errors.into_result()?;
    let wanted = q.to_lowercase();
    let mut query = devices::Entity::find()
        .filter(devices::Column::Mode.eq("hotdesk"))
        .filter(devices::Column::Enabled.eq(true))
        .filter(
            Condition::any()
                .add(ExprTrait::eq(
                    Expr::expr(Func::lower(Expr::col(devices::Column::Label))),
                    wanted.clone(),
                ))
                .add(devices::Column::SipUsername.eq(wanted)),
        )
        .order_by_asc(devices::Column::Label)
        .limit(MAX_FOUND);
    if !everywhere {
        query = query.filter(devices::Column::DomainId.is_in(domains));
    }
    let found = query.all(db).await?;
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = found.iter().map(|d| d.id).collect();
    let location_ids: Vec<Uuid> = found.iter().filter_map(|d| d.location_id).collect();
    let (sessions, locations) = tokio::try_join!(
        hotdesk_sessions::Entity::find()
            .filter(hotdesk_sessions::Column::DeviceId.is_in(ids))
            .filter(hotdesk_sessions::Column::EndedAt.is_null())
            .all(db),
        locations::Entity::find()
            .filter(locations::Column::Id.is_in(location_ids))
            .all(db),
    )?;
    let mine: BTreeSet<Uuid> = match actor.user_id() {
        Some(user) if !sessions.is_empty() => extensions::Entity::find()
            .select_only()
            .column(extensions::Column::Id)
            .filter(extensions::Column::UserId.eq(user))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect(),
        _ => BTreeSet::new(),
    };
    Ok(found
        .into_iter()
        .map(|d| {
            let session = sessions.iter().find(|s| s.device_id == d.id);
            FoundPhone {
                device_id: d.id,
                domain_id: d.domain_id,
                label: d.label,
                location_id: d.location_id,
                location_name: d
                    .location_id
                    .and_then(|l| locations.iter().find(|x| x.id == l))
                    .map(|l| l.name.clone()),
                in_use: session.is_some(),
                mine: session.is_some_and(|s| mine.contains(&s.extension_id)),
            }
        })
        .collect())
}

/// Ends one Location sign-in inside `txn` if it is still the same one (same Location, same
/// start), audited `location.sign_out` with `reason` (a code) and `why`; the event to publish
/// after commit, or `None` when it ended or changed meanwhile.
pub(crate) async fn end_sign_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    b: &Bindings,
    s: &LocationSignIn,
    reason: &str,
    why: &str,
) -> DomainResult<Option<ChangeEvent>> {
    let gone = location_sign_ins::Entity::delete_many()
        .filter(location_sign_ins::Column::DomainId.eq(b.domain.id))
        .filter(location_sign_ins::Column::ExtensionId.eq(s.extension_id))
        .filter(location_sign_ins::Column::LocationId.eq(s.location_id))
        .filter(location_sign_ins::Column::Since.eq(s.since))
        .exec(txn)
        .await?;
    if gone.rows_affected == 0 {
        return Ok(None);
    }
    audit::record(
        txn,
        ctx,
        audit::Entry {
            domain_id: Some(b.domain.id),
            action: "location.sign_out",
            target_kind: "extension",
            target_id: Some(s.extension_id.to_string()),
            before: Some(json!({"location_id": s.location_id, "since": s.since})),
            after: Some(json!({
                "signed_out_by": ctx.actor.label,
                "reason": reason,
                "why": why,
            })),
        },
    )
    .await?;
    let (number, _) = extension_names(b, s.extension_id);
    Ok(Some(
        ChangeEvent::new(
            b.domain.id,
            &b.domain.sip_domain,
            ChangeKind::LocationSignedOut,
            s.extension_id,
            ctx.now,
        )
        .refresh([number]),
    ))
}
