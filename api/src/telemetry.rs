//! Structured logs with `tracing`, as text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `log.level`. Calling it twice
/// (as tests do) keeps the first subscriber.
pub fn init(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&config.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Logs go to stderr; stdout carries only what a command prints for the operator.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// The shared change log's figures at scrape time: how far this node has read it, how many
/// changes of other nodes it applied and how late the last one arrived.
pub struct ClusterCollector {
    journal: std::sync::Arc<switchboard_domain::cluster::journal::Journal>,
    seq: prometheus::IntGauge,
    remote: prometheus::IntGauge,
    delay: prometheus::IntGauge,
}

impl ClusterCollector {
    /// Figures of `journal`.
    pub fn new(
        journal: std::sync::Arc<switchboard_domain::cluster::journal::Journal>,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            journal,
            seq: prometheus::IntGauge::new(
                "switchboard_cluster_change_seq",
                "The last change-log sequence number this node has applied",
            )?,
            remote: prometheus::IntGauge::new(
                "switchboard_cluster_remote_changes",
                "Changes made on other nodes that this node applied since it started",
            )?,
            delay: prometheus::IntGauge::new(
                "switchboard_cluster_remote_delay_ms",
                "Milliseconds between another node's commit and its application here, for the last one",
            )?,
        })
    }
}

impl prometheus::core::Collector for ClusterCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [&self.seq, &self.remote, &self.delay]
            .into_iter()
            .flat_map(prometheus::core::Collector::desc)
            .collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.seq.set(self.journal.cursor());
        self.remote
            .set(i64::try_from(self.journal.remote_changes()).unwrap_or(i64::MAX));
        self.delay
            .set(i64::try_from(self.journal.last_remote_delay_ms()).unwrap_or(i64::MAX));
        [&self.seq, &self.remote, &self.delay]
            .into_iter()
            .flat_map(prometheus::core::Collector::collect)
            .collect()
    }
}
