//! The live event stream's machinery: a bounded in-memory window of the change log and the
//! Server-Sent Events encoder.
//!
//! Every committed change has an id in its Domain's own numbering, given out by the shared
//! change log ([`switchboard_domain::cluster::journal`]): a tenant's ids run without gaps
//! (nobody can count another tenant's changes from them) and mean the same on every node and
//! across restarts. One background task ([`EventLog::spawn`]) follows the log's sequenced
//! stream (every node's changes, in commit order), keeps the last [`REPLAY_CAPACITY`] of them
//! (across Domains) and re-broadcasts them to the connected streams. A client resuming with
//! `Last-Event-ID`, on whichever node, gets its Domain's events after that id: from memory when
//! they are still there, else from the change log; when the log no longer holds them (or the
//! id was never given out) it gets a `reset` event telling it to reload.
//!
//! The encoder is hand-written: the format is four lines, and the SSE crates for actix either
//! pull in their own channel/runtime layers or do not support replay from our own sequence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use serde::Serialize;
use switchboard_domain::cluster::journal::{self, Journal, Journaled};
use switchboard_domain::events::ChangeEvent;
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

/// How many events are kept in memory for replay, across all Domains.
pub const REPLAY_CAPACITY: usize = 1024;

/// The most events replayed from the change log to one resuming client; further behind, it
/// is told to reload.
pub const REPLAY_FROM_LOG: u64 = 10_000;

/// How often an idle stream sends a comment line, so proxies keep it open and dead clients are
/// noticed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// One sequenced item of the history.
#[derive(Debug, Clone)]
pub enum Item {
    /// A committed change with its id in its Domain.
    Event(u64, Arc<ChangeEvent>),
    /// Events were lost (the history fell behind the log): every client must reload.
    Reset,
}

/// What memory holds of one Domain.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Every event of the Domain with an id ≥ `floor` and ≤ `last` is in memory.
    floor: u64,
    /// The last id delivered here.
    last: u64,
}

#[derive(Debug, Default)]
struct History {
    events: VecDeque<(u64, Arc<ChangeEvent>)>,
    domains: HashMap<Uuid, Window>,
}

/// The in-memory window of the change log and its live re-broadcast.
#[derive(Debug)]
pub struct EventLog {
    history: Mutex<History>,
    live: broadcast::Sender<Item>,
}

/// What a new stream starts with.
#[derive(Debug)]
pub struct Resume {
    /// The Domain's events after the client's `Last-Event-ID`, oldest first.
    pub missed: Vec<(u64, Arc<ChangeEvent>)>,
    /// True when the client missed more than can be replayed and must reload.
    pub reset: bool,
    /// The last id the stream has accounted for: live events up to it are not sent again.
    pub last_seq: u64,
    /// Live items (of every Domain) from here on.
    pub live: broadcast::Receiver<Item>,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    /// An empty window.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(REPLAY_CAPACITY);
        Self {
            history: Mutex::new(History {
                events: VecDeque::with_capacity(REPLAY_CAPACITY),
                domains: HashMap::new(),
            }),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        // Every critical section leaves the history consistent, even if a holder panicked.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task that feeds the window from the change log; it ends with the log.
    pub fn spawn(self: &Arc<Self>, journal: &Journal) {
        let mut rx = journal.subscribe();
        let log = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(row) => log.append(&row),
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "the event stream fell behind; clients must reload");
                        log.gap();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Appends one event of the change log and broadcasts it.
    pub fn append(&self, row: &Journaled) {
        let seq = u64::try_from(row.domain_seq).unwrap_or(0);
        let event = Arc::clone(&row.event);
        let mut h = self.lock();
        let window = h.domains.entry(event.domain_id).or_insert(Window {
            floor: seq,
            last: seq.saturating_sub(1),
        });
        if seq <= window.last {
            // Already here (delivered twice): never broadcast twice.
            return;
        }
        window.last = seq;
        if h.events.len() == REPLAY_CAPACITY
            && let Some((evicted, old)) = h.events.pop_front()
            && let Some(theirs) = h.domains.get_mut(&old.domain_id)
        {
            theirs.floor = evicted + 1;
        }
        h.events.push_back((seq, Arc::clone(&event)));
        // Sent under the lock so the live order is the sequence order; no receiver is fine.
        let _ = self.live.send(Item::Event(seq, event));
    }

    /// Records that events were lost: nothing before now is replayed from memory.
    fn gap(&self) {
        let mut h = self.lock();
        h.events.clear();
        for window in h.domains.values_mut() {
            window.floor = window.last + 1;
        }
        let _ = self.live.send(Item::Reset);
    }

    /// Subscribes and collects what a client of `domain_id` that last saw `last_event_id`
    /// missed: from memory when it holds all of it, else from the change log in `db`.
    pub async fn resume(
        &self,
        db: &DatabaseConnection,
        domain_id: Uuid,
        last_event_id: Option<u64>,
    ) -> Result<Resume, DbErr> {
        let (live, window, in_memory) = {
            let h = self.lock();
            // Subscribing under the lock: nothing appended after the snapshot is missed.
            let live = self.live.subscribe();
            let window = h.domains.get(&domain_id).copied();
            let in_memory: Vec<(u64, Arc<ChangeEvent>)> = match (last_event_id, window) {
                (Some(id), Some(w)) if id.saturating_add(1) >= w.floor && id <= w.last => h
                    .events
                    .iter()
                    .filter(|(seq, e)| e.domain_id == domain_id && *seq > id)
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            (live, window, in_memory)
        };
        let delivered = window.map_or(0, |w| w.last);
        let Some(id) = last_event_id else {
            return Ok(Resume {
                missed: Vec::new(),
                reset: false,
                last_seq: delivered,
                live,
            });
        };
        if let Some(w) = window
            && id.saturating_add(1) >= w.floor
            && id <= w.last
        {
            return Ok(Resume {
                missed: in_memory,
                reset: false,
                last_seq: delivered,
                live,
            });
        }
        // Not (all) in memory: the change log has it, unless it was purged or never given.
        let after = i64::try_from(id).unwrap_or(i64::MAX);
        let last_given = journal::domain_last(db, domain_id).await?;
        if after > last_given {
            return Ok(Resume {
                missed: Vec::new(),
                reset: true,
                last_seq: u64::try_from(last_given).unwrap_or(0).max(delivered),
                live,
            });
        }
        let (rows, complete) = journal::domain_since(db, domain_id, after, REPLAY_FROM_LOG).await?;
        let reset = !complete || rows.len() as u64 >= REPLAY_FROM_LOG;
        if reset {
            return Ok(Resume {
                missed: Vec::new(),
                reset: true,
                last_seq: u64::try_from(last_given).unwrap_or(0).max(delivered),
                live,
            });
        }
        let missed: Vec<(u64, Arc<ChangeEvent>)> = rows
            .into_iter()
            .map(|(seq, e)| (u64::try_from(seq).unwrap_or(0), Arc::new(e)))
            .collect();
        let replayed = missed.last().map_or(id, |(seq, _)| *seq);
        Ok(Resume {
            missed,
            reset: false,
            last_seq: replayed.max(delivered),
            live,
        })
    }
}

/// The outcome of recent re-checks of stream callers, shared by the streams of one principal in
/// one Domain: a user's three tabs (or a wallboard key's ten streams) cost one check per
/// interval, not one each.
#[derive(Debug, Default)]
pub struct StreamChecks {
    recent: Mutex<HashMap<CheckKey, (std::time::Instant, bool)>>,
}

/// Whose check it is: (user or key id, session id or nil, Domain id).
pub type CheckKey = (Uuid, Uuid, Uuid);

impl StreamChecks {
    /// Above this many remembered outcomes, stale ones are dropped on the next insert.
    const MAX_ENTRIES: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CheckKey, (std::time::Instant, bool)>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outcome for `key` if it was checked less than `fresh` ago.
    pub fn recent(&self, key: CheckKey, fresh: Duration) -> Option<bool> {
        self.lock()
            .get(&key)
            .filter(|(at, _)| at.elapsed() < fresh)
            .map(|(_, allowed)| *allowed)
    }

    /// Remembers the outcome of a check made just now.
    pub fn remember(&self, key: CheckKey, allowed: bool, fresh: Duration) {
        let mut recent = self.lock();
        if recent.len() >= Self::MAX_ENTRIES {
            recent.retain(|_, (at, _)| at.elapsed() < fresh);
        }
        recent.insert(key, (std::time::Instant::now(), allowed));
    }
}

/// The `data` of an event on the stream.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamEvent {
    /// The event's id (as in the `id:` line).
    pub id: u64,
    /// What changed, e.g. `extension.created`, `session.started`, `presence.changed`.
    #[schema(example = "presence.changed")]
    pub kind: String,
    /// The Domain.
    pub domain_id: Uuid,
    /// The changed resource (an Extension, Device, Location …).
    pub entity_id: Uuid,
    /// When it was committed.
    pub at: DateTime<Utc>,
    /// What happened, for events that are not a resource to reload: a `call.emergency` has
    /// `dialled`, `caller_id_name`/`caller_id_number` (sent with the call), `caller` (device,
    /// Extension, Location with its `emergency_address`) and `route`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::routes::calls::EmergencyCallDoc>)]
    pub detail: Option<serde_json::Value>,
}

/// One SSE frame for a change: `id`, `event` (the kind) and the JSON `data`.
pub fn frame(seq: u64, event: &ChangeEvent) -> String {
    let data = StreamEvent {
        id: seq,
        kind: event.kind.as_str().to_owned(),
        domain_id: event.domain_id,
        entity_id: event.entity_id,
        at: event.at,
        detail: event.detail.clone(),
    };
    // The payload is plain data with no maps keyed by non-strings: serializing cannot fail,
    // and the JSON holds no newlines.
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
    format!(
        "id: {seq}\nevent: {}\ndata: {json}\n\n",
        event.kind.as_str()
    )
}

/// The frame telling a client to reload everything (it missed more than can be replayed).
pub fn reset_frame(last_seq: u64) -> String {
    format!(
        "id: {last_seq}\nevent: reset\ndata: {{\"reason\":\"missed events are no longer retained; reload\"}}\n\n"
    )
}

/// The last frame of a stream whose rights went away (`revoked`: the session, key, account or
/// permission is gone) or whose credentials expired (`expired`: reconnect with a fresh token or
/// ticket). It carries no `id`, so `Last-Event-ID` still names the last real event.
pub fn end_frame(reason: &str) -> String {
    format!("event: end\ndata: {{\"reason\":\"{reason}\"}}\n\n")
}

/// A heartbeat comment.
pub const HEARTBEAT_FRAME: &str = ": heartbeat\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::events::ChangeKind;

    fn event(domain: Uuid) -> Arc<ChangeEvent> {
        Arc::new(ChangeEvent::new(
            domain,
            "acme.example",
            ChangeKind::ExtensionCreated,
            Uuid::now_v7(),
            Utc::now(),
        ))
    }

    fn row(domain_seq: i64, event: Arc<ChangeEvent>) -> Journaled {
        Journaled {
            seq: domain_seq,
            domain_seq,
            event,
        }
    }

    #[test]
    fn the_window_keeps_each_domain_in_order_once_and_bounded() {
        let log = EventLog::new();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut live = log.live.subscribe();
        for (seq, d) in [(1, a), (1, b), (2, a), (2, a), (3, a)] {
            log.append(&row(seq, event(d)));
        }
        let mut got = Vec::new();
        while let Ok(Item::Event(seq, e)) = live.try_recv() {
            got.push((seq, e.domain_id == a));
        }
        assert_eq!(
            got,
            [(1, true), (1, false), (2, true), (3, true)],
            "a repeat is dropped"
        );
        for seq in 4..(REPLAY_CAPACITY as i64 + 10) {
            log.append(&row(seq, event(a)));
        }
        let h = log.lock();
        assert_eq!(h.events.len(), REPLAY_CAPACITY);
        let w = h.domains.get(&a).copied();
        assert!(w.is_some_and(|w| w.floor > 1 && w.last == REPLAY_CAPACITY as u64 + 9));
        assert!(
            h.domains.get(&b).is_some_and(|w| w.floor == 2),
            "b's only event was evicted"
        );
    }

    #[test]
    fn a_check_is_shared_while_fresh_and_only_then() {
        let checks = StreamChecks::default();
        let key = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(checks.recent(key, Duration::from_secs(60)), None);
        checks.remember(key, false, Duration::from_secs(60));
        assert_eq!(checks.recent(key, Duration::from_secs(60)), Some(false));
        assert_eq!(checks.recent(key, Duration::ZERO), None, "stale");
        let other = (key.0, key.1, Uuid::now_v7());
        assert_eq!(
            checks.recent(other, Duration::from_secs(60)),
            None,
            "per Domain"
        );
    }

    #[test]
    fn frames_follow_the_sse_format() {
        let e = event(Uuid::now_v7());
        let f = frame(7, &e);
        assert!(f.starts_with("id: 7\nevent: extension.created\ndata: {"));
        assert!(f.ends_with("}\n\n"));
        assert_eq!(f.matches('\n').count(), 4);
    }
}
