//! Group commit for CDRs: `POST /freeswitch/cdr` hands each parsed leg to one writer task,
//! which stores whatever has queued up since its last transaction in a single one
//! ([`history::ingest_batch`]) and then answers every poster. Under load many CDRs share one
//! transaction, a handful of statements and one WAL flush; alone, a CDR is written at once.
//! A poster is answered only after the commit, so a 200 still means stored.
//!
//! The queue is bounded: when it is full the poster is told to come back (503 with
//! `Retry-After`; FreeSWITCH retries, then spools the CDR to disk). When a batch fails because
//! the database cannot be reached, every poster is told so at once; when it fails for another
//! reason, its legs are stored one by one, so that one leg the database refuses does not take
//! the others with it.

use sea_orm::DatabaseConnection;
use switchboard_domain::error::DomainError;
use switchboard_domain::history::cdr::LegFacts;
use switchboard_domain::services::history::{self, Ingested, MAX_BATCH};
use tokio::sync::{mpsc, oneshot};

struct Job {
    leg: LegFacts,
    reply: oneshot::Sender<Result<Ingested, DomainError>>,
}

/// Why a CDR was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CdrRefused {
    /// The writer's queue is full, or the writer is gone (the server is stopping).
    #[error("the CDR writer is busy")]
    Busy,
    /// The database refused it.
    #[error(transparent)]
    Failed(#[from] DomainError),
}

/// The handle posters use; clones share the one writer.
#[derive(Clone)]
pub struct CdrWriter {
    tx: mpsc::Sender<Job>,
}

impl CdrWriter {
    /// Starts the writer task on the current runtime; at most `queue` legs wait for it
    /// (`history.cdr_queue`), beyond that posters are turned away.
    pub fn start(db: DatabaseConnection, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(db, rx));
        Self { tx }
    }

    /// Stores one leg (with whatever else is waiting) and answers once it is committed.
    pub async fn ingest(&self, leg: LegFacts) -> Result<Ingested, CdrRefused> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Job { leg, reply })
            .map_err(|_| CdrRefused::Busy)?;
        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(CdrRefused::Busy),
        }
    }
}

/// No connection, or none in time, or contention that outlived the retries: the same for
/// every leg of the batch.
fn unreachable(e: &sea_orm::DbErr) -> bool {
    matches!(
        e,
        sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_)
    ) || switchboard_domain::db::is_overloaded(e)
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let batch: Vec<Job> = std::mem::take(&mut jobs);
        let legs: Vec<LegFacts> = batch.iter().map(|j| j.leg.clone()).collect();
        let now = chrono::Utc::now();
        match history::ingest_batch(&db, &legs, now).await {
            Ok(answers) => {
                for (job, answer) in batch.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(job) = batch.into_iter().next() {
                    let _ = job.reply.send(Err(e));
                }
            }
            Err(DomainError::Database(e)) if unreachable(&e) => {
                // One by one would only wait out the same outage once per leg.
                tracing::warn!(error = %e, legs = batch.len(), "a batch of CDRs could not reach the database; FreeSWITCH will retry them");
                for job in batch {
                    let _ = job.reply.send(Err(DomainError::Internal(format!(
                        "the database cannot be reached: {e}"
                    ))));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, legs = batch.len(), "a batch of CDRs failed; storing them one by one");
                for job in batch {
                    let result = history::ingest(&db, &job.leg, now).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}
