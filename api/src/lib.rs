//! The HTTP edge of switchboard and the `switchboard` binary.
//!
//! The actix-web application ([`startup::Application`]), configuration, problem+json errors,
//! extractors, pagination, OpenAPI, and one module per resource under [`routes`]. Handlers are
//! thin: extract → authorize → call `switchboard_domain` → map the result.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cdr_spool;
pub mod cdr_writer;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod copy_data;
pub mod dto;
pub mod extract;
pub mod fs_nodes;
pub mod import_cli;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod provisioning;
pub mod routes;
pub mod single_node;
pub mod sse;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod voicemail_mail;

pub use config::Config;
pub use startup::Application;
