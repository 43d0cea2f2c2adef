//! The business of switchboard.
//!
//! Identity (Domains = tenants, dashboard Users, roles and permissions, sessions, API keys, the
//! audit log), and later telephony (Extensions, Devices, Locations) and the bindings between
//! them (hot-desking, Location sign-in, who rings, which identity a phone calls with).
//!
//! Pure rules are plain functions over plain types that take `now` as a parameter; persistence
//! goes through sea-orm in [`store`]; use cases live in [`services`]: load → decide → save in one
//! transaction → publish after commit. This crate knows nothing of HTTP or the Event Socket.
#![forbid(unsafe_code)]

pub mod bindings;
pub mod cluster;
pub mod db;
pub mod error;
pub mod events;
pub mod history;
pub mod identity;
pub mod pagination;
pub mod provisioning;
pub mod routing;
pub mod services;
pub mod store;
pub mod telephony;

pub use error::{DomainError, DomainResult, FieldError, FieldErrors};
