//! Loading one Domain's [`Bindings`] snapshot from the database, in a handful of queries.
//!
//! No authorization: callers have already entered the Domain. Registered SIP users are the
//! empty set until registrations are tracked (FreeSWITCH ingestion).

use std::collections::BTreeSet;

use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, IsolationLevel, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use super::calling_settings;
use crate::bindings::Bindings;
use crate::bindings::snapshot::{HotdeskSession, LocationSignIn, SessionOrigin, SnapshotRows};
use crate::error::{DomainError, DomainResult};
use crate::store::{
    devices, domains, extension_groups, extensions, hotdesk_sessions, location_extensions,
    location_sign_ins, locations,
};

/// The pure view of a stored active session (an unknown origin reads as `api`).
pub fn session_of(row: &hotdesk_sessions::Model) -> HotdeskSession {
    HotdeskSession {
        device_id: row.device_id,
        extension_id: row.extension_id,
        started_at: row.started_at,
        via: SessionOrigin::parse(&row.started_via).unwrap_or(SessionOrigin::Api),
    }
}

/// The pure view of a stored sign-in.
pub fn sign_in_of(row: &location_sign_ins::Model) -> LocationSignIn {
    LocationSignIn {
        extension_id: row.extension_id,
        location_id: row.location_id,
        since: row.since,
    }
}

/// The active hot-desk session rows of a Domain.
pub async fn active_sessions<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<hotdesk_sessions::Model>> {
    Ok(hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .all(db)
        .await?)
}

/// Loads the Domain's snapshot; a missing Domain is a 404.
///
/// The queries run in one read transaction, on one pooled connection: a consistent picture
/// (no session half-seen between two queries), and a burst of requests cannot take eight
/// connections each and starve the pool.
pub async fn load(db: &DatabaseConnection, domain_id: Uuid) -> DomainResult<Bindings> {
    let txn = begin_read(db).await?;
    let rows = load_rows(&txn, domain_id).await?;
    txn.rollback().await?;
    rows.map(Bindings::from_rows)
        .ok_or(DomainError::NotFound("domain"))
}

/// A read-only transaction that sees one moment of the database: `REPEATABLE READ` on
/// PostgreSQL (every query of it sees the same commits), a deferred transaction on SQLite (its
/// read snapshot lasts until the transaction ends). It holds one pooled connection.
pub async fn begin_read(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
        }
        _ => db.begin().await,
    }
}

/// Reads the rows of one Domain's snapshot; `None` when the Domain does not exist.
///
/// One round trip's latency instead of eight: on a pool the queries run side by side (on
/// PostgreSQL each costs a round trip); inside a transaction they simply take turns.
pub async fn load_rows<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Option<SnapshotRows>> {
    let (
        domain,
        settings,
        extensions,
        devices,
        locations,
        location_extensions,
        sessions,
        sign_ins,
        groups,
    ) = tokio::try_join!(
        domains::Entity::find_by_id(domain_id).one(db),
        crate::store::calling_settings::Entity::find_by_id(domain_id).one(db),
        extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .all(db),
        devices::Entity::find()
            .filter(devices::Column::DomainId.eq(domain_id))
            .all(db),
        locations::Entity::find()
            .filter(locations::Column::DomainId.eq(domain_id))
            .all(db),
        location_extensions::Entity::find()
            .filter(location_extensions::Column::DomainId.eq(domain_id))
            .all(db),
        hotdesk_sessions::Entity::find()
            .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
            .filter(hotdesk_sessions::Column::EndedAt.is_null())
            .all(db),
        location_sign_ins::Entity::find()
            .filter(location_sign_ins::Column::DomainId.eq(domain_id))
            .all(db),
        extension_groups::Entity::find()
            .filter(extension_groups::Column::DomainId.eq(domain_id))
            .all(db),
    )?;
    Ok(domain.map(|domain| SnapshotRows {
        domain,
        settings: settings.unwrap_or_else(|| calling_settings::defaults(domain_id)),
        extensions,
        devices,
        locations,
        location_extensions,
        groups,
        sessions: sessions.iter().map(session_of).collect(),
        sign_ins: sign_ins.iter().map(sign_in_of).collect(),
        registered: BTreeSet::new(),
    }))
}
