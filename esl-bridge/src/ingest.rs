//! Ingestion: FreeSWITCH events → the registration table and per-device call state, both
//! feeding presence ([`LineStates`]).
//!
//! - `sofia::register` / `sofia::unregister` / `sofia::expire` become [`Change`]s of the
//!   registration table, applied in batches (one transaction for whatever arrived meanwhile).
//!   `sofia::expire` has no `from-user`/`from-host` (it names `user`/`host`), and its `expires`
//!   is an absolute epoch: it only ever removes a row, so the value is not needed.
//! - Channel events (`CHANNEL_CREATE`, `CHANNEL_ANSWER`, `CHANNEL_HANGUP_COMPLETE`, and the
//!   channel-driven `PRESENCE_IN`) move the call state of the device the channel runs on:
//!   ringing, in a call, idle. A device's state is the busiest of its channels. `PRESENCE_IN`
//!   without a channel (registration notices, our own `sendevent`) carries nothing new.
//! - Events of a realm that is not one of our Domains, or of a SIP user the Domain does not
//!   know, are counted (`switchboard_freeswitch_events_ignored_total`) and ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use freeswitch_esl_tokio::EslEvent;
use sea_orm::DatabaseConnection;
use switchboard_domain::bindings::presence::LineState;
use switchboard_domain::events::{ChangeEvent, ChangeKind};
use switchboard_domain::services::presence::LineStates;
use switchboard_domain::services::registrations::{self, Change, DomainUsers, Reported};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::frames::LeanEvent;
use crate::metrics::BridgeMetrics;
use crate::push::Command;

/// How long a realm that is none of ours is remembered as such (a Domain may be created).
const UNKNOWN_DOMAIN_TTL: Duration = Duration::from_secs(30);
/// The most events applied in one batch.
const MAX_BATCH: usize = 2048;
/// How often expired registrations are swept, unless configured.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// What a link hands to ingestion.
#[derive(Debug)]
pub enum Inbound {
    /// An event from a node.
    Event {
        /// The node's name.
        node: Arc<str>,
        /// The event (only the headers read here; see [`crate::frames`]).
        event: LeanEvent,
    },
    /// The node's full registration list (`sofia xmlstatus profile <p> reg`) after a (re)connect;
    /// the node's channels are forgotten (their calls are reported again as they change).
    Registrations {
        /// The node's name.
        node: Arc<str>,
        /// The rows.
        rows: Vec<ShownRegistration>,
    },
    /// The node's link went down: its calls are unknown until it is back, so its channels
    /// are forgotten and their phones no longer show ringing or in a call (a FreeSWITCH that
    /// died took its calls with it; one that lives on reports them again after the resync).
    /// Registrations stay: they outlive a link, and the resync corrects them.
    LinkLost {
        /// The node's name.
        node: Arc<str>,
    },
}

/// One registration the profile holds, from `sofia xmlstatus profile <p> reg`. (`show
/// registrations` reads the core database, which still lists phones `flush_inbound_reg`
/// removed and forgets every phone when FreeSWITCH restarts; the profile's own list is the
/// truth.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRegistration {
    /// The sofia profile.
    pub profile: String,
    /// The SIP user.
    pub reg_user: String,
    /// The realm (our SIP domain).
    pub realm: String,
    /// The Call-ID.
    pub call_id: String,
    /// The Contact, as `sofia::register` reports it.
    pub contact: String,
    /// The User-Agent.
    pub user_agent: Option<String>,
    /// Seconds until it lapses.
    pub expires_secs: i64,
    /// Source address.
    pub network_ip: String,
    /// Source port.
    pub network_port: i32,
}

/// Parses the body of `sofia xmlstatus profile <profile> reg`.
pub fn parse_profile_registrations(
    profile: &str,
    body: &str,
) -> Result<Vec<ShownRegistration>, String> {
    let doc = roxmltree::Document::parse(body.trim()).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for reg in doc.descendants().filter(|n| n.has_tag_name("registration")) {
        let text = |tag: &str| {
            reg.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        // `user` is user@host as stored; the realm is what the phone authenticated in.
        let stored = text("user");
        let (stored_user, stored_host) = stored.split_once('@').unwrap_or((&stored, ""));
        let reg_user = Some(text("sip-auth-user"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| stored_user.to_owned());
        let realm = Some(text("sip-auth-realm"))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| stored_host.to_owned());
        if !stored_host.is_empty() && !stored_host.eq_ignore_ascii_case(&realm) {
            // Stored under another Domain than it authenticated in: never ours to list (the
            // event that made it had it dropped).
            continue;
        }
        // status: "Registered(UDP)(unknown) exp(2026-12-02 16:11:52) expsecs(358)"
        let status = text("status");
        let expires_secs = status
            .split("expsecs(")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(3600);
        let agent = text("agent");
        rows.push(ShownRegistration {
            profile: profile.to_owned(),
            reg_user,
            realm,
            call_id: text("call-id"),
            contact: text("contact"),
            user_agent: Some(agent).filter(|a| !a.is_empty()),
            expires_secs,
            network_ip: text("network-ip"),
            network_port: text("network-port").parse().unwrap_or(0),
        });
    }
    Ok(rows)
}

/// The phase of a channel, as far as presence cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Ringing or early media (or an outgoing call being set up).
    Ringing,
    /// Answered.
    Answered,
    /// Gone.
    Ended,
}

/// An event, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// `sofia::register`.
    Register {
        /// Profile.
        profile: String,
        /// SIP user.
        user: String,
        /// Realm.
        domain: String,
        /// Call-ID.
        call_id: String,
        /// Contact.
        contact: String,
        /// Source address.
        network_ip: String,
        /// Source port.
        network_port: i32,
        /// User-Agent.
        user_agent: Option<String>,
        /// Seconds until it lapses.
        expires_secs: i64,
    },
    /// `sofia::unregister` or `sofia::expire`.
    Unregister {
        /// SIP user.
        user: String,
        /// Realm.
        domain: String,
        /// Call-ID, if given.
        call_id: Option<String>,
        /// The Contact that went away, if given.
        contact: Option<String>,
    },
    /// A channel event of a device.
    Channel {
        /// The channel's Unique-ID.
        uuid: String,
        /// SIP user of the device.
        user: String,
        /// Realm.
        domain: String,
        /// The contact FreeSWITCH called (`user@host:port`) for a call to the phone, which
        /// names the phone even when its contact user is not its SIP user.
        contact: Option<String>,
        /// What happened.
        phase: Phase,
    },
    /// A `sofia::register` whose realm (where FreeSWITCH checked the password) is not the
    /// domain it stored the registration under (the REGISTER's To): a credential of one Domain
    /// registered as a user of another. Never stored; the registration is dropped.
    CrossDomainRegister {
        /// The SIP user.
        user: String,
        /// The domain FreeSWITCH stored the registration under (the REGISTER's To).
        stored_under: String,
        /// The realm the phone authenticated in.
        realm: String,
    },
    /// `sofia::gateway_state`: a gateway's registration state or ping status changed.
    GatewayState {
        /// The gateway's FreeSWITCH name.
        gateway: String,
        /// Its registration state.
        state: String,
        /// Its ping status, if pinged.
        ping_status: Option<String>,
        /// The carrier's last answer.
        status: Option<String>,
    },
    /// `vm::maintenance` with `VM-Action: leave-message`: mod_voicemail stored a new message.
    VoicemailLeft(switchboard_domain::services::voicemail::LeftMessage),
    /// Nothing to do (heartbeats, job results, presence without a channel).
    Ignore,
}

/// Why an event could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} lacks {missing}")]
pub struct Unusable {
    /// The event's name.
    pub event: String,
    /// The header that is missing.
    pub missing: &'static str,
}

/// An event's headers by name: the lean events of the event connection, and the crate's
/// [`EslEvent`] (the JSON captures in the tests), read by the same code.
pub trait Headers {
    /// The decoded value of a header.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for EslEvent {
    fn header(&self, name: &str) -> Option<&str> {
        self.header_str(name)
    }
}

/// The name metrics use: the subclass for `CUSTOM`, else the event name.
pub fn event_label<E: Headers + ?Sized>(event: &E) -> &str {
    let name = event.header("Event-Name").unwrap_or("UNKNOWN");
    if name == "CUSTOM" {
        if let Some(sub) = event.header("Event-Subclass") {
            return sub;
        }
    }
    name
}

fn first<'a, E: Headers + ?Sized>(event: &'a E, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .filter_map(|n| event.header(n))
        .map(str::trim)
        .find(|v| !v.is_empty() && *v != "_undef_")
}

fn need<'a, E: Headers + ?Sized>(
    event: &'a E,
    names: &[&str],
    name: &str,
    missing: &'static str,
) -> Result<&'a str, Unusable> {
    first(event, names).ok_or_else(|| Unusable {
        event: name.to_owned(),
        missing,
    })
}

/// The part of `user@host` before the `@` and after it.
fn split_at_sign(s: &str) -> Option<(&str, &str)> {
    let (u, h) = s.split_once('@')?;
    (!u.is_empty() && !h.is_empty()).then_some((u, h))
}

/// Reads an event; `Ignore` for everything presence and registrations do not need.
pub fn parse<E: Headers + ?Sized>(event: &E) -> Result<FsEvent, Unusable> {
    let name = event.header("Event-Name").unwrap_or_default();
    match name {
        "CUSTOM" => parse_custom(event),
        "CHANNEL_CREATE" | "CHANNEL_ANSWER" | "CHANNEL_HANGUP_COMPLETE" | "PRESENCE_IN" => {
            parse_channel(event, name)
        }
        _ => Ok(FsEvent::Ignore),
    }
}

fn parse_custom<E: Headers + ?Sized>(event: &E) -> Result<FsEvent, Unusable> {
    let sub = event.header("Event-Subclass").unwrap_or_default();
    match sub {
        "sofia::gateway_state" => {
            let gateway = need(event, &["Gateway", "gateway"], sub, "Gateway")?;
            let state = first(event, &["State", "state"]).unwrap_or("UNKNOWN");
            let status = match (first(event, &["Status"]), first(event, &["Phrase"])) {
                (Some(code), Some(phrase)) => Some(format!("{code} {phrase}")),
                (Some(code), None) => Some(code.to_owned()),
                _ => None,
            };
            Ok(FsEvent::GatewayState {
                gateway: gateway.to_owned(),
                state: state.to_owned(),
                ping_status: first(event, &["Ping-Status"]).map(str::to_owned),
                status,
            })
        }
        "sofia::register" => {
            let user = need(event, &["from-user", "username"], sub, "from-user")?;
            let domain = need(event, &["from-host", "realm", "to-host"], sub, "from-host")?;
            let call_id = need(event, &["call-id"], sub, "call-id")?;
            // sofia names the registration's own domain (the REGISTER's To, where it is stored
            // and where calls find it) `from-host`, and the From's domain `to-host`.
            if let Some(realm) = first(event, &["realm"]) {
                if !realm.eq_ignore_ascii_case(domain) {
                    return Ok(FsEvent::CrossDomainRegister {
                        user: user.to_owned(),
                        stored_under: domain.to_owned(),
                        realm: realm.to_owned(),
                    });
                }
            }
            Ok(FsEvent::Register {
                profile: first(event, &["profile-name"])
                    .unwrap_or("internal")
                    .to_owned(),
                user: user.to_owned(),
                domain: domain.to_owned(),
                call_id: call_id.to_owned(),
                contact: first(event, &["contact"]).unwrap_or_default().to_owned(),
                network_ip: first(event, &["network-ip"]).unwrap_or_default().to_owned(),
                network_port: first(event, &["network-port"])
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                user_agent: first(event, &["user-agent"]).map(str::to_owned),
                expires_secs: first(event, &["expires"])
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(3600),
            })
        }
        "sofia::unregister" => Ok(FsEvent::Unregister {
            user: need(event, &["from-user", "username"], sub, "from-user")?.to_owned(),
            domain: need(event, &["from-host", "realm"], sub, "from-host")?.to_owned(),
            call_id: first(event, &["call-id"]).map(str::to_owned),
            contact: first(event, &["contact"]).map(str::to_owned),
        }),
        // No from-user/from-host here; `expires` is an absolute epoch and not needed.
        "sofia::expire" => Ok(FsEvent::Unregister {
            user: need(event, &["user", "username"], sub, "user")?.to_owned(),
            domain: need(event, &["host", "realm"], sub, "host")?.to_owned(),
            call_id: first(event, &["call-id"]).map(str::to_owned),
            contact: first(event, &["contact"]).map(str::to_owned),
        }),
        "vm::maintenance" if first(event, &["VM-Action"]) == Some("leave-message") => {
            let left_at = first(event, &["VM-Timestamp"])
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                .unwrap_or_else(Utc::now);
            Ok(FsEvent::VoicemailLeft(
                switchboard_domain::services::voicemail::LeftMessage {
                    sip_domain: need(event, &["VM-Domain"], sub, "VM-Domain")?.to_owned(),
                    mailbox: need(event, &["VM-User"], sub, "VM-User")?.to_owned(),
                    message_id: need(event, &["VM-UUID"], sub, "VM-UUID")?.to_owned(),
                    caller_name: first(event, &["VM-Caller-ID-Name"])
                        .unwrap_or_default()
                        .to_owned(),
                    caller_number: first(event, &["VM-Caller-ID-Number"])
                        .unwrap_or_default()
                        .to_owned(),
                    duration_secs: first(event, &["VM-Message-Len"])
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0),
                    audio_path: need(event, &["VM-File-Path"], sub, "VM-File-Path")?.to_owned(),
                    left_at,
                },
            ))
        }
        _ => Ok(FsEvent::Ignore),
    }
}

fn parse_channel<E: Headers + ?Sized>(event: &E, name: &str) -> Result<FsEvent, Unusable> {
    // PRESENCE_IN without a channel: a registration notice or someone's sendevent.
    let Some(uuid) = first(event, &["Unique-ID"]) else {
        if name == "PRESENCE_IN" {
            return Ok(FsEvent::Ignore);
        }
        return Err(Unusable {
            event: name.to_owned(),
            missing: "Unique-ID",
        });
    };
    let channel_name = first(event, &["Channel-Name"]).unwrap_or_default();
    // Only SIP endpoints are devices (loopback and the like are not).
    let Some(endpoint) = channel_name.strip_prefix("sofia/") else {
        return Ok(FsEvent::Ignore);
    };
    let endpoint = endpoint.split_once('/').map(|(_, e)| e).unwrap_or_default();
    let inbound = first(event, &["Call-Direction"]) == Some("inbound");
    let (user, domain) = if inbound {
        (
            first(
                event,
                &[
                    "variable_user_name",
                    "variable_sip_auth_username",
                    "Caller-Username",
                    "variable_sip_from_user",
                ],
            ),
            first(event, &["variable_domain_name", "variable_sip_from_host"]),
        )
    } else {
        (
            split_at_sign(endpoint)
                .map(|(u, _)| u)
                .or_else(|| first(event, &["Caller-Destination-Number"])),
            first(
                event,
                &[
                    "variable_dialed_domain",
                    "variable_sip_invite_domain",
                    "variable_domain_name",
                ],
            ),
        )
    };
    let domain = domain.or_else(|| {
        first(event, &["Channel-Presence-ID"])
            .and_then(split_at_sign)
            .map(|(_, h)| h)
    });
    let (Some(user), Some(domain)) = (user, domain) else {
        return Ok(FsEvent::Ignore);
    };
    let answer_state = first(event, &["Answer-State"]).unwrap_or_default();
    let phase = match (name, answer_state) {
        ("CHANNEL_HANGUP_COMPLETE", _) | (_, "hangup") => Phase::Ended,
        ("CHANNEL_ANSWER", _) | (_, "answered") => Phase::Answered,
        // An outgoing call being set up keeps the phone as busy as ringing does.
        _ => Phase::Ringing,
    };
    Ok(FsEvent::Channel {
        uuid: uuid.to_owned(),
        user: user.to_owned(),
        domain: domain.to_owned(),
        contact: (!inbound && split_at_sign(endpoint).is_some())
            .then(|| endpoint.to_ascii_lowercase()),
        phase,
    })
}

/// `user@host:port` of a Contact header (`"" <sip:d-7f3a@127.0.0.1:5072;transport=UDP>`),
/// lower-case: how FreeSWITCH names the channel when it calls that contact.
fn contact_key(contact: &str) -> Option<String> {
    let start = contact
        .find("sip:")
        .map(|i| i + 4)
        .or_else(|| contact.find("sips:").map(|i| i + 5))?;
    let rest = &contact[start..];
    let end = rest.find([';', '>', '?']).unwrap_or(rest.len());
    let uri = &rest[..end];
    split_at_sign(uri).map(|_| uri.to_ascii_lowercase())
}

/// A cached realm: ours (with its users), or not ours as of some instant.
#[derive(Debug, Clone)]
enum Realm {
    Ours(Arc<DomainUsers>),
    NotOurs(Instant),
}

/// A channel's device and phase.
#[derive(Debug, Clone)]
struct Channel {
    domain_id: Uuid,
    user: String,
    phase: Phase,
}

/// The ingestion state: the realm cache, the live channels and the last line state reported.
pub struct Ingest {
    db: DatabaseConnection,
    lines: Arc<LineStates>,
    metrics: BridgeMetrics,
    realms: HashMap<String, Realm>,
    channels: HashMap<(Arc<str>, String), Channel>,
    reported: HashMap<(Uuid, String), LineState>,
    /// Registered contacts (`user@host:port`, lower-case) → the phone's Domain and SIP user.
    contacts: HashMap<String, (Uuid, String)>,
    sweep_interval: Duration,
    /// Each node's command queue, for registrations ingestion must drop.
    /// The gateways' state.
    gateways: Arc<crate::gateways::GatewayStates>,
    /// The nodes, for what ingestion asks of mod_voicemail (a full box letting messages go).
    nodes: Option<crate::link::Nodes>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("realms", &self.realms.len())
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// Empty state over `db`, feeding `lines`.
    pub fn new(db: DatabaseConnection, lines: Arc<LineStates>, metrics: BridgeMetrics) -> Self {
        Self {
            db,
            lines,
            metrics,
            realms: HashMap::new(),
            channels: HashMap::new(),
            reported: HashMap::new(),
            contacts: HashMap::new(),
            sweep_interval: SWEEP_INTERVAL,
            gateways: Arc::default(),
            nodes: None,
        }
    }

    /// The nodes, for what ingestion asks of mod_voicemail.
    #[must_use]
    pub fn with_nodes(mut self, nodes: crate::link::Nodes) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// Where gateway states are recorded.
    #[must_use]
    pub fn with_gateway_states(mut self, states: Arc<crate::gateways::GatewayStates>) -> Self {
        self.gateways = states;
        self
    }

    /// Sweeps expired registrations every `interval` (default 30 s).
    #[must_use]
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Runs until the inbound channel closes: batches events, sweeps expired registrations,
    /// and forgets cached Domains when they change.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut changes: broadcast::Receiver<Arc<ChangeEvent>>,
    ) {
        let mut listening = true;
        let mut sweep = tokio::time::interval(self.sweep_interval);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                first = inbound.recv() => {
                    let Some(first) = first else { return };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match inbound.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    self.process(batch, Utc::now()).await;
                }
                change = changes.recv(), if listening => match change {
                    Ok(change) => self.forget(&change),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.realms.clear(),
                    // The bus is gone (shutting down): cached realms then only expire.
                    Err(broadcast::error::RecvError::Closed) => listening = false,
                },
                _ = sweep.tick() => {
                    // Each FreeSWITCH node's registrations are swept by the switchboard node
                    // driving it: once, and with one presence announcement.
                    let driven = self.nodes.as_ref().map(crate::link::Nodes::driven_here);
                    if let Err(e) = registrations::sweep(&self.db, &self.lines, driven.as_deref(), Utc::now()).await {
                        tracing::warn!(error = %e, "sweeping expired registrations failed");
                    }
                }
            }
        }
    }

    /// Forgets what a change may have made stale (users of its Domain, or every realm when a
    /// Domain itself changed).
    fn forget(&mut self, change: &ChangeEvent) {
        match change.kind {
            ChangeKind::PresenceChanged
            | ChangeKind::SessionStarted
            | ChangeKind::SessionEnded
            | ChangeKind::LocationSignedIn
            | ChangeKind::LocationSignedOut => {}
            ChangeKind::DomainUpdated | ChangeKind::DomainDeleted => self.realms.clear(),
            _ => {
                self.realms.remove(&change.sip_domain.to_ascii_lowercase());
            }
        }
    }

    async fn realm(&mut self, domain: &str) -> Option<Arc<DomainUsers>> {
        let key = domain.to_ascii_lowercase();
        match self.realms.get(&key) {
            Some(Realm::Ours(users)) => return Some(users.clone()),
            Some(Realm::NotOurs(at)) if at.elapsed() < UNKNOWN_DOMAIN_TTL => return None,
            _ => {}
        }
        match registrations::domain_users(&self.db, &key).await {
            Ok(Some(users)) => {
                let users = Arc::new(users);
                self.realms.insert(key, Realm::Ours(users.clone()));
                Some(users)
            }
            Ok(None) => {
                self.realms.insert(key, Realm::NotOurs(Instant::now()));
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "loading a Domain's SIP users failed");
                None
            }
        }
    }

    /// The Domain of `user@domain` if both are ours; counts the event as ignored otherwise.
    async fn known(&mut self, user: &str, domain: &str) -> Option<Uuid> {
        let Some(realm) = self.realm(domain).await else {
            self.metrics.ignored("unknown_domain");
            return None;
        };
        if realm.users.contains(&user.to_ascii_lowercase()) {
            Some(realm.domain_id)
        } else {
            self.metrics.ignored("unknown_user");
            None
        }
    }

    /// Applies a batch: registrations in one transaction, then call states.
    pub async fn process(&mut self, batch: Vec<Inbound>, now: DateTime<Utc>) {
        let mut changes = Vec::new();
        let mut touched_lines: Vec<(Uuid, String)> = Vec::new();
        // Counted once the batch is applied, so the metric means "processed".
        let mut received: HashMap<(Arc<str>, String), u64> = HashMap::new();
        for item in batch {
            match item {
                Inbound::Event { node, event } => {
                    *received
                        .entry((node.clone(), event_label(&event).to_owned()))
                        .or_default() += 1;
                    match parse(&event) {
                        Ok(parsed) => {
                            self.take(node, parsed, now, &mut changes, &mut touched_lines)
                                .await
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "an event could not be used");
                            self.metrics.ignored("unusable");
                        }
                    }
                }
                Inbound::Registrations { node, rows } => {
                    // Whatever the batch said before about this node is superseded.
                    self.flush_changes(&mut changes, now).await;
                    self.replace(&node, rows, now).await;
                    self.forget_channels(&node, &mut touched_lines);
                }
                Inbound::LinkLost { node } => {
                    self.gateways.forget_node(&node);
                    self.forget_channels(&node, &mut touched_lines);
                }
            }
        }
        self.flush_changes(&mut changes, now).await;
        self.report_lines(touched_lines).await;
        for ((node, label), n) in received {
            self.metrics
                .events_received
                .with_label_values(&[node.as_ref(), label.as_str()])
                .inc_by(n);
        }
    }

    /// Forgets every channel of `node`; their phones' lines are reported again.
    fn forget_channels(&mut self, node: &Arc<str>, touched_lines: &mut Vec<(Uuid, String)>) {
        let stale: Vec<(Arc<str>, String)> = self
            .channels
            .keys()
            .filter(|(n, _)| n == node)
            .cloned()
            .collect();
        for key in stale {
            if let Some(c) = self.channels.remove(&key) {
                touched_lines.push((c.domain_id, c.user));
            }
        }
    }

    async fn flush_changes(&mut self, changes: &mut Vec<Change>, now: DateTime<Utc>) {
        if changes.is_empty() {
            return;
        }
        let batch = std::mem::take(changes);
        if let Err(e) = registrations::apply(&self.db, &self.lines, batch, now).await {
            tracing::warn!(error = %e, "storing registrations failed");
        }
    }

    async fn take(
        &mut self,
        node: Arc<str>,
        event: FsEvent,
        now: DateTime<Utc>,
        changes: &mut Vec<Change>,
        touched_lines: &mut Vec<(Uuid, String)>,
    ) {
        match event {
            FsEvent::Register {
                profile,
                user,
                domain,
                call_id,
                contact,
                network_ip,
                network_port,
                user_agent,
                expires_secs,
            } => {
                let Some(domain_id) = self.known(&user, &domain).await else {
                    return;
                };
                // `expires: 0` on a register would be an unregister; treat it as one.
                if expires_secs <= 0 {
                    changes.push(Change::Gone {
                        node: node.to_string(),
                        domain_id,
                        sip_user: user,
                        call_id: Some(call_id),
                        contact: Some(contact),
                    });
                    return;
                }
                if let Some(key) = contact_key(&contact) {
                    self.contacts
                        .insert(key, (domain_id, user.to_ascii_lowercase()));
                }
                changes.push(Change::Registered(Reported {
                    node: node.to_string(),
                    profile,
                    domain_id,
                    sip_user: user,
                    call_id,
                    contact,
                    network_ip,
                    network_port,
                    user_agent,
                    expires_at: now + chrono::Duration::seconds(expires_secs),
                }));
            }
            FsEvent::Unregister {
                user,
                domain,
                call_id,
                contact,
            } => {
                if let Some(key) = contact.as_deref().and_then(contact_key) {
                    self.contacts.remove(&key);
                }
                let contact = contact.filter(|c| !c.is_empty());
                let Some(domain_id) = self.known(&user, &domain).await else {
                    return;
                };
                changes.push(Change::Gone {
                    node: node.to_string(),
                    domain_id,
                    sip_user: user,
                    call_id,
                    contact,
                });
            }
            FsEvent::Channel {
                uuid,
                user,
                domain,
                contact,
                phase,
            } => {
                let key = (node, uuid);
                let (domain_id, user) = match self.channels.get(&key) {
                    Some(c) => (c.domain_id, c.user.clone()),
                    None => {
                        if phase == Phase::Ended {
                            // The end of a channel we never saw (or already ended).
                            return;
                        }
                        // The registered contact names the phone best; else its SIP user.
                        match contact.and_then(|c| self.contacts.get(&c).cloned()) {
                            Some(found) => found,
                            None => {
                                let Some(domain_id) = self.known(&user, &domain).await else {
                                    return;
                                };
                                (domain_id, user.to_ascii_lowercase())
                            }
                        }
                    }
                };
                if phase == Phase::Ended {
                    self.channels.remove(&key);
                } else {
                    let entry = self.channels.entry(key).or_insert(Channel {
                        domain_id,
                        user: user.clone(),
                        phase,
                    });
                    // Presence notices trail the channel events: never go back to ringing.
                    if !(entry.phase == Phase::Answered && phase == Phase::Ringing) {
                        entry.phase = phase;
                    }
                }
                touched_lines.push((domain_id, user));
            }
            FsEvent::CrossDomainRegister {
                user,
                stored_under,
                realm,
            } => {
                // FreeSWITCH answered it from its user cache (the directory refuses such a
                // check): drop the registration at once, before it takes a call.
                self.metrics.ignored("cross_domain");
                tracing::warn!(node = %node, user = %user, stored_under = %stored_under, realm = %realm, "a registration authenticated in another Domain's realm; dropping it");
                if let Some(queue) = self.nodes.as_ref().and_then(|n| n.queue_of(&node)) {
                    queue.push(Command::DropRegistration {
                        user,
                        domain: stored_under,
                    });
                }
            }
            FsEvent::GatewayState {
                gateway,
                state,
                ping_status,
                status,
            } => self.gateways.report(
                &gateway,
                crate::gateways::GatewayStatus {
                    node: node.to_string(),
                    state,
                    ping_status,
                    status,
                    at: now,
                },
            ),
            FsEvent::VoicemailLeft(message) => {
                match switchboard_domain::services::voicemail::message_left(&self.db, &message, now)
                    .await
                {
                    Ok(arrival) => {
                        if arrival.email.is_some() {
                            tracing::info!(node = %node, mailbox = %message.mailbox, domain = %message.sip_domain, "a new voicemail message is queued for e-mail");
                        }
                        if let (Some(max), Some(nodes)) = (arrival.max_messages, &self.nodes) {
                            // Off the ingestion loop: it asks the node and may wait for it.
                            tokio::spawn(crate::voicemail::keep_at_most(
                                nodes.clone(),
                                self.db.clone(),
                                message,
                                max,
                            ));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(node = %node, mailbox = %message.mailbox, domain = %message.sip_domain, error = %e, "queueing a voicemail e-mail failed");
                    }
                }
            }
            FsEvent::Ignore => {}
        }
    }

    async fn replace(&mut self, node: &Arc<str>, rows: Vec<ShownRegistration>, now: DateTime<Utc>) {
        let mut reported = Vec::new();
        for row in rows {
            let Some(domain_id) = self.known(&row.reg_user, &row.realm).await else {
                continue;
            };
            let contact = row.contact;
            let expires_at = now + chrono::Duration::seconds(row.expires_secs.max(0));
            reported.push(Reported {
                node: node.to_string(),
                profile: row.profile,
                domain_id,
                sip_user: row.reg_user,
                call_id: row.call_id,
                contact,
                network_ip: row.network_ip,
                network_port: row.network_port,
                user_agent: row.user_agent,
                expires_at,
            });
        }
        if let Err(e) =
            registrations::replace_node(&self.db, &self.lines, node, reported, now).await
        {
            tracing::warn!(error = %e, node = %node, "reloading registrations failed");
        }
    }

    /// Reports the line state of every touched device whose busiest channel changed.
    async fn report_lines(&mut self, touched: Vec<(Uuid, String)>) {
        let mut states: BTreeMap<(Uuid, String), LineState> =
            touched.into_iter().map(|k| (k, LineState::Idle)).collect();
        for c in self.channels.values() {
            if let Some(state) = states.get_mut(&(c.domain_id, c.user.clone())) {
                let s = match c.phase {
                    Phase::Answered => LineState::InCall,
                    Phase::Ringing => LineState::Ringing,
                    Phase::Ended => LineState::Idle,
                };
                if rank(s) > rank(*state) {
                    *state = s;
                }
            }
        }
        let mut by_domain: BTreeMap<Uuid, Vec<(String, LineState)>> = BTreeMap::new();
        for ((domain_id, user), state) in states {
            let before = self
                .reported
                .get(&(domain_id, user.clone()))
                .copied()
                .unwrap_or(LineState::Idle);
            if before == state {
                continue;
            }
            if state == LineState::Idle {
                self.reported.remove(&(domain_id, user.clone()));
            } else {
                self.reported.insert((domain_id, user.clone()), state);
            }
            by_domain.entry(domain_id).or_default().push((user, state));
        }
        for (domain_id, calls) in by_domain {
            if let Err(e) = self.lines.apply_many(domain_id, &[], &calls).await {
                tracing::warn!(error = %e, "reporting call states failed");
            }
        }
    }
}

fn rank(s: LineState) -> u8 {
    match s {
        LineState::Idle => 0,
        LineState::Ringing => 1,
        LineState::InCall => 2,
    }
}

#[cfg(test)]
mod tests {
    use freeswitch_esl_tokio::EslClient;
    use freeswitch_esl_tokio::mock::MockEslServer;

    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/freeswitch/esl"
    );

    /// The events a real ESL client reads from these captured bytes.
    async fn events_from(bytes: &str) -> Vec<EslEvent> {
        let Ok(server) = MockEslServer::bind("127.0.0.1:0", "pw").await else {
            panic!("binding the scripted peer");
        };
        let (accepted, connected) = tokio::join!(
            server.accept(),
            EslClient::connect("127.0.0.1", server.port(), "pw")
        );
        let (Ok(mut switch), Ok((_client, mut events))) = (accepted, connected) else {
            panic!("the handshake with the scripted peer");
        };
        assert!(switch.send_raw(bytes).await.is_ok());
        switch.drop_connection().await;
        let mut out = Vec::new();
        while let Some(Ok(event)) = events.recv().await {
            out.push(event);
        }
        out
    }

    async fn one(name: &str) -> FsEvent {
        let bytes = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap_or_default();
        let events = events_from(&bytes).await;
        assert_eq!(events.len(), 1, "{name}");
        let parsed = match events.first().map(parse) {
            Some(Ok(parsed)) => parsed,
            other => panic!("{name}: {other:?}"),
        };
        if name.starts_with("event-plain-") {
            // The lean reader of the event connection reads the same as the crate.
            let body = bytes.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
            let lean = LeanEvent::from_plain(body.as_bytes());
            assert_eq!(parse(&lean).as_ref(), Ok(&parsed), "{name}: lean");
            assert_eq!(
                Some(event_label(&lean)),
                events.first().map(event_label),
                "{name}"
            );
        }
        parsed
    }

    /// The same captured event in both formats reads the same.
    async fn both(name: &str) -> FsEvent {
        let plain = one(&format!("event-plain-{name}.txt")).await;
        let json = one(&format!("event-json-{name}.txt")).await;
        assert_eq!(plain, json, "{name}");
        plain
    }

    #[tokio::test]
    async fn registration_events_read_the_same_in_plain_and_json() {
        assert_eq!(
            both("sofia-register").await,
            FsEvent::Register {
                profile: "internal".into(),
                user: "d-7f3a".into(),
                domain: "acme.example.net".into(),
                call_id: "1-25364@127.0.0.1".into(),
                contact: "\"\" <sip:d-7f3a@127.0.0.1:5072;transport=UDP>".into(),
                network_ip: "127.0.0.1".into(),
                network_port: 5072,
                user_agent: Some("SIPp-fsrig".into()),
                expires_secs: 3600,
            }
        );
        assert_eq!(
            both("sofia-unregister").await,
            FsEvent::Unregister {
                user: "d-91c0".into(),
                domain: "acme.example.net".into(),
                call_id: Some("1-25455@127.0.0.1".into()),
                contact: Some("\"\" <sip:d-91c0@127.0.0.1:5074;transport=UDP>".into()),
            }
        );
        // No from-user/from-host; `user`/`host` name the registration.
        assert_eq!(
            both("sofia-expire").await,
            FsEvent::Unregister {
                user: "d-91c0".into(),
                domain: "acme.example.net".into(),
                call_id: Some("1-25481@127.0.0.1".into()),
                contact: Some("\"\" <sip:d-91c0@127.0.0.1:5074;transport=UDP>".into()),
            }
        );
        assert!(matches!(
            both("sofia-expire-flush_inbound_reg").await,
            FsEvent::Unregister { user, .. } if user == "d-7f3a"
        ));
        assert!(matches!(
            both("sofia-register-globex").await,
            FsEvent::Register { domain, .. } if domain == "globex.example.net"
        ));
        // Not subscribed, but harmless if they come (register_failure's JSON has a duplicate
        // key).
        for name in [
            "sofia-register_attempt",
            "sofia-register_failure-unknown-user",
            "sofia-pre_register",
        ] {
            assert_eq!(both(name).await, FsEvent::Ignore, "{name}");
        }
    }

    #[tokio::test]
    async fn channel_events_name_the_device_and_its_phase() {
        let uuid = "11445afe-75ab-431d-ac7e-698cfe6daf65";
        let leg = |phase| FsEvent::Channel {
            uuid: uuid.into(),
            user: "d-7f3a".into(),
            domain: "acme.example.net".into(),
            contact: Some("d-7f3a@127.0.0.1:5072".into()),
            phase,
        };
        assert_eq!(both("channel_create").await, leg(Phase::Ringing));
        assert_eq!(
            both("presence_in-channel-ringing").await,
            leg(Phase::Ringing)
        );
        assert_eq!(both("channel_answer").await, leg(Phase::Answered));
        assert_eq!(
            both("presence_in-channel-answered").await,
            leg(Phase::Answered)
        );
        assert_eq!(both("channel_hangup_complete").await, leg(Phase::Ended));
        // The parallel leg to 201's own registration.
        assert!(matches!(
            both("channel_hangup_complete-lose_race").await,
            FsEvent::Channel { user, phase: Phase::Ended, .. } if user == "201"
        ));
        // Presence without a channel: registration notices and our own sendevent.
        for name in [
            "presence_in-unregistered",
            "presence_in-expired",
            "presence_in-sendevent",
            "heartbeat",
            "background_job-status",
        ] {
            assert_eq!(both(name).await, FsEvent::Ignore, "{name}");
        }
    }

    #[tokio::test]
    async fn a_captured_stream_splits_into_its_seventeen_frames() {
        for format in ["plain", "json"] {
            let bytes = std::fs::read_to_string(format!(
                "{FIXTURES}/stream-{format}-originate-user-201.txt"
            ))
            .unwrap_or_default();
            let events = events_from(&bytes).await;
            assert_eq!(events.len(), 17, "{format}");
            let channel_events = events
                .iter()
                .filter_map(|e| match parse(e) {
                    Ok(FsEvent::Channel { phase, .. }) => Some(phase),
                    Ok(_) => None,
                    Err(e) => panic!("{format}: {e}"),
                })
                .count();
            assert!(channel_events >= 4, "{format}: {channel_events}");
        }
    }

    #[test]
    fn contacts_read_as_freeswitch_names_the_channel() {
        assert_eq!(
            contact_key("\"\" <sip:d-7f3a@127.0.0.1:5072;transport=UDP>").as_deref(),
            Some("d-7f3a@127.0.0.1:5072")
        );
        assert_eq!(
            contact_key("<sips:Zoiper-9X@[2001:db8::1]:5061>").as_deref(),
            Some("zoiper-9x@[2001:db8::1]:5061")
        );
        assert_eq!(contact_key("<sip:127.0.0.1:5072>"), None);
        assert_eq!(contact_key("garbage"), None);
    }

    /// `sofia xmlstatus profile internal reg` of FreeSWITCH 1.10.12 holding one phone, as the
    /// live suite captured it.
    const XMLSTATUS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<profile>
  <registrations>
    <registration>
        <call-id>crash-1@live.test</call-id>
        <user>dvxau2rfibfr@crash.live.test</user>
        <contact>&quot;&quot; &lt;sip:dvxau2rfibfr@127.0.0.1:33811;transport=UDP&gt;</contact>
        <agent>LivePhone/6.0</agent>
        <status>Registered(UDP)(unknown) exp(2026-12-02 16:11:52) expsecs(358)</status>
        <ping-status>Reachable</ping-status>
        <ping-time>0.00</ping-time>
        <host>switchboard-fs1</host>
        <network-ip>127.0.0.1</network-ip>
        <network-port>33811</network-port>
        <sip-auth-user>dvxau2rfibfr</sip-auth-user>
        <sip-auth-realm>crash.live.test</sip-auth-realm>
        <mwi-account>401@crash.live.test</mwi-account>
    </registration>
  </registrations>
</profile>
"#;

    #[test]
    fn the_profile_registration_list_reads_rows_and_the_empty_answer() {
        let rows = parse_profile_registrations("internal", XMLSTATUS).unwrap_or_default();
        assert_eq!(
            rows,
            [ShownRegistration {
                profile: "internal".into(),
                reg_user: "dvxau2rfibfr".into(),
                realm: "crash.live.test".into(),
                call_id: "crash-1@live.test".into(),
                // The same string sofia::register reports, so a refresh updates this row.
                contact: "\"\" <sip:dvxau2rfibfr@127.0.0.1:33811;transport=UDP>".into(),
                user_agent: Some("LivePhone/6.0".into()),
                expires_secs: 358,
                network_ip: "127.0.0.1".into(),
                network_port: 33811,
            }]
        );
        let empty = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profile>\n  <registrations>\n  </registrations>\n</profile>\n";
        assert_eq!(parse_profile_registrations("internal", empty), Ok(vec![]));
        assert!(parse_profile_registrations("internal", "-ERR no reply").is_err());
    }
}
