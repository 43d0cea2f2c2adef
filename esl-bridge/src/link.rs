//! One Event Socket link per FreeSWITCH node: connect, authenticate, subscribe, deliver the
//! queued commands, resynchronise, then forward events until the link dies; reconnect forever
//! with exponential backoff and jitter.
//!
//! A link is dead when no traffic arrived for the heartbeat timeout (FreeSWITCH sends
//! `HEARTBEAT` every 20 s), when a command gets no reply within the command timeout, when the
//! peer closes, or when a frame cannot be parsed (the link is closed and reopened; nothing
//! panics). Commands that could not be delivered stay queued for the next connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use freeswitch_esl_tokio::{EslClient, EslConnectOptions, EslError, EventFormat};
use rand_core::{OsRng, RngCore};
use sea_orm::DatabaseConnection;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::ingest::{Inbound, parse_show_registrations};
use crate::metrics::BridgeMetrics;
use crate::push::{Command, Mirrors, Queue, Wire, resync_commands};

/// The events every link subscribes to; `CUSTOM` goes last because every later token is a
/// subclass.
pub const SUBSCRIPTION: &str = "HEARTBEAT PRESENCE_IN CHANNEL_CREATE CHANNEL_ANSWER \
CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM sofia::register sofia::unregister sofia::expire";

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
    /// `connecting`, `connected` or `disconnected`.
    pub state: &'static str,
    /// Since when in that state.
    pub since: DateTime<Utc>,
    /// Why the link last went down.
    pub last_error: Option<String>,
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
}

impl NodeHandle {
    /// A handle in the `connecting` state.
    pub fn new(settings: NodeSettings) -> Self {
        let status = NodeStatus {
            name: settings.name.clone(),
            host: settings.host.clone(),
            port: settings.port,
            profile: settings.profile.clone(),
            state: "connecting",
            since: Utc::now(),
            last_error: None,
            reconnects: 0,
            queued: 0,
        };
        Self {
            settings,
            queue: Arc::new(Queue::default()),
            status: Arc::new(Mutex::new(status)),
        }
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

    fn set(&self, state: &'static str, error: Option<String>, reconnect: bool) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state {
            s.state = state;
            s.since = Utc::now();
        }
        if error.is_some() {
            s.last_error = error;
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
    #[error("subscribing failed: {0}")]
    Subscribe(EslError),
    #[error("a command failed on the wire: {0}")]
    Command(EslError),
    #[error("a frame could not be read: {0}")]
    Malformed(EslError),
    #[error("the link closed: {0}")]
    Closed(String),
    #[error("resynchronising failed: {0}")]
    Resync(String),
}

/// One node's link task.
pub struct Link {
    handle: NodeHandle,
    db: DatabaseConnection,
    mirrors: Mirrors,
    metrics: BridgeMetrics,
    inbound: mpsc::Sender<Inbound>,
    node: Arc<str>,
}

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
    ) -> Self {
        let node: Arc<str> = Arc::from(handle.settings.name.as_str());
        Self {
            handle,
            db,
            mirrors,
            metrics,
            inbound,
            node,
        }
    }

    /// Runs forever.
    pub async fn run(self) {
        let s = self.handle.settings.clone();
        let mut backoff = s.backoff_initial;
        let mut connected_before = false;
        loop {
            self.handle.set("connecting", None, false);
            let result = self.session(&mut connected_before).await;
            self.metrics
                .connected
                .with_label_values(&[&*self.node])
                .set(0);
            let reason = match &result {
                Ok(ended) | Err(ended) => ended.to_string(),
            };
            tracing::warn!(node = %self.node, reason = %reason, "FreeSWITCH link down");
            self.handle.set("disconnected", Some(reason), false);
            if result.is_ok() {
                // It was up: start the backoff over.
                backoff = s.backoff_initial;
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(s.backoff_max);
        }
    }

    /// One connection. `Ok(why)` when it was up and then ended; `Err(why)` when it failed on
    /// the way up (or ended in a way that is worth backing off from).
    async fn session(&self, connected_before: &mut bool) -> Result<LinkError, LinkError> {
        let s = &self.handle.settings;
        // A deep queue absorbs bursts while ingestion writes a batch; events that still do
        // not fit are dropped by the reader (waiting would stall command replies), counted,
        // and repaired by reloading the registration list.
        let options = EslConnectOptions::new()
            .with_connect_timeout(s.command_timeout)
            .with_event_queue_size(EVENT_QUEUE);
        let (client, mut events) =
            EslClient::connect_with_options(&s.host, s.port, s.password.expose_secret(), options)
                .await
                .map_err(LinkError::Connect)?;
        client.set_command_timeout(s.command_timeout);
        client.set_liveness_timeout(s.heartbeat_timeout);
        client
            .subscribe_events_raw(EventFormat::Plain, SUBSCRIPTION)
            .await
            .map_err(LinkError::Subscribe)?;
        if *connected_before {
            self.metrics
                .reconnects
                .with_label_values(&[&*self.node])
                .inc();
        }
        self.handle.set("connected", None, *connected_before);
        *connected_before = true;
        self.metrics
            .connected
            .with_label_values(&[&*self.node])
            .set(1);
        tracing::info!(node = %self.node, "FreeSWITCH link up");

        // Events are read by their own task, so a slow command never stalls them.
        let inbound = self.inbound.clone();
        let node = self.node.clone();
        let overflowed = Arc::new(tokio::sync::Notify::new());
        let overflow = overflowed.clone();
        let metrics = self.metrics.clone();
        let mut reader = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Some(Ok(event)) => {
                        let item = Inbound::Event {
                            node: node.clone(),
                            event: Box::new(event),
                        };
                        if inbound.send(item).await.is_err() {
                            return LinkError::Closed("ingestion stopped".to_owned());
                        }
                    }
                    Some(Err(EslError::QueueFull)) => {
                        metrics.ignored("queue_full");
                        overflow.notify_one();
                    }
                    Some(Err(e)) => return LinkError::Malformed(e),
                    None => return LinkError::Closed(events.status().to_string_lossy()),
                }
            }
        });

        let outcome = async {
            // What waited while the link was down goes first, once; then the resync.
            self.deliver_queue(&client).await?;
            self.resync(&client).await?;
            loop {
                self.deliver_queue(&client).await?;
                tokio::select! {
                    _ = self.handle.queue.notified() => {}
                    _ = overflowed.notified() => {
                        tracing::warn!(node = %self.node, "events were dropped; reloading the registrations");
                        self.reload_registrations(&client).await?;
                    }
                    ended = &mut reader => {
                        return Err(match ended {
                            Ok(e) => e,
                            Err(e) => LinkError::Closed(e.to_string()),
                        });
                    }
                }
            }
        }
        .await;
        reader.abort();
        let _ = client.disconnect().await;
        match outcome {
            // It was up: the next attempt starts from the first backoff step.
            Err(e @ (LinkError::Closed(_) | LinkError::Malformed(_) | LinkError::Command(_))) => {
                Ok(e)
            }
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
        let commands = resync_commands(&self.db, &self.mirrors)
            .await
            .map_err(|e| LinkError::Resync(e.to_string()))?;
        for command in &commands {
            self.send(client, command)
                .await
                .map_err(LinkError::Command)?;
        }
        self.reload_registrations(client).await
    }

    /// Replaces the node's registrations with `show registrations as json`.
    async fn reload_registrations(&self, client: &EslClient) -> Result<(), LinkError> {
        let reply = client
            .api("show registrations as json")
            .await
            .map_err(LinkError::Command)?;
        let rows = match reply.api_result() {
            Ok(body) => parse_show_registrations(body)
                .map_err(|e| LinkError::Resync(format!("show registrations: {e}")))?,
            Err(e) => return Err(LinkError::Resync(format!("show registrations: {e}"))),
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

/// The running bridge: the links, ingestion and the pusher. With no nodes configured it is
/// off and starts nothing.
#[derive(Debug)]
pub struct Bridge {
    nodes: Vec<NodeHandle>,
    metrics: BridgeMetrics,
}

/// Events the ESL reader holds for a link before it drops (see [`Link::session`]).
const EVENT_QUEUE: usize = 16 * 1024;

/// Room for events between the links and ingestion before the links wait.
const INBOUND_CAPACITY: usize = 16 * 1024;

impl Bridge {
    /// Starts a link per node, ingestion and the pusher (none of them when `nodes` is empty).
    /// Subscribes to `bus` before returning, so no change published afterwards is missed.
    pub fn start(
        nodes: Vec<NodeSettings>,
        db: DatabaseConnection,
        bus: &switchboard_domain::events::EventBus,
        lines: Arc<switchboard_domain::services::presence::LineStates>,
        metrics: BridgeMetrics,
    ) -> Self {
        let handles: Vec<NodeHandle> = nodes.into_iter().map(NodeHandle::new).collect();
        if handles.is_empty() {
            return Self {
                nodes: handles,
                metrics,
            };
        }
        let mirrors = Mirrors::default();
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let ingest = crate::ingest::Ingest::new(db.clone(), lines.clone(), metrics.clone());
        let changes = bus.subscribe();
        let ingest_db = db.clone();
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
        let pusher = crate::push::Pusher::new(
            db.clone(),
            handles.iter().map(|h| h.queue.clone()).collect(),
            mirrors.clone(),
        );
        tokio::spawn(pusher.run(bus.subscribe()));
        for handle in &handles {
            let link = Link::new(
                handle.clone(),
                db.clone(),
                mirrors.clone(),
                metrics.clone(),
                tx.clone(),
            );
            tokio::spawn(link.run());
        }
        Self {
            nodes: handles,
            metrics,
        }
    }

    /// True when nodes are configured.
    pub fn enabled(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Every node's link.
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.nodes.iter().map(NodeHandle::status).collect()
    }

    /// The metrics, to register with the application's registry.
    pub fn metrics(&self) -> &BridgeMetrics {
        &self.metrics
    }
}
