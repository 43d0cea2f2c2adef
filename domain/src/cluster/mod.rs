//! Several switchboard nodes on one PostgreSQL: the shared change log that fans every change out
//! to every node ([`journal`]), the leases that let exactly one node drive each FreeSWITCH node
//! ([`lease`]), and the line facts the driving node shares with the others ([`lines`]).
//!
//! On SQLite (one node) the same pieces run with nothing to share: the log still numbers the
//! live stream's events and keeps them across restarts, every lease is granted.

pub mod journal;
pub mod lease;
pub mod lines;
pub mod links;
