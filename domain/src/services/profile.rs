//! The caller's own view: who am I, my roles per Domain, my effective permissions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::identity::authz::{Actor, Principal};
use crate::identity::permissions::{BuiltinRole, PermissionSet};
use crate::store::{
    api_keys, devices, domains, extensions, hotdesk_sessions, location_sign_ins, locations,
    role_assignments, roles, users,
};

/// A role as the caller holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRole {
    /// The role key: a built-in name or a custom role's id.
    pub key: String,
    /// The role's display name.
    pub name: String,
}

/// The caller's standing in one Domain.
#[derive(Debug, Clone)]
pub struct DomainStanding {
    /// The Domain.
    pub domain: domains::Model,
    /// Roles held there directly.
    pub roles: Vec<HeldRole>,
    /// Effective permissions there (platform permissions included).
    pub permissions: PermissionSet,
    /// The caller's Extension there (a User's linked Extension), with where it is.
    pub extension: Option<MyExtension>,
}

/// The caller's Extension in a Domain and where it is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyExtension {
    /// Its id.
    pub id: Uuid,
    /// Its number.
    pub number: String,
    /// Its display name.
    pub display_name: String,
    /// The hot-desk phones it is logged in to (several when one phone at a time is off).
    pub hotdesk_sessions: Vec<MyDesk>,
    /// The Location it is signed in to.
    pub location: Option<MyLocation>,
}

/// A hot-desk phone the caller's Extension is logged in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyDesk {
    /// The session.
    pub session_id: Uuid,
    /// The phone.
    pub device_id: Uuid,
    /// Its label.
    pub device_label: String,
    /// Its Location, if any.
    pub location_id: Option<Uuid>,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code`, `api` or `admin`.
    pub started_via: String,
}

/// The Location the caller's Extension is signed in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyLocation {
    /// The Location.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// Who the caller is.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A dashboard user.
    User(users::Model),
    /// A machine client.
    ApiKey(api_keys::Model),
}

/// Everything `GET /me` shows.
#[derive(Debug, Clone)]
pub struct Me {
    /// The user or API key.
    pub identity: Identity,
    /// The session, for users.
    pub session_id: Option<Uuid>,
    /// Platform roles held.
    pub platform_roles: Vec<HeldRole>,
    /// Platform-level permissions.
    pub platform_permissions: PermissionSet,
    /// Each Domain the caller has a role in.
    pub domains: Vec<DomainStanding>,
}

/// Builds the caller's view.
pub async fn me(db: &DatabaseConnection, actor: &Actor) -> DomainResult<Me> {
    let (identity, session_id, assignments) = match actor.principal {
        Principal::User { id, session_id } => {
            let user = users::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(DomainError::NotFound("user"))?;
            let assignments = role_assignments::Entity::find()
                .filter(role_assignments::Column::UserId.eq(id))
                .all(db)
                .await?
                .into_iter()
                .map(|a| (a.domain_id, a.role_key, a.custom_role_id))
                .collect::<Vec<_>>();
            (Identity::User(user), Some(session_id), assignments)
        }
        Principal::ApiKey { id } => {
            let key = api_keys::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(DomainError::NotFound("api key"))?;
            let assignment = vec![(key.domain_id, key.role_key.clone(), key.custom_role_id)];
            (Identity::ApiKey(key), None, assignment)
        }
        Principal::System => return Err(DomainError::NotFound("caller")),
    };
    let custom_ids: Vec<Uuid> = assignments.iter().filter_map(|(_, _, c)| *c).collect();
    let custom_names: BTreeMap<Uuid, String> = if custom_ids.is_empty() {
        BTreeMap::new()
    } else {
        roles::Entity::find()
            .filter(roles::Column::Id.is_in(custom_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect()
    };
    let held = |key: &str, custom: Option<Uuid>| HeldRole {
        key: key.to_owned(),
        name: match custom {
            Some(id) => custom_names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| key.to_owned()),
            None => BuiltinRole::parse(key)
                .map(|r| r.as_str().to_owned())
                .unwrap_or_else(|| key.to_owned()),
        },
    };
    let mut platform_roles = Vec::new();
    let mut per_domain: BTreeMap<Uuid, Vec<HeldRole>> = BTreeMap::new();
    for (domain, key, custom) in &assignments {
        match domain {
            None => platform_roles.push(held(key, *custom)),
            Some(d) => per_domain.entry(*d).or_default().push(held(key, *custom)),
        }
    }
    let ids: Vec<Uuid> = per_domain.keys().copied().collect();
    let found = if ids.is_empty() {
        Vec::new()
    } else {
        domains::Entity::find()
            .filter(domains::Column::Id.is_in(ids))
            .all(db)
            .await?
    };
    let mut mine = my_extensions(db, actor, &found).await?;
    let domains = found
        .into_iter()
        .map(|domain| DomainStanding {
            roles: per_domain.remove(&domain.id).unwrap_or_default(),
            permissions: actor.permissions_in(domain.id),
            extension: mine.remove(&domain.id),
            domain,
        })
        .collect();
    Ok(Me {
        identity,
        session_id,
        platform_roles,
        platform_permissions: actor.platform,
        domains,
    })
}

/// The acting User's Extension in each of `domains`, with its hot-desk sessions and its
/// Location sign-in: five reads whatever the number of Domains.
async fn my_extensions(
    db: &DatabaseConnection,
    actor: &Actor,
    domains: &[domains::Model],
) -> DomainResult<BTreeMap<Uuid, MyExtension>> {
    let Some(user_id) = actor.user_id() else {
        return Ok(BTreeMap::new());
    };
    if domains.is_empty() {
        return Ok(BTreeMap::new());
    }
    let exts = extensions::Entity::find()
        .filter(extensions::Column::UserId.eq(user_id))
        .filter(extensions::Column::DomainId.is_in(domains.iter().map(|d| d.id)))
        .all(db)
        .await?;
    if exts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ext_ids: Vec<Uuid> = exts.iter().map(|e| e.id).collect();
    let (sessions, sign_ins) = tokio::try_join!(
        hotdesk_sessions::Entity::find()
            .filter(hotdesk_sessions::Column::ExtensionId.is_in(ext_ids.clone()))
            .filter(hotdesk_sessions::Column::EndedAt.is_null())
            .order_by_asc(hotdesk_sessions::Column::StartedAt)
            .all(db),
        location_sign_ins::Entity::find()
            .filter(location_sign_ins::Column::ExtensionId.is_in(ext_ids))
            .all(db),
    )?;
    let device_ids: Vec<Uuid> = sessions.iter().map(|s| s.device_id).collect();
    let location_ids: Vec<Uuid> = sign_ins.iter().map(|s| s.location_id).collect();
    let (devices, locations) = tokio::try_join!(
        devices::Entity::find()
            .filter(devices::Column::Id.is_in(device_ids))
            .all(db),
        locations::Entity::find()
            .filter(locations::Column::Id.is_in(location_ids))
            .all(db),
    )?;
    let devices: BTreeMap<Uuid, devices::Model> = devices.into_iter().map(|d| (d.id, d)).collect();
    let locations: BTreeMap<Uuid, locations::Model> =
        locations.into_iter().map(|l| (l.id, l)).collect();
    let mut out = BTreeMap::new();
    for e in exts {
        let hotdesk_sessions = sessions
            .iter()
            .filter(|s| s.extension_id == e.id && s.domain_id == e.domain_id)
            .map(|s| {
                let device = devices.get(&s.device_id);
                MyDesk {
                    session_id: s.id,
                    device_id: s.device_id,
                    device_label: device.map(|d| d.label.clone()).unwrap_or_default(),
                    location_id: device.and_then(|d| d.location_id),
                    started_at: s.started_at,
                    started_via: s.started_via.clone(),
                }
            })
            .collect();
        let location = sign_ins
            .iter()
            .find(|s| s.extension_id == e.id && s.domain_id == e.domain_id)
            .map(|s| MyLocation {
                id: s.location_id,
                name: locations
                    .get(&s.location_id)
                    .map(|l| l.name.clone())
                    .unwrap_or_default(),
                since: s.since,
            });
        out.insert(
            e.domain_id,
            MyExtension {
                id: e.id,
                number: e.number,
                display_name: e.display_name,
                hotdesk_sessions,
                location,
            },
        );
    }
    Ok(out)
}
