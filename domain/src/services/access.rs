//! Turning stored role assignments into permission sets.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::DomainResult;
use crate::identity::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::store::{domains, role_assignments, roles};

/// The permissions a custom role's stored JSON grants (unknown names grant nothing).
pub fn custom_role_permissions(role: &roles::Model) -> PermissionSet {
    let names: Vec<String> = serde_json::from_value(role.permissions.clone()).unwrap_or_default();
    let list: Vec<Permission> = names.iter().filter_map(|n| n.parse().ok()).collect();
    PermissionSet::of(&list)
}

/// The permissions of a role key (a built-in name, or a custom role id that must belong to
/// `domain`). `None` when the key names no such role.
pub async fn role_permissions<C: ConnectionTrait>(
    db: &C,
    domain: Option<Uuid>,
    role_key: &str,
) -> DomainResult<Option<PermissionSet>> {
    if let Some(builtin) = BuiltinRole::parse(role_key) {
        return Ok(Some(builtin.permissions()));
    }
    let (Some(domain), Ok(id)) = (domain, Uuid::parse_str(role_key)) else {
        return Ok(None);
    };
    let role = roles::Entity::find_by_id(id)
        .filter(roles::Column::DomainId.eq(domain))
        .one(db)
        .await?;
    Ok(role.as_ref().map(custom_role_permissions))
}

/// A user's permissions: those of platform roles, and per Domain.
pub async fn user_permissions<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> DomainResult<(PermissionSet, HashMap<Uuid, PermissionSet>)> {
    let assignments = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    let custom_ids: Vec<Uuid> = assignments
        .iter()
        .filter_map(|a| a.custom_role_id)
        .collect();
    let custom: HashMap<Uuid, PermissionSet> = if custom_ids.is_empty() {
        HashMap::new()
    } else {
        roles::Entity::find()
            .filter(roles::Column::Id.is_in(custom_ids))
            .all(db)
            .await?
            .iter()
            .map(|r| (r.id, custom_role_permissions(r)))
            .collect()
    };
    let mut platform = PermissionSet::EMPTY;
    let mut domains: HashMap<Uuid, PermissionSet> = HashMap::new();
    for a in &assignments {
        let set = match (a.custom_role_id, BuiltinRole::parse(&a.role_key)) {
            (Some(id), _) => custom.get(&id).copied().unwrap_or_default(),
            (None, Some(builtin)) => builtin.permissions(),
            (None, None) => PermissionSet::EMPTY,
        };
        match a.domain_id {
            None => platform = platform.union(set),
            Some(d) => {
                let entry = domains.entry(d).or_default();
                *entry = entry.union(set);
            }
        }
    }
    // A disabled Domain is suspended: its members lose their standing in it (platform roles,
    // which act in every Domain, keep theirs so operators can re-enable it).
    if !domains.is_empty() {
        let disabled = disabled_domains(db, domains.keys().copied().collect()).await?;
        domains.retain(|id, _| !disabled.contains(id));
    }
    Ok((platform, domains))
}

/// Which of `ids` are disabled Domains.
pub async fn disabled_domains<C: ConnectionTrait>(
    db: &C,
    ids: Vec<Uuid>,
) -> DomainResult<Vec<Uuid>> {
    Ok(domains::Entity::find()
        .filter(domains::Column::Id.is_in(ids))
        .filter(domains::Column::Enabled.eq(false))
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect())
}
