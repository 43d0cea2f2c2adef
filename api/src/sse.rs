//! The live event stream's machinery: a sequenced, bounded history of committed changes and the
//! Server-Sent Events encoder.
//!
//! One background task ([`EventLog::spawn`]) subscribes to the [`EventBus`], gives every event
//! the next sequence number *of its Domain*, keeps the last [`REPLAY_CAPACITY`] of them (across
//! Domains) and re-broadcasts them to the connected streams. Numbering per Domain means a
//! tenant's ids run without gaps: nobody can count another tenant's changes from them. A client
//! resuming with `Last-Event-ID` gets the retained events of its Domain after that id; when the
//! id is older than what is retained (or from before a restart) it gets a `reset` event telling
//! it to reload.
//!
//! The encoder is hand-written: the format is four lines, and the SSE crates for actix either
//! pull in their own channel/runtime layers or do not support replay from our own sequence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_domain::events::{ChangeEvent, EventBus};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

/// How many events are kept for replay, across all Domains.
pub const REPLAY_CAPACITY: usize = 1024;

/// How often an idle stream sends a comment line, so proxies keep it open and dead clients are
/// noticed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// One sequenced item of the history.
#[derive(Debug, Clone)]
pub enum Item {
    /// A committed change with its sequence number in its Domain.
    Event(u64, Arc<ChangeEvent>),
    /// Events were lost (the history fell behind the bus): every client must reload.
    Reset,
}

/// The numbering of one Domain's events.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    /// Every event of the Domain with a number ≥ `floor` is retained (or not assigned yet).
    floor: u64,
    /// The next number to assign.
    next: u64,
}

#[derive(Debug)]
struct History {
    events: VecDeque<(u64, Arc<ChangeEvent>)>,
    /// Where every Domain's numbering starts (start-up time in microseconds).
    first: u64,
    domains: HashMap<Uuid, Sequence>,
}

impl History {
    fn sequence(&self, domain_id: Uuid) -> Sequence {
        self.domains.get(&domain_id).copied().unwrap_or(Sequence {
            floor: self.first,
            next: self.first,
        })
    }
}

/// The sequenced history of committed changes and its live re-broadcast.
#[derive(Debug)]
pub struct EventLog {
    history: Mutex<History>,
    live: broadcast::Sender<Item>,
}

/// What a new stream starts with.
#[derive(Debug)]
pub struct Resume {
    /// Retained events of the Domain after the client's `Last-Event-ID`, oldest first.
    pub missed: Vec<(u64, Arc<ChangeEvent>)>,
    /// True when the client missed more than is retained and must reload.
    pub reset: bool,
    /// The last sequence number assigned in the Domain when the stream started.
    pub last_seq: u64,
    /// Live items (of every Domain) from here on.
    pub live: broadcast::Receiver<Item>,
}

impl EventLog {
    /// An empty log whose Domains' first sequence number is `first` (start-up time in
    /// microseconds, so ids keep growing across restarts and an id from an earlier run is
    /// recognisably old).
    pub fn new(first: u64) -> Self {
        let (live, _) = broadcast::channel(REPLAY_CAPACITY);
        Self {
            history: Mutex::new(History {
                events: VecDeque::with_capacity(REPLAY_CAPACITY),
                first,
                domains: HashMap::new(),
            }),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        // Every critical section leaves the history consistent, even if a holder panicked.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task that feeds the log from `bus`; it ends when the bus is gone.
    pub fn spawn(self: &Arc<Self>, bus: &EventBus) {
        let mut rx = bus.subscribe();
        let log = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        log.append(event);
                    }
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "the event stream fell behind; clients must reload");
                        log.gap();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Appends one event with the next sequence number of its Domain and broadcasts it.
    pub fn append(&self, event: Arc<ChangeEvent>) -> u64 {
        let mut h = self.lock();
        let mut sequence = h.sequence(event.domain_id);
        let seq = sequence.next;
        sequence.next += 1;
        h.domains.insert(event.domain_id, sequence);
        if h.events.len() == REPLAY_CAPACITY
            && let Some((evicted, old)) = h.events.pop_front()
        {
            let mut theirs = h.sequence(old.domain_id);
            theirs.floor = evicted + 1;
            h.domains.insert(old.domain_id, theirs);
        }
        h.events.push_back((seq, Arc::clone(&event)));
        // Sent under the lock so the live order is the sequence order; no receiver is fine.
        let _ = self.live.send(Item::Event(seq, event));
        seq
    }

    /// Records that events were lost: nothing before now can be replayed, in any Domain.
    fn gap(&self) {
        let mut h = self.lock();
        h.events.clear();
        for sequence in h.domains.values_mut() {
            sequence.floor = sequence.next;
        }
        let _ = self.live.send(Item::Reset);
    }

    /// Subscribes and collects what a client of `domain_id` that last saw `last_event_id`
    /// missed.
    pub fn resume(&self, domain_id: Uuid, last_event_id: Option<u64>) -> Resume {
        let h = self.lock();
        // Subscribing under the lock: nothing appended after the snapshot is missed or doubled.
        let live = self.live.subscribe();
        let sequence = h.sequence(domain_id);
        let last_seq = sequence.next.saturating_sub(1);
        let (missed, reset) = match last_event_id {
            None => (Vec::new(), false),
            Some(id) if id >= sequence.next || id.saturating_add(1) < sequence.floor => {
                (Vec::new(), true)
            }
            Some(id) => (
                h.events
                    .iter()
                    .filter(|(seq, e)| e.domain_id == domain_id && *seq > id)
                    .cloned()
                    .collect(),
                false,
            ),
        };
        Resume {
            missed,
            reset,
            last_seq,
            live,
        }
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

    #[test]
    fn a_client_resumes_after_its_last_event_or_is_told_to_reset() {
        let log = EventLog::new(100);
        let d = Uuid::now_v7();
        let ids: Vec<u64> = (0..3).map(|_| log.append(event(d))).collect();
        assert_eq!(ids, [100, 101, 102]);
        let r = log.resume(d, Some(100));
        assert!(!r.reset);
        assert_eq!(
            r.missed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [101, 102]
        );
        assert!(log.resume(d, Some(99)).missed.len() == 3);
        assert!(log.resume(d, Some(98)).reset, "older than retained");
        assert!(log.resume(d, Some(500)).reset, "from another run");
        assert!(log.resume(d, Some(102)).missed.is_empty());
    }

    #[test]
    fn each_domain_numbers_its_own_events_without_gaps() {
        let log = EventLog::new(100);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let ids: Vec<u64> = [a, b, b, a, b, a]
            .into_iter()
            .map(|d| log.append(event(d)))
            .collect();
        assert_eq!(ids, [100, 100, 101, 101, 102, 102]);
        let r = log.resume(a, Some(100));
        assert!(!r.reset);
        assert_eq!(r.last_seq, 102);
        assert_eq!(
            r.missed
                .iter()
                .map(|(s, e)| (*s, e.domain_id))
                .collect::<Vec<_>>(),
            [(101, a), (102, a)]
        );
        let quiet = Uuid::now_v7();
        let r = log.resume(quiet, Some(99));
        assert!(!r.reset && r.missed.is_empty(), "nothing happened there");
        assert!(log.resume(quiet, Some(100)).reset, "an id it never had");
    }

    #[test]
    fn the_history_is_bounded_and_evicted_ids_reset() {
        let log = EventLog::new(1);
        let d = Uuid::now_v7();
        for _ in 0..REPLAY_CAPACITY + 5 {
            log.append(event(d));
        }
        assert!(log.resume(d, Some(3)).reset);
        let r = log.resume(d, Some(5));
        assert!(!r.reset);
        assert_eq!(r.missed.len(), REPLAY_CAPACITY);
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
