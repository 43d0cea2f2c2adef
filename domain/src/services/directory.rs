//! What the FreeSWITCH directory is compiled from: each Domain's [`Bindings`] plus the
//! `a1-hash` of every SIP identity, loaded in a few queries for one Domain or for any number of them.
//!
//! No authorization: this feeds the mod_xml_curl endpoint, which FreeSWITCH (authenticated by
//! the HTTP edge) calls. The plaintext SIP secrets are decrypted here only long enough to hash
//! them; they never leave this module.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::extensions as extension_service;
use super::snapshot::{session_of, sign_in_of};
use super::{calling_settings as settings_service, devices as device_service};
use crate::bindings::Bindings;
use crate::bindings::snapshot::SnapshotRows;
use crate::error::DomainResult;
use crate::routing::facts::{NumberFacts, RoutingRows};
use crate::store::{
    calling_settings, devices, domains, extension_groups, extensions, gateway_grants, gateways,
    hotdesk_sessions, location_extensions, location_sign_ins, locations, numbers,
    outbound_route_gateways, outbound_routes,
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
    /// The Domain's id.
    pub fn domain_id(&self) -> Uuid {
        self.rows.domain.id
    }

    /// Decrypts the SIP secrets into their a1-hashes and builds the bindings.
    pub fn assemble(self, cipher: &SecretCipher) -> DirectorySource {
        assemble(cipher, self.rows, self.routing)
    }
}

/// Loads one Domain (a recompile after a change); `None` when it does not exist.
pub async fn load_domain<C: ConnectionTrait>(
    db: &C,
    cipher: &SecretCipher,
    domain_id: Uuid,
) -> DomainResult<Option<DirectorySource>> {
    Ok(load_domain_rows(db, domain_id)
        .await?
        .map(|rows| rows.assemble(cipher)))
}

/// Reads one Domain's rows; `None` when it does not exist.
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

/// Reads several Domains' rows with one query per table, whatever their number: the recompile
/// of every Domain that changed since the last one (under a steady stream of changes to many
/// Domains, a dozen round trips for all of them instead of a dozen per Domain). Domains that
/// do not exist are missing from the answer. The queries run concurrently.
pub async fn load_domains_rows<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> DomainResult<Vec<DomainRows>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids.to_vec();
    let (domains, settings, extensions, devices, locations, listings, sessions, sign_ins, groups) =
        tokio::try_join!(
            domains::Entity::find()
                .filter(domains::Column::Id.is_in(ids.clone()))
                .all(db),
            calling_settings::Entity::find()
                .filter(calling_settings::Column::DomainId.is_in(ids.clone()))
                .all(db),
            extensions::Entity::find()
                .filter(extensions::Column::DomainId.is_in(ids.clone()))
                .all(db),
            devices::Entity::find()
                .filter(devices::Column::DomainId.is_in(ids.clone()))
                .all(db),
            locations::Entity::find()
                .filter(locations::Column::DomainId.is_in(ids.clone()))
                .all(db),
            location_extensions::Entity::find()
                .filter(location_extensions::Column::DomainId.is_in(ids.clone()))
                .all(db),
            hotdesk_sessions::Entity::find()
                .filter(hotdesk_sessions::Column::DomainId.is_in(ids.clone()))
                .filter(hotdesk_sessions::Column::EndedAt.is_null())
                .all(db),
            location_sign_ins::Entity::find()
                .filter(location_sign_ins::Column::DomainId.is_in(ids.clone()))
                .all(db),
            extension_groups::Entity::find()
                .filter(extension_groups::Column::DomainId.is_in(ids.clone()))
                .all(db),
        )?;
    // The gateways a Domain may use: its own and those granted to it (platform gateways).
    let granted = Query::select()
        .column(gateway_grants::Column::GatewayId)
        .from(gateway_grants::Entity)
        .and_where(gateway_grants::Column::DomainId.is_in(ids.clone()))
        .to_owned();
    let route_ids = Query::select()
        .column(outbound_routes::Column::Id)
        .from(outbound_routes::Entity)
        .and_where(outbound_routes::Column::DomainId.is_in(ids.clone()))
        .to_owned();
    let (routes, route_gateways, all_gateways, grants, numbers, flows) = tokio::try_join!(
        outbound_routes::Entity::find()
            .filter(outbound_routes::Column::DomainId.is_in(ids.clone()))
            .all(db),
        outbound_route_gateways::Entity::find()
            .filter(outbound_route_gateways::Column::RouteId.in_subquery(route_ids))
            .all(db),
        gateways::Entity::find()
            .filter(
                Condition::any()
                    .add(gateways::Column::DomainId.is_in(ids.clone()))
                    .add(gateways::Column::Id.in_subquery(granted)),
            )
            .all(db),
        gateway_grants::Entity::find()
            .filter(gateway_grants::Column::DomainId.is_in(ids.clone()))
            .all(db),
        numbers::Entity::find()
            .filter(numbers::Column::DomainId.is_in(ids.clone()))
            .all(db),
        crate::store::call_flows::Entity::find()
            .filter(crate::store::call_flows::Column::DomainId.is_in(ids.clone()))
            .all(db),
    )?;
    let numbers = numbers
        .into_iter()
        .filter_map(|n| Some((n.domain_id?, number_facts(n))))
        .collect();
    let mut routing = routing_by_domain(routes, route_gateways, all_gateways, grants, numbers);
    for flow in flows {
        routing.entry(flow.domain_id).or_default().flows.push(flow);
    }
    let mut settings: HashMap<Uuid, calling_settings::Model> =
        settings.into_iter().map(|s| (s.domain_id, s)).collect();
    let mut extensions = group(extensions, |e| e.domain_id);
    let mut devices = group(devices, |d| d.domain_id);
    let mut locations = group(locations, |l| l.domain_id);
    let mut listings = group(listings, |l| l.domain_id);
    let mut sessions = group(sessions, |s| s.domain_id);
    let mut sign_ins = group(sign_ins, |s| s.domain_id);
    let mut groups = group(groups, |g| g.domain_id);

    Ok(domains
        .into_iter()
        .map(|domain| {
            let id = domain.id;
            let mut r = routing.remove(&id).unwrap_or_default();
            let rows = SnapshotRows {
                settings: settings
                    .remove(&id)
                    .unwrap_or_else(|| settings_service::defaults(id)),
                domain,
                extensions: extensions.remove(&id).unwrap_or_default(),
                devices: devices.remove(&id).unwrap_or_default(),
                locations: locations.remove(&id).unwrap_or_default(),
                location_extensions: listings.remove(&id).unwrap_or_default(),
                groups: groups.remove(&id).unwrap_or_default(),
                sessions: sessions
                    .remove(&id)
                    .unwrap_or_default()
                    .iter()
                    .map(session_of)
                    .collect(),
                sign_ins: sign_ins
                    .remove(&id)
                    .unwrap_or_default()
                    .iter()
                    .map(sign_in_of)
                    .collect(),
                registered: BTreeSet::new(),
            };
            r.settings = Some(rows.settings.clone());
            DomainRows { rows, routing: r }
        })
        .collect())
}

/// Groups every Domain's routing rows (the cold start).
fn routing_by_domain(
    routes: Vec<outbound_routes::Model>,
    route_gateways: Vec<outbound_route_gateways::Model>,
    all_gateways: Vec<gateways::Model>,
    grants: Vec<gateway_grants::Model>,
    numbers: Vec<(Uuid, NumberFacts)>,
) -> HashMap<Uuid, RoutingRows> {
    let mut out: HashMap<Uuid, RoutingRows> = HashMap::new();
    let route_domain: HashMap<Uuid, Uuid> = routes.iter().map(|r| (r.id, r.domain_id)).collect();
    for r in routes {
        out.entry(r.domain_id).or_default().routes.push(r);
    }
    for rg in route_gateways {
        if let Some(d) = route_domain.get(&rg.route_id) {
            out.entry(*d).or_default().route_gateways.push(rg);
        }
    }
    let by_id: HashMap<Uuid, &gateways::Model> = all_gateways.iter().map(|g| (g.id, g)).collect();
    for g in &all_gateways {
        if let Some(d) = g.domain_id {
            out.entry(d).or_default().gateways.push(g.clone());
        }
    }
    for grant in grants {
        if let Some(g) = by_id.get(&grant.gateway_id) {
            out.entry(grant.domain_id)
                .or_default()
                .gateways
                .push((*g).clone());
        }
    }
    for (d, n) in numbers {
        out.entry(d).or_default().numbers.push(n);
    }
    out
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

fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut out: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        out.entry(key(&row)).or_default().push(row);
    }
    out
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
