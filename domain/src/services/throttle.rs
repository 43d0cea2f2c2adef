//! Counting failed attempts in a sliding window, persisted so that limits survive restarts and
//! hold across several server nodes. Used for login throttling (and PIN lockout later).

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
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
) -> DomainResult<()> {
    auth_failures::Entity::delete_many()
        .filter(auth_failures::Column::Scope.eq(scope))
        .filter(auth_failures::Column::Subject.eq(subject))
        .filter(auth_failures::Column::At.lt(now - Duration::days(1)))
        .exec(db)
        .await?;
    auth_failures::ActiveModel {
        id: Set(Uuid::now_v7()),
        scope: Set(scope.to_owned()),
        subject: Set(subject.to_owned()),
        at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
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
