//! The auto-logout scheduler: ends the hot-desk sessions whose device or Domain policy says
//! they are over, and the Location sign-ins whose Location says so (`auto_sign_out`): after N
//! hours, or daily at HH:MM in the Domain's time zone.
//!
//! [`run_once`] is one pass with an injected `now`, so tests drive it with any clock; the
//! server calls it on an interval ([`run_forever`]). Each end is audited with the actor
//! `system` ("auto-logout") and published after commit like any other logout.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::hotdesk::{Deps, end_sessions, is_transient};
use super::occupancy::end_sign_in;
use super::{Context, snapshot};
use crate::bindings::Bindings;
use crate::bindings::hotdesk::{due_sessions, due_sign_ins};
use crate::error::{DomainError, DomainResult};
use crate::events::EventBus;
use crate::store::{hotdesk_sessions, location_sign_ins, locations};
use crate::telephony::policy::AutoLogout;

/// The audit label of the scheduler's actions.
pub const ACTOR_LABEL: &str = "auto-logout";

/// Ends every session and sign-in due at `now`, Domain by Domain; returns how many ended.
///
/// A Domain whose sessions changed meanwhile is left for the next pass.
pub async fn run_once(
    db: &DatabaseConnection,
    bus: &EventBus,
    now: DateTime<Utc>,
) -> DomainResult<usize> {
    let mut domains: BTreeSet<Uuid> = hotdesk_sessions::Entity::find()
        .select_only()
        .column(hotdesk_sessions::Column::DomainId)
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .distinct()
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    // Only Domains with someone signed in to a Location that signs people out by itself.
    domains.extend(
        location_sign_ins::Entity::find()
            .select_only()
            .column(location_sign_ins::Column::DomainId)
            .filter(
                location_sign_ins::Column::LocationId.in_subquery(
                    Query::select()
                        .column(locations::Column::Id)
                        .from(locations::Entity)
                        .and_where(locations::Column::AutoSignOut.ne(AutoLogout::Never.as_str()))
                        .to_owned(),
                ),
            )
            .distinct()
            .into_tuple::<Uuid>()
            .all(db)
            .await?,
    );
    let mut ctx = Context::system(ACTOR_LABEL);
    ctx.now = now;
    let mut ended = 0;
    for domain_id in domains {
        let b = snapshot::load(db, domain_id).await?;
        let due = due_sessions(&b, now);
        match end_sessions(Deps { db, bus }, &ctx, &b, &due).await {
            Ok(n) => ended += n,
            Err(DomainError::Conflict { .. }) => {}
            Err(DomainError::Database(e)) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        match sign_out_due(db, bus, &ctx, &b, now).await {
            Ok(n) => ended += n,
            Err(DomainError::Database(e)) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ended)
}

/// Ends the Domain's sign-ins that are due at `now` in one transaction (one that ended or
/// changed meanwhile is skipped), audited as the scheduler; publishes after commit.
async fn sign_out_due(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    b: &Bindings,
    now: DateTime<Utc>,
) -> DomainResult<usize> {
    let due = due_sign_ins(b, now);
    if due.is_empty() {
        return Ok(0);
    }
    let txn = crate::db::begin_write(db).await?;
    let mut events = Vec::new();
    for (sign_in, policy) in &due {
        let why = format!("auto sign-out ({})", policy.describe());
        if let Some(event) = end_sign_in(&txn, ctx, b, sign_in, "auto_sign_out", &why).await? {
            events.push(event);
        }
    }
    txn.commit().await?;
    let n = events.len();
    bus.publish(events);
    Ok(n)
}

/// Runs [`run_once`] every `interval` with the wall clock, forever; failures are logged and
/// the next pass tries again.
pub async fn run_forever(db: DatabaseConnection, bus: EventBus, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match run_once(&db, &bus, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "auto-logout ended hot-desk sessions"),
            Err(e) => tracing::warn!(error = %e, "auto-logout pass failed"),
        }
    }
}
