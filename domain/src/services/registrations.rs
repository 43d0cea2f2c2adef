//! Registrations: what FreeSWITCH reports about registered phones, stored per node, listed per
//! Domain, and fed to presence ([`LineStates::registered`]).
//!
//! The ESL bridge hands over batches of [`Change`]s (one transaction per batch: ingestion
//! keeps up with a busy switch); a SIP user counts as registered while it has at least one row
//! that has not expired, on any node. Only flips of that fact reach [`LineStates`], so a phone
//! refreshing its registration every minute costs one upsert and no presence work.
//!
//! No authorization except in [`list`]: the bridge is switchboard itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use super::presence::LineStates;
use super::{Context, scope};
use crate::error::DomainResult;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{devices, domains, extensions, registrations};

/// Rows per multi-row INSERT (12 columns each stays far below every bind-parameter limit).
const INSERT_CHUNK: usize = 200;

/// Rows per registration upsert: about 300 bytes each, so one statement's message stays
/// under the 16 KiB a fresh TCP socket may send at once. A larger one goes out in two writes,
/// and its tail then waits for the server's delayed ACK (Nagle; sqlx does not set
/// `TCP_NODELAY`): 40 ms per statement on PostgreSQL, which capped ingestion at 37 000
/// events/s. SQLite is in-process and does not care.
const UPSERT_CHUNK: usize = 32;

/// One registration as FreeSWITCH reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The node's configured name.
    pub node: String,
    /// The sofia profile.
    pub profile: String,
    /// The Domain the SIP user belongs to.
    pub domain_id: Uuid,
    /// The SIP user (any case; stored lower-case).
    pub sip_user: String,
    /// The REGISTER's Call-ID.
    pub call_id: String,
    /// The Contact header.
    pub contact: String,
    /// Source address.
    pub network_ip: String,
    /// Source port.
    pub network_port: i32,
    /// User-Agent.
    pub user_agent: Option<String>,
    /// When it lapses.
    pub expires_at: DateTime<Utc>,
}

/// A change to the registration table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A registration was made or refreshed. It replaces the SIP user's row with the same
    /// Contact on that node, whatever its Call-ID: sofia (`multiple-registrations=contact`)
    /// keeps one registration per contact, so a phone that reboots and registers with a new
    /// Call-ID replaces its old registration.
    Registered(Reported),
    /// A registration went away (unregister, expiry, flush): the rows with that Call-ID and the
    /// rows with that Contact (sofia removes by contact). With neither, every registration of
    /// the SIP user on that node goes.
    Gone {
        /// The node.
        node: String,
        /// The Domain.
        domain_id: Uuid,
        /// The SIP user.
        sip_user: String,
        /// The registration's Call-ID, if known.
        call_id: Option<String>,
        /// The Contact that went away, if known.
        contact: Option<String>,
    },
}

/// The row key, as sofia keys a registration: node, Domain, lower-case SIP user, Contact.
type Key = (String, Uuid, String, String);
/// A SIP user of a Domain (lower-case).
type UserKey = (Uuid, String);

/// A batch folded to its outcome: users wiped first, then rows deleted by Call-ID or Contact,
/// then rows upserted.
#[derive(Debug, Default)]
struct Folded {
    wipe: BTreeSet<(String, Uuid, String)>,
    /// (node, Domain, user, Call-ID).
    delete_calls: BTreeSet<(String, Uuid, String, String)>,
    delete_contacts: BTreeSet<Key>,
    upsert: BTreeMap<Key, Reported>,
}

/// Folds changes in order into their net effect, so one statement never touches a row twice
/// and a refresh storm of one phone is one upsert.
fn fold(changes: Vec<Change>) -> Folded {
    let mut f = Folded::default();
    for change in changes {
        match change {
            Change::Registered(r) => {
                let key = (
                    r.node.clone(),
                    r.domain_id,
                    r.sip_user.to_ascii_lowercase(),
                    r.contact.clone(),
                );
                f.upsert.insert(key, r);
            }
            Change::Gone {
                node,
                domain_id,
                sip_user,
                call_id: None,
                contact: None,
            } => {
                let user = sip_user.to_ascii_lowercase();
                let same_user = |(n, d, u): (&String, &Uuid, &String)| {
                    n == &node && *d == domain_id && u == &user
                };
                f.upsert.retain(|(n, d, u, _), _| !same_user((n, d, u)));
                f.delete_calls.retain(|(n, d, u, _)| !same_user((n, d, u)));
                f.delete_contacts
                    .retain(|(n, d, u, _)| !same_user((n, d, u)));
                f.wipe.insert((node, domain_id, user));
            }
            Change::Gone {
                node,
                domain_id,
                sip_user,
                call_id,
                contact,
            } => {
                let user = sip_user.to_ascii_lowercase();
                f.upsert.retain(|(n, d, u, c), r| {
                    !(n == &node
                        && *d == domain_id
                        && u == &user
                        && (call_id.as_ref() == Some(&r.call_id) || contact.as_ref() == Some(c)))
                });
                if let Some(call_id) = call_id {
                    f.delete_calls
                        .insert((node.clone(), domain_id, user.clone(), call_id));
                }
                if let Some(contact) = contact {
                    f.delete_contacts.insert((node, domain_id, user, contact));
                }
            }
        }
    }
    f
}

fn row(r: &Reported, now: DateTime<Utc>) -> registrations::ActiveModel {
    registrations::ActiveModel {
        id: Set(Uuid::now_v7()),
        domain_id: Set(r.domain_id),
        node: Set(r.node.clone()),
        profile: Set(r.profile.clone()),
        sip_user: Set(r.sip_user.to_ascii_lowercase()),
        call_id: Set(r.call_id.clone()),
        contact: Set(r.contact.clone()),
        network_ip: Set(r.network_ip.clone()),
        network_port: Set(r.network_port),
        user_agent: Set(r.user_agent.clone()),
        registered_at: Set(now),
        expires_at: Set(r.expires_at),
    }
}

async fn upsert_all<C: ConnectionTrait>(
    db: &C,
    rows: impl Iterator<Item = &Reported>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    use registrations::Column as C;
    let rows: Vec<registrations::ActiveModel> = rows.map(|r| row(r, now)).collect();
    for chunk in rows.chunks(UPSERT_CHUNK) {
        registrations::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([C::Node, C::DomainId, C::SipUser, C::Contact])
                    .update_columns([
                        C::Profile,
                        C::CallId,
                        C::Contact,
                        C::NetworkIp,
                        C::NetworkPort,
                        C::UserAgent,
                        C::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Applies a batch of changes in one transaction, then tells presence about every SIP user
/// whose "registered anywhere" fact flipped.
pub async fn apply(
    db: &DatabaseConnection,
    lines: &LineStates,
    changes: Vec<Change>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let folded = fold(changes);
    let mut touched: BTreeSet<UserKey> = BTreeSet::new();
    let txn = crate::db::begin_write(db).await?;
    for (node, domain_id, user) in &folded.wipe {
        registrations::Entity::delete_many()
            .filter(registrations::Column::Node.eq(node.as_str()))
            .filter(registrations::Column::DomainId.eq(*domain_id))
            .filter(registrations::Column::SipUser.eq(user.as_str()))
            .exec(&txn)
            .await?;
        touched.insert((*domain_id, user.clone()));
    }
    for (node, domain_id, user, call_id) in &folded.delete_calls {
        registrations::Entity::delete_many()
            .filter(registrations::Column::Node.eq(node.as_str()))
            .filter(registrations::Column::DomainId.eq(*domain_id))
            .filter(registrations::Column::SipUser.eq(user.as_str()))
            .filter(registrations::Column::CallId.eq(call_id.as_str()))
            .exec(&txn)
            .await?;
        touched.insert((*domain_id, user.clone()));
    }
    for (node, domain_id, user, contact) in &folded.delete_contacts {
        registrations::Entity::delete_many()
            .filter(registrations::Column::Node.eq(node.as_str()))
            .filter(registrations::Column::DomainId.eq(*domain_id))
            .filter(registrations::Column::SipUser.eq(user.as_str()))
            .filter(registrations::Column::Contact.eq(contact.as_str()))
            .exec(&txn)
            .await?;
        touched.insert((*domain_id, user.clone()));
    }
    upsert_all(&txn, folded.upsert.values(), now).await?;
    touched.extend(folded.upsert.keys().map(|(_, d, u, _)| (*d, u.clone())));
    txn.commit().await?;
    tell_presence(db, lines, touched, now).await
}

/// Replaces everything known about one node with a fresh list (after a (re)connect).
pub async fn replace_node(
    db: &DatabaseConnection,
    lines: &LineStates,
    node: &str,
    reported: Vec<Reported>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let mut touched: BTreeSet<UserKey> = registrations::Entity::find()
        .filter(registrations::Column::Node.eq(node))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.domain_id, r.sip_user))
        .collect();
    let mut unique: BTreeMap<Key, Reported> = BTreeMap::new();
    for r in reported {
        let key = (
            node.to_owned(),
            r.domain_id,
            r.sip_user.to_ascii_lowercase(),
            r.contact.clone(),
        );
        unique.insert(
            key,
            Reported {
                node: node.to_owned(),
                ..r
            },
        );
    }
    let txn = crate::db::begin_write(db).await?;
    registrations::Entity::delete_many()
        .filter(registrations::Column::Node.eq(node))
        .exec(&txn)
        .await?;
    upsert_all(&txn, unique.values(), now).await?;
    txn.commit().await?;
    touched.extend(unique.keys().map(|(_, d, u, _)| (*d, u.clone())));
    tell_presence(db, lines, touched, now).await
}

/// Removes expired registrations (of the FreeSWITCH `nodes` only, when given); returns how many
/// went.
pub async fn sweep(
    db: &DatabaseConnection,
    lines: &LineStates,
    nodes: Option<&[String]>,
    now: DateTime<Utc>,
) -> DomainResult<u64> {
    if nodes.is_some_and(<[String]>::is_empty) {
        return Ok(0);
    }
    let of_nodes = |q: sea_orm::Select<registrations::Entity>| match nodes {
        Some(nodes) => q.filter(registrations::Column::Node.is_in(nodes.to_vec())),
        None => q,
    };
    let expired: BTreeSet<UserKey> = of_nodes(registrations::Entity::find())
        .filter(registrations::Column::ExpiresAt.lte(now))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.domain_id, r.sip_user))
        .collect();
    if expired.is_empty() {
        return Ok(0);
    }
    let mut delete =
        registrations::Entity::delete_many().filter(registrations::Column::ExpiresAt.lte(now));
    if let Some(nodes) = nodes {
        delete = delete.filter(registrations::Column::Node.is_in(nodes.to_vec()));
    }
    let gone = delete.exec(db).await?.rows_affected;
    tell_presence(db, lines, expired, now).await?;
    Ok(gone)
}

/// Brings every registered SIP user into presence (at start, before the first resync),
/// quietly: they were registered before this process started, nothing changed for anyone
/// watching (and on several nodes, a node starting must not announce every phone again).
pub async fn load_into(
    db: &DatabaseConnection,
    lines: &LineStates,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let mut by_domain: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for r in registrations::Entity::find()
        .filter(registrations::Column::ExpiresAt.gt(now))
        .all(db)
        .await?
    {
        by_domain.entry(r.domain_id).or_default().push(r.sip_user);
    }
    for (domain_id, users) in by_domain {
        lines.seed_registered(domain_id, users);
    }
    Ok(())
}

/// For each touched user, compares "has a live row" with what presence knows and reports the
/// flips. Domains deleted meanwhile are skipped.
async fn tell_presence(
    db: &DatabaseConnection,
    lines: &LineStates,
    touched: BTreeSet<UserKey>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let mut by_domain: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    for (d, u) in touched {
        by_domain.entry(d).or_default().push(u);
    }
    for (domain_id, users) in by_domain {
        let mut live: BTreeSet<String> = BTreeSet::new();
        for chunk in users.chunks(INSERT_CHUNK) {
            let rows: Vec<String> = registrations::Entity::find()
                .select_only()
                .column(registrations::Column::SipUser)
                .filter(registrations::Column::DomainId.eq(domain_id))
                .filter(registrations::Column::SipUser.is_in(chunk.to_vec()))
                .filter(registrations::Column::ExpiresAt.gt(now))
                .into_tuple()
                .all(db)
                .await?;
            live.extend(rows);
        }
        let (known, _) = lines.facts(domain_id);
        let flips: Vec<(String, bool)> = users
            .into_iter()
            .filter_map(|user| {
                let registered = live.contains(&user);
                (known.contains(&user) != registered).then_some((user, registered))
            })
            .collect();
        match lines.apply_many(domain_id, &flips, &[]).await {
            Ok(()) => {}
            // The Domain went away between the write and now: nothing to show.
            Err(crate::DomainError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The SIP users a Domain knows: its devices and the Extensions that register directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainUsers {
    /// The Domain.
    pub domain_id: Uuid,
    /// Its SIP domain.
    pub sip_domain: String,
    /// Lower-case SIP users.
    pub users: BTreeSet<String>,
}

/// The Domain serving `sip_domain` and its SIP users; none for a realm that is not ours.
pub async fn domain_users<C: ConnectionTrait>(
    db: &C,
    sip_domain: &str,
) -> DomainResult<Option<DomainUsers>> {
    let Some(domain) = domains::Entity::find()
        .filter(domains::Column::SipDomain.eq(sip_domain.to_ascii_lowercase()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let mut users: BTreeSet<String> = devices::Entity::find()
        .select_only()
        .column(devices::Column::SipUsername)
        .filter(devices::Column::DomainId.eq(domain.id))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.to_ascii_lowercase())
        .collect();
    let numbers: Vec<String> = extensions::Entity::find()
        .select_only()
        .column(extensions::Column::Number)
        .filter(extensions::Column::DomainId.eq(domain.id))
        .filter(extensions::Column::SipRegistrationEnabled.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    users.extend(numbers.into_iter().map(|n| n.to_ascii_lowercase()));
    Ok(Some(DomainUsers {
        domain_id: domain.id,
        sip_domain: domain.sip_domain,
        users,
    }))
}

/// Every Domain's id by SIP domain (lower-case), for the bridge's resync.
pub async fn all_domains<C: ConnectionTrait>(db: &C) -> DomainResult<HashMap<String, Uuid>> {
    let rows: Vec<(Uuid, String)> = domains::Entity::find()
        .select_only()
        .column(domains::Column::Id)
        .column(domains::Column::SipDomain)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, d)| (d.to_ascii_lowercase(), id))
        .collect())
}

/// Filters of the registration list.
#[derive(Debug, Clone, Default)]
pub struct RegistrationFilter {
    /// Only this SIP user.
    pub sip_user: Option<String>,
    /// Only this node.
    pub node: Option<String>,
}

/// The Domain's live registrations, oldest first (`registrations.read`).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &RegistrationFilter,
    page: &PageRequest,
) -> DomainResult<Page<registrations::Model>> {
    scope::enter(db, ctx, domain_id, Permission::RegistrationsRead).await?;
    let mut query = registrations::Entity::find()
        .filter(registrations::Column::DomainId.eq(domain_id))
        .filter(registrations::Column::ExpiresAt.gt(ctx.now));
    if let Some(u) = filter
        .sip_user
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        query = query.filter(registrations::Column::SipUser.eq(u.to_ascii_lowercase()));
    }
    if let Some(n) = filter
        .node
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        query = query.filter(registrations::Column::Node.eq(n));
    }
    fetch_page(db, query, registrations::Column::Id, |m| m.id, page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(user: &str, call: &str) -> Reported {
        reg_at(user, call, "<sip:x@127.0.0.1>")
    }

    fn reg_at(user: &str, call: &str, contact: &str) -> Reported {
        Reported {
            node: "fs1".into(),
            profile: "internal".into(),
            domain_id: Uuid::from_u128(1),
            sip_user: user.into(),
            call_id: call.into(),
            contact: contact.into(),
            network_ip: "127.0.0.1".into(),
            network_port: 5060,
            user_agent: None,
            expires_at: DateTime::<Utc>::MIN_UTC,
        }
    }

    fn gone(user: &str, call: Option<&str>) -> Change {
        Change::Gone {
            node: "fs1".into(),
            domain_id: Uuid::from_u128(1),
            sip_user: user.into(),
            call_id: call.map(str::to_owned),
            contact: None,
        }
    }

    #[test]
    fn a_batch_folds_to_its_net_effect() {
        let f = fold(vec![
            Change::Registered(reg("D-1", "a")),
            Change::Registered(reg("d-1", "a")),
            Change::Registered(reg("d-2", "b")),
            gone("d-2", Some("b")),
            Change::Registered(reg("d-3", "c")),
            gone("d-3", None),
            Change::Registered(reg("d-3", "d")),
        ]);
        let upserts: Vec<(&str, &str)> = f
            .upsert
            .values()
            .map(|r| (r.sip_user.as_str(), r.call_id.as_str()))
            .collect();
        assert_eq!(upserts, [("d-1", "a"), ("d-3", "d")]);
        let deletes: Vec<&str> = f
            .delete_calls
            .iter()
            .map(|(_, _, u, _)| u.as_str())
            .collect();
        assert_eq!(deletes, ["d-2"]);
        let wipes: Vec<&str> = f.wipe.iter().map(|(_, _, u)| u.as_str()).collect();
        assert_eq!(wipes, ["d-3"]);
    }

    #[test]
    fn a_new_call_id_on_the_same_contact_replaces_the_registration() {
        let f = fold(vec![
            Change::Registered(reg_at("d-1", "before", "<sip:d-1@10.0.0.1:5060>")),
            Change::Registered(reg_at("d-1", "after", "<sip:d-1@10.0.0.1:5060>")),
            Change::Registered(reg_at("d-1", "softphone", "<sip:d-1@10.0.0.2:5060>")),
        ]);
        let calls: Vec<&str> = f.upsert.values().map(|r| r.call_id.as_str()).collect();
        assert_eq!(calls, ["after", "softphone"], "one row per contact");
    }

    #[test]
    fn an_unregister_removes_by_contact_as_well_as_by_call_id() {
        let f = fold(vec![
            Change::Registered(reg_at("d-1", "old", "<sip:d-1@10.0.0.1:5060>")),
            Change::Registered(reg_at("d-1", "other", "<sip:d-1@10.0.0.2:5060>")),
            Change::Gone {
                node: "fs1".into(),
                domain_id: Uuid::from_u128(1),
                sip_user: "d-1".into(),
                call_id: Some("new".into()),
                contact: Some("<sip:d-1@10.0.0.1:5060>".into()),
            },
        ]);
        let calls: Vec<&str> = f.upsert.values().map(|r| r.call_id.as_str()).collect();
        assert_eq!(calls, ["other"]);
        assert_eq!(f.delete_contacts.len(), 1);
        assert_eq!(f.delete_calls.len(), 1);
    }
}
