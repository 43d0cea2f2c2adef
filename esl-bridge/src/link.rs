//! One Event Socket link per FreeSWITCH node: two connections, reconnected together forever
//! with exponential backoff and jitter.
//!
//! - The **command connection** (freeswitch-esl-tokio's [`EslClient`], connected first)
//!   delivers the queued commands, then resynchronises, then each new command.
//! - The **event connection** ([`crate::frames`], a lean reader of our own) authenticates,
//!   subscribes to [`SUBSCRIPTION`] and forwards the events to ingestion. On its own socket
//!   the event flood never delays a command reply, and a command never delays an event.
//!
//! A link is dead when the event connection saw nothing for the heartbeat timeout
//! (FreeSWITCH sends `HEARTBEAT` every 20 s), when a command gets no reply within the command
//! timeout, when either peer closes, or when a frame cannot be parsed (both connections are
//! closed and reopened; nothing panics). Commands that could not be delivered stay queued for
//! the next session.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use freeswitch_esl_tokio::{EslClient, EslConnectOptions, EslError};
use rand_core::{OsRng, RngCore};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use switchboard_domain::cluster::journal::{self, Journal};
use switchboard_domain::cluster::lease::{Lease, Leases};
use switchboard_domain::cluster::links;
use switchboard_domain::events::ChangeEvent;

use crate::frames::{EventStream, StreamError};
use crate::ingest::{Inbound, parse_profile_registrations};
use crate::metrics::BridgeMetrics;
use crate::push::{Command, Mirrors, Queue, Wire, resync_commands};

/// The events every link subscribes to; `CUSTOM` goes last because every later token is a
/// subclass.
pub const SUBSCRIPTION: &str = "HEARTBEAT PRESENCE_IN CHANNEL_CREATE CHANNEL_ANSWER \
CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM sofia::register sofia::unregister sofia::expire \
sofia::gateway_state vm::maintenance";

/// How to reach one node.
#[derive(Clone)]
pub struct NodeSettings {
    /// Name for logs, metrics and the node list.
    pub name: String,
    /// Host of its event socket.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Password (never logged).
    pub password: SecretString,
    /// The sofia profile phones register on.
    pub profile: String,
    /// No traffic for this long means the link is dead.
    pub heartbeat_timeout: Duration,
    /// A command unanswered for this long means the link is dead.
    pub command_timeout: Duration,
    /// First wait before reconnecting.
    pub backoff_initial: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
    /// The SIP domains whose commands it takes (`None`: every Domain's).
    pub serves: Option<Arc<std::collections::HashSet<String>>>,
}

impl NodeSettings {
    /// True when `other` needs no new link (same address, credentials, profile, Domains).
    pub fn same_as(&self, other: &Self) -> bool {
        self.name == other.name
            && self.host == other.host
            && self.port == other.port
            && self.password.expose_secret() == other.password.expose_secret()
            && self.profile == other.profile
            && self.serves == other.serves
    }

    /// True when this node takes commands of the SIP domain `domain` (`None`: a command of
    /// no Domain, e.g. a gateway's, which every node takes).
    pub fn serves(&self, domain: Option<&str>) -> bool {
        match (&self.serves, domain) {
            (Some(set), Some(d)) => set.contains(&d.to_ascii_lowercase()),
            _ => true,
        }
    }
}

impl std::fmt::Debug for NodeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSettings")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// A node's link as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The sofia profile.
    pub profile: String,
    /// `connecting`, `connected` or `disconnected` while this switchboard node drives it;
    /// `standby` while another one does (or nobody has taken it yet).
    pub state: &'static str,
    /// Since when in that state.
    pub since: DateTime<Utc>,
    /// The switchboard node driving it, when it is this one.
    pub owner: Option<String>,
    /// Why the link is down, while it is not connected (`None` once connected again).
    pub last_error: Option<String>,
    /// When the link last went down, kept after it came back.
    pub last_disconnect_at: Option<DateTime<Utc>>,
    /// Why the link last went down, kept after it came back.
    pub last_disconnect_reason: Option<String>,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Commands waiting for the link.
    pub queued: usize,
}

/// What the rest of the process holds of a link.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    /// How to reach it.
    pub settings: NodeSettings,
    /// Its command queue.
    pub queue: Arc<Queue>,
    status: Arc<Mutex<NodeStatus>>,
    /// The command connection while the link is up, for requests that wait for FreeSWITCH's
    /// answer ([`Bridge::api`]).
    client: Arc<Mutex<Option<EslClient>>>,
}

impl NodeHandle {
    /// A handle in the `connecting` state.
    pub fn new(settings: NodeSettings) -> Self {
        let status = NodeStatus {
            name: settings.name.clone(),
            host: settings.host.clone(),
            port: settings.port,
            profile: settings.profile.clone(),
            state: "standby",
            since: Utc::now(),
            owner: None,
            last_error: None,
            last_disconnect_at: None,
            last_disconnect_reason: None,
            reconnects: 0,
            queued: 0,
        };
        Self {
            settings,
            queue: Arc::new(Queue::default()),
            status: Arc::new(Mutex::new(status)),
            client: Arc::new(Mutex::new(None)),
        }
    }

    fn set_client(&self, client: Option<EslClient>) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
    }

    fn client(&self) -> Option<EslClient> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current status.
    pub fn status(&self) -> NodeStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.queued = self.queue.len();
        s
    }

    fn set_owner(&self, owner: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.owner = owner;
    }

    /// True while this switchboard node drives the FreeSWITCH node.
    pub fn driven_here(&self) -> bool {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .owner
            .is_some()
    }

    fn set(&self, state: &'static str, error: Option<String>, reconnect: bool) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state {
            s.state = state;
            s.since = Utc::now();
        }
        if let Some(error) = error {
            s.last_disconnect_at = Some(Utc::now());
            s.last_disconnect_reason = Some(error.clone());
            s.last_error = Some(error);
        } else if state == "connected" {
            // A connected link has no error; why it last went down stays in last_disconnect_*.
            s.last_error = None;
        }
        if reconnect {
            s.reconnects += 1;
        }
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error("connecting failed: {0}")]
    Connect(EslError),
    #[error("opening the event connection failed: {0}")]
    Events(StreamError),
    #[error("a command failed on the wire: {0}")]
    Command(EslError),
    #[error("a frame could not be read: {0}")]
    Malformed(String),
    #[error("no sign of life: {0}")]
    Silent(StreamError),
    #[error("the link closed: {0}")]
    Closed(String),
    #[error("resynchronising failed: {0}")]
    Resync(String),
    #[error("the lease on this FreeSWITCH node was lost: {0}")]
    LeaseLost(String),
    #[error("the node was removed or changed")]
    Stopped,
}

impl From<StreamError> for LinkError {
    /// How the event stream of a connection that was up ended.
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Malformed(why) => Self::Malformed(why),
            e @ StreamError::Silent(_) => Self::Silent(e),
            other => Self::Closed(other.to_string()),
        }
    }
}

/// One node's link task.
pub struct Link {
    handle: NodeHandle,
    db: DatabaseConnection,
    mirrors: Mirrors,
    metrics: BridgeMetrics,
    inbound: mpsc::Sender<Inbound>,
    node: Arc<str>,
    cluster: Cluster,
    /// Set when the node was removed or changed: the link closes for good.
    stop: watch::Receiver<bool>,
}

/// What links need to share FreeSWITCH nodes with other switchboard nodes.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This switchboard node's name (the owner shown on the links it drives).
    pub node: String,
    /// The leases: one switchboard node drives a FreeSWITCH node at a time.
    pub leases: Leases,
    /// The change log, for what a takeover replays.
    pub journal: Arc<Journal>,
}

/// How often a standing-by node asks for a FreeSWITCH node's lease.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// The most changes a takeover replays; further behind, the resync alone repairs the node.
const REPLAY_LIMIT: u64 = 20_000;

/// How often the driver writes how far its commands got.
const PUSHED_EVERY: Duration = Duration::from_millis(250);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// The wait before the next attempt: full jitter over the upper half of the backoff.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(OsRng.next_u64() % spread)
}

/// Errors that mean the command was answered (refused), not lost.
fn answered(e: &EslError) -> bool {
    matches!(
        e,
        EslError::CommandFailed { .. } | EslError::UnexpectedReply { .. }
    )
}

impl Link {
    /// A link for `handle`, feeding `inbound`.
    pub fn new(
        handle: NodeHandle,
        db: DatabaseConnection,
        mirrors: Mirrors,
        metrics: BridgeMetrics,
        inbound: mpsc::Sender<Inbound>,
        cluster: Cluster,
    ) -> Self {
        let node: Arc<str> = Arc::from(handle.settings.name.as_str());
        Self {
            handle,
            db,
            mirrors,
            metrics,
            inbound,
            node,
            cluster,
            stop: watch::channel(false).1,
        }
    }

    /// Closes for good when `stop` turns true.
    pub fn with_stop(mut self, stop: watch::Receiver<bool>) -> Self {
        self.stop = stop;
        self
    }

    /// Resolves once the link must close for good.
    async fn stopped(&self) {
        let mut stop = self.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
    }

    /// Runs forever: stands by until this switchboard node holds the FreeSWITCH node's lease,
    /// then drives it until the lease is lost, and stands by again.
    pub async fn run(self) {
        loop {
            let Some(mut lease) = self.standby().await else {
                self.handle.set("standby", None, false);
                return;
            };
            let owner = self.cluster.node.clone();
            let pushed = match links::claim(&self.db, &self.node, &owner, Utc::now()).await {
                Ok(pushed) => pushed,
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "cannot record taking the FreeSWITCH node over; giving the lease back");
                    drop(lease);
                    tokio::time::sleep(STANDBY_POLL).await;
                    continue;
                }
            };
            self.handle.queue.own(pushed);
            self.handle.set_owner(Some(owner.clone()));
            tracing::info!(node = %self.node, owner = %owner, pushed, "driving the FreeSWITCH node");
            self.replay(pushed).await;
            let reason = self.drive(&mut lease).await;
            tracing::warn!(node = %self.node, reason = %reason, "no longer driving the FreeSWITCH node");
            self.handle.queue.disown();
            self.handle.set_client(None);
            self.handle.set_owner(None);
            self.handle.set("standby", Some(reason), false);
            drop(lease);
            // Its calls are followed by whoever takes over: no lamp stays on here.
            let _ = self
                .inbound
                .send(Inbound::LinkLost {
                    node: self.node.clone(),
                })
                .await;
            // Best effort: the lease is usually lost with the database.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                links::release(&self.db, &self.node, &owner, Utc::now()),
            )
            .await;
            if *self.stop.borrow() {
                return;
            }
        }
    }

    /// Waits for the FreeSWITCH node's lease (`None`: the link was stopped meanwhile).
    async fn standby(&self) -> Option<Lease> {
        let mut told = false;
        loop {
            if *self.stop.borrow() {
                return None;
            }
            match self.cluster.leases.try_acquire(&self.node).await {
                Ok(Some(lease)) => return Some(lease),
                Ok(None) => {
                    if !told {
                        tracing::info!(node = %self.node, "another switchboard node drives this FreeSWITCH node; standing by");
                        told = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "cannot ask for the FreeSWITCH node's lease");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = self.stopped() => return None,
            }
        }
    }

    /// Queues the commands of the changes the previous driver did not deliver (every
    /// command is idempotent: one delivered twice is harmless).
    async fn replay(&self, pushed: i64) {
        let upto = self.cluster.journal.cursor();
        // Never driven before: the first resync sets everything.
        if pushed == 0 || pushed >= upto {
            return;
        }
        match journal::between(&self.db, pushed, upto, REPLAY_LIMIT).await {
            Ok(rows) => {
                let events: Vec<Arc<ChangeEvent>> =
                    rows.into_iter().map(|(_, e)| Arc::new(e)).collect();
                let commands = crate::push::replay_commands(&events);
                tracing::info!(node = %self.node, changes = events.len(), commands = commands.len(), after = pushed, upto, "replaying what the previous driver did not deliver");
                for command in commands {
                    if self.handle.settings.serves(command.domain()) {
                        self.handle.queue.push(command);
                    }
                }
                self.handle.queue.mark(upto);
            }
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "cannot read the changes to replay; the resync repairs the mirror and the cache");
            }
        }
    }

    /// Writes the link's state for the other nodes (best effort).
    async fn record(&self, state: &str, error: Option<&str>) {
        if let Err(e) = links::record_state(
            &self.db,
            &self.node,
            &self.cluster.node,
            state,
            error,
            Utc::now(),
        )
        .await
        {
            tracing::debug!(node = %self.node, error = %e, "cannot record the link state");
        }
    }

    /// Drives the node, reconnecting forever, until the lease is lost; returns why.
    async fn drive(&self, lease: &mut Lease) -> String {
        let s = self.handle.settings.clone();
        let mut backoff = s.backoff_initial;
        let mut connected_before = false;
        loop {
            self.handle.set("connecting", None, false);
            self.record("connecting", None).await;
            let result = self.session(&mut connected_before, lease).await;
            self.metrics
                .connected
                .with_label_values(&[&*self.node])
                .set(0);
            if let Ok(LinkError::LeaseLost(reason)) | Err(LinkError::LeaseLost(reason)) = result {
                return reason;
            }
            if let Ok(LinkError::Stopped) | Err(LinkError::Stopped) = result {
                return LinkError::Stopped.to_string();
            }
            let reason = match &result {
                Ok(ended) | Err(ended) => ended.to_string(),
            };
            tracing::warn!(node = %self.node, reason = %reason, "FreeSWITCH link down");
            self.handle.set("disconnected", Some(reason.clone()), false);
            self.record("disconnected", Some(&reason)).await;
            if result.is_ok() {
                // Its calls are unknown until it is back: no lamp stays on ringing.
                let _ = self
                    .inbound
                    .send(Inbound::LinkLost {
                        node: self.node.clone(),
                    })
                    .await;
            }
            if result.is_ok() {
                // It was up: start the backoff over.
                backoff = s.backoff_initial;
            }
            tokio::select! {
                _ = tokio::time::sleep(jittered(backoff)) => {}
                reason = lease.lost() => return reason,
                _ = self.stopped() => return LinkError::Stopped.to_string(),
            }
            backoff = (backoff * 2).min(s.backoff_max);
        }
    }

    /// Records how far the delivered commands got, at most every [`PUSHED_EVERY`].
    async fn note_pushed(&self, upto: i64, noted: &mut (i64, std::time::Instant), force: bool) {
        // `upto` was read before the queue was last drained: every command of those changes
        // has been delivered.
        if upto <= noted.0 {
            return;
        }
        if !force && noted.1.elapsed() < PUSHED_EVERY {
            return;
        }
        match links::record_pushed(&self.db, &self.node, &self.cluster.node, upto, Utc::now()).await
        {
            Ok(()) => *noted = (upto, std::time::Instant::now()),
            Err(e) => {
                tracing::debug!(node = %self.node, error = %e, "cannot record the delivered changes")
            }
        }
    }

    /// One session: the command connection, then the event connection. `Ok(why)` when it
    /// was up and then ended; `Err(why)` when it failed on the way up. Either connection
    /// dying ends both.
    async fn session(
        &self,
        connected_before: &mut bool,
        lease: &mut Lease,
    ) -> Result<LinkError, LinkError> {
        let s = &self.handle.settings;
        let options = EslConnectOptions::new().with_connect_timeout(s.command_timeout);
        let (client, mut command_events) =
            EslClient::connect_with_options(&s.host, s.port, s.password.expose_secret(), options)
                .await
                .map_err(LinkError::Connect)?;
        client.set_command_timeout(s.command_timeout);
        // No liveness timeout here (the crate's default is off): nothing is subscribed on this
        // connection, so it is silent between commands. A command that goes unanswered, or
        // the peer closing, ends it; the heartbeats watch the event connection.
        let events = match EventStream::connect(
            &s.host,
            s.port,
            s.password.expose_secret(),
            SUBSCRIPTION,
            s.command_timeout,
            s.heartbeat_timeout,
        )
        .await
        {
            Ok(events) => events,
            Err(e) => {
                let _ = client.disconnect().await;
                return Err(LinkError::Events(e));
            }
        };
        if *connected_before {
            self.metrics
                .reconnects
                .with_label_values(&[&*self.node])
                .inc();
        }
        self.handle.set("connected", None, *connected_before);
        self.record("connected", None).await;
        self.handle.set_client(Some(client.clone()));
        *connected_before = true;
        self.metrics
            .connected
            .with_label_values(&[&*self.node])
            .set(1);
        tracing::info!(node = %self.node, "FreeSWITCH link up");

        let mut reader = tokio::spawn(read_events(events, self.node.clone(), self.inbound.clone()));
        let outcome = async {
            // What waited while the link was down goes first, once; then the resync.
            let mut noted = (0i64, std::time::Instant::now());
            let upto = self.handle.queue.queued_upto();
            self.deliver_queue(&client).await?;
            self.resync(&client).await?;
            self.note_pushed(upto, &mut noted, true).await;
            let mut tick = tokio::time::interval(PUSHED_EVERY);
            loop {
                let upto = self.handle.queue.queued_upto();
                self.deliver_queue(&client).await?;
                self.note_pushed(upto, &mut noted, false).await;
                tokio::select! {
                    _ = self.handle.queue.notified() => {}
                    _ = tick.tick() => {
                        self.note_pushed(upto, &mut noted, true).await;
                    }
                    ended = &mut reader => {
                        return Err(match ended {
                            Ok(e) => e,
                            Err(e) => LinkError::Closed(e.to_string()),
                        });
                    }
                    // Nothing is subscribed there: only its end matters.
                    None = command_events.recv() => {
                        return Err(LinkError::Closed(format!(
                            "the command connection: {}",
                            command_events.status().to_string_lossy()
                        )));
                    }
                }
            }
        };
        // Losing the lease stops the session at once: another node may take over.
        let outcome = tokio::select! {
            outcome = outcome => outcome,
            reason = lease.lost() => Err(LinkError::LeaseLost(reason)),
            _ = self.stopped() => Err(LinkError::Stopped),
        };
        self.handle.set_client(None);
        reader.abort();
        let _ = client.disconnect().await;
        match outcome {
            // It was up: the next attempt starts from the first backoff step.
            Err(
                e @ (LinkError::Closed(_)
                | LinkError::Malformed(_)
                | LinkError::Silent(_)
                | LinkError::Command(_)
                | LinkError::LeaseLost(_)
                | LinkError::Stopped),
            ) => Ok(e),
            Err(e) => Err(e),
            Ok(()) => Ok(LinkError::Closed("the session ended".to_owned())),
        }
    }

    /// Sends every queued command; one lost on the wire is put back and ends the connection.
    async fn deliver_queue(&self, client: &EslClient) -> Result<(), LinkError> {
        while let Some(command) = self.handle.queue.pop() {
            if let Err(e) = self.send(client, &command).await {
                self.handle.queue.requeue(command);
                self.queued_gauge();
                return Err(LinkError::Command(e));
            }
        }
        self.queued_gauge();
        Ok(())
    }

    fn queued_gauge(&self) {
        self.metrics
            .commands_queued
            .with_label_values(&[&*self.node])
            .set(i64::try_from(self.handle.queue.len()).unwrap_or(i64::MAX));
    }

    /// Sends one command. A refusal is counted and logged (retrying would not help); a wire
    /// failure is returned.
    async fn send(&self, client: &EslClient, command: &Command) -> Result<(), EslError> {
        let outcome = match command.wire(&self.handle.settings.profile) {
            Wire::Api(text) => client
                .api(&text)
                .await
                .map(|reply| reply.api_result().map(|_| ())),
            Wire::SendEvent(event) => client
                .sendevent(event)
                .await
                .map(|reply| reply.into_result().map(|_| ())),
        };
        let outcome = match outcome {
            Err(e) if answered(&e) => Ok(Err(e)),
            other => other,
        };
        let counter = match &outcome {
            Ok(Ok(())) => &self.metrics.commands_sent,
            _ => &self.metrics.commands_failed,
        };
        counter.with_label_values(&[&*self.node]).inc();
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refused)) => {
                tracing::warn!(node = %self.node, command = ?command.slot(), error = %refused, "FreeSWITCH refused a command");
                Ok(())
            }
            Err(lost) => Err(lost),
        }
    }

    /// Flushes the cache of our Domains, rewrites the mirror, reloads the registrations.
    async fn resync(&self, client: &EslClient) -> Result<(), LinkError> {
        let mut commands = self.stale_gateways(client).await?;
        commands.extend(
            resync_commands(&self.db, &self.mirrors)
                .await
                .map_err(|e| LinkError::Resync(e.to_string()))?,
        );
        for command in &commands {
            self.send(client, command)
                .await
                .map_err(LinkError::Command)?;
        }
        self.reload_registrations(client).await?;
        // Messages left while nobody listened to this node still get their e-mails.
        tokio::spawn(crate::voicemail::catch_up_emails(
            Nodes::of(vec![self.handle.clone()]),
            self.db.clone(),
        ));
        Ok(())
    }

    /// `killgw` for each of our gateways the profile holds that was deleted or disabled
    /// while no queued command could tell this node (switchboard restarted, or another node
    /// made the change): the resync's rescan only adds.
    async fn stale_gateways(&self, client: &EslClient) -> Result<Vec<Command>, LinkError> {
        let profile = &self.handle.settings.profile;
        let reply = client
            .api("sofia xmlstatus gateway")
            .await
            .map_err(LinkError::Command)?;
        // Unreadable (a node without mod_sofia's xmlstatus): nothing to remove, not a reason
        // to give the link up.
        let loaded = match reply
            .api_result()
            .map_err(|e| e.to_string())
            .and_then(|body| crate::gateways::parse_loaded_gateways(profile, body))
        {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "cannot list the gateways FreeSWITCH holds; stale ones stay until it restarts");
                return Ok(Vec::new());
            }
        };
        let wanted: std::collections::HashSet<String> =
            switchboard_domain::services::gateways::loaded_names(&self.db)
                .await
                .map_err(|e| LinkError::Resync(e.to_string()))?
                .into_iter()
                .collect();
        Ok(loaded
            .into_iter()
            .filter(|name| !wanted.contains(name))
            .map(|name| {
                tracing::info!(node = %self.node, gateway = %name, "removing a gateway deleted or disabled while the link was down");
                Command::KillGateway { name }
            })
            .collect())
    }

    /// Replaces the node's registrations with what the profile really holds (`sofia xmlstatus
    /// profile <p> reg`; `show registrations` lags behind `flush_inbound_reg` and forgets
    /// every phone over a restart).
    async fn reload_registrations(&self, client: &EslClient) -> Result<(), LinkError> {
        let profile = &self.handle.settings.profile;
        let reply = client
            .api(&format!("sofia xmlstatus profile {profile} reg"))
            .await
            .map_err(LinkError::Command)?;
        let rows = match reply.api_result() {
            Ok(body) => parse_profile_registrations(profile, body)
                .map_err(|e| LinkError::Resync(format!("sofia xmlstatus: {e}")))?,
            Err(e) => return Err(LinkError::Resync(format!("sofia xmlstatus: {e}"))),
        };
        self.inbound
            .send(Inbound::Registrations {
                node: self.node.clone(),
                rows,
            })
            .await
            .map_err(|_| LinkError::Closed("ingestion stopped".to_owned()))?;
        Ok(())
    }
}

/// Forwards a node's events to ingestion until the event connection ends.
///
/// Waits when ingestion is behind (the bounded channel is full) instead of dropping: the
/// commands have a connection of their own, so waiting stalls nothing but this socket, and
/// FreeSWITCH then holds the events in its listener queue. Should that overflow too,
/// FreeSWITCH drops events and, past 500 lost, closes the listener (`mod_event_socket.c`),
/// and the reconnect's resync reloads the registrations.
async fn read_events(
    mut events: EventStream,
    node: Arc<str>,
    inbound: mpsc::Sender<Inbound>,
) -> LinkError {
    loop {
        match events.next_event().await {
            Ok(event) => {
                let item = Inbound::Event {
                    node: node.clone(),
                    event,
                };
                if inbound.send(item).await.is_err() {
                    return LinkError::Closed("ingestion stopped".to_owned());
                }
            }
            Err(e) => return e.into(),
        }
    }
}

trait LossyStatus {
    fn to_string_lossy(&self) -> String;
}

impl LossyStatus for freeswitch_esl_tokio::ConnectionStatus {
    fn to_string_lossy(&self) -> String {
        match self {
            freeswitch_esl_tokio::ConnectionStatus::Disconnected(reason) => reason.to_string(),
            _ => "the event stream ended".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_upper_half_of_the_backoff() {
        for ms in [1u64, 200, 30_000] {
            let b = Duration::from_millis(ms);
            for _ in 0..100 {
                let j = jittered(b);
                assert!(j >= b / 2 && j <= b, "{j:?} for {b:?}");
            }
        }
    }
}

/// The running bridge: the links, ingestion and the pusher. Nodes come and go at run time
/// ([`Bridge::reconcile`]): the static configuration list and the nodes registered through
/// the API.
#[derive(Debug)]
pub struct Bridge {
    nodes: Nodes,
    metrics: BridgeMetrics,
    gateways: Arc<crate::gateways::GatewayStates>,
    spawner: Spawner,
    /// Each running link's settings and the switch that stops it.
    running: Mutex<std::collections::HashMap<String, (NodeSettings, watch::Sender<bool>)>>,
}

/// What a new link is made of.
#[derive(Debug, Clone)]
struct Spawner {
    db: DatabaseConnection,
    mirrors: Mirrors,
    metrics: BridgeMetrics,
    inbound: mpsc::Sender<Inbound>,
    cluster: Cluster,
}

/// Room for events between the links and ingestion before the links wait (see
/// [`read_events`]).
const INBOUND_CAPACITY: usize = 16 * 1024;

impl Bridge {
    /// Starts ingestion, the pusher and a link per node. Subscribes to `bus` before
    /// returning, so no change published afterwards is missed.
    pub fn start(
        nodes: Vec<NodeSettings>,
        db: DatabaseConnection,
        bus: &switchboard_domain::events::EventBus,
        cluster: Cluster,
        lines: Arc<switchboard_domain::services::presence::LineStates>,
        metrics: BridgeMetrics,
        sweep_interval: Duration,
    ) -> Self {
        let gateways = Arc::new(crate::gateways::GatewayStates::default());
        let handles = Nodes::default();
        let mirrors = Mirrors::default();
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let ingest = crate::ingest::Ingest::new(db.clone(), lines.clone(), metrics.clone())
            .with_nodes(handles.clone())
            .with_gateway_states(gateways.clone())
            .with_sweep_interval(sweep_interval);
        let changes = bus.subscribe();
        let ingest_db = db.clone();
        let pusher_lines = lines.clone();
        tokio::spawn(async move {
            // Registrations stored before a restart count until the first resync replaces them.
            if let Err(e) = switchboard_domain::services::registrations::load_into(
                &ingest_db,
                &lines,
                Utc::now(),
            )
            .await
            {
                tracing::warn!(error = %e, "loading stored registrations failed");
            }
            ingest.run(rx, changes).await;
        });
        let pusher = crate::push::Pusher::new(db.clone(), handles.clone(), mirrors.clone())
            .with_lines(pusher_lines);
        tokio::spawn(pusher.run(cluster.journal.subscribe()));
        let bridge = Self {
            nodes: handles,
            metrics: metrics.clone(),
            gateways,
            spawner: Spawner {
                db,
                mirrors,
                metrics,
                inbound: tx,
                cluster,
            },
            running: Mutex::default(),
        };
        bridge.reconcile(nodes);
        bridge
    }

    /// Makes the running links those of `wanted`: new nodes get a link, removed ones have
    /// theirs closed (and their lease given back), changed ones are restarted.
    pub fn reconcile(&self, wanted: Vec<NodeSettings>) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let names: std::collections::HashSet<&str> =
            wanted.iter().map(|n| n.name.as_str()).collect();
        let gone: Vec<String> = running
            .keys()
            .filter(|name| !names.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some((_, stop)) = running.remove(&name) {
                tracing::info!(node = %name, "FreeSWITCH node removed; closing its link");
                let _ = stop.send(true);
            }
            self.nodes.remove(&name);
        }
        for settings in wanted {
            if let Some((current, stop)) = running.get(&settings.name) {
                if current.same_as(&settings) {
                    continue;
                }
                tracing::info!(node = %settings.name, "FreeSWITCH node changed; restarting its link");
                let _ = stop.send(true);
                self.nodes.remove(&settings.name);
            }
            let handle = NodeHandle::new(settings.clone());
            let (stop, stopped) = watch::channel(false);
            self.nodes.add(handle.clone());
            let link = Link::new(
                handle,
                self.spawner.db.clone(),
                self.spawner.mirrors.clone(),
                self.spawner.metrics.clone(),
                self.spawner.inbound.clone(),
                self.spawner.cluster.clone(),
            )
            .with_stop(stopped);
            tokio::spawn(link.run());
            running.insert(settings.name.clone(), (settings, stop));
        }
    }

    /// The gateways' state as the nodes report it.
    pub fn gateway_states(&self) -> &crate::gateways::GatewayStates {
        &self.gateways
    }

    /// True when there are nodes.
    pub fn enabled(&self) -> bool {
        !self.nodes.snapshot().is_empty()
    }

    /// Every node's link.
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.nodes
            .snapshot()
            .iter()
            .map(NodeHandle::status)
            .collect()
    }

    /// The metrics, to register with the application's registry.
    pub fn metrics(&self) -> &BridgeMetrics {
        &self.metrics
    }

    /// The nodes, for requests that wait for FreeSWITCH's answer.
    pub fn node_api(&self) -> Nodes {
        self.nodes.clone()
    }
}

/// Something that runs API commands on a FreeSWITCH node and returns the answer.
pub trait NodeApi {
    /// Runs `command` (see [`Nodes::api`]).
    fn api(
        &self,
        command: &str,
    ) -> impl std::future::Future<Output = Result<String, ApiUnavailable>> + Send;
}

impl NodeApi for Bridge {
    async fn api(&self, command: &str) -> Result<String, ApiUnavailable> {
        api_on(&self.nodes.snapshot(), command).await
    }
}

impl<T: NodeApi + Sync + Send> NodeApi for Arc<T> {
    async fn api(&self, command: &str) -> Result<String, ApiUnavailable> {
        self.as_ref().api(command).await
    }
}

/// The nodes, cheap to clone into a task; they change at run time.
#[derive(Debug, Clone, Default)]
pub struct Nodes(Arc<std::sync::RwLock<Vec<NodeHandle>>>);

impl Nodes {
    /// These nodes.
    pub fn of(handles: Vec<NodeHandle>) -> Self {
        Self(Arc::new(std::sync::RwLock::new(handles)))
    }

    /// The nodes now.
    pub fn snapshot(&self) -> Vec<NodeHandle> {
        self.0.read().map(|n| n.clone()).unwrap_or_default()
    }

    fn add(&self, handle: NodeHandle) {
        if let Ok(mut nodes) = self.0.write() {
            nodes.retain(|n| n.settings.name != handle.settings.name);
            nodes.push(handle);
        }
    }

    fn remove(&self, name: &str) {
        if let Ok(mut nodes) = self.0.write() {
            nodes.retain(|n| n.settings.name != name);
        }
    }

    /// The command queue of the node `name`.
    pub fn queue_of(&self, name: &str) -> Option<Arc<Queue>> {
        self.snapshot()
            .into_iter()
            .find(|n| n.settings.name == name)
            .map(|n| n.queue)
    }

    /// The names of the FreeSWITCH nodes this switchboard node drives.
    pub fn driven_here(&self) -> Vec<String> {
        self.snapshot()
            .iter()
            .filter(|n| n.driven_here())
            .map(|n| n.settings.name.clone())
            .collect()
    }
}

impl NodeApi for Nodes {
    async fn api(&self, command: &str) -> Result<String, ApiUnavailable> {
        api_on(&self.snapshot(), command).await
    }
}

/// Runs an API command on the first node whose link is up and returns its answer (the body of a
/// `+OK`-less reply too: mod_voicemail's commands answer data). The nodes are tried in their
/// configured order; one that fails on the wire is skipped for the next.
async fn api_on(nodes: &[NodeHandle], command: &str) -> Result<String, ApiUnavailable> {
    let mut last = ApiUnavailable::NoNode;
    for node in nodes {
        let Some(client) = node.client() else {
            continue;
        };
        match client.api(command).await {
            // A command that wrote nothing (an empty mailbox's list) is answered
            // `-ERR no reply` by mod_event_socket: an empty answer, not a refusal.
            Ok(reply)
                if reply.is_success()
                    && matches!(reply.body().unwrap_or("").trim(), "" | NO_REPLY) =>
            {
                return Ok(String::new());
            }
            Ok(reply) => match reply.api_result() {
                Ok(body) => return Ok(body.to_owned()),
                Err(e) => return Err(ApiUnavailable::Refused(e.to_string())),
            },
            Err(e) if answered(&e) => return Err(ApiUnavailable::Refused(e.to_string())),
            Err(e) => {
                tracing::warn!(node = %node.settings.name, error = %e, "a FreeSWITCH request failed on the wire");
                last = ApiUnavailable::Lost(e.to_string());
            }
        }
    }
    Err(last)
}

/// What mod_event_socket answers for an API command that wrote nothing.
const NO_REPLY: &str = "-ERR no reply";

/// Why [`Bridge::api`] has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiUnavailable {
    /// No node is configured or none is connected.
    #[error("no FreeSWITCH node is connected")]
    NoNode,
    /// The request was lost on the wire (the link is going down).
    #[error("the FreeSWITCH request failed: {0}")]
    Lost(String),
    /// FreeSWITCH answered `-ERR`.
    #[error("FreeSWITCH refused the request: {0}")]
    Refused(String),
}
