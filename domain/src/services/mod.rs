//! Use cases: load → decide (pure rules) → save in one transaction → publish after commit.

pub mod access;
pub mod api_keys;
pub mod audit;
pub mod audit_query;
pub mod auth;
pub mod bootstrap;
pub mod call_flows;
pub mod calling_settings;
pub mod devices;
pub mod directory;
pub mod domains;
pub(crate) mod ending;
pub mod extension_groups;
pub mod extensions;
pub mod freeswitch_nodes;
pub mod gateways;
pub mod history;
pub mod hotdesk;
pub mod import;
pub mod locations;
pub mod numbers;
pub mod occupancy;
pub mod outbound_routes;
pub mod presence;
pub mod profile;
pub mod provisioning;
pub mod registrations;
pub mod roles;
pub mod scheduler;
pub mod scope;
pub mod settings;
pub(crate) mod settle;
pub mod signin;
pub mod snapshot;
pub mod stream_tickets;
pub mod throttle;
pub mod users;
pub mod views;
pub mod voicemail;

use chrono::{DateTime, Utc};

use crate::identity::authz::Actor;

/// What every use case needs to know about the call: who, when, and the request it came with.
#[derive(Debug, Clone)]
pub struct Context {
    /// Who is acting.
    pub actor: Actor,
    /// The time to act at (a parameter, so rules are testable).
    pub now: DateTime<Utc>,
    /// The HTTP request id, for the audit log.
    pub request_id: Option<String>,
}

impl Context {
    /// A context for switchboard's own actions.
    pub fn system(label: &str) -> Self {
        Self {
            actor: Actor::system(label),
            now: Utc::now(),
            request_id: None,
        }
    }
}
