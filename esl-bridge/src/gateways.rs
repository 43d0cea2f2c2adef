//! The gateways' state as FreeSWITCH reports it (`sofia::gateway_state`): registration state
//! and ping status per FreeSWITCH node, kept in memory (it is FreeSWITCH's, re-reported on
//! every change) and shown by the Gateways API.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use chrono::{DateTime, Utc};

/// The names of switchboard's gateways (`sb_…`) on `profile` in the body of `sofia xmlstatus
/// gateway` (every gateway of every profile).
pub fn parse_loaded_gateways(profile: &str, body: &str) -> Result<Vec<String>, String> {
    let doc = roxmltree::Document::parse(body.trim()).map_err(|e| e.to_string())?;
    let text = |gw: roxmltree::Node<'_, '_>, tag: &str| {
        gw.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("gateway"))
        .filter(|gw| text(*gw, "profile") == profile)
        .map(|gw| text(gw, "name"))
        .filter(|name| name.starts_with("sb_"))
        .collect())
}

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

#[cfg(test)]
mod loaded_tests {
    use super::parse_loaded_gateways;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn only_our_gateways_on_the_profile_are_listed() {
        let body = r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<gateways>
  <gateway>
    <name>sb_0192f0c8a7e34c1d9e2b7a1c3d4e5f60</name>
    <profile>internal</profile>
    <state>NOREG</state>
  </gateway>
  <gateway>
    <name>operators-own</name>
    <profile>internal</profile>
  </gateway>
  <gateway>
    <name>sb_00000000000000000000000000000001</name>
    <profile>external</profile>
  </gateway>
</gateways>
"#;
        assert_eq!(
            parse_loaded_gateways("internal", body).unwrap(),
            ["sb_0192f0c8a7e34c1d9e2b7a1c3d4e5f60"]
        );
        assert!(
            parse_loaded_gateways("internal", "<gateways>\n</gateways>\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_loaded_gateways("internal", "-ERR no reply").is_err());
    }
}
