//! Change events: what changed, published on an in-process bus only after the transaction
//! that made the change committed. The ESL bridge turns them into FreeSWITCH commands; the SSE
//! stream turns them into live updates for clients.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// What kind of thing changed, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    /// An Extension was created.
    #[serde(rename = "extension.created")]
    ExtensionCreated,
    /// An Extension was changed.
    #[serde(rename = "extension.updated")]
    ExtensionUpdated,
    /// An Extension was deleted.
    #[serde(rename = "extension.deleted")]
    ExtensionDeleted,
    /// A Device was created.
    #[serde(rename = "device.created")]
    DeviceCreated,
    /// A Device was changed.
    #[serde(rename = "device.updated")]
    DeviceUpdated,
    /// A Device was deleted.
    #[serde(rename = "device.deleted")]
    DeviceDeleted,
    /// A Location was created.
    #[serde(rename = "location.created")]
    LocationCreated,
    /// A Location was changed.
    #[serde(rename = "location.updated")]
    LocationUpdated,
    /// A Location was deleted.
    #[serde(rename = "location.deleted")]
    LocationDeleted,
    /// A Number was assigned to the Domain.
    #[serde(rename = "number.created")]
    NumberCreated,
    /// A Number of the Domain was changed (description, destination).
    #[serde(rename = "number.updated")]
    NumberUpdated,
    /// A Number left the Domain (deleted, unassigned or moved to another Domain).
    #[serde(rename = "number.deleted")]
    NumberDeleted,
    /// The Domain's calling settings changed.
    #[serde(rename = "calling_settings.updated")]
    CallingSettingsUpdated,
    /// Many rows were imported at once.
    #[serde(rename = "import.completed")]
    ImportCompleted,
    /// A Domain was created.
    #[serde(rename = "domain.created")]
    DomainCreated,
    /// The Domain itself changed (enabled, SIP domain …).
    #[serde(rename = "domain.updated")]
    DomainUpdated,
    /// The Domain was deleted.
    #[serde(rename = "domain.deleted")]
    DomainDeleted,
    /// A hot-desk session started (an Extension logged in to a Device).
    #[serde(rename = "session.started")]
    SessionStarted,
    /// A hot-desk session ended (logout, admin, replaced, elsewhere, auto-logout).
    #[serde(rename = "session.ended")]
    SessionEnded,
    /// An Extension signed in to a Location.
    #[serde(rename = "location.signed_in")]
    LocationSignedIn,
    /// An Extension signed out of a Location (or was replaced by signing in elsewhere).
    #[serde(rename = "location.signed_out")]
    LocationSignedOut,
    /// An Extension's presence changed (user status, DND, or the aggregate telephone status).
    #[serde(rename = "presence.changed")]
    PresenceChanged,
    /// A Gateway was created (on the platform: the event's Domain is nil).
    #[serde(rename = "gateway.created")]
    GatewayCreated,
    /// A Gateway was changed.
    #[serde(rename = "gateway.updated")]
    GatewayUpdated,
    /// A Gateway was deleted.
    #[serde(rename = "gateway.deleted")]
    GatewayDeleted,
    /// An Extension group was created, changed or deleted (the logout action of its members).
    #[serde(rename = "extension_group.changed")]
    ExtensionGroupChanged,
    /// Provisioning changed: a template, a Model Layout, what a group may choose, the Domain's
    /// provisioning settings or a Device's provisioning credential.
    #[serde(rename = "provisioning.changed")]
    ProvisioningChanged,
    /// What the Domain's calls may use changed (an Outbound Route, a Gateway it uses or its
    /// grant): the dialplan is recompiled, nothing is pushed.
    #[serde(rename = "routing.changed")]
    RoutingChanged,
    /// A ring group, IVR menu or time condition was created (`detail.kind` says which).
    #[serde(rename = "call_flow.created")]
    CallFlowCreated,
    /// A call flow was changed (a time condition's override included).
    #[serde(rename = "call_flow.updated")]
    CallFlowUpdated,
    /// A call flow was deleted.
    #[serde(rename = "call_flow.deleted")]
    CallFlowDeleted,
    /// An emergency number was dialled (`detail`: who, which phone, which Location, its
    /// emergency address, the caller ID sent and the route).
    #[serde(rename = "call.emergency")]
    CallEmergency,
    /// A FreeSWITCH node was registered, changed or removed through the API (platform: the
    /// event's Domain is nil); every switchboard node adjusts its links.
    #[serde(rename = "freeswitch_node.changed")]
    FreeswitchNodeChanged,
}

impl ChangeKind {
    /// True for a change that cannot touch a Domain's routing rows (Outbound Routes and their
    /// gateways, the gateways it may use, Numbers, call flows, calling settings): people,
    /// phones, Locations and their bindings. The directory recompiles such a Domain from its
    /// bindings alone and keeps the routing it compiled before. Creating or deleting an
    /// Extension is not one of them (a deletion clears the Numbers and flows that named it),
    /// nor is anything else not listed here.
    pub const fn keeps_routing(self) -> bool {
        matches!(
            self,
            Self::DeviceCreated
                | Self::DeviceUpdated
                | Self::DeviceDeleted
                | Self::ExtensionUpdated
                | Self::LocationCreated
                | Self::LocationUpdated
                | Self::LocationDeleted
                | Self::SessionStarted
                | Self::SessionEnded
                | Self::LocationSignedIn
                | Self::LocationSignedOut
                | Self::PresenceChanged
        )
    }

    /// The event's name, as on the SSE stream.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExtensionCreated => "extension.created",
            Self::ExtensionUpdated => "extension.updated",
            Self::ExtensionDeleted => "extension.deleted",
            Self::DeviceCreated => "device.created",
            Self::DeviceUpdated => "device.updated",
            Self::DeviceDeleted => "device.deleted",
            Self::LocationCreated => "location.created",
            Self::LocationUpdated => "location.updated",
            Self::LocationDeleted => "location.deleted",
            Self::NumberCreated => "number.created",
            Self::NumberUpdated => "number.updated",
            Self::NumberDeleted => "number.deleted",
            Self::CallingSettingsUpdated => "calling_settings.updated",
            Self::ImportCompleted => "import.completed",
            Self::DomainCreated => "domain.created",
            Self::DomainUpdated => "domain.updated",
            Self::DomainDeleted => "domain.deleted",
            Self::SessionStarted => "session.started",
            Self::SessionEnded => "session.ended",
            Self::LocationSignedIn => "location.signed_in",
            Self::LocationSignedOut => "location.signed_out",
            Self::PresenceChanged => "presence.changed",
            Self::GatewayCreated => "gateway.created",
            Self::GatewayUpdated => "gateway.updated",
            Self::GatewayDeleted => "gateway.deleted",
            Self::ExtensionGroupChanged => "extension_group.changed",
            Self::ProvisioningChanged => "provisioning.changed",
            Self::RoutingChanged => "routing.changed",
            Self::CallFlowCreated => "call_flow.created",
            Self::CallFlowUpdated => "call_flow.updated",
            Self::CallFlowDeleted => "call_flow.deleted",
            Self::CallEmergency => "call.emergency",
            Self::FreeswitchNodeChanged => "freeswitch_node.changed",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The Domain it happened in.
    pub domain_id: Uuid,
    /// The Domain's SIP domain (FreeSWITCH's realm for the users below).
    pub sip_domain: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The changed resource.
    pub entity_id: Uuid,
    /// When it was committed.
    pub at: DateTime<Utc>,
    /// SIP users whose directory answer may have changed (FreeSWITCH must re-read them).
    pub sip_users: Vec<String>,
    /// SIP users whose registrations must be dropped (credentials rotated, disabled, deleted).
    pub drop_registrations: Vec<String>,
    /// Registered phones (Device SIP users) whose identity changed while their registration
    /// stays: they are asked to re-read their configuration (`check_sync`).
    pub check_sync: Vec<String>,
    /// What happened, for events that are not a stored resource to reload (`call.emergency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ChangeEvent {
    /// An event with no SIP side effects; add them with the builder methods.
    pub fn new(
        domain_id: Uuid,
        sip_domain: &str,
        kind: ChangeKind,
        entity_id: Uuid,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            domain_id,
            sip_domain: sip_domain.to_owned(),
            kind,
            entity_id,
            at,
            sip_users: Vec::new(),
            drop_registrations: Vec::new(),
            check_sync: Vec::new(),
            detail: None,
        }
    }

    /// Marks SIP users whose directory entry changed.
    pub fn refresh(mut self, users: impl IntoIterator<Item = String>) -> Self {
        for u in users {
            if !self.sip_users.contains(&u) {
                self.sip_users.push(u);
            }
        }
        self
    }

    /// Marks SIP users whose registrations must be dropped (they are refreshed too).
    pub fn drop_registrations(mut self, users: impl IntoIterator<Item = String>) -> Self {
        for u in users {
            if !self.drop_registrations.contains(&u) {
                self.drop_registrations.push(u.clone());
            }
            if !self.sip_users.contains(&u) {
                self.sip_users.push(u);
            }
        }
        self
    }
}

impl ChangeEvent {
    /// Marks Devices whose identity changed and whose registration stays (they are refreshed
    /// too); one whose registration is dropped is never asked to re-sync.
    pub fn check_sync(mut self, users: impl IntoIterator<Item = String>) -> Self {
        for u in users {
            if !self.check_sync.contains(&u) {
                self.check_sync.push(u.clone());
            }
            if !self.sip_users.contains(&u) {
                self.sip_users.push(u);
            }
        }
        self
    }
}

/// A synchronous observer of published events (see [`EventBus::observe`]).
pub type Observer = Arc<dyn Fn(&ChangeEvent) + Send + Sync>;

/// Where [`EventBus::publish`] hands committed changes on to be written to the change log (see
/// [`crate::cluster::journal`]).
pub type JournalSink = tokio::sync::mpsc::UnboundedSender<Arc<ChangeEvent>>;

/// The in-process bus. Cloning shares the bus.
///
/// A change made on this node is [published](Self::publish): the observers and subscribers
/// hear it at once, and the journal (when set) writes it to the change log for the other nodes
/// and the sequenced consumers. A change another node made comes back from the change log
/// through [`publish_remote`](Self::publish_remote): heard here, not journaled again.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<ChangeEvent>>,
    observers: Arc<RwLock<Vec<Observer>>>,
    journal: Arc<RwLock<Option<JournalSink>>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("receivers", &self.sender.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus {
    /// A bus keeping up to `capacity` events for slow subscribers (who then see a lag).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            observers: Arc::default(),
            journal: Arc::default(),
        }
    }

    /// Hands every change published from now on to `sink` too (the change log's writer).
    pub fn set_journal(&self, sink: JournalSink) {
        if let Ok(mut journal) = self.journal.write() {
            *journal = Some(sink);
        }
    }

    /// Publishes committed changes. Call only after the transaction committed.
    ///
    /// Observers run first, on the caller's thread, so that when `publish` returns every
    /// observer has seen the change (the directory uses this to never answer from a view older
    /// than a change the API already confirmed).
    pub fn publish(&self, events: impl IntoIterator<Item = ChangeEvent>) {
        let journal = self.journal.read().ok().and_then(|j| j.clone());
        for event in events {
            let event = self.deliver(event);
            if let Some(journal) = &journal {
                // Closed only when the process is stopping.
                let _ = journal.send(event);
            }
        }
    }

    /// Delivers a change another node committed (read from the change log) to this node's
    /// observers and subscribers, without journaling it again.
    pub fn publish_remote(&self, event: ChangeEvent) -> Arc<ChangeEvent> {
        self.deliver(event)
    }

    fn deliver(&self, event: ChangeEvent) -> Arc<ChangeEvent> {
        if let Ok(observers) = self.observers.read() {
            for observe in observers.iter() {
                observe(&event);
            }
        }
        let event = Arc::new(event);
        // No subscriber is fine: nobody needs to hear it.
        let _ = self.sender.send(Arc::clone(&event));
        event
    }

    /// A new subscription, receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeEvent>> {
        self.sender.subscribe()
    }

    /// Registers a synchronous observer, called inside [`publish`](Self::publish) for every
    /// event. It must be quick and must not block (mark something stale, wake a task).
    pub fn observe(&self, observer: Observer) {
        if let Ok(mut observers) = self.observers.write() {
            observers.push(observer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_published_events_in_order() {
        let bus = EventBus::new(8);
        let mut rx = bus.subscribe();
        let d = Uuid::now_v7();
        let a = ChangeEvent::new(
            d,
            "acme.example",
            ChangeKind::DeviceCreated,
            Uuid::now_v7(),
            Utc::now(),
        )
        .refresh(["d1".to_owned()]);
        let b = ChangeEvent::new(
            d,
            "acme.example",
            ChangeKind::DeviceDeleted,
            Uuid::now_v7(),
            Utc::now(),
        )
        .drop_registrations(["d1".to_owned(), "d1".to_owned()]);
        bus.publish([a.clone(), b.clone()]);
        assert_eq!(rx.recv().await.ok().as_deref(), Some(&a));
        let got = rx.recv().await.ok();
        assert_eq!(got.as_deref(), Some(&b));
        assert_eq!(b.drop_registrations, vec!["d1".to_owned()]);
        assert_eq!(b.sip_users, vec!["d1".to_owned()]);
        assert_eq!(
            serde_json::to_value(ChangeKind::DeviceCreated).ok(),
            Some(serde_json::json!("device.created"))
        );
    }

    #[test]
    fn observers_have_seen_an_event_when_publish_returns() {
        let bus = EventBus::new(8);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        bus.observe(Arc::new(move |e: &ChangeEvent| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.kind);
            }
        }));
        let d = Uuid::now_v7();
        bus.publish([
            ChangeEvent::new(d, "a.example", ChangeKind::DomainCreated, d, Utc::now()),
            ChangeEvent::new(d, "a.example", ChangeKind::DomainUpdated, d, Utc::now()),
        ]);
        let got = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(got, [ChangeKind::DomainCreated, ChangeKind::DomainUpdated]);
    }
}
