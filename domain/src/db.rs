//! Connecting to the database: SQLite (embedded default) or PostgreSQL.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnAcquireErr, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, RuntimeErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};

/// Pool settings for [`connect`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Upper bound of open connections.
    pub max_connections: u32,
    /// How long to wait for a connection before failing a request.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Opens a connection pool. SQLite connections get WAL, foreign keys and a busy timeout, so
/// concurrent writers wait for each other instead of failing with "database is locked".
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(settings.acquire_timeout)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.foreign_keys(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(options).await
}

/// True when the URL points at SQLite.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Begins a transaction that will write.
///
/// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken up front (waiting out the busy
/// timeout behind other writers) instead of when the first write runs. A deferred transaction
/// that reads and then writes cannot wait for the lock: when another writer committed in
/// between, SQLite answers "database is locked" at once, whatever the busy timeout. On
/// PostgreSQL it is an ordinary `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        isolation_level: None,
        access_mode: None,
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
    })
    .await
}

/// Deadlocks and serialization failures (PostgreSQL), busy or locked databases (SQLite):
/// errors that trying again settles.
pub fn is_transient(err: &DbErr) -> bool {
    match sqlx_error(err) {
        Some(sea_orm::sqlx::Error::Database(db)) => matches!(
            db.code().as_deref(),
            Some("40P01" | "40001" | "55P03" | "5" | "6" | "261" | "517")
        ),
        _ => false,
    }
}

/// True when the database could not serve a request in time: no pooled connection came free
/// within the acquire timeout, or a lock that a retry would get. The edge answers these 503
/// with `Retry-After`, never 500.
pub fn is_overloaded(err: &DbErr) -> bool {
    matches!(err, DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
        || matches!(sqlx_error(err), Some(sea_orm::sqlx::Error::PoolTimedOut))
        || is_transient(err)
}

fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// Makes the write transaction `txn` the only one working on `keys` until it ends: on
/// PostgreSQL a transaction-scoped advisory lock per key, taken in sorted order so that two
/// transactions sharing keys never wait for each other crosswise, and held across server nodes;
/// on SQLite nothing more is needed, since [`begin_write`] holds the database's write lock.
pub async fn lock_keys(txn: &DatabaseTransaction, keys: &[String]) -> Result<(), DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut keys: Vec<&String> = keys.iter().collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    // One round trip: a VALUES list is scanned in the order written, so the locks are taken
    // one after the other in sorted order, as separate statements would take them.
    let rows: Vec<String> = (1..=keys.len()).map(|i| format!("(${i})")).collect();
    let sql = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended(k, 7163)) FROM (VALUES {}) AS v(k)",
        rows.join(", ")
    );
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        keys.into_iter().map(|k| k.clone().into()),
    ))
    .await?;
    Ok(())
}
