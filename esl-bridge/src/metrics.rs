//! The bridge's Prometheus metrics, registered into the application's registry so `/metrics`
//! shows them beside the HTTP metrics.

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counters and gauges of every link, labelled by node.
#[derive(Debug, Clone)]
pub struct BridgeMetrics {
    /// 1 while the node's link is up.
    pub connected: IntGaugeVec,
    /// Connections made after the first.
    pub reconnects: IntCounterVec,
    /// Commands FreeSWITCH accepted.
    pub commands_sent: IntCounterVec,
    /// Commands FreeSWITCH refused (`-ERR`) or that failed on the wire.
    pub commands_failed: IntCounterVec,
    /// Commands waiting for their link.
    pub commands_queued: IntGaugeVec,
    /// Events received, by node and event name (`CUSTOM` as its subclass).
    pub events_received: IntCounterVec,
    /// Events ignored, by reason (`unknown_domain`, `unknown_user`, `unusable`, `cross_domain`).
    pub events_ignored: IntCounterVec,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help).namespace("switchboard"), labels)
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help).namespace("switchboard"), labels)
}

impl BridgeMetrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> prometheus::Result<Self> {
        Ok(Self {
            connected: gauge(
                "freeswitch_connected",
                "1 while the Event Socket link to the node is up",
                &["node"],
            )?,
            reconnects: counter(
                "freeswitch_reconnects_total",
                "Event Socket connections made after the first",
                &["node"],
            )?,
            commands_sent: counter(
                "freeswitch_commands_sent_total",
                "Commands the node accepted",
                &["node"],
            )?,
            commands_failed: counter(
                "freeswitch_commands_failed_total",
                "Commands the node refused or that failed on the wire",
                &["node"],
            )?,
            commands_queued: gauge(
                "freeswitch_commands_queued",
                "Commands waiting for the node's link",
                &["node"],
            )?,
            events_received: counter(
                "freeswitch_events_received_total",
                "Events received from the node, by event name",
                &["node", "event"],
            )?,
            events_ignored: counter(
                "freeswitch_events_ignored_total",
                "Events ignored, by reason",
                &["reason"],
            )?,
        })
    }

    /// Registers every metric; one already registered (a second bridge in tests) is skipped.
    pub fn register(&self, registry: &Registry) {
        let collectors: [Box<dyn prometheus::core::Collector>; 7] = [
            Box::new(self.connected.clone()),
            Box::new(self.reconnects.clone()),
            Box::new(self.commands_sent.clone()),
            Box::new(self.commands_failed.clone()),
            Box::new(self.commands_queued.clone()),
            Box::new(self.events_received.clone()),
            Box::new(self.events_ignored.clone()),
        ];
        for c in collectors {
            if let Err(e) = registry.register(c) {
                tracing::warn!(error = %e, "a bridge metric was not registered");
            }
        }
    }

    /// Counts an ignored event.
    pub fn ignored(&self, reason: &str) {
        self.events_ignored.with_label_values(&[reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn every_metric_registers_and_shows_in_the_text_format() {
        let Ok(m) = BridgeMetrics::new() else {
            panic!("the metric definitions are valid");
        };
        let registry = Registry::new();
        m.register(&registry);
        m.connected.with_label_values(&["fs1"]).set(1);
        m.events_received
            .with_label_values(&["fs1", "sofia::register"])
            .inc();
        m.ignored("unknown_domain");
        let mut out = Vec::new();
        let encoded = prometheus::TextEncoder::new().encode(&registry.gather(), &mut out);
        assert!(encoded.is_ok());
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("switchboard_freeswitch_connected{node=\"fs1\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "switchboard_freeswitch_events_received_total{event=\"sofia::register\",node=\"fs1\"} 1"
        ));
        assert!(
            text.contains(
                "switchboard_freeswitch_events_ignored_total{reason=\"unknown_domain\"} 1"
            )
        );
    }
}
