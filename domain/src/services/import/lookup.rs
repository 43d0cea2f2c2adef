//! The batched look-ups of an import: many rows checked against the stored ones with a few
//! `IN (…)` queries, every one of them scoped to the Domain except where the rule itself is
//! platform-wide (MAC addresses, emails).

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, Iterable, QueryFilter, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::{Progress, Silent};
use crate::error::DomainResult;
use crate::store::{
    devices as device_store, extension_groups, extensions as extension_store, location_extensions,
    locations, role_assignments, users,
};

/// Bound parameters per multi-row `INSERT`, well below SQLite's limit (32 766) and
/// PostgreSQL's (65 535).
const MAX_BIND_PARAMS: usize = 15_000;
/// Values per `IN (…)` list of the look-ups.
pub(super) const LOOKUP_CHUNK: usize = 500;

/// A read-only transaction for the batched look-ups (`IN` lists of up to [`LOOKUP_CHUNK`]
/// values). On PostgreSQL it plans every execution for its actual values: a prepared
/// statement's generic plan, fixed while a table was still small, would otherwise keep
/// scanning the whole table once it has grown (seconds per import at 50 000 devices).
pub(super) async fn lookups(db: &DatabaseConnection) -> DomainResult<DatabaseTransaction> {
    // Reads only: not a write transaction, which on SQLite would hold the write lock.
    let txn = db.begin().await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await?;
    }
    Ok(txn)
}

/// Inserts `rows` with multi-row `INSERT`s sized to stay under the bound-parameter limits.
pub(super) async fn insert_chunked<E, C>(
    db: &C,
    rows: &[E::Model],
    progress: &dyn Progress,
) -> DomainResult<()>
where
    E: EntityTrait,
    E::Model: Clone + sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + From<E::Model> + Send,
    C: ConnectionTrait,
{
    let per_insert = (MAX_BIND_PARAMS / E::Column::iter().count().max(1)).clamp(1, 500);
    for chunk in rows.chunks(per_insert) {
        E::insert_many(chunk.iter().cloned().map(E::ActiveModel::from))
            .exec_without_returning(db)
            .await?;
        progress.advance(chunk.len() as u64);
    }
    Ok(())
}

/// Inserts rows nobody watches the progress of.
pub(super) async fn insert_all<E, C>(db: &C, rows: &[E::Model]) -> DomainResult<()>
where
    E: EntityTrait,
    E::Model: Clone + sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + From<E::Model> + Send,
    C: ConnectionTrait,
{
    insert_chunked::<E, C>(db, rows, &Silent).await
}

/// The distinct values of `items`.
fn unique<T: Clone + std::hash::Hash + Eq>(items: &[T]) -> Vec<T> {
    items
        .iter()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// The stored Extensions of the Domain with one of these numbers.
pub(super) async fn extensions_by_number<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    numbers: &[String],
) -> DomainResult<HashMap<String, extension_store::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(numbers).chunks(LOOKUP_CHUNK) {
        for m in extension_store::Entity::find()
            .filter(extension_store::Column::DomainId.eq(domain_id))
            .filter(extension_store::Column::Number.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(m.number.clone(), m);
        }
    }
    Ok(found)
}

/// The stored Extensions of the Domain with one of these ids.
pub(super) async fn extensions_by_id<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, extension_store::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(ids).chunks(LOOKUP_CHUNK) {
        for m in extension_store::Entity::find()
            .filter(extension_store::Column::DomainId.eq(domain_id))
            .filter(extension_store::Column::Id.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            found.insert(m.id, m);
        }
    }
    Ok(found)
}

/// The stored Extensions of the Domain linked to one of these Users.
pub(super) async fn extensions_of_users<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    users: &[Uuid],
) -> DomainResult<Vec<extension_store::Model>> {
    let mut found = Vec::new();
    for chunk in unique(users).chunks(LOOKUP_CHUNK) {
        found.extend(
            extension_store::Entity::find()
                .filter(extension_store::Column::DomainId.eq(domain_id))
                .filter(extension_store::Column::UserId.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Which of `users` hold a role in the Domain.
pub(super) async fn members_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    users: &[Uuid],
) -> DomainResult<HashSet<Uuid>> {
    let mut found = HashSet::new();
    for chunk in unique(users).chunks(LOOKUP_CHUNK) {
        let ids: Vec<Uuid> = role_assignments::Entity::find()
            .select_only()
            .column(role_assignments::Column::UserId)
            .filter(role_assignments::Column::DomainId.eq(domain_id))
            .filter(role_assignments::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(ids);
    }
    Ok(found)
}

/// The accounts with one of these (lower-cased) emails. Emails are unique across the
/// platform, so this look-up is deliberately not scoped: a match outside the Domain is only
/// used to refuse the row, as a single create refuses a taken email.
pub(super) async fn users_by_email<C: ConnectionTrait>(
    db: &C,
    emails: &[String],
) -> DomainResult<HashMap<String, users::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(emails).chunks(LOOKUP_CHUNK) {
        for m in users::Entity::find()
            .filter(users::Column::Email.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(m.email.clone(), m);
        }
    }
    Ok(found)
}

/// The Domain's hot-desk groups with one of these names.
pub(super) async fn groups_by_name<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    names: &[String],
) -> DomainResult<HashMap<String, extension_groups::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(names).chunks(LOOKUP_CHUNK) {
        for m in extension_groups::Entity::find()
            .filter(extension_groups::Column::DomainId.eq(domain_id))
            .filter(extension_groups::Column::Name.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(m.name.clone(), m);
        }
    }
    Ok(found)
}

/// The Domain's Locations with one of these names.
pub(super) async fn locations_by_name<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    names: &[String],
) -> DomainResult<HashMap<String, locations::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(names).chunks(LOOKUP_CHUNK) {
        for m in locations::Entity::find()
            .filter(locations::Column::DomainId.eq(domain_id))
            .filter(locations::Column::Name.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            found.insert(m.name.clone(), m);
        }
    }
    Ok(found)
}

/// Which of `ids` are Locations of the Domain.
pub(super) async fn known_locations<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<HashSet<Uuid>> {
    let mut known = HashSet::new();
    for chunk in unique(ids).chunks(LOOKUP_CHUNK) {
        let found: Vec<Uuid> = locations::Entity::find()
            .select_only()
            .column(locations::Column::Id)
            .filter(locations::Column::DomainId.eq(domain_id))
            .filter(locations::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        known.extend(found);
    }
    Ok(known)
}

/// The Domain's Locations holding one of these short codes.
pub(super) async fn locations_by_short_code<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    codes: &[String],
) -> DomainResult<Vec<locations::Model>> {
    let mut found = Vec::new();
    for chunk in unique(codes).chunks(LOOKUP_CHUNK) {
        found.extend(
            locations::Entity::find()
                .filter(locations::Column::DomainId.eq(domain_id))
                .filter(locations::Column::ShortCode.is_in(chunk.iter().cloned()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// The Extensions listed as allowed to sign in to these Locations, by Location.
pub(super) async fn listings<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    location_ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, Vec<Uuid>>> {
    let mut out: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for chunk in unique(location_ids).chunks(LOOKUP_CHUNK) {
        for r in location_extensions::Entity::find()
            .filter(location_extensions::Column::DomainId.eq(domain_id))
            .filter(location_extensions::Column::LocationId.is_in(chunk.iter().copied()))
            .all(db)
            .await?
        {
            out.entry(r.location_id).or_default().push(r.extension_id);
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    Ok(out)
}

/// Where each of these MAC addresses is used: the Domain of the Device holding it. MAC
/// addresses are unique across every Domain, so this look-up is deliberately not scoped; only
/// the Domain of another tenant's Device is read, nothing else of it.
pub(super) async fn mac_domains<C: ConnectionTrait>(
    db: &C,
    macs: &[String],
) -> DomainResult<HashMap<String, Uuid>> {
    let mut found = HashMap::new();
    for chunk in unique(macs).chunks(LOOKUP_CHUNK) {
        let rows: Vec<(Option<String>, Uuid)> = device_store::Entity::find()
            .select_only()
            .column(device_store::Column::MacAddress)
            .column(device_store::Column::DomainId)
            .filter(device_store::Column::MacAddress.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows.into_iter().filter_map(|(mac, d)| mac.map(|m| (m, d))));
    }
    Ok(found)
}

/// The Domain's Devices with one of these MAC addresses.
pub(super) async fn devices_by_mac<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    macs: &[String],
) -> DomainResult<HashMap<String, device_store::Model>> {
    let mut found = HashMap::new();
    for chunk in unique(macs).chunks(LOOKUP_CHUNK) {
        for m in device_store::Entity::find()
            .filter(device_store::Column::DomainId.eq(domain_id))
            .filter(device_store::Column::MacAddress.is_in(chunk.iter().cloned()))
            .all(db)
            .await?
        {
            if let Some(mac) = m.mac_address.clone() {
                found.insert(mac, m);
            }
        }
    }
    Ok(found)
}

/// The SIP users of the Domain's Devices in these Locations.
pub(super) async fn devices_in_locations<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    location_ids: &[Uuid],
) -> DomainResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in unique(location_ids).chunks(LOOKUP_CHUNK) {
        let names: Vec<String> = device_store::Entity::find()
            .select_only()
            .column(device_store::Column::SipUsername)
            .filter(device_store::Column::DomainId.eq(domain_id))
            .filter(device_store::Column::LocationId.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(names);
    }
    Ok(found)
}

/// The SIP users of the Domain's Devices that show this Extension's identity: owned by it, or
/// with it as their placeholder (they re-read their configuration when its name changes).
pub(super) async fn devices_showing<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Vec<String>> {
    Ok(device_store::Entity::find()
        .select_only()
        .column(device_store::Column::SipUsername)
        .filter(device_store::Column::DomainId.eq(domain_id))
        .filter(
            sea_orm::Condition::any()
                .add(device_store::Column::OwnerExtensionId.eq(extension_id))
                .add(device_store::Column::PlaceholderExtensionId.eq(extension_id)),
        )
        .into_tuple()
        .all(db)
        .await?)
}

/// Which of these SIP user names the Domain's Devices already use.
pub(super) async fn taken_sip_usernames<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    names: &[String],
) -> DomainResult<HashSet<String>> {
    let mut taken = HashSet::new();
    for chunk in names.chunks(LOOKUP_CHUNK) {
        let found: Vec<String> = device_store::Entity::find()
            .select_only()
            .column(device_store::Column::SipUsername)
            .filter(device_store::Column::DomainId.eq(domain_id))
            .filter(device_store::Column::SipUsername.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        taken.extend(found);
    }
    Ok(taken)
}

/// The vendor of each of the Domain's provisioning templates among `ids`.
pub(super) async fn template_vendors<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<HashMap<Uuid, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(crate::store::provisioning_templates::Entity::find()
        .filter(crate::store::provisioning_templates::Column::DomainId.eq(domain_id))
        .filter(crate::store::provisioning_templates::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.vendor))
        .collect())
}
