//! Roles of a Domain: the built-in ones and the Domain's custom roles, plus resolving role keys
//! (a built-in name or a custom role's id) into permission sets.
//!
//! Nobody creates, widens, narrows or deletes a role carrying a permission they do not hold
//! themselves: changing what a role grants is granting.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::identity::authz::authorize_grant;
use crate::identity::permissions::{BuiltinRole, Permission, PermissionSet, RoleScope};
use crate::services::access::custom_role_permissions;
use crate::store::{api_keys, role_assignments, roles, users};

/// Permissions that only make sense at platform level; a custom (Domain) role cannot hold them.
pub const PLATFORM_ONLY: &[Permission] = &[
    Permission::DomainsManage,
    Permission::NodesRead,
    Permission::NodesWrite,
    Permission::NumbersManage,
    Permission::GatewaysManage,
];

/// Longest custom role name, in characters.
pub const MAX_ROLE_NAME: usize = 64;
/// Longest custom role description, in characters.
pub const MAX_ROLE_DESCRIPTION: usize = 500;

/// True when `permission` can only be held at platform level.
pub fn is_platform_only(permission: Permission) -> bool {
    PLATFORM_ONLY.contains(&permission)
}

/// The name of a custom role: 1–64 characters, not a built-in role's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// Trims and checks a role name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim();
        let count = value.chars().count();
        if count == 0 || count > MAX_ROLE_NAME {
            return Err(FieldError::new(
                "name",
                "invalid_length",
                format!("a role name has 1 to {MAX_ROLE_NAME} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "invalid_format",
                "a role name cannot contain control characters",
            ));
        }
        let lower = value.to_lowercase();
        if BuiltinRole::ALL.iter().any(|r| r.as_str() == lower) {
            return Err(FieldError::new(
                "name",
                "reserved_name",
                format!("{value:?} is the name of a built-in role; choose another"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a list of permission names for a Domain role: every name known, none platform-only,
/// at least one. Errors name the offending item, e.g. `permissions[2]`.
pub fn parse_domain_permissions(
    names: &[String],
    errors: &mut FieldErrors,
) -> Option<PermissionSet> {
    if names.is_empty() {
        errors.add(
            "permissions",
            "required",
            "a role needs at least one permission",
        );
        return None;
    }
    let mut set = PermissionSet::EMPTY;
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        let field = format!("permissions[{i}]");
        match name.trim().parse::<Permission>() {
            Ok(p) if is_platform_only(p) => {
                ok = false;
                errors.add(
                    field,
                    "platform_only",
                    format!("{p} only exists at platform level; a Domain role cannot hold it"),
                );
            }
            Ok(p) => set = set.with(p),
            Err(_) => {
                ok = false;
                errors.add(
                    field,
                    "unknown_permission",
                    format!("{name:?} is not a permission; see GET /api/v1/permissions"),
                );
            }
        }
    }
    ok.then_some(set)
}

/// A role, built-in or custom, as listed for a Domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleView {
    /// The key used in assignments: the built-in name or the custom role's id.
    pub key: String,
    /// The display name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// What it grants.
    pub permissions: PermissionSet,
    /// The custom role row, none for a built-in role.
    pub custom: Option<roles::Model>,
}

impl RoleView {
    /// A built-in role.
    pub fn builtin(role: BuiltinRole) -> Self {
        Self {
            key: role.as_str().to_owned(),
            name: role.as_str().to_owned(),
            description: role.description().to_owned(),
            permissions: role.permissions(),
            custom: None,
        }
    }

    /// A custom role.
    pub fn custom(role: roles::Model) -> Self {
        Self {
            key: role.id.to_string(),
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: custom_role_permissions(&role),
            custom: Some(role),
        }
    }

    /// True for built-in roles.
    pub fn is_builtin(&self) -> bool {
        self.custom.is_none()
    }

    /// The custom role's id, if it is one.
    pub fn custom_role_id(&self) -> Option<Uuid> {
        self.custom.as_ref().map(|r| r.id)
    }
}

/// The union of the roles' permissions.
pub fn union_of(roles: &[RoleView]) -> PermissionSet {
    roles
        .iter()
        .fold(PermissionSet::EMPTY, |set, r| set.union(r.permissions))
}

/// Where a list of role keys is being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleTarget {
    /// Roles held in one Domain: Domain-scope built-ins and that Domain's custom roles.
    Domain(Uuid),
    /// Platform roles: platform-scope built-ins only.
    Platform,
}

/// Resolves role keys for `target`, recording a `{field}[i]` error for each key that names
/// no role there or a role of the other scope. Duplicate keys count once.
pub async fn resolve_roles<C: ConnectionTrait>(
    db: &C,
    target: RoleTarget,
    keys: &[String],
    field: &str,
    errors: &mut FieldErrors,
) -> DomainResult<Vec<RoleView>> {
    let mut resolved: Vec<RoleView> = Vec::new();
    for (i, raw) in keys.iter().enumerate() {
        let key = raw.trim();
        let item = format!("{field}[{i}]");
        let view = if let Some(builtin) = BuiltinRole::parse(key) {
            match (target, builtin.scope()) {
                (RoleTarget::Domain(_), RoleScope::Platform) => {
                    errors.add(
                        item,
                        "wrong_scope",
                        format!("{key} is a platform role; assign it at /api/v1/users/{{id}}/platform-roles"),
                    );
                    continue;
                }
                (RoleTarget::Platform, RoleScope::Domain) => {
                    errors.add(
                        item,
                        "wrong_scope",
                        format!("{key} is a Domain role; assign it in a Domain"),
                    );
                    continue;
                }
                _ => RoleView::builtin(builtin),
            }
        } else {
            let custom = match (target, Uuid::try_parse(key)) {
                (RoleTarget::Domain(domain_id), Ok(id)) => {
                    roles::Entity::find_by_id(id)
                        .filter(roles::Column::DomainId.eq(domain_id))
                        .one(db)
                        .await?
                }
                _ => None,
            };
            match (custom, target) {
                (Some(role), _) => RoleView::custom(role),
                (None, RoleTarget::Platform) if Uuid::try_parse(key).is_ok() => {
                    errors.add(
                        item,
                        "wrong_scope",
                        "custom roles belong to a Domain; only platform_admin is a platform role",
                    );
                    continue;
                }
                (None, _) => {
                    errors.add(
                        item,
                        "unknown_role",
                        format!(
                            "{key:?} is neither a built-in role nor a custom role of this Domain"
                        ),
                    );
                    continue;
                }
            }
        };
        if !resolved.iter().any(|r| r.key == view.key) {
            resolved.push(view);
        }
    }
    Ok(resolved)
}

/// The roles `user_id` holds in `target`, in assignment order.
pub async fn held_roles<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    target: RoleTarget,
) -> DomainResult<Vec<RoleView>> {
    let scope_key = match target {
        RoleTarget::Domain(d) => d.to_string(),
        RoleTarget::Platform => role_assignments::PLATFORM_SCOPE.to_owned(),
    };
    let assignments = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(user_id))
        .filter(role_assignments::Column::ScopeKey.eq(scope_key))
        .order_by_asc(role_assignments::Column::Id)
        .all(db)
        .await?;
    views_of(db, &assignments).await
}

/// Turns assignment rows into role views (custom roles loaded in one query).
pub async fn views_of<C: ConnectionTrait>(
    db: &C,
    assignments: &[role_assignments::Model],
) -> DomainResult<Vec<RoleView>> {
    let custom_ids: Vec<Uuid> = assignments
        .iter()
        .filter_map(|a| a.custom_role_id)
        .collect();
    let custom: Vec<roles::Model> = if custom_ids.is_empty() {
        Vec::new()
    } else {
        roles::Entity::find()
            .filter(roles::Column::Id.is_in(custom_ids))
            .all(db)
            .await?
    };
    Ok(assignments
        .iter()
        .filter_map(|a| match a.custom_role_id {
            Some(id) => custom
                .iter()
                .find(|r| r.id == id)
                .cloned()
                .map(RoleView::custom),
            None => BuiltinRole::parse(&a.role_key).map(RoleView::builtin),
        })
        .collect())
}

/// Every built-in Domain role (all but the platform ones).
pub fn builtin_domain_roles() -> Vec<RoleView> {
    BuiltinRole::ALL
        .iter()
        .filter(|r| r.scope() == RoleScope::Domain)
        .map(|r| RoleView::builtin(*r))
        .collect()
}

/// Lists the Domain's roles (`roles.read`): built-in Domain roles first, then custom roles in
/// creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<Vec<RoleView>> {
    scope::enter(db, ctx, domain_id, Permission::RolesRead).await?;
    let mut all = builtin_domain_roles();
    let custom = roles::Entity::find()
        .filter(roles::Column::DomainId.eq(domain_id))
        .order_by_asc(roles::Column::Id)
        .all(db)
        .await?;
    all.extend(custom.into_iter().map(RoleView::custom));
    Ok(all)
}

/// Reads one role of the Domain (`roles.read`) by key: a built-in Domain role's name or a
/// custom role's id.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    key: &str,
) -> DomainResult<RoleView> {
    scope::enter(db, ctx, domain_id, Permission::RolesRead).await?;
    if let Some(builtin) = BuiltinRole::parse(key)
        && builtin.scope() == RoleScope::Domain
    {
        return Ok(RoleView::builtin(builtin));
    }
    let id = Uuid::try_parse(key).map_err(|_| DomainError::NotFound("role"))?;
    Ok(RoleView::custom(find(db, domain_id, id).await?))
}

/// The custom role `id` of `domain_id`; another Domain's role is not found.
async fn find<C: ConnectionTrait>(db: &C, domain_id: Uuid, id: Uuid) -> DomainResult<roles::Model> {
    roles::Entity::find_by_id(id)
        .filter(roles::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("role"))
}

/// A new custom role.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    /// Name, unique in the Domain (1–64 characters, not a built-in name).
    pub name: String,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
    /// Permission names from the fixed set; Domain-scope ones only.
    pub permissions: Vec<String>,
}

/// A change to a custom role; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New permission list (replaces the old one).
    pub permissions: Option<Vec<String>>,
}

fn parse_description(input: &str) -> Result<String, FieldError> {
    let value = input.trim();
    if value.chars().count() > MAX_ROLE_DESCRIPTION {
        return Err(FieldError::new(
            "description",
            "too_long",
            format!("a description has at most {MAX_ROLE_DESCRIPTION} characters"),
        ));
    }
    Ok(value.to_owned())
}

fn permissions_json(set: PermissionSet) -> Value {
    json!(set.names())
}

fn snapshot(role: &roles::Model) -> Value {
    json!({
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": role.permissions,
    })
}

/// Refuses a name another custom role of the Domain already has, ignoring case (the database's
/// unique index catches exact duplicates that race past this).
async fn check_name_free<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    name: &RoleName,
    except: Option<Uuid>,
) -> DomainResult<()> {
    let wanted = name.as_str().to_lowercase();
    let taken = roles::Entity::find()
        .filter(roles::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
        .into_iter()
        .any(|r| Some(r.id) != except && r.name.to_lowercase() == wanted);
    if taken {
        return Err(DomainError::Conflict {
            code: "already_exists",
            message: "a role with this name already exists in the Domain".into(),
            field: Some("name".into()),
        });
    }
    Ok(())
}

/// Creates a custom role (`roles.write`); the caller must hold every permission it grants.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    input: NewRole,
) -> DomainResult<RoleView> {
    scope::enter(db, ctx, domain_id, Permission::RolesWrite).await?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", RoleName::parse(&input.name));
    let description = errors.check(
        "description",
        parse_description(input.description.as_deref().unwrap_or_default()),
    );
    let permissions = parse_domain_permissions(&input.permissions, &mut errors);
    errors.into_result()?;
    let (Some(name), Some(description), Some(permissions)) = (name, description, permissions)
    else {
        return Err(DomainError::Internal("validated values missing".into()));
    };
    authorize_grant(&ctx.actor, permissions, Some(domain_id))?;
    check_name_free(db, domain_id, &name, None).await?;

    let txn = crate::db::begin_write(db).await?;
    let role = roles::ActiveModel {
        id: Set(Uuid::now_v7()),
        domain_id: Set(domain_id),
        name: Set(name.as_str().to_owned()),
        description: Set(description),
        permissions: Set(permissions_json(permissions)),
        created_at: Set(ctx.now),
        updated_at: Set(ctx.now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "role.create",
            target_kind: "role",
            target_id: Some(role.id.to_string()),
            before: None,
            after: Some(snapshot(&role)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(RoleView::custom(role))
}

/// Changes a custom role (`roles.write`). The caller must hold every permission the role grants
/// now and every permission it will grant.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: RolePatch,
) -> DomainResult<RoleView> {
    scope::enter(db, ctx, domain_id, Permission::RolesWrite).await?;
    let before = find(db, domain_id, id).await?;
    let mut errors = FieldErrors::new();
    let name = match &patch.name {
        Some(n) => errors.check("name", RoleName::parse(n)),
        None => None,
    };
    let description = match &patch.description {
        Some(d) => errors.check("description", parse_description(d)),
        None => None,
    };
    let permissions = match &patch.permissions {
        Some(p) => parse_domain_permissions(p, &mut errors),
        None => None,
    };
    errors.into_result()?;
    let current = custom_role_permissions(&before);
    authorize_grant(
        &ctx.actor,
        current.union(permissions.unwrap_or(current)),
        Some(domain_id),
    )?;
    if let Some(name) = &name {
        check_name_free(db, domain_id, name, Some(id)).await?;
    }

    let txn = crate::db::begin_write(db).await?;
    let mut active = before.clone().into_active_model();
    if let Some(name) = name {
        active.name = Set(name.as_str().to_owned());
    }
    if let Some(description) = description {
        active.description = Set(description);
    }
    if let Some(permissions) = permissions {
        active.permissions = Set(permissions_json(permissions));
    }
    active.updated_at = Set(ctx.now);
    let after = active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "role.update",
            target_kind: "role",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&before)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(RoleView::custom(after))
}

/// What deleting a custom role took with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleDeletion {
    /// Assignments removed.
    pub assignments: u64,
    /// API keys removed (they carried the role).
    pub api_keys: u64,
    /// User accounts removed because the role was the last one they held anywhere.
    pub users: u64,
}

/// Deletes a custom role (`roles.write`; the caller must hold what it grants). A role that is
/// assigned to users or carried by API keys is refused with `role_in_use` unless `force`,
/// which removes the assignments and keys in the same transaction; accounts left without any
/// role anywhere are deleted with them.
pub async fn delete(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    force: bool,
) -> DomainResult<RoleDeletion> {
    scope::enter(db, ctx, domain_id, Permission::RolesWrite).await?;
    let role = find(db, domain_id, id).await?;
    authorize_grant(&ctx.actor, custom_role_permissions(&role), Some(domain_id))?;

    let txn = crate::db::begin_write(db).await?;
    let holders: Vec<Uuid> = role_assignments::Entity::find()
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .filter(role_assignments::Column::CustomRoleId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    let keys = api_keys::Entity::find()
        .filter(api_keys::Column::DomainId.eq(domain_id))
        .filter(api_keys::Column::CustomRoleId.eq(id))
        .count(&txn)
        .await?;
    if (!holders.is_empty() || keys > 0) && !force {
        return Err(DomainError::conflict(
            "role_in_use",
            format!(
                "the role is held by {} user(s) and {keys} API key(s); delete with ?force=true \
                 to remove those assignments and keys",
                holders.len()
            ),
        ));
    }
    role_assignments::Entity::delete_many()
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .filter(role_assignments::Column::CustomRoleId.eq(id))
        .exec(&txn)
        .await?;
    api_keys::Entity::delete_many()
        .filter(api_keys::Column::DomainId.eq(domain_id))
        .filter(api_keys::Column::CustomRoleId.eq(id))
        .exec(&txn)
        .await?;
    let orphans = users_without_roles(&txn, &holders).await?;
    if !orphans.is_empty() {
        users::Entity::delete_many()
            .filter(users::Column::Id.is_in(orphans.clone()))
            .exec(&txn)
            .await?;
    }
    forget_role_in_locations(&txn, domain_id, id).await?;
    roles::Entity::delete_by_id(id).exec(&txn).await?;
    let result = RoleDeletion {
        assignments: holders.len() as u64,
        api_keys: keys,
        users: orphans.len() as u64,
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "role.delete",
            target_kind: "role",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&role)),
            after: Some(json!({
                "forced": force,
                "removed_assignments": result.assignments,
                "removed_api_keys": result.api_keys,
                "deleted_users": orphans,
            })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(result)
}

/// Those of `candidates` who hold no role in any scope any more.
pub async fn users_without_roles<C: ConnectionTrait>(
    db: &C,
    candidates: &[Uuid],
) -> DomainResult<Vec<Uuid>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let still_held: BTreeSet<Uuid> = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.is_in(candidates.to_vec()))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    let unique: BTreeSet<Uuid> = candidates.iter().copied().collect();
    Ok(unique
        .into_iter()
        .filter(|id| !still_held.contains(id))
        .collect())
}

/// One permission of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionInfo {
    /// The permission.
    pub permission: Permission,
    /// Where it can be held.
    pub scope: RoleScope,
}

/// The fixed permission set with the scope each can be held in, and the built-in roles: the
/// single source of the `GET /api/v1/permissions` answer and the README's table.
pub fn catalogue() -> (Vec<PermissionInfo>, &'static [BuiltinRole]) {
    let permissions = Permission::ALL
        .iter()
        .map(|p| PermissionInfo {
            permission: *p,
            scope: if is_platform_only(*p) {
                RoleScope::Platform
            } else {
                RoleScope::Domain
            },
        })
        .collect();
    (permissions, BuiltinRole::ALL)
}

/// Removes a deleted custom role from every Location's sign-in list of the Domain.
async fn forget_role_in_locations<C: sea_orm::ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    role_id: Uuid,
) -> DomainResult<()> {
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};

    use crate::store::locations;
    let key = role_id.to_string();
    for location in locations::Entity::find()
        .filter(locations::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
    {
        let roles: Vec<String> =
            serde_json::from_value(location.allowed_roles.clone()).unwrap_or_default();
        if roles.contains(&key) {
            let kept: Vec<String> = roles.into_iter().filter(|r| *r != key).collect();
            let mut active = location.into_active_model();
            active.allowed_roles = Set(serde_json::json!(kept));
            active.update(db).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_trimmed_bounded_and_never_built_in() {
        assert_eq!(
            RoleName::parse("  Night shift ").map(|n| n.0).ok(),
            Some("Night shift".to_owned())
        );
        for (bad, code) in [
            ("", "invalid_length"),
            ("   ", "invalid_length"),
            ("Domain_Admin", "reserved_name"),
            ("member", "reserved_name"),
            ("platform_admin", "reserved_name"),
        ] {
            assert_eq!(
                RoleName::parse(bad).err().map(|e| e.code),
                Some(code.to_owned()),
                "{bad:?}"
            );
        }
        assert!(RoleName::parse(&"x".repeat(64)).is_ok());
        assert!(RoleName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn permission_lists_name_every_bad_item() {
        let mut errors = FieldErrors::new();
        let names: Vec<String> = [
            "users.read",
            "users.destroy",
            "domains.manage",
            "nodes.read",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert_eq!(parse_domain_permissions(&names, &mut errors), None);
        let errors = errors.into_vec();
        let fields: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("permissions[1]", "unknown_permission"),
                ("permissions[2]", "platform_only"),
                ("permissions[3]", "platform_only"),
            ]
        );
    }

    #[test]
    fn an_empty_permission_list_is_refused_and_duplicates_collapse() {
        let mut errors = FieldErrors::new();
        assert_eq!(parse_domain_permissions(&[], &mut errors), None);
        assert!(!errors.is_empty());
        let mut errors = FieldErrors::new();
        let twice = vec!["users.read".to_owned(), "users.read".to_owned()];
        assert_eq!(
            parse_domain_permissions(&twice, &mut errors),
            Some(PermissionSet::of(&[Permission::UsersRead]))
        );
    }

    #[test]
    fn no_builtin_domain_role_holds_a_platform_only_permission() {
        for role in builtin_domain_roles() {
            for p in PLATFORM_ONLY {
                assert!(!role.permissions.contains(*p), "{} holds {p}", role.key);
            }
        }
    }
}
