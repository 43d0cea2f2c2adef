//! Presence: listing every Extension's user and telephone status, setting one's own status,
//! and the ingestion interface for line facts ([`LineStates`]) that FreeSWITCH feeds later.
//!
//! The telephone status is computed by the pure rules in [`crate::bindings::presence`] over the
//! ring plan's SIP users, so presence and "who rings" never disagree.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter,
};
use serde_json::json;
use uuid::Uuid;

use super::{Context, audit, scope, snapshot};
use crate::bindings::Bindings;
use crate::bindings::presence::{
    ExtensionPresence, LineState, LineStates as LineMap, PresenceNote, UserStatus, presence,
    store_user_status, telephone_status,
};
use crate::bindings::ring_plan::{RingIndex, ring_plan_indexed};
use crate::error::{DomainError, DomainResult};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::can_see_domain;
use crate::identity::permissions::Permission;
use crate::store::{domains, extensions, presence_notes};

/// The longest presence message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// What FreeSWITCH said about one Domain's SIP users.
#[derive(Debug, Clone, Default)]
struct DomainLines {
    registered: BTreeSet<String>,
    lines: LineMap,
    /// When each SIP user's last call ended (since this process started).
    idle_since: HashMap<String, chrono::DateTime<Utc>>,
}

/// The live line facts of every Domain, in memory: which SIP users are registered and which
/// have a call. FreeSWITCH's events feed it through [`LineStates::registered`] and
/// [`LineStates::call_state`]; every change that moves an Extension's aggregate telephone status
/// publishes `presence.changed` for that Extension.
pub struct LineStates {
    db: DatabaseConnection,
    bus: EventBus,
    domains: Mutex<HashMap<Uuid, DomainLines>>,
    /// Where the facts this node learns go for the other nodes (see
    /// [`crate::cluster::lines`]).
    fanout: RwLock<Option<LineSink>>,
}

impl std::fmt::Debug for LineStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineStates").finish_non_exhaustive()
    }
}

/// What one SIP user's line looks like now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineFact {
    /// The lower-case SIP user.
    pub user: String,
    /// Registered on some FreeSWITCH node.
    pub registered: bool,
    /// Its call, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<LineState>,
}

/// Line facts of one Domain that moved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineFacts {
    /// The Domain.
    pub domain_id: Uuid,
    /// The SIP users whose facts moved, as they are now.
    pub facts: Vec<LineFact>,
}

/// Receives the line facts that moved on this node.
pub type LineSink = Arc<dyn Fn(LineFacts) + Send + Sync>;

impl LineStates {
    /// An empty registry that loads bindings from `db` and publishes on `bus`.
    pub fn new(db: DatabaseConnection, bus: EventBus) -> Self {
        Self {
            db,
            bus,
            domains: Mutex::new(HashMap::new()),
            fanout: RwLock::new(None),
        }
    }

    /// Hands every line fact that moves on this node to `sink` from now on.
    pub fn set_fanout(&self, sink: LineSink) {
        if let Ok(mut fanout) = self.fanout.write() {
            *fanout = Some(sink);
        }
    }

    /// Marks SIP users of a Domain registered without announcing anything (what the database
    /// held when this process started).
    pub fn seed_registered(&self, domain_id: Uuid, users: impl IntoIterator<Item = String>) {
        let mut all = self.lock();
        let d = all.entry(domain_id).or_default();
        d.registered
            .extend(users.into_iter().map(|u| u.to_ascii_lowercase()));
    }

    /// Applies facts another node learnt from its FreeSWITCH nodes. Nothing is published:
    /// that node announces the presence changes.
    pub fn apply_remote(&self, facts: &LineFacts) {
        let mut all = self.lock();
        let d = all.entry(facts.domain_id).or_default();
        for fact in &facts.facts {
            if fact.registered {
                d.registered.insert(fact.user.clone());
            } else {
                d.registered.remove(&fact.user);
            }
            match fact.state {
                Some(state) if state != LineState::Idle => {
                    d.lines.insert(fact.user.clone(), state);
                }
                _ => {
                    if d.lines.remove(&fact.user).is_some() {
                        d.idle_since.insert(fact.user.clone(), Utc::now());
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, DomainLines>> {
        // A panic while holding the lock cannot leave the maps half-written in a harmful way.
        self.domains.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registered SIP users and line states of a Domain (lower-case SIP users).
    pub fn facts(&self, domain_id: Uuid) -> (BTreeSet<String>, LineMap) {
        let d = self.lock().get(&domain_id).cloned().unwrap_or_default();
        (d.registered, d.lines)
    }

    /// When each SIP user of a Domain last became idle (a user never seen in a call since
    /// the process started is missing): "longest idle" ring groups read it.
    pub fn idle_since(&self, domain_id: Uuid) -> HashMap<String, chrono::DateTime<Utc>> {
        self.lock()
            .get(&domain_id)
            .map(|d| d.idle_since.clone())
            .unwrap_or_default()
    }

    /// A SIP user of a Domain registered (`true`) or its last registration went away.
    pub async fn registered(
        &self,
        domain_id: Uuid,
        sip_user: &str,
        registered: bool,
    ) -> DomainResult<()> {
        let key = sip_user.to_ascii_lowercase();
        self.change(domain_id, &key, |d| {
            if registered {
                d.registered.insert(key.clone());
            } else {
                d.registered.remove(&key);
            }
        })
        .await
    }

    /// A SIP user's call state changed (idle clears it).
    pub async fn call_state(
        &self,
        domain_id: Uuid,
        sip_user: &str,
        state: LineState,
    ) -> DomainResult<()> {
        let key = sip_user.to_ascii_lowercase();
        self.change(domain_id, &key, |d| {
            if state == LineState::Idle {
                if d.lines.remove(&key).is_some() {
                    d.idle_since.insert(key.clone(), Utc::now());
                }
            } else {
                d.lines.insert(key.clone(), state);
            }
        })
        .await
    }

    /// Several facts of one Domain at once (registrations that came or went, call states),
    /// with one snapshot and one `presence.changed` per Extension that moved: what ingestion
    /// uses for a batch of FreeSWITCH events.
    pub async fn apply_many(
        &self,
        domain_id: Uuid,
        registered: &[(String, bool)],
        calls: &[(String, LineState)],
    ) -> DomainResult<()> {
        if registered.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let users: BTreeSet<String> = registered
            .iter()
            .map(|(u, _)| u)
            .chain(calls.iter().map(|(u, _)| u))
            .map(|u| u.to_ascii_lowercase())
            .collect();
        self.change_users(domain_id, &users, |d| {
            for (user, on) in registered {
                let key = user.to_ascii_lowercase();
                if *on {
                    d.registered.insert(key);
                } else {
                    d.registered.remove(&key);
                }
            }
            for (user, state) in calls {
                let key = user.to_ascii_lowercase();
                if *state == LineState::Idle {
                    if d.lines.remove(&key).is_some() {
                        d.idle_since.insert(key, Utc::now());
                    }
                } else {
                    d.lines.insert(key, *state);
                }
            }
        })
        .await
    }

    /// Applies `apply`, then publishes `presence.changed` for every Extension whose plan holds
    /// `sip_user` and whose aggregate telephone status moved.
    async fn change(
        &self,
        domain_id: Uuid,
        sip_user: &str,
        apply: impl FnOnce(&mut DomainLines),
    ) -> DomainResult<()> {
        let users: BTreeSet<String> = [sip_user.to_owned()].into();
        self.change_users(domain_id, &users, apply).await
    }

    /// [`Self::change`] for any number of SIP users of one Domain.
    async fn change_users(
        &self,
        domain_id: Uuid,
        sip_users: &BTreeSet<String>,
        apply: impl FnOnce(&mut DomainLines),
    ) -> DomainResult<()> {
        let (before, after) = {
            let mut all = self.lock();
            let entry = all.entry(domain_id).or_default();
            let before = entry.clone();
            apply(entry);
            (before, entry.clone())
        };
        // Nothing moved (a refreshed registration, a repeated state): no bindings to load.
        if before.registered == after.registered && before.lines == after.lines {
            return Ok(());
        }
        let sink = self.fanout.read().ok().and_then(|f| f.clone());
        if let Some(sink) = sink {
            let facts: Vec<LineFact> = sip_users
                .iter()
                .filter(|u| {
                    before.registered.contains(*u) != after.registered.contains(*u)
                        || before.lines.get(*u) != after.lines.get(*u)
                })
                .map(|u| LineFact {
                    user: u.clone(),
                    registered: after.registered.contains(u),
                    state: after.lines.get(u).copied(),
                })
                .collect();
            if !facts.is_empty() {
                sink(LineFacts { domain_id, facts });
            }
        }
        // Loaded after the lock is released: it is never held across an await.
        let bindings = snapshot::load(&self.db, domain_id).await?;
        let now = Utc::now();
        let events: Vec<ChangeEvent> = changed_extensions(&bindings, &before, &after, sip_users)
            .into_iter()
            .map(|id| {
                ChangeEvent::new(
                    domain_id,
                    &bindings.domain.sip_domain,
                    ChangeKind::PresenceChanged,
                    id,
                    now,
                )
            })
            .collect();
        self.bus.publish(events);
        Ok(())
    }
}

/// The enabled Extensions whose plan holds one of `sip_users` (lower-case) and whose
/// telephone status differs between the two sets of facts.
fn changed_extensions(
    b: &Bindings,
    before: &DomainLines,
    after: &DomainLines,
    sip_users: &BTreeSet<String>,
) -> Vec<Uuid> {
    let now = Utc::now();
    let with = |facts: &DomainLines| {
        let mut b = b.clone();
        b.registered = facts.registered.clone();
        b
    };
    let (b_before, b_after) = (with(before), with(after));
    let index = RingIndex::of(b);
    b.extensions
        .values()
        .filter(|e| e.enabled)
        .filter_map(|e| {
            let plan = ring_plan_indexed(b, Some(&index), e.id, now);
            let holds = plan
                .sip_users()
                .iter()
                .any(|u| sip_users.contains(&u.to_ascii_lowercase()));
            if !holds {
                return None;
            }
            let (old, _) = telephone_status(&b_before, &plan, &before.lines);
            let (new, _) = telephone_status(&b_after, &plan, &after.lines);
            (old != new).then_some(e.id)
        })
        .collect()
}

fn note_of(row: &presence_notes::Model) -> PresenceNote {
    PresenceNote {
        away: row.status == "away",
        message: row.message.clone(),
    }
}

async fn notes<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<HashMap<Uuid, PresenceNote>> {
    Ok(presence_notes::Entity::find()
        .filter(presence_notes::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
        .iter()
        .map(|n| (n.extension_id, note_of(n)))
        .collect())
}

/// The presence of every enabled Extension of a Domain, by number (`presence.read`).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    lines: &LineStates,
) -> DomainResult<Vec<ExtensionPresence>> {
    scope::enter(db, ctx, domain_id, Permission::PresenceRead).await?;
    let mut bindings = snapshot::load(db, domain_id).await?;
    let notes = notes(db, domain_id).await?;
    let (registered, line_map) = lines.facts(domain_id);
    bindings.registered = registered;
    let mut all: Vec<ExtensionPresence> = bindings
        .extensions
        .keys()
        .filter_map(|id| presence(&bindings, *id, &line_map, notes.get(id), ctx.now))
        .collect();
    all.sort_by(|a, b| a.extension.number.cmp(&b.extension.number));
    Ok(all)
}

/// Authorizes watching a Domain's live event stream (`presence.read`); another Domain is a 404.
pub async fn watch(db: &DatabaseConnection, ctx: &Context, domain_id: Uuid) -> DomainResult<()> {
    scope::enter(db, ctx, domain_id, Permission::PresenceRead).await?;
    Ok(())
}

/// Parses a status as the API names it (`available`, `away`, `dnd`) with its message, which
/// is trimmed, empty meaning none, at most [`MAX_MESSAGE_CHARS`] characters.
pub fn parse_status(status: &str, message: Option<&str>) -> DomainResult<UserStatus> {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    if message.is_some_and(|m| m.chars().count() > MAX_MESSAGE_CHARS) {
        return Err(DomainError::invalid(
            "message",
            "too_long",
            format!("at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let message = message.map(str::to_owned);
    match status {
        "available" => Ok(UserStatus::Available { message }),
        "away" => Ok(UserStatus::Away { message }),
        "dnd" => Ok(UserStatus::Dnd { message }),
        _ => Err(DomainError::invalid(
            "status",
            "invalid_value",
            "one of available, away, dnd",
        )),
    }
}

/// Sets the status of the Extension linked to the acting User in `domain_id`: DND switches the
/// Extension's `dnd` flag (anything else clears it), away and the message are stored beside
/// it. Audited; publishes `presence.changed` after commit. No linked Extension (or not a User
/// acting) → 409 `no_extension`.
pub async fn set_my_status(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    status: &UserStatus,
    lines: &LineStates,
) -> DomainResult<ExtensionPresence> {
    let no_extension = || {
        DomainError::conflict(
            "no_extension",
            "no Extension in this Domain is linked to your user",
        )
    };
    // Only a member acts in a Domain: one the caller holds no role in is not found, whether
    // it exists or not (and a user removed from it no longer holds its Extension).
    if !can_see_domain(&ctx.actor, domain_id) {
        return Err(DomainError::NotFound("domain"));
    }
    let user_id = ctx.actor.user_id().ok_or_else(no_extension)?;
    let domain = domains::Entity::find_by_id(domain_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let (dnd, note) = store_user_status(status);

    let txn = crate::db::begin_write(db).await?;
    let ext = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
        .ok_or_else(no_extension)?;
    if !ext.enabled {
        return Err(DomainError::conflict(
            "extension_disabled",
            "your Extension is out of service",
        ));
    }
    let old_note = presence_notes::Entity::find_by_id(ext.id)
        .filter(presence_notes::Column::DomainId.eq(domain_id))
        .one(&txn)
        .await?;
    let before = json!({
        "dnd": ext.dnd,
        "away": old_note.as_ref().is_some_and(|n| n.status == "away"),
        "message": old_note.as_ref().and_then(|n| n.message.clone()),
    });
    let dnd_changed = ext.dnd != dnd;
    if dnd_changed {
        let mut row = ext.clone().into_active_model();
        row.dnd = Set(dnd);
        row.updated_at = Set(ctx.now);
        row.update(&txn).await?;
    }
    let stored = presence_notes::ActiveModel {
        extension_id: Set(ext.id),
        domain_id: Set(domain_id),
        status: Set(if note.away { "away" } else { "available" }.to_owned()),
        message: Set(note.message.clone()),
        updated_at: Set(ctx.now),
    };
    match old_note {
        Some(_) => stored.update(&txn).await?,
        None => stored.insert(&txn).await?,
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "presence.update",
            target_kind: "extension",
            target_id: Some(ext.id.to_string()),
            before: Some(before),
            after: Some(json!({"dnd": dnd, "away": note.away, "message": note.message})),
        },
    )
    .await?;
    txn.commit().await?;

    let mut event = ChangeEvent::new(
        domain_id,
        &domain.sip_domain,
        ChangeKind::PresenceChanged,
        ext.id,
        ctx.now,
    );
    if dnd_changed {
        // DND changes the Extension's dial string: FreeSWITCH must re-read its directory entry.
        event = event.refresh([ext.number.clone()]);
    }
    bus.publish([event]);

    let mut bindings = snapshot::load(db, domain_id).await?;
    let (registered, line_map) = lines.facts(domain_id);
    bindings.registered = registered;
    presence(&bindings, ext.id, &line_map, Some(&note), ctx.now).ok_or_else(|| {
        DomainError::conflict("extension_disabled", "your Extension is out of service")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_with_trimmed_messages() {
        assert_eq!(
            parse_status("away", Some("  back at 2pm ")).ok(),
            Some(UserStatus::Away {
                message: Some("back at 2pm".to_owned())
            })
        );
        assert_eq!(
            parse_status("dnd", Some("   ")).ok(),
            Some(UserStatus::Dnd { message: None })
        );
        assert!(parse_status("busy", None).is_err());
        assert!(parse_status("available", Some(&"x".repeat(MAX_MESSAGE_CHARS + 1))).is_err());
    }
}
