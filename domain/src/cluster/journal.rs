//! The change log: every committed change, in commit order, shared by every node.
//!
//! A node [publishes](crate::events::EventBus::publish) a change after its transaction
//! committed; the bus hands it to this journal's writer, which appends it to `change_log` with
//! its global `seq` and its Domain's `domain_seq` (the live stream's event id) and, on
//! PostgreSQL, `NOTIFY switchboard_changes` in the same transaction. Every node's reader
//! (PostgreSQL `LISTEN`, woken by the notification, by its own writer and once a second) reads
//! the rows after the last `seq` it delivered, so a notification lost while a node was cut off
//! from the database costs nothing: the rows are read when it is back.
//!
//! Writers serialise on one transaction-scoped advisory lock, so `seq` order is commit order:
//! when a reader sees `seq` N, every change before N is already visible and none can appear
//! behind it. The [`subscribe`](Journal::subscribe) stream delivers every node's changes
//! exactly once, in that order: the live event stream and the FreeSWITCH pusher read it.
//! Changes from other nodes are also re-published on the local bus
//! ([`publish_remote`](crate::events::EventBus::publish_remote)), so the directory, the dialplan
//! and ingestion hear them like local ones.
//!
//! On SQLite (one node) the writer delivers what it wrote itself, right after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tokio::sync::{Notify, broadcast, mpsc};
use uuid::Uuid;

use crate::db;
use crate::events::{ChangeEvent, EventBus};
use crate::store::{change_counters, change_log};

/// The PostgreSQL notification channel of new changes.
pub const CHANNEL: &str = "switchboard_changes";

/// The advisory lock every writer takes for its transaction: commit order is `seq` order.
const WRITE_LOCK: i64 = 0x7377_6368_6c6f_6701;

/// The most changes written in one transaction, and read in one query.
const BATCH: usize = 500;

/// How often a reader looks for new rows without being told.
const POLL: Duration = Duration::from_secs(1);

/// How many sequenced changes a slow consumer may fall behind before it sees a lag.
const CAPACITY: usize = 8192;

/// A change with its place in the log.
#[derive(Debug)]
pub struct Journaled {
    /// Its place in the commit order of every node's changes.
    pub seq: i64,
    /// Its place in its Domain's numbering (the live stream's event id).
    pub domain_seq: i64,
    /// The change.
    pub event: Arc<ChangeEvent>,
}

/// The change log's writer, reader and sequenced stream.
#[derive(Debug)]
pub struct Journal {
    db: DatabaseConnection,
    node: String,
    bus: EventBus,
    out: broadcast::Sender<Arc<Journaled>>,
    /// The last `seq` delivered on [`Self::subscribe`].
    cursor: AtomicI64,
    wake: Notify,
    /// Changes from other nodes delivered here.
    remote: AtomicU64,
    /// Milliseconds from another node's commit to its delivery here, last seen.
    last_delay_ms: AtomicU64,
}

impl Journal {
    /// Starts the writer (and on PostgreSQL the reader) and hands the bus's changes to it.
    /// Call before anything publishes.
    pub async fn start(
        db: DatabaseConnection,
        bus: EventBus,
        node: String,
    ) -> Result<Arc<Self>, DbErr> {
        let cursor = last_seq(&db).await?;
        let (out, _) = broadcast::channel(CAPACITY);
        let journal = Arc::new(Self {
            db,
            node,
            bus: bus.clone(),
            out,
            cursor: AtomicI64::new(cursor),
            wake: Notify::new(),
            remote: AtomicU64::new(0),
            last_delay_ms: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        bus.set_journal(tx);
        tokio::spawn(Arc::clone(&journal).write_forever(rx));
        if let Some(side) = super::side_pool(&journal.db) {
            tokio::spawn(Arc::clone(&journal).read_forever(side));
        }
        Ok(journal)
    }

    /// True on PostgreSQL: other nodes may write too.
    fn shared(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// This node's name in the log.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Every node's changes from now on, once each, in commit order.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Journaled>> {
        self.out.subscribe()
    }

    /// The last `seq` delivered.
    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::Acquire)
    }

    /// How many changes of other nodes this node has delivered.
    pub fn remote_changes(&self) -> u64 {
        self.remote.load(Ordering::Relaxed)
    }

    /// Milliseconds between another node's commit and its delivery here, for the last one.
    pub fn last_remote_delay_ms(&self) -> u64 {
        self.last_delay_ms.load(Ordering::Relaxed)
    }

    async fn write_forever(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Arc<ChangeEvent>>) {
        let mut batch: Vec<Arc<ChangeEvent>> = Vec::new();
        loop {
            if batch.is_empty() {
                match rx.recv().await {
                    Some(e) => batch.push(e),
                    None => return,
                }
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let mut backoff = Duration::from_millis(50);
            loop {
                match self.write(&batch).await {
                    Ok(rows) => {
                        if self.shared() {
                            // The reader delivers them, in order with the other nodes'.
                            self.wake.notify_one();
                        } else {
                            self.deliver(rows);
                        }
                        batch.clear();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, changes = batch.len(), "writing the change log failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }

    /// Appends a batch in one transaction and returns its rows.
    async fn write(&self, batch: &[Arc<ChangeEvent>]) -> Result<Vec<Journaled>, DbErr> {
        let txn = db::begin_write(&self.db).await?;
        let backend = txn.get_database_backend();
        if backend == DbBackend::Postgres {
            txn.execute_raw(Statement::from_string(
                backend,
                format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})"),
            ))
            .await?;
        }
        let now = Utc::now();
        let mut rows = Vec::with_capacity(batch.len());
        for event in batch {
            let payload = serde_json::to_string(&**event)
                .map_err(|e| DbErr::Custom(format!("encoding a change: {e}")))?;
            let counter = Query::insert()
                .into_table(change_counters::Entity)
                .columns([
                    change_counters::Column::DomainId,
                    change_counters::Column::LastSeq,
                ])
                .values_panic([event.domain_id.into(), 1i64.into()])
                .on_conflict(
                    OnConflict::column(change_counters::Column::DomainId)
                        .value(
                            change_counters::Column::LastSeq,
                            Expr::col((change_counters::Entity, change_counters::Column::LastSeq))
                                .add(1),
                        )
                        .to_owned(),
                )
                .returning_col(change_counters::Column::LastSeq)
                .to_owned();
            let domain_seq: i64 = txn
                .query_one(&counter)
                .await?
                .ok_or_else(|| DbErr::Custom("the change counter answered nothing".into()))?
                .try_get("", "last_seq")?;
            let insert = Query::insert()
                .into_table(change_log::Entity)
                .columns([
                    change_log::Column::DomainId,
                    change_log::Column::DomainSeq,
                    change_log::Column::Node,
                    change_log::Column::Payload,
                    change_log::Column::CreatedAt,
                ])
                .values_panic([
                    event.domain_id.into(),
                    domain_seq.into(),
                    self.node.clone().into(),
                    payload.into(),
                    now.into(),
                ])
                .returning_col(change_log::Column::Seq)
                .to_owned();
            let seq: i64 = txn
                .query_one(&insert)
                .await?
                .ok_or_else(|| DbErr::Custom("the change log answered nothing".into()))?
                .try_get("", "seq")?;
            rows.push(Journaled {
                seq,
                domain_seq,
                event: Arc::clone(event),
            });
        }
        if backend == DbBackend::Postgres
            && let Some(last) = rows.last()
        {
            // Delivered to the listeners when the transaction commits, with the last `seq`
            // written: a reader that has delivered it already (this node's, woken by its own
            // writer) need not read the log again.
            txn.execute_raw(Statement::from_string(
                backend,
                format!("SELECT pg_notify('{CHANNEL}', '{}')", last.seq),
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(rows)
    }

    /// Hands rows on, in order, skipping any already delivered.
    fn deliver(&self, rows: Vec<Journaled>) {
        for row in rows {
            if row.seq <= self.cursor() {
                continue;
            }
            self.cursor.store(row.seq, Ordering::Release);
            // Nobody subscribed is fine.
            let _ = self.out.send(Arc::new(row));
        }
    }

    async fn read_forever(self: Arc<Self>, pool: sea_orm::sqlx::postgres::PgPool) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            // Notifications lost during a reconnect are made up by reading the rows.
            listener.ignore_pool_close_event(true);
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            backoff = Duration::from_millis(100);
            tracing::debug!("listening for other nodes' changes");
            let mut read = true;
            loop {
                if read {
                    self.catch_up().await;
                }
                read = true;
                tokio::select! {
                    got = listener.try_recv() => match got {
                        // Rows up to the notified `seq` are delivered already (on this node,
                        // its writer woke the reader as soon as it committed them).
                        Ok(Some(n)) => {
                            read = n.payload().parse::<i64>().map_or(true, |seq| seq > self.cursor());
                        }
                        // The connection was lost and is back: what was said meanwhile is
                        // read from the log on the next round.
                        Ok(None) => tracing::info!("the change listener reconnected; catching up"),
                        Err(e) => {
                            tracing::warn!(error = %e, "the change listener failed; reconnecting");
                            break;
                        }
                    },
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Reads and delivers every row after the cursor.
    async fn catch_up(&self) {
        loop {
            let after = self.cursor();
            let rows = match change_log::Entity::find()
                .filter(change_log::Column::Seq.gt(after))
                .order_by_asc(change_log::Column::Seq)
                .limit(BATCH as u64)
                .all(&self.db)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the change log failed");
                    return;
                }
            };
            let full = rows.len() == BATCH;
            let now = Utc::now();
            let mut sequenced = Vec::with_capacity(rows.len());
            for row in rows {
                let Some(event) = decode(&row) else {
                    // Skipped, not retried forever: the cursor moves past it.
                    sequenced.push(None::<Journaled>);
                    self.cursor.fetch_max(row.seq, Ordering::AcqRel);
                    continue;
                };
                let event = if row.node == self.node {
                    // Published here already; the rows only bring its place.
                    Arc::new(event)
                } else {
                    self.remote.fetch_add(1, Ordering::Relaxed);
                    let delay = Ord::max((now - row.created_at).num_milliseconds(), 0);
                    self.last_delay_ms
                        .store(u64::try_from(delay).unwrap_or(0), Ordering::Relaxed);
                    self.bus.publish_remote(event)
                };
                sequenced.push(Some(Journaled {
                    seq: row.seq,
                    domain_seq: row.domain_seq,
                    event,
                }));
            }
            self.deliver(sequenced.into_iter().flatten().collect());
            if !full {
                return;
            }
        }
    }
}

fn decode(row: &change_log::Model) -> Option<ChangeEvent> {
    match serde_json::from_str(&row.payload) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(seq = row.seq, error = %e, "an unreadable change in the log (written by a newer version?); skipped");
            None
        }
    }
}

/// The last `seq` written (0: none).
pub async fn last_seq(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let last = change_log::Entity::find()
        .select_only()
        .column_as(change_log::Column::Seq.max(), "last")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?;
    Ok(last.flatten().unwrap_or(0))
}

/// A Domain's changes after its event id `after`, oldest first, at most `limit`; and whether the
/// log still holds every one of them (false: some were purged, the client must reload).
pub async fn domain_since(
    db: &impl ConnectionTrait,
    domain_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<(Vec<(i64, ChangeEvent)>, bool), DbErr> {
    let rows = change_log::Entity::find()
        .filter(change_log::Column::DomainId.eq(domain_id))
        .filter(change_log::Column::DomainSeq.gt(after))
        .order_by_asc(change_log::Column::DomainSeq)
        .limit(limit)
        .all(db)
        .await?;
    let complete = match rows.first() {
        Some(first) => first.domain_seq == after + 1,
        // Nothing after it in the log: complete unless ids after it were given out.
        None => domain_last(db, domain_id).await? <= after,
    };
    Ok((
        rows.iter()
            .filter_map(|r| decode(r).map(|e| (r.domain_seq, e)))
            .collect(),
        complete,
    ))
}

/// The last event id given out in a Domain (0: none).
pub async fn domain_last(db: &impl ConnectionTrait, domain_id: Uuid) -> Result<i64, DbErr> {
    Ok(change_counters::Entity::find_by_id(domain_id)
        .one(db)
        .await?
        .map(|c| c.last_seq)
        .unwrap_or(0))
}

/// Every change after `seq` up to `upto` (inclusive), oldest first, at most `limit`.
pub async fn between(
    db: &impl ConnectionTrait,
    after: i64,
    upto: i64,
    limit: u64,
) -> Result<Vec<(i64, ChangeEvent)>, DbErr> {
    let rows = change_log::Entity::find()
        .filter(change_log::Column::Seq.gt(after))
        .filter(change_log::Column::Seq.lte(upto))
        .order_by_asc(change_log::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| decode(r).map(|e| (r.seq, e)))
        .collect())
}

/// Deletes changes written before `before`, but never a Domain's counter: its numbering goes on.
pub async fn purge(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(change_log::Entity::delete_many()
        .filter(change_log::Column::CreatedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
