//! Push: committed changes → FreeSWITCH commands.
//!
//! For every [`ChangeEvent`] (published only after its transaction committed, so a rolled-back
//! change never reaches here):
//! - `xml_flush_cache id <user> <domain>` for each SIP user whose directory answer changed;
//! - `sofia profile <p> flush_inbound_reg <user>@<domain> reboot` for each SIP user whose
//!   registrations must go (the profile is the node's);
//! - the hash mirror `hash insert/switchboard/ext:<number>@<domain>/<sip users>` (who rings)
//!   and `hash insert/switchboard/dev:<sip user>@<domain>/<number>` (the effective Extension),
//!   read in a dialplan as `${hash(select/switchboard/ext:201@acme.example.net)}`. mod_hash
//!   splits its argument on `/` into exactly realm, key and value (`char *argv[4]` in
//!   mod_hash.c), so a key cannot contain `/`: `ext/<domain>/<number>` would store every
//!   Extension under the one key `ext`;
//!   or `hash delete/…` when there is none any more; only entries that changed are written;
//! - `sendevent PRESENCE_IN` for each Extension whose BLF lamp changed: lit while it is logged
//!   in to a hot-desk phone or on Do-Not-Disturb;
//! - `sendevent NOTIFY` with `event-string: check-sync;reboot=false` (mod_sofia sends it to
//!   every registration of the user, without the reboot its `check_sync` command asks Yealink,
//!   Snom and Cisco phones for) for each phone whose identity changed
//!   while its registration stays (hot-desk login, logout to its placeholder, another owner,
//!   label or mode, its Extension renamed), last, and never for one the batch drops.
//!
//! Commands go to every node's [`Queue`], where they are coalesced: one pending command per
//! SIP user and kind, one per hash key, one per lamp (the latest wins). Every command is
//! idempotent, so delivering one twice (a resync after a queued flush) is harmless.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use freeswitch_esl_tokio::EslEvent;
use sea_orm::DatabaseConnection;
use switchboard_domain::DomainResult;
use switchboard_domain::bindings::Bindings;
use switchboard_domain::bindings::identity::calling_identity;
use switchboard_domain::bindings::ring_plan::{RingIndex, ring_plan, ring_plan_indexed};
use switchboard_domain::cluster::journal::Journaled;
use switchboard_domain::events::{ChangeEvent, ChangeKind};
use switchboard_domain::routing::flows::{FlowConfig, OverrideMode};
use switchboard_domain::services::presence::LineStates;
use switchboard_domain::services::registrations;
use switchboard_domain::services::snapshot;
use switchboard_domain::store::call_flows;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

/// The hash realm of the mirror.
pub const HASH_REALM: &str = "switchboard";

/// A BLF lamp of an Extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lamp {
    /// The Extension's number.
    pub number: String,
    /// The SIP domain.
    pub domain: String,
    /// Lit (`answer-state: confirmed`) or dark (`terminated`).
    pub lit: bool,
    /// The status text phones show.
    pub status: String,
    /// `dnd` on Do-Not-Disturb, else `unknown`.
    pub rpid: String,
}

/// One thing FreeSWITCH must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Forget every cached directory entry (`xml_flush_cache` without an argument): the
    /// resync's one command instead of one per SIP user.
    FlushAllCaches,
    /// Forget the cached directory entry of a SIP user.
    FlushCache {
        /// SIP user.
        user: String,
        /// SIP domain.
        domain: String,
    },
    /// Write a key of the hash mirror (`key` is below the realm).
    HashInsert {
        /// Key, e.g. `ext:201@acme.example.net` (never a `/`: mod_hash splits on it).
        key: String,
        /// Value.
        value: String,
    },
    /// Remove a key of the hash mirror.
    HashDelete {
        /// Key.
        key: String,
    },
    /// Drop a SIP user's registrations (the phone is told to re-sync first).
    DropRegistration {
        /// SIP user.
        user: String,
        /// SIP domain.
        domain: String,
    },
    /// Set a BLF lamp.
    Presence(Lamp),
    /// Ask a registered phone to re-read its configuration (its identity changed, its
    /// registration stays).
    CheckSync {
        /// SIP user.
        user: String,
        /// SIP domain.
        domain: String,
    },
    /// Remove a gateway from the profile (changed or deleted): `sofia profile <p> killgw`.
    KillGateway {
        /// Its FreeSWITCH name.
        name: String,
    },
    /// Load the gateways the directory lists and the profile lacks: `sofia profile <p>
    /// rescan` (after any kill, so a changed gateway comes back with its new settings).
    RescanGateways,
    /// Rebuild the ACLs, so the carriers' addresses are let in (`reloadacl`), last.
    ReloadAcl,
}

/// What goes on the wire for a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    /// `api <command>`.
    Api(String),
    /// `sendevent <name>` with headers.
    SendEvent(EslEvent),
}

/// The `sendevent NOTIFY` that asks the phones of `user@domain` to fetch their configuration
/// again without rebooting.
pub fn check_sync_event(profile: &str, user: &str, domain: &str) -> EslEvent {
    let mut e = EslEvent::new();
    e.set_header("Event-Name", "NOTIFY");
    e.set_header("profile", profile.to_owned());
    e.set_header("event-string", CHECK_SYNC.to_owned());
    e.set_header("user", user.to_owned());
    e.set_header("host", domain.to_owned());
    e.set_header(
        "content-type",
        "application/simple-message-summary".to_owned(),
    );
    e
}

/// The Event header of a re-sync NOTIFY.
pub const CHECK_SYNC: &str = "check-sync;reboot=false";

impl Command {
    /// The SIP domain the command is about (`None`: the whole switch).
    pub fn domain(&self) -> Option<&str> {
        match self {
            Self::FlushCache { domain, .. }
            | Self::DropRegistration { domain, .. }
            | Self::CheckSync { domain, .. } => Some(domain),
            Self::Presence(lamp) => Some(&lamp.domain),
            Self::HashInsert { key, .. } | Self::HashDelete { key } => {
                key.rsplit_once('@').map(|(_, d)| d)
            }
            Self::FlushAllCaches
            | Self::KillGateway { .. }
            | Self::RescanGateways
            | Self::ReloadAcl => None,
        }
    }

    /// The coalescing slot: the class (which also orders delivery: flushes first, then the
    /// mirror, then registration drops, then lamps, then re-syncs, so a phone re-reads only
    /// once everything FreeSWITCH holds for it is current) and the key within it.
    pub fn slot(&self) -> (u8, String) {
        match self {
            Self::FlushAllCaches => (0, "*".to_owned()),
            Self::FlushCache { user, domain } => (0, format!("{user}@{domain}")),
            Self::HashInsert { key, .. } | Self::HashDelete { key } => (1, key.clone()),
            Self::DropRegistration { user, domain } => (2, format!("{user}@{domain}")),
            Self::Presence(l) => (3, format!("{}@{}", l.number, l.domain)),
            Self::CheckSync { user, domain } => (4, format!("{user}@{domain}")),
            Self::KillGateway { name } => (5, name.clone()),
            Self::RescanGateways => (6, "*".to_owned()),
            Self::ReloadAcl => (7, "*".to_owned()),
        }
    }

    /// The wire form on a node whose phones register on `profile`.
    pub fn wire(&self, profile: &str) -> Wire {
        match self {
            Self::FlushAllCaches => Wire::Api("xml_flush_cache".to_owned()),
            Self::FlushCache { user, domain } => {
                Wire::Api(format!("xml_flush_cache id {user} {domain}"))
            }
            Self::HashInsert { key, value } => {
                Wire::Api(format!("hash insert/{HASH_REALM}/{key}/{value}"))
            }
            Self::HashDelete { key } => Wire::Api(format!("hash delete/{HASH_REALM}/{key}")),
            Self::DropRegistration { user, domain } => Wire::Api(format!(
                "sofia profile {profile} flush_inbound_reg {user}@{domain} reboot"
            )),
            // mod_sofia's NOTIFY event rather than `sofia profile … check_sync`: the API
            // command picks the Event header from the phone's User-Agent and tells Yealink and
            // Snom phones `check-sync;reboot=true` (Cisco: a restart), so every hot-desk login
            // would reboot the phone. The event reaches every registration of the user, and
            // the phone only fetches its configuration again.
            Self::CheckSync { user, domain } => {
                Wire::SendEvent(check_sync_event(profile, user, domain))
            }
            Self::KillGateway { name } => {
                Wire::Api(format!("sofia profile {profile} killgw {name}"))
            }
            Self::RescanGateways => Wire::Api(format!("sofia profile {profile} rescan")),
            Self::ReloadAcl => Wire::Api("reloadacl".to_owned()),
            Self::Presence(l) => {
                let id = format!("{}@{}", l.number, l.domain);
                let mut e = EslEvent::new();
                e.set_header("Event-Name", "PRESENCE_IN");
                e.set_header("proto", "sip");
                e.set_header("from", id.clone());
                e.set_header("login", id.clone());
                e.set_header("event_type", "presence");
                e.set_header("alt_event_type", "dialog");
                e.set_header("unique-id", format!("switchboard-hotdesk-{id}"));
                e.set_header("status", l.status.clone());
                e.set_header("rpid", l.rpid.clone());
                e.set_header(
                    "answer-state",
                    if l.lit { "confirmed" } else { "terminated" },
                );
                Wire::SendEvent(e)
            }
        }
    }
}

#[derive(Debug)]
struct QueueInner {
    next: u64,
    order: BTreeMap<(u8, u64), Command>,
    index: HashMap<(u8, String), u64>,
    /// False while another switchboard node drives this FreeSWITCH node: commands are dropped
    /// (its driver sends them; a takeover replays what its predecessor did not deliver).
    owned: bool,
    /// The last change (change-log seq) whose commands were all queued.
    queued_upto: i64,
}

impl Default for QueueInner {
    fn default() -> Self {
        Self {
            next: 0,
            order: BTreeMap::new(),
            index: HashMap::new(),
            owned: true,
            queued_upto: 0,
        }
    }
}

/// A node's pending commands, coalesced by slot, kept while its link is down.
#[derive(Debug, Default)]
pub struct Queue {
    inner: Mutex<QueueInner>,
    notify: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a command; a pending one of the same slot is replaced in place.
    pub fn push(&self, command: Command) {
        self.insert(command, true);
        self.notify.notify_one();
    }

    /// Puts back a command that could not be delivered, unless a newer one took its slot.
    pub fn requeue(&self, command: Command) {
        self.insert(command, false);
    }

    fn insert(&self, command: Command, replace: bool) {
        let (class, key) = command.slot();
        let mut q = self.lock();
        if !q.owned {
            return;
        }
        if let Some(seq) = q.index.get(&(class, key.clone())).copied() {
            if replace {
                q.order.insert((class, seq), command);
            }
            return;
        }
        let seq = q.next;
        q.next += 1;
        q.index.insert((class, key), seq);
        q.order.insert((class, seq), command);
    }

    /// Takes the next command to deliver.
    pub fn pop(&self) -> Option<Command> {
        let mut q = self.lock();
        let (slot, command) = q.order.pop_first()?;
        let (_, key) = command.slot();
        q.index.remove(&(slot.0, key));
        Some(command)
    }

    /// How many commands wait.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks every change up to `seq` as queued (the commands of its batch are in).
    pub fn mark(&self, seq: i64) {
        let mut q = self.lock();
        if q.owned && seq > q.queued_upto {
            q.queued_upto = seq;
        }
    }

    /// The last change whose commands were all queued.
    pub fn queued_upto(&self) -> i64 {
        self.lock().queued_upto
    }

    /// This node now drives the FreeSWITCH node: what was queued before is dropped (the
    /// takeover replays everything after `pushed`, the last change its predecessor
    /// delivered) and commands are accepted again.
    pub fn own(&self, pushed: i64) {
        let mut q = self.lock();
        q.order.clear();
        q.index.clear();
        q.owned = true;
        q.queued_upto = pushed;
    }

    /// Another node drives the FreeSWITCH node: nothing is queued here.
    pub fn disown(&self) {
        let mut q = self.lock();
        q.order.clear();
        q.index.clear();
        q.owned = false;
    }

    /// True while commands are accepted.
    pub fn owned(&self) -> bool {
        self.lock().owned
    }

    /// Resolves when a command was queued since the last call.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

/// What FreeSWITCH was last told about one Domain: the hash mirror and the lamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainMirror {
    hash: BTreeMap<String, String>,
    lamps: BTreeMap<String, Lamp>,
}

/// The mirror of every Domain, shared by the pusher and the links' resync.
pub type Mirrors = Arc<Mutex<HashMap<Uuid, DomainMirror>>>;

/// The mirror a Domain's bindings call for.
pub fn mirror_of(b: &Bindings) -> DomainMirror {
    let now = Utc::now();
    let domain = &b.domain.sip_domain;
    let mut m = DomainMirror::default();
    let index = RingIndex::of(b);
    for e in b.extensions.values().filter(|e| e.enabled) {
        let plan = ring_plan_indexed(b, Some(&index), e.id, now);
        let users = plan.sip_users();
        if !users.is_empty() {
            m.hash
                .insert(format!("ext:{}@{domain}", e.number), users.join(","));
        }
        let phones: Vec<&str> = b
            .sessions
            .values()
            .filter(|s| s.extension_id == e.id)
            .filter_map(|s| b.devices.get(&s.device_id))
            .map(|d| d.sip_username.as_str())
            .collect();
        let lamp = if e.dnd {
            Some(("Do not disturb".to_owned(), "dnd"))
        } else if !phones.is_empty() {
            Some((
                format!("Logged in (hot-desk {})", phones.join(", ")),
                "unknown",
            ))
        } else {
            None
        };
        if let Some((status, rpid)) = lamp {
            m.lamps.insert(
                e.number.clone(),
                Lamp {
                    number: e.number.clone(),
                    domain: domain.clone(),
                    lit: true,
                    status,
                    rpid: rpid.to_owned(),
                },
            );
        }
    }
    for d in b.devices.values() {
        if let Some(ext) = calling_identity(b, d.id).and_then(|i| i.effective_extension) {
            m.hash
                .insert(format!("dev:{}@{domain}", d.sip_username), ext.number);
        }
    }
    m
}

/// The prefix of a time condition's override code, and of its BLF key (`*36<code>`).
pub const OVERRIDE_KEY_PREFIX: &str = "*36";

/// Adds the lamps of a Domain's time conditions: `*36<code>` is lit while an override is on.
pub fn add_flow_lamps(m: &mut DomainMirror, flows: &[call_flows::Model], sip_domain: &str) {
    for row in flows {
        let Ok(flow) = switchboard_domain::services::call_flows::view(row) else {
            continue;
        };
        let FlowConfig::TimeCondition(c) = &flow.config else {
            continue;
        };
        let Some(code) = &c.override_code else {
            continue;
        };
        let status = match flow.override_mode {
            OverrideMode::Auto => continue,
            OverrideMode::Open => format!("{}: open (override)", flow.name),
            OverrideMode::Closed => format!("{}: closed (override)", flow.name),
        };
        let number = format!("{OVERRIDE_KEY_PREFIX}{code}");
        m.lamps.insert(
            number.clone(),
            Lamp {
                number,
                domain: sip_domain.to_owned(),
                lit: true,
                status,
                rpid: "unknown".to_owned(),
            },
        );
    }
}

/// Adds the lamps of a Domain's ring groups that have a number: dark while any member is
/// available (a phone of theirs registered, not on Do-Not-Disturb, not in a call), lit when
/// nobody is. Returns whether the Domain has such a lamp (then FreeSWITCH's own call-state
/// changes move it).
pub fn add_group_lamps(
    m: &mut DomainMirror,
    b: &Bindings,
    flows: &[call_flows::Model],
    lines: &LineStates,
) -> bool {
    let (registered, calls) = lines.facts(b.domain.id);
    let now = Utc::now();
    let mut any = false;
    for row in flows {
        let Ok(flow) = switchboard_domain::services::call_flows::view(row) else {
            continue;
        };
        let (FlowConfig::RingGroup(c), Some(number)) = (&flow.config, &flow.number) else {
            continue;
        };
        any = true;
        let members: Vec<Uuid> = c.members.iter().filter_map(|m| m.extension_id).collect();
        let available = members
            .iter()
            .filter(|id| {
                let plan = ring_plan(b, **id, now);
                let users: Vec<String> = plan
                    .sip_users()
                    .iter()
                    .map(|u| u.to_ascii_lowercase())
                    .collect();
                plan.rings()
                    && users.iter().any(|u| registered.contains(u))
                    && !users.iter().any(|u| {
                        calls.get(u)
                            == Some(&switchboard_domain::bindings::presence::LineState::InCall)
                    })
            })
            .count();
        // External members are always reachable as far as a lamp can tell.
        let external = c.members.iter().filter(|m| m.number.is_some()).count();
        if available + external == 0 {
            m.lamps.insert(
                number.clone(),
                Lamp {
                    number: number.clone(),
                    domain: b.domain.sip_domain.clone(),
                    lit: true,
                    status: format!("{}: nobody available", flow.name),
                    rpid: "busy".to_owned(),
                },
            );
        }
    }
    any
}

/// The mirror of a Domain: its bindings' and its call flows' (ring groups' lamps when the line
/// state is known). The second value: whether it has ring-group lamps.
async fn load_mirror(
    db: &DatabaseConnection,
    domain_id: Uuid,
    lines: Option<&LineStates>,
) -> DomainResult<(DomainMirror, bool)> {
    let b = snapshot::load(db, domain_id).await?;
    let mut m = mirror_of(&b);
    let flows = switchboard_domain::services::call_flows::load(db, domain_id).await?;
    add_flow_lamps(&mut m, &flows, &b.domain.sip_domain);
    let groups = lines.is_some_and(|l| add_group_lamps(&mut m, &b, &flows, l));
    Ok((m, groups))
}

/// The commands that take FreeSWITCH from `old` to `new`.
pub fn mirror_diff(old: &DomainMirror, new: &DomainMirror, domain: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for (key, value) in &new.hash {
        if old.hash.get(key) != Some(value) {
            out.push(Command::HashInsert {
                key: key.clone(),
                value: value.clone(),
            });
        }
    }
    for key in old.hash.keys().filter(|k| !new.hash.contains_key(*k)) {
        out.push(Command::HashDelete { key: key.clone() });
    }
    for (number, lamp) in &new.lamps {
        if old.lamps.get(number) != Some(lamp) {
            out.push(Command::Presence(lamp.clone()));
        }
    }
    for number in old.lamps.keys().filter(|n| !new.lamps.contains_key(*n)) {
        out.push(Command::Presence(Lamp {
            number: number.clone(),
            domain: domain.to_owned(),
            lit: false,
            status: "Logged out".to_owned(),
            rpid: "unknown".to_owned(),
        }));
    }
    out
}

/// Everything a node needs after a (re)connect: a cache flush for every SIP user of every
/// Domain, the whole hash mirror and every lit lamp. Refreshes the shared mirror.
pub async fn resync_commands(
    db: &DatabaseConnection,
    mirrors: &Mirrors,
) -> DomainResult<Vec<Command>> {
    let domains = registrations::all_domains(db).await?;
    // One argument-less flush clears every cached user, ours or not; gateways created while
    // the link was down are loaded, and the carriers' addresses let in.
    let mut commands = vec![
        Command::FlushAllCaches,
        Command::RescanGateways,
        Command::ReloadAcl,
    ];
    let mut fresh = HashMap::new();
    for (sip_domain, domain_id) in &domains {
        let m = match load_mirror(db, *domain_id, None).await {
            Ok((m, _)) => m,
            // Deleted meanwhile.
            Err(switchboard_domain::DomainError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        commands.extend(mirror_diff(&DomainMirror::default(), &m, sip_domain));
        fresh.insert(*domain_id, m);
    }
    *mirrors.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
    Ok(commands)
}

/// Turns change events into commands on every node's queue.
pub struct Pusher {
    db: DatabaseConnection,
    nodes: crate::link::Nodes,
    mirrors: Mirrors,
    /// The line state ring-group lamps read (none: no group lamps).
    lines: Option<Arc<LineStates>>,
    /// Domains with ring-group lamps: FreeSWITCH's own call-state changes move them.
    group_domains: Mutex<std::collections::HashSet<Uuid>>,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("nodes", &self.nodes.snapshot().len())
            .finish_non_exhaustive()
    }
}

/// What a batch calls for besides cache flushes.
#[derive(Debug, Default)]
struct Rest {
    /// The Domains whose mirror must be recomputed, with their SIP domain.
    domains: BTreeMap<Uuid, String>,
    /// Registration drops and re-syncs (sent after the mirror).
    drops: Vec<Command>,
}

/// The most events folded into one round.
const MAX_BATCH: usize = 256;

impl Pusher {
    /// A pusher filling the queues of `nodes`.
    pub fn new(db: DatabaseConnection, nodes: crate::link::Nodes, mirrors: Mirrors) -> Self {
        Self {
            db,
            nodes,
            mirrors,
            lines: None,
            group_domains: Mutex::default(),
        }
    }

    /// Ring groups' lamps read this line state.
    pub fn with_lines(mut self, lines: Arc<LineStates>) -> Self {
        self.lines = Some(lines);
        self
    }

    /// Runs until the change log's stream closes: every node's changes, once each, in commit
    /// order; only the queues of FreeSWITCH nodes this node drives take the commands.
    pub async fn run(self, mut rows: broadcast::Receiver<Arc<Journaled>>) {
        loop {
            let first = match rows.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Events were lost: the links' next resync would repair FreeSWITCH, but
                    // until then flush the mirror of every Domain we know.
                    tracing::warn!(lost = n, "the bridge fell behind the change events");
                    self.repair().await;
                    continue;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rows.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let upto = batch.iter().map(|r| r.seq).max().unwrap_or(0);
            let batch: Vec<Arc<ChangeEvent>> = batch.iter().map(|r| Arc::clone(&r.event)).collect();
            // The cache flushes need no database: they leave at once, while the mirror is
            // computed (FreeSWITCH must stop answering from a stale entry first).
            let (flushes, rest) = self.split(&batch);
            if !self.driving() {
                // No FreeSWITCH node is driven from here (none configured, or each by another
                // switchboard node): no queue would take the commands, and the mirror is not
                // worth a read of the Domain per change. A link this node takes over starts
                // with a resync, which rebuilds the mirror from the database after the
                // changes skipped here were committed.
                continue;
            }
            self.enqueue(flushes);
            let mirror = self.mirror_commands(&rest.domains).await;
            self.enqueue(mirror);
            self.enqueue(rest.drops);
            for node in self.nodes.snapshot() {
                node.queue.mark(upto);
            }
        }
    }

    /// Whether this node drives a FreeSWITCH node (holds one's queue).
    fn driving(&self) -> bool {
        self.nodes.snapshot().iter().any(|n| n.queue.owned())
    }

    async fn repair(&self) {
        match resync_commands(&self.db, &self.mirrors).await {
            Ok(commands) => self.enqueue(commands),
            Err(e) => tracing::warn!(error = %e, "rebuilding the FreeSWITCH mirror failed"),
        }
    }

    /// Queues `commands` on every node that serves their Domain.
    fn enqueue(&self, commands: Vec<Command>) {
        let nodes = self.nodes.snapshot();
        for command in commands {
            let domain = command.domain();
            for node in nodes.iter().filter(|n| n.settings.serves(domain)) {
                node.queue.push(command.clone());
            }
        }
    }

    /// The commands of a batch of events, coalesced: flushes, mirror changes, drops, lamps.
    pub async fn commands(&self, batch: &[Arc<ChangeEvent>]) -> Vec<Command> {
        let (mut flush, rest) = self.split(batch);
        flush.extend(self.mirror_commands(&rest.domains).await);
        flush.extend(rest.drops);
        flush
    }

    /// The cache flushes of a batch, and what else it calls for.
    fn split(&self, batch: &[Arc<ChangeEvent>]) -> (Vec<Command>, Rest) {
        split_batch(batch, |domain_id| {
            self.group_domains
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&domain_id)
        })
    }
}

/// What a node taking a FreeSWITCH node over sends for the changes its predecessor did not
/// deliver: the cache flushes, registration drops, re-syncs and gateway commands (the mirror is
/// rewritten whole by the link's resync).
pub fn replay_commands(batch: &[Arc<ChangeEvent>]) -> Vec<Command> {
    let (mut commands, rest) = split_batch(batch, |_| false);
    commands.extend(rest.drops);
    commands
}

/// The cache flushes of a batch, and what else it calls for; `has_groups` says whether a
/// Domain has ring-group lamps.
fn split_batch(
    batch: &[Arc<ChangeEvent>],
    has_groups: impl Fn(Uuid) -> bool,
) -> (Vec<Command>, Rest) {
    {
        let mut flush: Vec<Command> = Vec::new();
        let mut drop: Vec<Command> = Vec::new();
        let mut sync: Vec<Command> = Vec::new();
        let mut domains: BTreeMap<Uuid, String> = BTreeMap::new();
        for e in batch {
            for user in &e.sip_users {
                let c = Command::FlushCache {
                    user: user.clone(),
                    domain: e.sip_domain.clone(),
                };
                if !flush.contains(&c) {
                    flush.push(c);
                }
            }
            for user in &e.drop_registrations {
                let c = Command::DropRegistration {
                    user: user.clone(),
                    domain: e.sip_domain.clone(),
                };
                if !drop.contains(&c) {
                    drop.push(c);
                }
            }
            // A phone whose registration the batch drops anyway is not asked to re-sync.
            for user in &e.check_sync {
                let dropped = batch.iter().any(|other| {
                    other.sip_domain == e.sip_domain && other.drop_registrations.contains(user)
                });
                let c = Command::CheckSync {
                    user: user.clone(),
                    domain: e.sip_domain.clone(),
                };
                if !dropped && !sync.contains(&c) {
                    sync.push(c);
                }
            }
            match e.kind {
                ChangeKind::GatewayCreated
                | ChangeKind::GatewayUpdated
                | ChangeKind::GatewayDeleted => {
                    let name =
                        switchboard_domain::routing::outbound::freeswitch_gateway_name(e.entity_id);
                    let mut add = |c: Command| {
                        if !drop.contains(&c) {
                            drop.push(c);
                        }
                    };
                    if e.kind != ChangeKind::GatewayCreated {
                        add(Command::KillGateway { name });
                    }
                    if e.kind != ChangeKind::GatewayDeleted {
                        add(Command::RescanGateways);
                    }
                    add(Command::ReloadAcl);
                    continue;
                }
                // Nothing FreeSWITCH holds mirrors these.
                ChangeKind::RoutingChanged
                | ChangeKind::CallEmergency
                | ChangeKind::FreeswitchNodeChanged => continue,
                _ => {}
            }
            // A telephone-status flip (from FreeSWITCH itself) changes nothing we mirror, but
            // the lamps of a Domain's ring groups.
            let from_switch = e.kind == ChangeKind::PresenceChanged && e.sip_users.is_empty();
            if !from_switch || has_groups(e.domain_id) {
                domains.insert(e.domain_id, e.sip_domain.clone());
            }
        }
        drop.extend(sync);
        (
            flush,
            Rest {
                domains,
                drops: drop,
            },
        )
    }
}

impl Pusher {
    /// The mirror changes (hash keys, lamps) of the Domains a batch touched.
    async fn mirror_commands(&self, domains: &BTreeMap<Uuid, String>) -> Vec<Command> {
        let mut mirror = Vec::new();
        for (domain_id, sip_domain) in domains {
            mirror.extend(self.domain_commands(*domain_id, sip_domain).await);
        }
        mirror
    }

    async fn domain_commands(&self, domain_id: Uuid, sip_domain: &str) -> Vec<Command> {
        let new = match load_mirror(&self.db, domain_id, self.lines.as_deref()).await {
            Ok((m, groups)) => {
                let mut with = self.group_domains.lock().unwrap_or_else(|e| e.into_inner());
                if groups {
                    with.insert(domain_id);
                } else {
                    with.remove(&domain_id);
                }
                m
            }
            Err(switchboard_domain::DomainError::NotFound(_)) => DomainMirror::default(),
            Err(e) => {
                tracing::warn!(error = %e, "loading bindings for the mirror failed");
                return Vec::new();
            }
        };
        let mut mirrors = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
        let old = mirrors.get(&domain_id).cloned().unwrap_or_default();
        let commands = mirror_diff(&old, &new, sip_domain);
        if new == DomainMirror::default() {
            mirrors.remove(&domain_id);
        } else {
            mirrors.insert(domain_id, new);
        }
        commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush(u: &str) -> Command {
        Command::FlushCache {
            user: u.into(),
            domain: "acme.example.net".into(),
        }
    }

    #[test]
    fn the_queue_coalesces_per_slot_and_delivers_flushes_before_drops() {
        let q = Queue::default();
        q.push(Command::CheckSync {
            user: "d-7f3a".into(),
            domain: "acme.example.net".into(),
        });
        q.push(Command::DropRegistration {
            user: "d-7f3a".into(),
            domain: "acme.example.net".into(),
        });
        q.push(flush("d-7f3a"));
        q.push(flush("201"));
        q.push(flush("d-7f3a"));
        q.push(Command::HashInsert {
            key: "ext:201@acme.example.net".into(),
            value: "a".into(),
        });
        q.push(Command::HashInsert {
            key: "ext:201@acme.example.net".into(),
            value: "b".into(),
        });
        assert_eq!(q.len(), 5);
        let wires: Vec<Wire> = std::iter::from_fn(|| q.pop())
            .map(|c| c.wire("internal"))
            .collect();
        assert_eq!(
            wires,
            [
                Wire::Api("xml_flush_cache id d-7f3a acme.example.net".into()),
                Wire::Api("xml_flush_cache id 201 acme.example.net".into()),
                Wire::Api("hash insert/switchboard/ext:201@acme.example.net/b".into()),
                Wire::Api(
                    "sofia profile internal flush_inbound_reg d-7f3a@acme.example.net reboot"
                        .into()
                ),
                Wire::SendEvent(check_sync_event("internal", "d-7f3a", "acme.example.net")),
            ]
        );
        // A command put back after a failed delivery does not overwrite a newer one.
        q.push(Command::HashInsert {
            key: "k".into(),
            value: "new".into(),
        });
        q.requeue(Command::HashInsert {
            key: "k".into(),
            value: "old".into(),
        });
        assert_eq!(
            q.pop(),
            Some(Command::HashInsert {
                key: "k".into(),
                value: "new".into()
            })
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_lamp_is_sent_as_the_captured_sendevent() {
        let lamp = Command::Presence(Lamp {
            number: "201".into(),
            domain: "acme.example.net".into(),
            lit: true,
            status: "Logged in (hot-desk d-7f3a)".into(),
            rpid: "unknown".into(),
        });
        let Wire::SendEvent(event) = lamp.wire("internal") else {
            panic!("a lamp is a sendevent");
        };
        let captured =
            include_str!("../../tests/fixtures/freeswitch/esl/sendevent-presence_in.request.txt");
        let mut lines = captured.lines();
        assert_eq!(lines.next(), Some("sendevent PRESENCE_IN"));
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(": ").unwrap_or((line, ""));
            assert_eq!(event.header_str(name), Some(value), "{name}");
        }
    }

    #[test]
    fn the_mirror_diff_writes_changes_and_deletes_what_went() {
        let mut old = DomainMirror::default();
        old.hash.insert("ext:201@d".into(), "a".into());
        old.hash.insert("dev:a@d".into(), "201".into());
        old.lamps.insert(
            "201".into(),
            Lamp {
                number: "201".into(),
                domain: "d".into(),
                lit: true,
                status: "Logged in (hot-desk a)".into(),
                rpid: "unknown".into(),
            },
        );
        let mut new = DomainMirror::default();
        new.hash.insert("ext:201@d".into(), "a".into());
        new.hash.insert("ext:202@d".into(), "b".into());
        let diff = mirror_diff(&old, &new, "d");
        assert_eq!(
            diff,
            [
                Command::HashInsert {
                    key: "ext:202@d".into(),
                    value: "b".into()
                },
                Command::HashDelete {
                    key: "dev:a@d".into()
                },
                Command::Presence(Lamp {
                    number: "201".into(),
                    domain: "d".into(),
                    lit: false,
                    status: "Logged out".into(),
                    rpid: "unknown".into(),
                }),
            ]
        );
        assert!(mirror_diff(&new, &new, "d").is_empty());
    }
}
