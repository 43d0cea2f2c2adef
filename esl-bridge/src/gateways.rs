//! The gateways' state as FreeSWITCH reports it (`sofia::gateway_state`): registration state
//! and ping status per FreeSWITCH node, kept in memory (it is FreeSWITCH's, re-reported on
//! every change) and shown by the Gateways API.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use chrono::{DateTime, Utc};

/// One gateway's state on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatus {
    /// The node.
    pub node: String,
    /// `NOREG`, `TRYING`, `REGISTER`, `REGED`, `UNREGED`, `FAILED`, `FAIL_WAIT`, `EXPIRED`…
    pub state: String,
    /// `UP`, `DOWN` or `INVALID` when pinged.
    pub ping_status: Option<String>,
    /// The carrier's last answer (e.g. `200 OK`, `403 Forbidden`), when given.
    pub status: Option<String>,
    /// When it was reported.
    pub at: DateTime<Utc>,
}

/// Every gateway's state, by FreeSWITCH name and node.
#[derive(Debug, Default)]
pub struct GatewayStates {
    inner: RwLock<HashMap<String, BTreeMap<String, GatewayStatus>>>,
}

impl GatewayStates {
    /// Records a report.
    pub fn report(&self, gateway: &str, status: GatewayStatus) {
        if let Ok(mut m) = self.inner.write() {
            m.entry(gateway.to_owned())
                .or_default()
                .insert(status.node.clone(), status);
        }
    }

    /// Forgets a node's reports (its link is gone: it will report again).
    pub fn forget_node(&self, node: &str) {
        if let Ok(mut m) = self.inner.write() {
            for per_node in m.values_mut() {
                per_node.remove(node);
            }
        }
    }

    /// A gateway's state on every node that reported it.
    pub fn of(&self, gateway: &str) -> Vec<GatewayStatus> {
        self.inner
            .read()
            .ok()
            .and_then(|m| m.get(gateway).map(|n| n.values().cloned().collect()))
            .unwrap_or_default()
    }
}
