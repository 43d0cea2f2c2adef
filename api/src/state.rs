//! Shared state handed to every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use switchboard_domain::events::EventBus;
use switchboard_domain::services::auth::{ApiKeyCache, AuthPolicy};
use switchboard_domain::services::presence::LineStates;
use switchboard_domain::services::throttle::Limit;
use switchboard_domain::telephony::secrets::SecretCipher;
use switchboard_esl_bridge::directory::Directory;
use switchboard_esl_bridge::link::Bridge;

use crate::config::Config;
use crate::sse::{EventLog, StreamChecks};

/// What handlers share: the database pool and the configuration.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The key that signs access tokens.
    pub jwt_secret: Arc<secrecy::SecretString>,
    /// Recently verified API keys.
    pub api_keys: Arc<ApiKeyCache>,
    /// Encrypts and decrypts SIP secrets.
    pub cipher: Arc<SecretCipher>,
    /// Committed changes, for the ESL bridge and the live event stream.
    pub events: EventBus,
    /// The shared change log: every node's changes, in commit order.
    pub journal: Arc<switchboard_domain::cluster::journal::Journal>,
    /// The live event stream's window of the change log.
    pub event_log: Arc<EventLog>,
    /// Recent re-checks of open streams' callers, shared between their streams.
    pub stream_checks: Arc<StreamChecks>,
    /// Registrations and call states reported by FreeSWITCH, for presence.
    pub lines: Arc<LineStates>,
    /// The precompiled FreeSWITCH directory that answers mod_xml_curl.
    pub directory: Arc<Directory>,
    /// `freeswitch.xml_curl.allowed_networks`, parsed.
    pub xml_curl_networks: Arc<Vec<ipnet::IpNet>>,
    /// `http.trusted_proxies`, parsed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The ESL bridge: the FreeSWITCH links and their state.
    pub bridge: Arc<Bridge>,
    /// Compiles, renders and authenticates what phones fetch from `/provision/…`.
    pub provisioner: Arc<crate::provisioning::Provisioner>,
    /// Stores posted CDRs, many to a transaction under load.
    pub cdrs: crate::cdr_writer::CdrWriter,
}

impl AppState {
    /// The login and session policy from the configuration.
    pub fn auth_policy(&self) -> AuthPolicy {
        let auth = &self.config.auth;
        AuthPolicy {
            login_limit: Limit {
                max_failures: auth.login_max_failures,
                window: chrono::Duration::seconds(auth.login_window_secs as i64),
            },
            session_ttl: chrono::Duration::days(i64::from(auth.session_ttl_days)),
        }
    }
}
