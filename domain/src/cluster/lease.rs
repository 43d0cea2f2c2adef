//! Leases: exactly one switchboard node at a time drives a FreeSWITCH node.
//!
//! On PostgreSQL a lease is a session-level advisory lock held on a connection of its own
//! (taken out of the pool, so returning it can never leave the lock behind). The holder checks
//! that connection every second; when the check fails (the database went away, the connection
//! was cut) the lease is lost and the holder must stop at once. The connection is set to end
//! itself after [`IDLE_END`] of silence, so a holder cut off from the database without PostgreSQL
//! noticing (a network partition rather than a closed socket) releases the lock too, after it
//! has already stopped: the others take over within a few seconds either way.
//!
//! On SQLite there is one node: every lease is granted and never lost.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::watch;

/// How often a holder checks its lease's connection.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long a check may take before the lease counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long PostgreSQL keeps a silent lease connection (and its lock): a few checks' worth.
const IDLE_END: &str = "SET idle_session_timeout = '3500ms'";

/// The seed of the lock keys (a different one from the transaction locks of `db::lock_keys`).
const KEY_SEED: i64 = 7164;

/// Hands out leases by name.
#[derive(Debug, Clone)]
pub struct Leases {
    pool: Option<PgPool>,
}

/// A held lease; dropping it gives it back.
#[derive(Debug)]
pub struct Lease {
    lost: watch::Receiver<Option<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Its connection closes with it, which releases the lock.
            task.abort();
        }
    }
}

impl Lease {
    /// Resolves with the reason once the lease is lost (never on SQLite). Cancel-safe.
    pub async fn lost(&mut self) -> String {
        match self.lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The checker is gone without a word: treat it as lost.
            Err(_) => "the lease checker stopped".to_owned(),
        }
    }

    /// True once the lease is lost.
    pub fn is_lost(&self) -> bool {
        self.lost.borrow().is_some()
    }
}

impl Leases {
    /// Leases on `db`'s database.
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            pool: super::side_pool(db),
        }
    }

    /// True when several nodes may compete (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.pool.is_some()
    }

    /// Takes the lease `name` if nobody holds it. `Ok(None)`: another node does.
    pub async fn try_acquire(&self, name: &str) -> Result<Option<Lease>, String> {
        let Some(pool) = &self.pool else {
            return Ok(Some(Lease {
                lost: never_lost(),
                task: None,
            }));
        };
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| format!("no database connection for the lease: {e}"))?
            .detach();
        sea_orm::sqlx::query(IDLE_END)
            .execute(&mut conn)
            .await
            .map_err(|e| format!("preparing the lease connection: {e}"))?;
        let got: bool =
            sea_orm::sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, $2))")
                .bind(format!("freeswitch:{name}"))
                .bind(KEY_SEED)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("asking for the lease: {e}"))?;
        if !got {
            let _ = conn.close().await;
            return Ok(None);
        }
        let (tx, lost) = watch::channel(None);
        let task = tokio::spawn(check_forever(conn, tx));
        Ok(Some(Lease {
            lost,
            task: Some(task),
        }))
    }
}

/// A receiver whose sender lives as long as the process: a lease that is never lost.
fn never_lost() -> watch::Receiver<Option<String>> {
    static NEVER: std::sync::OnceLock<watch::Sender<Option<String>>> = std::sync::OnceLock::new();
    NEVER.get_or_init(|| watch::channel(None).0).subscribe()
}

async fn check_forever(mut conn: PgConnection, tx: watch::Sender<Option<String>>) {
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let check = tokio::time::timeout(
            CHECK_TIMEOUT,
            sea_orm::sqlx::query("SELECT 1").execute(&mut conn),
        )
        .await;
        let reason = match check {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => format!("the lease's database connection failed: {e}"),
            Err(_) => "the lease's database connection did not answer in time".to_owned(),
        };
        let _ = tx.send(Some(reason));
        // Dropping the connection ends the session and with it the lock, if the database
        // still holds it.
        drop(conn);
        return;
    }
}
