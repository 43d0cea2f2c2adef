//! The FreeSWITCH nodes the bridge links to: the static configuration list
//! (`[[freeswitch.nodes]]`) and the nodes registered through the API, kept current at run time:
//! every `freeswitch_node.changed` (from any switchboard node) and every Domain change (a
//! node's served SIP domains) makes the bridge reconcile its links.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use switchboard_domain::events::{ChangeKind, EventBus};
use switchboard_domain::services::freeswitch_nodes;
use switchboard_domain::telephony::secrets::SecretCipher;
use switchboard_esl_bridge::link::{Bridge, NodeSettings};
use switchboard_esl_bridge::outbound::FeatureCodes;
use tokio::sync::broadcast;

use crate::config::Config;

/// A node's settings with the configured link timings.
fn settings(
    config: &Config,
    name: String,
    host: String,
    port: u16,
    password: secrecy::SecretString,
    profile: String,
    serves: Option<Vec<String>>,
) -> NodeSettings {
    let link = &config.freeswitch.link;
    NodeSettings {
        name,
        host,
        port,
        password,
        profile,
        heartbeat_timeout: Duration::from_secs(link.heartbeat_timeout_secs),
        command_timeout: Duration::from_millis(link.command_timeout_ms),
        backoff_initial: Duration::from_millis(link.reconnect_initial_ms),
        backoff_max: Duration::from_secs(link.reconnect_max_secs),
        serves: serves.map(|domains| {
            Arc::new(
                domains
                    .into_iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
            )
        }),
    }
}

/// The nodes of the configuration file.
pub fn configured(config: &Config) -> Vec<NodeSettings> {
    config
        .freeswitch
        .nodes
        .iter()
        .map(|n| {
            settings(
                config,
                n.name.clone(),
                n.host.clone(),
                n.port,
                n.password.clone(),
                n.profile.clone(),
                None,
            )
        })
        .collect()
}

/// The configured nodes' names (reserved: no registered node may take one).
pub fn configured_names(config: &Config) -> Vec<String> {
    config
        .freeswitch
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect()
}

/// Every node the bridge should link to: the configured ones, then the registered ones.
pub async fn wanted(
    config: &Config,
    db: &DatabaseConnection,
    cipher: &SecretCipher,
) -> anyhow::Result<Vec<NodeSettings>> {
    let mut nodes = configured(config);
    for n in freeswitch_nodes::load_all(db, cipher)
        .await
        .map_err(|e| anyhow::anyhow!("loading the registered FreeSWITCH nodes: {e}"))?
    {
        nodes.push(settings(
            config,
            n.view.name,
            n.view.host,
            n.view.port,
            n.password,
            n.view.profile,
            n.sip_domains,
        ));
    }
    Ok(nodes)
}

/// The feature codes' outbound socket: opened once the bridge has a node.
pub struct OutboundSocket {
    config: Arc<Config>,
    db: DatabaseConnection,
    events: EventBus,
    open: AtomicBool,
}

impl OutboundSocket {
    /// Not open yet.
    pub fn new(config: Arc<Config>, db: DatabaseConnection, events: EventBus) -> Self {
        Self {
            config,
            db,
            events,
            open: AtomicBool::new(false),
        }
    }

    /// Opens it unless it is.
    pub fn open(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        if self.open.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let address = &self.config.freeswitch.outbound_socket;
        let listener = std::net::TcpListener::bind(address)
            .with_context(|| format!("cannot listen on freeswitch.outbound_socket {address}"))?;
        // Only FreeSWITCH may hand calls over: the same networks mod_xml_curl may ask from.
        let networks = self.config.freeswitch.xml_curl.networks();
        let bound = FeatureCodes::new(self.db.clone(), self.events.clone())
            .allow(move |ip| networks.iter().any(|n| n.contains(&ip)))
            .spawn(listener)?;
        tracing::info!(address = %bound, "feature-code outbound socket listening");
        Ok(())
    }
}

/// Follows the changes that move the node set, for as long as the bus lives.
pub fn follow(
    config: Arc<Config>,
    db: DatabaseConnection,
    cipher: Arc<SecretCipher>,
    bus: &EventBus,
    bridge: Arc<Bridge>,
    socket: Arc<OutboundSocket>,
) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e)
                    if !matches!(
                        e.kind,
                        ChangeKind::FreeswitchNodeChanged
                            | ChangeKind::DomainUpdated
                            | ChangeKind::DomainDeleted
                    ) =>
                {
                    continue;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
            match wanted(&config, &db, &cipher).await {
                Ok(nodes) => {
                    bridge.reconcile(nodes);
                    if bridge.enabled()
                        && let Err(e) = socket.open()
                    {
                        tracing::warn!(error = %e, "cannot open the feature-code outbound socket");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot reload the FreeSWITCH nodes"),
            }
        }
    });
}
