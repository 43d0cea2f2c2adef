//! What the FreeSWITCH directory is compiled from: each Domain's [`Bindings`] plus the
//! `a1-hash` of every SIP identity, loaded in a few concurrent queries per Domain.
//!
//! No authorization: this feeds the mod_xml_curl endpoint, which FreeSWITCH (authenticated by
//! the HTTP edge) calls. The plaintext SIP secrets are decrypted here only long enough to hash
//! them; they never leave this module.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::devices as device_service;
use super::extensions as extension_service;
use crate::bindings::Bindings;
use crate::bindings::snapshot::SnapshotRows;
use crate::error::DomainResult;
use crate::routing::facts::{NumberFacts, RoutingRows};
use crate::store::{
    calling_settings, devices, domains, extension_groups, extensions, hotdesk_sessions,
    location_extensions, location_sign_ins, locations, numbers, outbound_route_gateways,
};
use crate::telephony::secrets::{SecretCipher, a1_hash};

/// One Domain, ready to be compiled into directory answers.
#[derive(Debug, Clone)]
pub struct DirectorySource {
    /// The bindings (Extensions, Devices, Locations, sessions, sign-ins, settings).
    pub bindings: Bindings,
    /// The Domain's display name.
    pub name: String,
    /// A disabled Domain answers nothing.
    pub enabled: bool,
    /// `md5(user:realm:secret)` by device id or Extension id (Extensions with a secret only).
    /// Identities whose secret cannot be decrypted are missing here (and logged).
    pub a1_hashes: HashMap<Uuid, String>,
    /// Outbound Routes, gateways, Numbers and numbering (the dialplan's other half).
    pub routing: RoutingRows,
}

/// One Domain's rows as read, before its secrets are decrypted: [`DomainRows::assemble`]
/// (the CPU part) can then run off the thread that read them.
#[derive(Debug)]
pub struct DomainRows {
    rows: SnapshotRows,
    routing: RoutingRows,
}

impl DomainRows {
    /// Decrypts the SIP secrets into their a1-hashes and builds the bindings.
    pub fn assemble(self, cipher: &SecretCipher) -> DirectorySource {
        assemble(cipher, self.rows, self.routing)
    }

    /// The rows of it that a change to its phones leaves as they are (see [`DomainContext`]).
    pub fn context(&self) -> DomainContext {
        DomainContext {
            domain: self.rows.domain.clone(),
            settings: self.rows.settings.clone(),
            locations: self.rows.locations.clone(),
            location_extensions: self.rows.location_extensions.clone(),
            groups: self.rows.groups.clone(),
        }
    }
}

/// The rows of a Domain that only a change of another kind than a phone's alters: the Domain
/// itself, its calling settings, Locations (with their listed Extensions) and Extension groups.
/// Kept beside a compiled Domain (a few hundred bytes per Domain, not per user), they let a
/// change to some Devices read only the rows those Devices touch ([`load_phones_at_once`]);
/// any change to these rows publishes an event that recompiles the Domain from all its rows.
#[derive(Debug, Clone)]
pub struct DomainContext {
    domain: domains::Model,
    settings: calling_settings::Model,
    locations: Vec<locations::Model>,
    location_extensions: Vec<location_extensions::Model>,
    groups: Vec<extension_groups::Model>,
}

/// Reads what a change to some Devices of a Domain can alter, in one read transaction: those
/// Devices, the Extensions in `extensions` and their owners, those Extensions' other fixed
/// Devices, their hot-desk sessions (and those sessions' Devices), the sessions on the changed
/// Devices and the Extensions' Location sign-ins, over the `context` kept from the last read
/// of the whole Domain. Five small queries whatever the Domain's size. The bindings built from
/// it hold only these rows: what the compiled Domain's answers for the changed Devices and
/// for those Extensions are computed from (the caller checks that nothing else is needed: see
/// `CompiledDomain::with_phones_changed` in `switchboard-esl-bridge`).
pub async fn load_phones_at_once(
    db: &sea_orm::DatabaseConnection,
    context: &DomainContext,
    changed_devices: &[Uuid],
    extensions: &[Uuid],
) -> DomainResult<DomainRows> {
    let domain_id = context.domain.id;
    let txn = super::snapshot::begin_read(db).await?;
    let mut device_rows = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::Id.is_in(changed_devices.iter().copied()))
        .all(&txn)
        .await?;
    let mut extension_ids: BTreeSet<Uuid> = extensions.iter().copied().collect();
    extension_ids.extend(device_rows.iter().filter_map(|d| d.owner_extension_id));
    let extension_rows = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::Id.is_in(extension_ids.iter().copied()))
        .all(&txn)
        .await?;
    let sessions = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .filter(
            Condition::any()
                .add(hotdesk_sessions::Column::ExtensionId.is_in(extension_ids.iter().copied()))
                .add(hotdesk_sessions::Column::DeviceId.is_in(changed_devices.iter().copied())),
        )
        .all(&txn)
        .await?;
    let read: BTreeSet<Uuid> = device_rows.iter().map(|d| d.id).collect();
    let session_devices: Vec<Uuid> = sessions
        .iter()
        .map(|s| s.device_id)
        .filter(|id| !read.contains(id))
        .collect();
    let others = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(
            Condition::any()
                .add(devices::Column::OwnerExtensionId.is_in(extension_ids.iter().copied()))
                .add(devices::Column::Id.is_in(session_devices)),
        )
        .all(&txn)
        .await?;
    device_rows.extend(others.into_iter().filter(|d| !read.contains(&d.id)));
    let sign_ins = location_sign_ins::Entity::find()
        .filter(location_sign_ins::Column::DomainId.eq(domain_id))
        .filter(location_sign_ins::Column::ExtensionId.is_in(extension_ids.iter().copied()))
        .all(&txn)
        .await?;
    txn.rollback().await?;
    let rows = SnapshotRows {
        domain: context.domain.clone(),
        settings: context.settings.clone(),
        extensions: extension_rows,
        devices: device_rows,
        locations: context.locations.clone(),
        location_extensions: context.location_extensions.clone(),
        groups: context.groups.clone(),
        sessions: sessions.iter().map(super::snapshot::session_of).collect(),
        sign_ins: sign_ins.iter().map(super::snapshot::sign_in_of).collect(),
        registered: BTreeSet::new(),
    };
    let routing = RoutingRows {
        settings: Some(rows.settings.clone()),
        ..RoutingRows::default()
    };
    Ok(DomainRows { rows, routing })
}

/// Reads one Domain's rows (the cold start, a recompile after a change); `None` when it does
/// not exist.
pub async fn load_domain_rows<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Option<DomainRows>> {
    let (rows, mut routing) = tokio::try_join!(
        super::snapshot::load_rows(db, domain_id),
        load_routing(db, domain_id)
    )?;
    let Some(rows) = rows else {
        return Ok(None);
    };
    routing.settings = Some(rows.settings.clone());
    Ok(Some(DomainRows { rows, routing }))
}

/// [`load_domain_rows`] in one read transaction (see [`super::snapshot::begin_read`]): every
/// table as of one moment, through one pooled connection. A recompile after a change reads this
/// way, so a steady stream of recompiles leaves the pool's other connections to the API and
/// the change log (the cold start reads its Domains side by side instead).
pub async fn load_domain_rows_at_once(
    db: &sea_orm::DatabaseConnection,
    domain_id: Uuid,
) -> DomainResult<Option<DomainRows>> {
    let txn = super::snapshot::begin_read(db).await?;
    let rows = load_domain_rows(&txn, domain_id).await?;
    txn.rollback().await?;
    Ok(rows)
}

/// Reads one Domain's bindings (Extensions, Devices, Locations, sessions, sign-ins, groups,
/// settings) in one read transaction, without its routing rows: for a change that cannot have
/// touched them (see [`crate::events::ChangeKind::keeps_routing`]), the recompile keeps the
/// routing it compiled before. The [`DomainRows`] read has empty routing rows; `None` when the
/// Domain does not exist.
pub async fn load_domain_bindings_at_once(
    db: &sea_orm::DatabaseConnection,
    domain_id: Uuid,
) -> DomainResult<Option<DomainRows>> {
    let txn = super::snapshot::begin_read(db).await?;
    let rows = super::snapshot::load_rows(&txn, domain_id).await?;
    txn.rollback().await?;
    Ok(rows.map(|rows| {
        let routing = RoutingRows {
            settings: Some(rows.settings.clone()),
            ..RoutingRows::default()
        };
        DomainRows { rows, routing }
    }))
}

/// The routing rows of one Domain (its settings are filled by the caller), read concurrently.
pub async fn load_routing<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<RoutingRows> {
    let routes = async {
        let routes = super::outbound_routes::load_for_domain(db, domain_id).await?;
        let route_gateways = if routes.is_empty() {
            Vec::new()
        } else {
            outbound_route_gateways::Entity::find()
                .filter(
                    outbound_route_gateways::Column::RouteId
                        .is_in(routes.iter().map(|r| r.id).collect::<Vec<_>>()),
                )
                .all(db)
                .await?
        };
        DomainResult::Ok((routes, route_gateways))
    };
    let ((routes, route_gateways), gateways, numbers, flows) = tokio::try_join!(
        routes,
        super::gateways::usable_by(db, domain_id),
        super::numbers::load_for_domain(db, domain_id),
        super::call_flows::load(db, domain_id),
    )?;
    Ok(RoutingRows {
        settings: None,
        routes,
        route_gateways,
        gateways,
        numbers: numbers.into_iter().map(number_facts).collect(),
        flows,
    })
}

/// What the dialplan needs of a Number.
fn number_facts(n: numbers::Model) -> NumberFacts {
    let destination = n.destination_type.as_deref().and_then(|kind| {
        crate::routing::destination::Destination::from_stored(
            kind,
            n.destination_id,
            n.destination_value.as_deref(),
        )
    });
    NumberFacts {
        id: n.id,
        number: n.number,
        destination,
    }
}

/// One Domain from its rows: the a1-hashes, then the bindings.
fn assemble(cipher: &SecretCipher, rows: SnapshotRows, routing: RoutingRows) -> DirectorySource {
    let a1_hashes = hashes(
        cipher,
        &rows.domain.sip_domain,
        &rows.devices,
        &rows.extensions,
    );
    let name = rows.domain.name.clone();
    let enabled = rows.domain.enabled;
    DirectorySource {
        bindings: Bindings::from_rows(rows),
        name,
        enabled,
        a1_hashes,
        routing,
    }
}

/// The a1-hashes of a Domain's devices and of its Extensions that have a secret.
fn hashes(
    cipher: &SecretCipher,
    realm: &str,
    devices: &[devices::Model],
    extensions: &[extensions::Model],
) -> HashMap<Uuid, String> {
    let mut out = HashMap::with_capacity(devices.len() + extensions.len());
    for d in devices {
        match cipher.decrypt(
            &d.sip_secret_encrypted,
            &device_service::secret_context(d.id),
        ) {
            Ok(secret) => {
                out.insert(d.id, a1_hash(&d.sip_username, realm, &secret));
            }
            Err(e) => tracing::error!(
                device_id = %d.id,
                error = %e,
                "cannot decrypt the SIP secret of a device: it cannot register until it is rotated"
            ),
        }
    }
    for e in extensions {
        let Some(stored) = &e.sip_secret_encrypted else {
            continue;
        };
        match cipher.decrypt(stored, &extension_service::secret_context(e.id)) {
            Ok(secret) => {
                out.insert(e.id, a1_hash(&e.number, realm, &secret));
            }
            Err(err) => tracing::error!(
                extension_id = %e.id,
                error = %err,
                "cannot decrypt the SIP secret of an Extension: it cannot register until it is rotated"
            ),
        }
    }
    out
}
