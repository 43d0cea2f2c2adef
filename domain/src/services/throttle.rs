//! Counting failed attempts in a sliding window, persisted so that limits survive restarts and
//! hold across several server nodes. Used for login throttling and the PIN lockout.
//!
//! An attempt is *reserved* before the secret is checked ([`reserve`]): in one transaction that
//! holds a lock on each subject (SQLite: the database's write lock, taken up front; PostgreSQL:
//! a transaction-scoped advisory lock per subject, which holds across server nodes), the recent
//! failures are counted and, when every limit allows it, one failure row per subject is written
//! and committed. Only then does the expensive check run. A wrong secret leaves the rows as the
//! failures they are; a right one takes its own rows back ([`Reservation::release`]). So any
//! number of concurrent attempts evaluates at most the limit: each one in flight already counts.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::error::DomainResult;
use crate::store::auth_failures;

/// A limit: at most `max_failures` within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures that trigger the limit.
    pub max_failures: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Seconds until a new attempt is accepted, or `None` when attempts are allowed now.
///
/// `failures` are the failure times inside the window in ascending order. With `n ≥ max`
/// failures, attempts resume once the `(n - max + 1)` oldest have left the window.
pub fn retry_after(failures: &[DateTime<Utc>], now: DateTime<Utc>, limit: Limit) -> Option<u64> {
    let recent: Vec<&DateTime<Utc>> = failures
        .iter()
        .filter(|t| now - **t < limit.window)
        .collect();
    let max = limit.max_failures as usize;
    if recent.len() < max {
        return None;
    }
    let pivot = recent[recent.len() - max];
    let wait = (*pivot + limit.window - now).num_milliseconds();
    // Round up so the client never retries a moment too early.
    Some(((wait.max(1) + 999) / 1000) as u64)
}

/// The failure times of `(scope, subject)` inside the window, oldest first.
pub async fn recent_failures<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    subject: &str,
    now: DateTime<Utc>,
    limit: Limit,
) -> DomainResult<Vec<DateTime<Utc>>> {
    let rows = auth_failures::Entity::find()
        .filter(auth_failures::Column::Scope.eq(scope))
        .filter(auth_failures::Column::Subject.eq(subject))
        .filter(auth_failures::Column::At.gt(now - limit.window))
        .order_by_asc(auth_failures::Column::At)
        .limit(u64::from(limit.max_failures) * 2 + 1)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| r.at).collect())
}

/// Seconds to wait before `(scope, subject)` may try again, if limited.
pub async fn check<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    subject: &str,
    now: DateTime<Utc>,
    limit: Limit,
) -> DomainResult<Option<u64>> {
    let failures = recent_failures(db, scope, subject, now, limit).await?;
    Ok(retry_after(&failures, now, limit))
}

/// Records one failure, and forgets this subject's failures older than a day.
pub async fn record_failure<C: ConnectionTrait>(
    db: &C,
    scope: &str,
    subject: &str,
    now: DateTime<Utc>,
) -> DomainResult<Uuid> {
    auth_failures::Entity::delete_many()
        .filter(auth_failures::Column::Scope.eq(scope))
        .filter(auth_failures::Column::Subject.eq(subject))
        .filter(auth_failures::Column::At.lt(now - Duration::days(1)))
        .exec(db)
        .await?;
    let id = Uuid::now_v7();
    auth_failures::ActiveModel {
        id: Set(id),
        scope: Set(scope.to_owned()),
        subject: Set(subject.to_owned()),
        at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// One counter an attempt is reserved against.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// What is attacked, e.g. `login_account`.
    pub scope: &'a str,
    /// Which account, Extension, device or address.
    pub subject: &'a str,
    /// Its limit.
    pub limit: Limit,
}

/// An attempt that counts as a failure of each of its subjects until it is released.
#[derive(Debug)]
#[must_use = "a reservation is a recorded failure until it is released"]
pub struct Reservation {
    ids: Vec<Uuid>,
}

impl Reservation {
    /// The attempt succeeded: its failure rows go.
    pub async fn release<C: ConnectionTrait>(self, db: &C) -> DomainResult<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        auth_failures::Entity::delete_many()
            .filter(auth_failures::Column::Id.is_in(self.ids))
            .exec(db)
            .await?;
        Ok(())
    }
}

/// Reserves one attempt against every subject at once, or answers the seconds to wait (the
/// longest of the limits reached) and writes nothing.
///
/// Subjects are locked in a fixed order (no deadlock between two attempts sharing subjects)
/// and every failure older than a day is forgotten on the way.
pub async fn reserve(
    db: &DatabaseConnection,
    subjects: &[Subject<'_>],
    now: DateTime<Utc>,
) -> DomainResult<Result<Reservation, u64>> {
    let txn = crate::db::begin_write(db).await?;
    let keys: Vec<String> = subjects
        .iter()
        .map(|s| format!("{}\u{1f}{}", s.scope, s.subject))
        .collect();
    crate::db::lock_keys(&txn, &keys).await?;
    let mut wait = None;
    for s in subjects {
        let failures = recent_failures(&txn, s.scope, s.subject, now, s.limit).await?;
        wait = wait.max(retry_after(&failures, now, s.limit));
    }
    if let Some(wait) = wait {
        txn.rollback().await?;
        return Ok(Err(wait));
    }
    let mut ids = Vec::with_capacity(subjects.len());
    for s in subjects {
        ids.push(record_failure(&txn, s.scope, s.subject, now).await?);
    }
    txn.commit().await?;
    Ok(Ok(Reservation { ids }))
}

/// Forgets every failure of `(scope, subject)` (after a success).
pub async fn clear<C: ConnectionTrait>(db: &C, scope: &str, subject: &str) -> DomainResult<()> {
    auth_failures::Entity::delete_many()
        .filter(auth_failures::Column::Scope.eq(scope))
        .filter(auth_failures::Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    const LIMIT: Limit = Limit {
        max_failures: 3,
        window: Duration::seconds(600),
    };

    #[test]
    fn below_the_limit_attempts_are_allowed() {
        assert_eq!(retry_after(&[at(0), at(10)], at(20), LIMIT), None);
    }

    #[test]
    fn at_the_limit_wait_until_the_oldest_leaves_the_window() {
        assert_eq!(
            retry_after(&[at(0), at(10), at(20)], at(30), LIMIT),
            Some(570)
        );
    }

    #[test]
    fn old_failures_do_not_count() {
        assert_eq!(retry_after(&[at(0), at(10), at(20)], at(605), LIMIT), None);
    }

    #[test]
    fn many_failures_wait_for_enough_of_them_to_expire() {
        let failures = [at(0), at(100), at(200), at(300), at(400)];
        // 5 failures, limit 3: the third oldest (t=200) must leave the window: 200 + 600 - 450.
        assert_eq!(retry_after(&failures, at(450), LIMIT), Some(350));
    }
}
