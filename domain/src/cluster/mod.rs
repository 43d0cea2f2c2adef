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

use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions};
use sea_orm::{DatabaseConnection, DbBackend};

/// Connections the cluster keeps outside the request pool: the two `LISTEN` connections and the
/// leases' (each lease takes one out of this pool for as long as it is held). They never take a
/// connection a request is waiting for, and a small request pool is never starved by them.
const SIDE_CONNECTIONS: u32 = 4;

/// A pool beside `db`'s for the cluster's long-held connections (PostgreSQL only), connecting
/// lazily with the same options.
pub fn side_pool(db: &DatabaseConnection) -> Option<PgPool> {
    if db.get_database_backend() != DbBackend::Postgres {
        return None;
    }
    let options = db.get_postgres_connection_pool().connect_options();
    Some(
        PgPoolOptions::new()
            .max_connections(SIDE_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with((*options).clone()),
    )
}
