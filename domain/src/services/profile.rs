//! The caller's own view: who am I, my roles per Domain, my effective permissions.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::{DomainError, DomainResult};
use crate::identity::authz::{Actor, Principal};
use crate::identity::permissions::{BuiltinRole, PermissionSet};
use crate::store::{api_keys, domains, role_assignments, roles, users};

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
    let domains = found
        .into_iter()
        .map(|domain| DomainStanding {
            roles: per_domain.remove(&domain.id).unwrap_or_default(),
            permissions: actor.permissions_in(domain.id),
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
