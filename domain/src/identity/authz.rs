//! Authorization decisions: named functions over an [`Actor`], called once per handler.
//!
//! A platform role is just a permission set that applies in every Domain; it goes through the
//! same [`can`] as a Domain role, so there is no bypass path to forget about.

use std::collections::HashMap;

use uuid::Uuid;

use super::permissions::{Permission, PermissionSet};
use crate::error::{DomainError, DomainResult};

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A dashboard user, through a login session.
    User {
        /// The user's id.
        id: Uuid,
        /// The session the access token belongs to.
        session_id: Uuid,
    },
    /// A machine client, through an API key.
    ApiKey {
        /// The key's id.
        id: Uuid,
    },
    /// switchboard itself (scheduler, feature codes, bootstrap).
    System,
}

/// An authenticated caller with the permissions it holds, per scope.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who is acting.
    pub principal: Principal,
    /// A label for the audit log (email, key name, `system`).
    pub label: String,
    /// Permissions that apply in every Domain and at platform level.
    pub platform: PermissionSet,
    /// Permissions per Domain.
    pub domains: HashMap<Uuid, PermissionSet>,
}

impl Actor {
    /// switchboard itself, with every permission.
    pub fn system(label: &str) -> Self {
        Self {
            principal: Principal::System,
            label: label.to_owned(),
            platform: PermissionSet::all(),
            domains: HashMap::new(),
        }
    }

    /// The user id, when a user is acting.
    pub fn user_id(&self) -> Option<Uuid> {
        match self.principal {
            Principal::User { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The permissions that apply in `domain` (platform permissions included).
    pub fn permissions_in(&self, domain: Uuid) -> PermissionSet {
        self.platform
            .union(self.domains.get(&domain).copied().unwrap_or_default())
    }
}

/// True when `actor` holds `permission` in `domain` (or at platform level when `domain` is
/// `None`).
pub fn can(actor: &Actor, permission: Permission, domain: Option<Uuid>) -> bool {
    match domain {
        Some(domain) => actor.permissions_in(domain).contains(permission),
        None => actor.platform.contains(permission),
    }
}

/// True when `actor` may see that `domain` exists at all.
pub fn can_see_domain(actor: &Actor, domain: Uuid) -> bool {
    !actor.permissions_in(domain).is_empty()
}

/// The Domains `actor` can see; `None` means every Domain (a platform role).
pub fn visible_domains(actor: &Actor) -> Option<Vec<Uuid>> {
    if actor.platform.is_empty() {
        let mut ids: Vec<Uuid> = actor
            .domains
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        Some(ids)
    } else {
        None
    }
}

/// Requires `permission` in `domain`: a Domain the actor cannot see answers not-found (it
/// learns nothing), one it can see but may not change answers forbidden.
pub fn authorize(actor: &Actor, permission: Permission, domain: Uuid) -> DomainResult<()> {
    if can(actor, permission, Some(domain)) {
        Ok(())
    } else if can_see_domain(actor, domain) {
        Err(DomainError::Forbidden {
            permission: permission.as_str().to_owned(),
        })
    } else {
        Err(DomainError::NotFound("domain"))
    }
}

/// Requires a platform-level permission.
pub fn authorize_platform(actor: &Actor, permission: Permission) -> DomainResult<()> {
    if can(actor, permission, None) {
        Ok(())
    } else {
        Err(DomainError::Forbidden {
            permission: permission.as_str().to_owned(),
        })
    }
}

/// Nobody may grant a permission they do not hold themselves: every permission of `granted`
/// must be held by `actor` in `domain` (or at platform level when `domain` is `None`).
pub fn authorize_grant(
    actor: &Actor,
    granted: PermissionSet,
    domain: Option<Uuid>,
) -> DomainResult<()> {
    let held = match domain {
        Some(domain) => actor.permissions_in(domain),
        None => actor.platform,
    };
    match granted.missing_from(held).first() {
        None => Ok(()),
        Some(missing) => Err(DomainError::Forbidden {
            permission: missing.as_str().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::permissions::BuiltinRole;

    fn actor(platform: PermissionSet, domains: &[(Uuid, BuiltinRole)]) -> Actor {
        Actor {
            principal: Principal::User {
                id: Uuid::nil(),
                session_id: Uuid::nil(),
            },
            label: "test".into(),
            platform,
            domains: domains.iter().map(|(d, r)| (*d, r.permissions())).collect(),
        }
    }

    #[test]
    fn role_permission_matrix() {
        let d = Uuid::from_u128(1);
        // (role, permission, allowed) for a representative slice; the full table lives in the
        // README and the integration tests drive it through HTTP.
        let table = [
            (BuiltinRole::DomainAdmin, Permission::UsersWrite, true),
            (BuiltinRole::DomainAdmin, Permission::DomainsManage, false),
            (BuiltinRole::Manager, Permission::DevicesWrite, true),
            (BuiltinRole::Manager, Permission::UsersWrite, false),
            (BuiltinRole::Manager, Permission::SecretsRead, false),
            (BuiltinRole::Receptionist, Permission::HotdeskOthers, true),
            (BuiltinRole::Receptionist, Permission::DevicesWrite, false),
            (BuiltinRole::Supervisor, Permission::AuditRead, true),
            (BuiltinRole::Supervisor, Permission::HotdeskOthers, false),
            (BuiltinRole::Agent, Permission::PresenceRead, true),
            (BuiltinRole::Agent, Permission::DevicesRead, false),
            (BuiltinRole::Member, Permission::HotdeskSelf, true),
            (BuiltinRole::Member, Permission::ExtensionsRead, false),
        ];
        for (role, permission, allowed) in table {
            let a = actor(PermissionSet::EMPTY, &[(d, role)]);
            assert_eq!(
                can(&a, permission, Some(d)),
                allowed,
                "{role:?} {permission}"
            );
        }
    }

    #[test]
    fn another_domain_is_not_found_and_a_visible_one_is_forbidden() {
        let (mine, theirs) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let a = actor(PermissionSet::EMPTY, &[(mine, BuiltinRole::Member)]);
        assert!(matches!(
            authorize(&a, Permission::UsersRead, theirs),
            Err(DomainError::NotFound(_))
        ));
        assert!(matches!(
            authorize(&a, Permission::UsersRead, mine),
            Err(DomainError::Forbidden { .. })
        ));
        assert!(authorize(&a, Permission::HotdeskSelf, mine).is_ok());
    }

    #[test]
    fn platform_role_acts_in_every_domain_through_the_same_check() {
        let a = actor(BuiltinRole::PlatformAdmin.permissions(), &[]);
        assert!(authorize(&a, Permission::UsersWrite, Uuid::from_u128(42)).is_ok());
        assert!(authorize_platform(&a, Permission::DomainsManage).is_ok());
        assert_eq!(visible_domains(&a), None);
    }

    #[test]
    fn domain_admin_cannot_act_at_platform_level() {
        let d = Uuid::from_u128(1);
        let a = actor(PermissionSet::EMPTY, &[(d, BuiltinRole::DomainAdmin)]);
        assert!(authorize_platform(&a, Permission::DomainsManage).is_err());
        assert_eq!(visible_domains(&a), Some(vec![d]));
    }

    #[test]
    fn nobody_grants_what_they_do_not_hold() {
        let d = Uuid::from_u128(1);
        let manager = actor(PermissionSet::EMPTY, &[(d, BuiltinRole::Manager)]);
        assert!(
            authorize_grant(&manager, BuiltinRole::Receptionist.permissions(), Some(d)).is_ok()
        );
        assert!(
            authorize_grant(&manager, BuiltinRole::DomainAdmin.permissions(), Some(d)).is_err()
        );
        let admin = actor(PermissionSet::EMPTY, &[(d, BuiltinRole::DomainAdmin)]);
        assert!(authorize_grant(&admin, BuiltinRole::PlatformAdmin.permissions(), None).is_err());
        assert!(authorize_grant(&admin, BuiltinRole::DomainAdmin.permissions(), Some(d)).is_ok());
    }
}
