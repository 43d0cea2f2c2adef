//! The end-to-end tests: one binary, one module per capability. Every server scenario runs on
//! SQLite and on PostgreSQL (`<module>::<scenario>::sqlite` / `::postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_keys;
mod audit;
mod bridge;
mod bursts;
mod cli;
mod client_address;
mod configuration;
mod contract;
mod cors;
mod devices;
mod docs;
mod domains;
mod events;
mod extensions;
mod feature_codes;
mod health;
mod hotdesk;
mod import;
mod json_bodies;
mod keys_at_rest;
mod locations;
mod login;
mod metrics;
mod numbers;
mod presence;
mod roles;
mod routing;
mod secrets;
mod signin;
mod stream_access;
mod suspension;
mod users;
mod views;
mod xmlcurl;
