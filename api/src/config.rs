//! Configuration in layers: built-in defaults → optional TOML file → `SWITCHBOARD_*`
//! environment variables (nested fields with `__`, e.g. `SWITCHBOARD_HTTP__PORT=8080`).
//!
//! Every field is documented in `switchboard.example.toml`. [`Config::load`] validates
//! everything and names the offending field; secrets are [`SecretString`]s, whose `Debug`
//! prints `[REDACTED]`.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use switchboard_domain::telephony::secrets::SecretCipher;

/// How strict start-up is about secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Convenient defaults: generated keys are created and kept in the database.
    #[default]
    Development,
    /// Refuses to start without explicitly configured keys.
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `development` or `production`.
    pub mode: Mode,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Database pool and migrations.
    pub database: DatabaseConfig,
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Login sessions and tokens.
    pub auth: AuthConfig,
    /// The first platform administrator.
    pub bootstrap: BootstrapConfig,
    /// Encryption of SIP secrets at rest.
    pub secrets: SecretsConfig,
    /// FreeSWITCH: the mod_xml_curl endpoint, the Event Socket nodes, the outbound socket.
    pub freeswitch: FreeswitchConfig,
    /// The call history: CDR spool, recordings, purge.
    pub history: HistoryConfig,
    /// Voicemail: where switchboard reads the messages' audio.
    pub voicemail: VoicemailConfig,
    /// Outgoing e-mail (voicemail to e-mail) over SMTP.
    pub mail: MailConfig,
    /// Phone provisioning (`/provision/…`).
    pub provisioning: ProvisioningConfig,
    /// Running several switchboard nodes on one PostgreSQL.
    pub cluster: ClusterConfig,
}

/// Several nodes on one PostgreSQL: this node's name and the shared change log.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's name, shown as the owner of the FreeSWITCH links it drives and written
    /// beside its changes. Unset: `<host name>:<http.port>`. Two running nodes must not share
    /// one.
    pub node_name: Option<String>,
    /// Hours the change log keeps changes: how far back a live-stream client can resume
    /// (`Last-Event-ID`) and a node cut off from the database can catch up.
    pub change_log_hours: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_name: None,
            change_log_hours: 24,
        }
    }
}

impl Config {
    /// This node's name (see [`ClusterConfig::node_name`]), given the port it listens on.
    pub fn node_name(&self, port: u16) -> String {
        if let Some(name) = &self.cluster.node_name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "switchboard".to_owned());
        format!("{host}:{port}")
    }
}

/// Phone provisioning: what every phone's file says about the platform, and how the
/// `/provision/…` endpoint authenticates phones.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisioningConfig {
    /// The URL phones reach the endpoint at, up to and including `/provision` (behind the
    /// operator's TLS proxy: `https://pbx.example.net/provision`). Written into every file for
    /// the next fetch. Unset: `http://<http.host>:<http.port>/provision`.
    pub base_url: Option<String>,
    /// Host phones send SIP to (the FreeSWITCH nodes' name). Unset: the Domain's SIP domain.
    pub sip_proxy: Option<String>,
    /// SIP port.
    pub sip_port: u16,
    /// `udp`, `tcp` or `tls`.
    pub sip_transport: String,
    /// Registration expiry phones ask for, in seconds.
    pub register_expires: u32,
    /// Seconds between a phone's periodic fetches (a change asks it at once anyway).
    pub resync_secs: u32,
    /// NTP server for Domains that name none.
    pub ntp_server: String,
    /// Codecs in order of preference (FreeSWITCH names).
    pub codecs: Vec<String>,
    /// Accept HTTP basic authentication on a plain-HTTP request. Off: basic only over TLS (a
    /// trusted proxy's `X-Forwarded-Proto: https`), digest always.
    pub allow_basic_without_tls: bool,
    /// Failed fetches from one address within `failure_window_secs` before it is answered
    /// 429 with `Retry-After` until the window passes.
    pub max_failures: u32,
    /// The window of `max_failures`, in seconds.
    pub failure_window_secs: u64,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            sip_proxy: None,
            sip_port: 5060,
            sip_transport: "udp".into(),
            register_expires: 600,
            resync_secs: 86_400,
            ntp_server: "pool.ntp.org".into(),
            codecs: vec!["G722".into(), "PCMA".into(), "PCMU".into(), "opus".into()],
            allow_basic_without_tls: false,
            max_failures: 20,
            failure_window_secs: 300,
        }
    }
}

impl Config {
    /// The provisioning base URL phones are told to come back to.
    pub fn provisioning_url(&self) -> String {
        match &self.provisioning.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}/provision", self.http.host, self.http.port),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte ("SMTPS"), usually port 465.
    Tls,
    /// No encryption: only for a relay on this host or a trusted network.
    None,
}

/// Outgoing e-mail. Voicemail to e-mail queues each message's e-mail in the database
/// (`voicemail_emails`) and a sender on every node delivers what is due, retrying with
/// exponential backoff until `max_attempts`; every attempt's outcome is shown in the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// The SMTP server. Unset: e-mail is off and queued e-mails fail at once, saying so.
    pub smtp_host: Option<String>,
    /// Its port.
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    pub tls: MailTls,
    /// User name, when the server wants one.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<SecretString>,
    /// The sender, e.g. `Voicemail <voicemail@example.com>`.
    pub from: String,
    /// Attempts before an e-mail is given up (`failed`, retried on demand through the API).
    pub max_attempts: u32,
    /// Seconds before the second attempt; doubles up to `retry_max_secs`.
    pub retry_initial_secs: u64,
    /// Longest wait between two attempts, in seconds.
    pub retry_max_secs: u64,
    /// Seconds between two looks for due e-mails.
    pub poll_interval_secs: u64,
    /// Seconds one delivery may take (connecting, sending).
    pub timeout_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: None,
            smtp_port: 587,
            tls: MailTls::Starttls,
            username: None,
            password: None,
            from: "Voicemail <voicemail@localhost>".to_owned(),
            max_attempts: 8,
            retry_initial_secs: 60,
            retry_max_secs: 3600,
            poll_interval_secs: 5,
            timeout_secs: 30,
        }
    }
}

/// Voicemail. The messages live in mod_voicemail's store on the FreeSWITCH node: switchboard
/// lists, marks, moves and deletes them through the node's Event Socket, and reads their
/// audio from the node's storage folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    /// FreeSWITCH's storage folder (its `storage_dir`, e.g. `/var/lib/freeswitch/storage`) as
    /// this host sees it: the same folder, or a mount of it. Below it each message is
    /// `voicemail/default/<SIP domain>/<box>/msg_<id>.wav`. Unset: messages can be listed,
    /// marked, moved and deleted, but their audio cannot be downloaded.
    pub storage_dir: Option<PathBuf>,
}

/// The call history (CDRs from FreeSWITCH's `mod_json_cdr`, posted to `/freeswitch/cdr` with
/// the mod_xml_curl credentials).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// `mod_json_cdr`'s `err-log-dir` when it is on this host (or a shared mount): the CDRs
    /// FreeSWITCH could not post after its retries (switchboard down longer than they last).
    /// switchboard imports every `*.cdr.json` there at start and every
    /// `spool_interval_secs`, then deletes it; a file it cannot read is renamed `*.bad`.
    /// Unset: nothing is imported (keep the files and post them with `switchboard
    /// import-cdrs` — see the README).
    pub cdr_spool_dir: Option<PathBuf>,
    /// Seconds between two looks at `cdr_spool_dir`.
    pub spool_interval_secs: u64,
    /// Where switchboard reads call recordings: `freeswitch.recordings_dir` as this host
    /// sees it (the same folder, or a mount of it; below it each recording is
    /// `<SIP domain>/<yyyy-mm-dd>/<call uuid>.wav`). Unset: `freeswitch.recordings_dir` itself
    /// when it is an absolute path; otherwise recordings cannot be downloaded.
    pub recordings_dir: Option<PathBuf>,
    /// Seconds between two purges of calls older than their Domain's `call_history_days`.
    pub purge_interval_secs: u64,
    /// CDRs that may wait for the writer (which stores whatever has queued up in one
    /// transaction). Beyond that a post is answered 503 with `Retry-After` and FreeSWITCH
    /// retries it.
    pub cdr_queue: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            cdr_spool_dir: None,
            spool_interval_secs: 10,
            recordings_dir: None,
            purge_interval_secs: 3600,
            cdr_queue: 1024,
        }
    }
}

impl Config {
    /// The folder switchboard reads recordings from (see [`HistoryConfig::recordings_dir`]).
    pub fn recordings_local_dir(&self) -> Option<PathBuf> {
        match &self.history.recordings_dir {
            Some(local) => Some(local.clone()),
            None if self.freeswitch.recordings_dir.starts_with('/') => {
                Some(PathBuf::from(&self.freeswitch.recordings_dir))
            }
            None => None,
        }
    }
}

/// Everything FreeSWITCH-facing.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreeswitchConfig {
    /// The mod_xml_curl endpoint `POST /freeswitch/xml`.
    pub xml_curl: XmlCurlConfig,
    /// `host:port` of the outbound-socket server for the feature codes `*11`/`*12`/`*13`: the
    /// dialplan hands those calls to it (`socket <address> async full`) and the bridge listens
    /// on it.
    pub outbound_socket: String,
    /// Where FreeSWITCH writes call recordings (a path on the FreeSWITCH host; each Domain
    /// gets `<SIP domain>/<yyyy-mm-dd>/<call uuid>.wav` below it). The default names
    /// FreeSWITCH's own `recordings_dir`.
    pub recordings_dir: String,
    /// The FreeSWITCH nodes the bridge keeps an Event Socket link to (none: the bridge is off).
    pub nodes: Vec<NodeConfig>,
    /// How every Event Socket link detects a dead peer and reconnects.
    pub link: LinkConfig,
}

impl Default for FreeswitchConfig {
    fn default() -> Self {
        Self {
            xml_curl: XmlCurlConfig::default(),
            outbound_socket: "127.0.0.1:8084".to_owned(),
            recordings_dir: switchboard_esl_bridge::directory::DEFAULT_RECORDINGS_DIR.to_owned(),
            nodes: Vec::new(),
            link: LinkConfig::default(),
        }
    }
}

/// Liveness and reconnection of the Event Socket links.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Seconds without any traffic before a link is declared dead (FreeSWITCH sends
    /// `HEARTBEAT` every 20 s, so keep it well above that).
    pub heartbeat_timeout_secs: u64,
    /// Milliseconds a command may wait for its reply before the link is declared dead.
    pub command_timeout_ms: u64,
    /// First wait before reconnecting, in milliseconds; it doubles up to `reconnect_max_secs`,
    /// each wait jittered over its upper half.
    pub reconnect_initial_ms: u64,
    /// Longest wait before reconnecting, in seconds.
    pub reconnect_max_secs: u64,
    /// How often expired registrations are removed (and their phones shown unregistered), in
    /// seconds.
    pub sweep_interval_secs: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout_secs: 60,
            command_timeout_ms: 5000,
            reconnect_initial_ms: 500,
            reconnect_max_secs: 30,
            sweep_interval_secs: 30,
        }
    }
}

/// The mod_xml_curl endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XmlCurlConfig {
    /// Basic-auth user name FreeSWITCH sends (`gateway-credentials="user:password"`).
    pub username: String,
    /// Basic-auth password. Required in production; in development, when unset, requests are
    /// accepted without credentials (from the allowed networks only) and a warning is logged.
    pub password: Option<SecretString>,
    /// Source networks (CIDRs) allowed to ask; anything else gets 403. Default: loopback.
    pub allowed_networks: Vec<String>,
    /// `cacheable` in milliseconds on every user answer (FreeSWITCH's user cache; the bridge
    /// flushes entries on change). 0 leaves users uncached.
    pub cacheable_ms: u64,
    /// Largest accepted request body in bytes (real requests are 2–6 KiB).
    pub max_body_bytes: usize,
}

impl Default for XmlCurlConfig {
    fn default() -> Self {
        Self {
            username: "freeswitch".to_owned(),
            password: None,
            allowed_networks: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
            cacheable_ms: 300_000,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl XmlCurlConfig {
    /// The allowed networks, parsed (invalid entries are refused by [`Config::validate`]).
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// `10.0.0.0/8` or a bare address (`192.0.2.7` = a /32).
fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// One FreeSWITCH node reached over the inbound Event Socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// A name for logs, metrics and `GET /api/v1/freeswitch/nodes` (unique).
    pub name: String,
    /// Host name or address of its `event_socket` listener.
    pub host: String,
    /// Its port (FreeSWITCH's default is 8021).
    #[serde(default = "default_esl_port")]
    pub port: u16,
    /// The `event_socket` password.
    pub password: SecretString,
    /// The sofia profile phones register on (for `flush_inbound_reg`, `check_sync`).
    #[serde(default = "default_sofia_profile")]
    pub profile: String,
}

fn default_esl_port() -> u16 {
    8021
}

fn default_sofia_profile() -> String {
    "internal".to_owned()
}

/// Encryption of SIP secrets at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 random bytes, base64 (`openssl rand -base64 32`). Required in production. In
    /// development, when unset, the key is read from `key_file`, or generated into it.
    pub encryption_key: Option<SecretString>,
    /// Where the development key is kept (created with mode 0600 on first start).
    pub key_file: PathBuf,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            encryption_key: None,
            key_file: PathBuf::from("switchboard.key"),
        }
    }
}

/// Database settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// Seconds to wait for a free connection.
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations when `serve` starts.
    pub auto_migrate: bool,
}

/// HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    /// Worker threads (default: one per CPU core).
    pub workers: Option<usize>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted body of a bulk import (`POST …/import`) in bytes.
    pub max_import_bytes: usize,
    /// Seconds a request body may take to arrive once the request head has; slower is 408.
    pub body_timeout_secs: u64,
    /// Origins (e.g. `https://app.example.com`) allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Reverse proxies (CIDRs or addresses) whose `X-Forwarded-For` / `Forwarded` headers are
    /// believed: behind one, the client address (per-address login throttling and PIN lockout,
    /// the session's address) is the rightmost untrusted hop. Empty: the direct peer.
    pub trusted_proxies: Vec<String>,
}

impl HttpConfig {
    /// The trusted proxies, parsed (invalid entries are refused by [`Config::validate`]).
    pub fn trusted_proxy_networks(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,switchboard_api=debug`.
    pub level: String,
}

/// Authentication settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Key that signs access tokens (at least 32 characters). In development it is generated
    /// and kept in the database when unset; production requires it.
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of an access token in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a login session (and its refresh tokens) in days.
    pub session_ttl_days: u32,
    /// Lifetime of invitation and password-reset tokens in hours.
    pub password_token_ttl_hours: u32,
    /// Failed logins per account or per client address within the window before 429.
    pub login_max_failures: u32,
    /// The throttling window in seconds.
    pub login_window_secs: u64,
    /// How long a live-stream ticket may be redeemed after it was minted, in seconds.
    pub stream_ticket_ttl_secs: u64,
}

/// First-administrator settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Email of the administrator created on an empty database.
    pub admin_email: Option<String>,
    /// Its password; when unset a random one is generated and printed once.
    pub admin_password: Option<SecretString>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Development,
            database_url: "sqlite://switchboard.db?mode=rwc".to_owned(),
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            bootstrap: BootstrapConfig::default(),
            secrets: SecretsConfig::default(),
            freeswitch: FreeswitchConfig::default(),
            history: HistoryConfig::default(),
            voicemail: VoicemailConfig::default(),
            mail: MailConfig::default(),
            provisioning: ProvisioningConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout_secs: 5,
            auto_migrate: true,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            workers: None,
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 16 * 1024 * 1024,
            body_timeout_secs: 30,
            cors_allowed_origins: Vec::new(),
            shutdown_timeout_secs: 30,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 900,
            session_ttl_days: 30,
            password_token_ttl_hours: 72,
            login_max_failures: 5,
            login_window_secs: 900,
            stream_ticket_ttl_secs: 30,
        }
    }
}

/// A configuration problem, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `http.port`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// One or more configuration problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// The environment variable naming a configuration file.
pub const CONFIG_FILE_ENV: &str = "SWITCHBOARD_CONFIG";

impl Config {
    /// The layered sources: defaults (serde) → `file` if given → `SWITCHBOARD_*` variables.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(
            Env::prefixed("SWITCHBOARD_")
                .split("__")
                // Not configuration fields: the file pointer and the tools' own variables (the test
                // suites', the live suite's FreeSWITCH folder, the benchmarks' binary, the API key
                // `switchboard import` sends), so a shell that exports them still starts the server.
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !matches!(
                        key.as_str(),
                        "config" | "freeswitch_dir" | "bin" | "api_key"
                    ) && !key.starts_with("test_")
                }),
        )
    }

    /// Loads and validates the configuration from `file` (or `SWITCHBOARD_CONFIG`) and the
    /// environment.
    pub fn load(file: Option<PathBuf>) -> Result<Self, ConfigErrors> {
        let file = file.or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
        if let Some(path) = &file
            && !path.is_file()
        {
            return Err(ConfigErrors(vec![ConfigError {
                field: "--config".to_owned(),
                message: format!("no configuration file at {}", path.display()),
            }]));
        }
        Self::from_figment(Self::figment(file.as_deref()))
    }

    /// Extracts and validates a configuration from any figment (used by tests).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigErrors> {
        let config: Config = figment.extract().map_err(|errors| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|e| {
                        let field = if e.path.is_empty() {
                            "(root)".to_owned()
                        } else {
                            e.path.join(".")
                        };
                        let source = e
                            .metadata
                            .as_ref()
                            .map(|m| match &m.source {
                                Some(src) => format!(" (from {} {src})", m.name),
                                None => format!(" (from {})", m.name),
                            })
                            .unwrap_or_default();
                        ConfigError {
                            field,
                            message: format!("{}{source}", e.kind),
                        }
                    })
                    .collect(),
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| {
            errors.push(ConfigError {
                field: field.to_owned(),
                message,
            })
        };
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            fail(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://".into(),
            );
        }
        if let Some(name) = &self.cluster.node_name
            && (name.trim().is_empty() || name.len() > 100)
        {
            fail(
                "cluster.node_name",
                "must be 1 to 100 characters when set".into(),
            );
        }
        if self.cluster.change_log_hours == 0 {
            fail("cluster.change_log_hours", "must be at least 1".into());
        }
        if self.database.max_connections == 0 {
            fail("database.max_connections", "must be at least 1".into());
        }
        if self.http.host.parse::<IpAddr>().is_err() && self.http.host != "localhost" {
            fail(
                "http.host",
                format!("{:?} is not an IP address (or localhost)", self.http.host),
            );
        }
        if self.http.workers == Some(0) {
            fail("http.workers", "must be at least 1 when set".into());
        }
        if self.http.max_body_bytes < 1024 {
            fail("http.max_body_bytes", "must be at least 1024".into());
        }
        if self.http.max_import_bytes < 1024 {
            fail("http.max_import_bytes", "must be at least 1024".into());
        }
        if !(1..=3600).contains(&self.http.body_timeout_secs) {
            fail("http.body_timeout_secs", "must be 1–3600".into());
        }
        for (i, origin) in self.http.cors_allowed_origins.iter().enumerate() {
            if !is_origin(origin) {
                fail(
                    &format!("http.cors_allowed_origins[{i}]"),
                    format!("{origin:?} is not an origin like https://app.example.com[:port]"),
                );
            }
        }
        for (i, proxy) in self.http.trusted_proxies.iter().enumerate() {
            if parse_network(proxy).is_none() {
                fail(
                    &format!("http.trusted_proxies[{i}]"),
                    format!("{proxy:?} is not a network like 10.0.0.0/8 or an address"),
                );
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            fail(
                "log.level",
                format!(
                    "{:?} is not a valid filter such as info or warn,switchboard_api=debug",
                    self.log.level
                ),
            );
        }
        match &self.auth.jwt_secret {
            Some(secret) if secret.expose_secret().len() < 32 => {
                fail("auth.jwt_secret", "must be at least 32 characters".into())
            }
            None if self.mode == Mode::Production => {
                fail("auth.jwt_secret", "is required in production mode".into())
            }
            _ => {}
        }
        if !(10..=86_400).contains(&self.auth.access_token_ttl_secs) {
            fail(
                "auth.access_token_ttl_secs",
                "must be between 10 and 86400".into(),
            );
        }
        if !(1..=300).contains(&self.auth.stream_ticket_ttl_secs) {
            fail(
                "auth.stream_ticket_ttl_secs",
                "must be between 1 and 300".into(),
            );
        }
        if self.auth.session_ttl_days == 0 {
            fail("auth.session_ttl_days", "must be at least 1".into());
        }
        if self.auth.password_token_ttl_hours == 0 {
            fail("auth.password_token_ttl_hours", "must be at least 1".into());
        }
        if self.auth.login_max_failures == 0 {
            fail("auth.login_max_failures", "must be at least 1".into());
        }
        if self.auth.login_window_secs == 0 {
            fail("auth.login_window_secs", "must be at least 1".into());
        }
        if let Some(email) = &self.bootstrap.admin_email
            && switchboard_domain::identity::email::Email::parse(email).is_err()
        {
            fail(
                "bootstrap.admin_email",
                format!("{email:?} is not a valid email address"),
            );
        }
        match &self.secrets.encryption_key {
            Some(key) if SecretCipher::from_base64(key.expose_secret()).is_err() => fail(
                "secrets.encryption_key",
                "must be 32 bytes, base64-encoded (openssl rand -base64 32)".into(),
            ),
            None if self.mode == Mode::Production => fail(
                "secrets.encryption_key",
                "is required in production mode".into(),
            ),
            _ => {}
        }
        if self.bootstrap.admin_password.is_some() && self.bootstrap.admin_email.is_none() {
            fail(
                "bootstrap.admin_email",
                "is required when bootstrap.admin_password is set".into(),
            );
        }
        self.validate_freeswitch(&mut fail);
        self.validate_provisioning(&mut fail);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    fn validate_provisioning(&self, fail: &mut impl FnMut(&str, String)) {
        let p = &self.provisioning;
        if let Some(url) = &p.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            fail(
                "provisioning.base_url",
                "must start with http:// or https://".into(),
            );
        }
        if !["udp", "tcp", "tls"].contains(&p.sip_transport.as_str()) {
            fail(
                "provisioning.sip_transport",
                "must be udp, tcp or tls".into(),
            );
        }
        if p.sip_port == 0 {
            fail("provisioning.sip_port", "must be a port".into());
        }
        if !(60..=3600 * 24 * 7).contains(&p.register_expires) {
            fail(
                "provisioning.register_expires",
                "must be 60 to 604800 seconds".into(),
            );
        }
        if p.resync_secs < 300 {
            fail("provisioning.resync_secs", "must be at least 300".into());
        }
        if p.codecs.is_empty() {
            fail("provisioning.codecs", "must name at least one codec".into());
        }
        if p.max_failures == 0 || p.failure_window_secs == 0 {
            fail(
                "provisioning.max_failures",
                "max_failures and failure_window_secs must be at least 1".into(),
            );
        }
    }

    fn validate_freeswitch(&self, fail: &mut impl FnMut(&str, String)) {
        let fs = &self.freeswitch;
        if fs.xml_curl.username.is_empty() || fs.xml_curl.username.contains(':') {
            fail(
                "freeswitch.xml_curl.username",
                "must be non-empty and without ':'".into(),
            );
        }
        match &fs.xml_curl.password {
            Some(p) if p.expose_secret().len() < 12 => fail(
                "freeswitch.xml_curl.password",
                "must be at least 12 characters".into(),
            ),
            None if self.mode == Mode::Production => fail(
                "freeswitch.xml_curl.password",
                "is required in production mode".into(),
            ),
            _ => {}
        }
        for (i, network) in fs.xml_curl.allowed_networks.iter().enumerate() {
            if parse_network(network).is_none() {
                fail(
                    &format!("freeswitch.xml_curl.allowed_networks[{i}]"),
                    format!("{network:?} is not a network like 10.0.0.0/8 or an address"),
                );
            }
        }
        if fs.xml_curl.max_body_bytes < 4096 {
            fail(
                "freeswitch.xml_curl.max_body_bytes",
                "must be at least 4096".into(),
            );
        }
        if fs.xml_curl.cacheable_ms > 86_400_000 {
            fail(
                "freeswitch.xml_curl.cacheable_ms",
                "must be at most 86400000 (one day)".into(),
            );
        }
        if fs.outbound_socket.parse::<std::net::SocketAddr>().is_err() {
            fail(
                "freeswitch.outbound_socket",
                format!(
                    "{:?} is not an address like 127.0.0.1:8084",
                    fs.outbound_socket
                ),
            );
        }
        // `record_session` takes the path as its first word; the dialplan is XML.
        let dir = &fs.recordings_dir;
        if dir.trim().is_empty()
            || dir.chars().any(|c| c.is_whitespace() || c.is_control())
            || !(dir.starts_with('/') || dir.starts_with("${") || dir.starts_with("$${"))
        {
            fail(
                "freeswitch.recordings_dir",
                format!(
                    "{dir:?} must be an absolute path (or start with a FreeSWITCH variable such as ${{recordings_dir}}), without spaces"
                ),
            );
        }
        if self.history.spool_interval_secs == 0 {
            fail("history.spool_interval_secs", "must be at least 1".into());
        }
        if self.history.cdr_queue == 0 {
            fail("history.cdr_queue", "must be at least 1".into());
        }
        if self.history.purge_interval_secs < 60 {
            fail("history.purge_interval_secs", "must be at least 60".into());
        }
        let mail = &self.mail;
        if mail.from.parse::<lettre::message::Mailbox>().is_err() {
            fail(
                "mail.from",
                format!(
                    "{:?} is not an address such as Voicemail <voicemail@example.com>",
                    mail.from
                ),
            );
        }
        if mail
            .smtp_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            fail(
                "mail.smtp_host",
                "must not be empty (leave it unset to turn e-mail off)".into(),
            );
        }
        if mail.username.is_some() != mail.password.is_some() {
            fail(
                "mail.username",
                "mail.username and mail.password go together".into(),
            );
        }
        if mail.max_attempts == 0 {
            fail("mail.max_attempts", "must be at least 1".into());
        }
        if mail.retry_initial_secs == 0 || mail.retry_max_secs < mail.retry_initial_secs {
            fail(
                "mail.retry_initial_secs",
                "must be at least 1 and at most mail.retry_max_secs".into(),
            );
        }
        if mail.poll_interval_secs == 0 || mail.timeout_secs == 0 {
            fail(
                "mail.poll_interval_secs",
                "mail.poll_interval_secs and mail.timeout_secs must be at least 1".into(),
            );
        }
        let link = &fs.link;
        if link.heartbeat_timeout_secs == 0 {
            fail(
                "freeswitch.link.heartbeat_timeout_secs",
                "must be at least 1".into(),
            );
        }
        if link.sweep_interval_secs == 0 {
            fail(
                "freeswitch.link.sweep_interval_secs",
                "must be at least 1".into(),
            );
        }
        if link.command_timeout_ms < 100 {
            fail(
                "freeswitch.link.command_timeout_ms",
                "must be at least 100".into(),
            );
        }
        if link.reconnect_initial_ms < 10 {
            fail(
                "freeswitch.link.reconnect_initial_ms",
                "must be at least 10".into(),
            );
        }
        if link.reconnect_max_secs == 0
            || link.reconnect_max_secs.saturating_mul(1000) < link.reconnect_initial_ms
        {
            fail(
                "freeswitch.link.reconnect_max_secs",
                "must be at least 1 and not below reconnect_initial_ms".into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, node) in fs.nodes.iter().enumerate() {
            if node.name.trim().is_empty() || !names.insert(node.name.as_str()) {
                fail(
                    &format!("freeswitch.nodes[{i}].name"),
                    "must be non-empty and unique".into(),
                );
            }
            if node.host.trim().is_empty() {
                fail(&format!("freeswitch.nodes[{i}].host"), "must be set".into());
            }
            if node.profile.trim().is_empty() || node.profile.contains(char::is_whitespace) {
                fail(
                    &format!("freeswitch.nodes[{i}].profile"),
                    "must be a sofia profile name without spaces".into(),
                );
            }
        }
    }

    /// The database URL with any password masked, for logs.
    pub fn database_url_for_logs(&self) -> String {
        redact_url_password(&self.database_url)
    }
}

fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    if scheme != "http" && scheme != "https" {
        return false;
    }
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => host,
        Some(_) => return false,
        None => rest,
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '[' || c == ']')
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
// figment's `Jail` closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn fields(result: Result<Config, ConfigErrors>) -> Vec<String> {
        result
            .err()
            .map(|e| e.0.into_iter().map(|e| e.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_valid_and_embedded() {
        Jail::expect_with(|_| {
            let config = Config::from_figment(Config::figment(None)).map_err(|e| e.to_string())?;
            assert_eq!(config.database_url, "sqlite://switchboard.db?mode=rwc");
            assert_eq!(config.http.port, 8080);
            assert!(config.database.auto_migrate);
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_override_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                "[http]\nport = 9000\nhost = \"0.0.0.0\"\n[log]\nformat = \"json\"\n",
            )?;
            jail.set_env("SWITCHBOARD_HTTP__PORT", "9100");
            jail.set_env("SWITCHBOARD_CONFIG", "ignored-by-the-filter");
            jail.set_env("SWITCHBOARD_TEST_POSTGRES_URL", "ignored-too");
            jail.set_env("SWITCHBOARD_API_KEY", "sk_ignored-as-well");
            jail.set_env("SWITCHBOARD_FREESWITCH_DIR", "/the/live/suite's");
            jail.set_env("SWITCHBOARD_BIN", "target/release/switchboard");
            let config = Config::from_figment(Config::figment(Some(Path::new("sb.toml"))))
                .map_err(|e| e.to_string())?;
            assert_eq!(config.http.port, 9100);
            assert_eq!(config.http.host, "0.0.0.0");
            assert_eq!(config.log.format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn errors_name_the_field() {
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_HTTP__PORT", "eighty");
            assert_eq!(
                fields(Config::from_figment(Config::figment(None))),
                vec!["http.port"]
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file("sb.toml", "[http]\nprot = 1\n")?;
            let errors = fields(Config::from_figment(Config::figment(Some(Path::new(
                "sb.toml",
            )))));
            assert_eq!(errors, vec!["http.prot"]);
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_DATABASE_URL", "mysql://x");
            jail.set_env("SWITCHBOARD_MODE", "production");
            jail.set_env("SWITCHBOARD_LOG__LEVEL", "info,[");
            jail.set_env(
                "SWITCHBOARD_HTTP__CORS_ALLOWED_ORIGINS",
                "[\"https://ok.example\", \"ftp://no\"]",
            );
            let errors = fields(Config::from_figment(Config::figment(None)));
            assert_eq!(
                errors,
                vec![
                    "database_url",
                    "http.cors_allowed_origins[1]",
                    "log.level",
                    "auth.jwt_secret",
                    "secrets.encryption_key",
                    "freeswitch.xml_curl.password"
                ]
            );
            Ok(())
        });
    }

    #[test]
    fn freeswitch_settings_are_validated_field_by_field() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                r#"
[freeswitch]
outbound_socket = "not-an-address"
recordings_dir = "recordings with spaces"
[freeswitch.xml_curl]
username = "a:b"
password = "short"
allowed_networks = ["10.0.0.0/8", "192.0.2.7", "300.1.1.1/8"]
cacheable_ms = 999999999
max_body_bytes = 10
[[freeswitch.nodes]]
name = "fs1"
host = "127.0.0.1"
password = "ClueCon"
[[freeswitch.nodes]]
name = "fs1"
host = ""
password = "x"
profile = "two words"
"#,
            )?;
            let errors = fields(Config::from_figment(Config::figment(Some(Path::new(
                "sb.toml",
            )))));
            assert_eq!(
                errors,
                vec![
                    "freeswitch.xml_curl.username",
                    "freeswitch.xml_curl.password",
                    "freeswitch.xml_curl.allowed_networks[2]",
                    "freeswitch.xml_curl.max_body_bytes",
                    "freeswitch.xml_curl.cacheable_ms",
                    "freeswitch.outbound_socket",
                    "freeswitch.recordings_dir",
                    "freeswitch.nodes[1].name",
                    "freeswitch.nodes[1].host",
                    "freeswitch.nodes[1].profile",
                ]
            );
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file(
                "sb.toml",
                "[freeswitch.xml_curl]\nallowed_networks = [\"10.0.0.0/8\", \"192.0.2.7\"]\n[[freeswitch.nodes]]\nname = \"fs1\"\nhost = \"fs1.internal\"\npassword = \"s3cret-esl\"\n",
            )?;
            let config = Config::from_figment(Config::figment(Some(Path::new("sb.toml"))))
                .map_err(|e| e.to_string())?;
            assert_eq!(config.freeswitch.xml_curl.networks().len(), 2);
            assert_eq!(config.freeswitch.nodes[0].port, 8021);
            assert_eq!(config.freeswitch.nodes[0].profile, "internal");
            assert!(!format!("{config:?}").contains("s3cret-esl"));
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "SWITCHBOARD_AUTH__JWT_SECRET",
                "a-very-long-secret-that-must-not-leak-0123",
            );
            let config = Config::from_figment(Config::figment(None)).map_err(|e| e.to_string())?;
            assert!(!format!("{config:?}").contains("must-not-leak"));
            Ok(())
        });
        assert_eq!(
            redact_url_password("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url_password("sqlite://x.db"), "sqlite://x.db");
    }
}
