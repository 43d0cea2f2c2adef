//! Dashboard users of a Domain: invitations, changes, disabling, admin password resets, removal,
//! and the roles they hold in a Domain or at platform level.
//!
//! A user is one account platform-wide (one email), and belongs to a Domain by holding a role
//! there. Everything here is looked up through that membership, so another Domain's user is
//! simply not found.
//!
//! Two rules guard against privilege escalation besides "nobody grants what they don't hold":
//! - changing a role set needs every permission of each role added *and* of each role removed;
//! - acting on the account itself (renaming, disabling, resetting its password — a reset hands
//!   the caller a way into the account) needs `users.write` and every permission the user
//!   holds, in every scope the user holds a role in. A Domain admin therefore cannot disable a
//!   platform administrator or someone who is also admin of another Domain.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, Set,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use super::roles::{self, RoleTarget, RoleView, union_of};
use super::{Context, access, audit, auth, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::{Actor, authorize_grant, authorize_platform, can};
use crate::identity::email::Email;
use crate::identity::password::{NewPassword, hash_secret};
use crate::identity::permissions::{BuiltinRole, Permission, PermissionSet};
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{extensions, role_assignments, search, users};

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

/// Purpose of a set-password token handed out when a user is invited.
pub const PURPOSE_INVITATION: &str = "invitation";
/// Purpose of a set-password token handed out by an admin reset.
pub const PURPOSE_RESET: &str = "reset";

/// A person's display name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims and checks a display name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim();
        let count = value.chars().count();
        if count == 0 || count > MAX_DISPLAY_NAME {
            return Err(FieldError::new(
                "display_name",
                "invalid_length",
                format!("a display name has 1 to {MAX_DISPLAY_NAME} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "display_name",
                "invalid_format",
                "a display name cannot contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user account's status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Can log in.
    Active,
    /// Cannot log in; every session ended.
    Disabled,
    /// Created without a password; waits for the set-password token.
    Invited,
}

impl AccountStatus {
    /// The stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Invited => "invited",
        }
    }
}

/// The status an admin may ask for; `invited` is never set by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// Re-enable: back to `active`, or to `invited` when no password was ever set.
    Active,
    /// Disable: the user cannot log in and every session ends at once.
    Disabled,
}

/// A user to invite or create in a Domain.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email, the login name (case-insensitive, unique platform-wide).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// A password; without one the user is `invited` and gets a set-password token.
    pub password: Option<SecretString>,
    /// Role keys in the Domain: built-in names or custom role ids. At least one.
    pub roles: Vec<String>,
}

/// A change to a user; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// Enable or disable.
    pub status: Option<StatusChange>,
}

/// Filters of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Part of the email or the display name, case-insensitive.
    pub q: Option<String>,
    /// Only users with this status.
    pub status: Option<AccountStatus>,
}

/// A user as seen from one Domain: the account and the roles held there.
#[derive(Debug, Clone)]
pub struct Member {
    /// The account.
    pub user: users::Model,
    /// Roles held in the Domain.
    pub roles: Vec<RoleView>,
}

/// A single-use set-password token, in clear, to hand to its user once.
#[derive(Debug, Clone)]
pub struct PasswordToken {
    /// The token for `POST /api/v1/auth/set-password`.
    pub token: SecretString,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A user that was just created, with the invitation token when it has no password yet.
#[derive(Debug, Clone)]
pub struct CreatedUser {
    /// The user and its roles in the Domain.
    pub member: Member,
    /// The invitation token, for users created without a password.
    pub set_password: Option<PasswordToken>,
}

/// The account as the audit log shows it (no secrets).
pub(crate) fn snapshot(user: &users::Model) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "status": user.status,
    })
}

fn role_keys(roles: &[RoleView]) -> Vec<String> {
    roles.iter().map(|r| r.key.clone()).collect()
}

/// The detail of the 403 when the caller may not act on the whole account.
const ACCOUNT_CONTROL: &str = "users.write, plus every permission the user holds, in every \
Domain where the user holds a role (and at platform level for a platform role)";

/// May `actor` act on a whole account (rename, disable, reset its password) whose holder has
/// `target_platform` at platform level and `target_domains` per Domain? It needs `users.write`
/// and a superset of the holder's permissions in every one of those scopes.
pub fn authorize_account_control(
    actor: &Actor,
    target_platform: PermissionSet,
    target_domains: &HashMap<Uuid, PermissionSet>,
) -> DomainResult<()> {
    let refused = || DomainError::Forbidden {
        permission: ACCOUNT_CONTROL.to_owned(),
    };
    // The holder's permissions in one scope are covered by the actor's there.
    let covered = |held: PermissionSet, domain: Option<Uuid>| {
        let actor_holds = match domain {
            Some(d) => actor.permissions_in(d),
            None => actor.platform,
        };
        held.is_empty()
            || (can(actor, Permission::UsersWrite, domain) && held.is_subset_of(actor_holds))
    };
    let all_covered = covered(target_platform, None)
        && target_domains
            .iter()
            .all(|(domain, held)| covered(*held, Some(*domain)));
    if all_covered { Ok(()) } else { Err(refused()) }
}

async fn check_account_control<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    user_id: Uuid,
) -> DomainResult<()> {
    let (platform, domains) = access::user_permissions(db, user_id).await?;
    authorize_account_control(actor, platform, &domains)
}

fn refuse_self(ctx: &Context, user_id: Uuid, what: &str) -> DomainResult<()> {
    if ctx.actor.user_id() == Some(user_id) {
        return Err(DomainError::conflict(
            "cannot_target_self",
            format!("you cannot {what} yourself"),
        ));
    }
    Ok(())
}

/// The user `id` if they hold a role in `domain_id`; anyone else is not found.
async fn find_member<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<users::Model> {
    let memberships = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(id))
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .count(db)
        .await?;
    if memberships == 0 {
        return Err(DomainError::NotFound("user"));
    }
    users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("user"))
}

/// The user `id` if the caller can see them anywhere: a member of a Domain where the caller
/// holds `users.read`, or any user for a caller with platform `users.read`. Used to give an
/// existing person a role in one more Domain.
async fn find_visible_user<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    id: Uuid,
) -> DomainResult<users::Model> {
    let user = users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    if can(actor, Permission::UsersRead, None) {
        return Ok(user);
    }
    let visible = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(id))
        .all(db)
        .await?
        .iter()
        .any(|a| {
            a.domain_id
                .is_some_and(|d| can(actor, Permission::UsersRead, Some(d)))
        });
    if visible {
        Ok(user)
    } else {
        Err(DomainError::NotFound("user"))
    }
}

async fn member_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    user: users::Model,
) -> DomainResult<Member> {
    let roles = roles::held_roles(db, user.id, RoleTarget::Domain(domain_id)).await?;
    Ok(Member { user, roles })
}

/// Lists the Domain's users (`users.read`): everyone holding a role there, in creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &UserFilter,
    page: &PageRequest,
) -> DomainResult<Page<Member>> {
    scope::enter(db, ctx, domain_id, Permission::UsersRead).await?;
    let members = Query::select()
        .column(role_assignments::Column::UserId)
        .from(role_assignments::Entity)
        .and_where(role_assignments::Column::DomainId.eq(domain_id))
        .to_owned();
    let mut query = users::Entity::find().filter(users::Column::Id.in_subquery(members));
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let lower = q.to_lowercase();
        query = query.filter(
            Condition::any()
                .add(users::Column::Email.like(search::contains(&lower)))
                .add(
                    Expr::expr(Func::lower(Expr::col(users::Column::DisplayName)))
                        .like(search::contains(&lower)),
                ),
        );
    }
    if let Some(status) = filter.status {
        query = query.filter(users::Column::Status.eq(status.as_str()));
    }
    let page = fetch_page(db, query, users::Column::Id, |u| u.id, page).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|u| u.id).collect();
    let assignments = if ids.is_empty() {
        Vec::new()
    } else {
        role_assignments::Entity::find()
            .filter(role_assignments::Column::DomainId.eq(domain_id))
            .filter(role_assignments::Column::UserId.is_in(ids))
            .all(db)
            .await?
    };
    let mut by_user: HashMap<Uuid, Vec<role_assignments::Model>> = HashMap::new();
    for a in assignments {
        by_user.entry(a.user_id).or_default().push(a);
    }
    let mut items = Vec::with_capacity(page.items.len());
    for user in page.items {
        let mut held = by_user.remove(&user.id).unwrap_or_default();
        held.sort_by_key(|a| a.id);
        let roles = roles::views_of(db, &held).await?;
        items.push(Member { user, roles });
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Reads one user of the Domain (`users.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<Member> {
    scope::enter(db, ctx, domain_id, Permission::UsersRead).await?;
    let user = find_member(db, domain_id, id).await?;
    member_of(db, domain_id, user).await
}

/// Invites or creates a user in the Domain (`users.write`) with at least one role the caller
/// could grant. Without a password the user is `invited` and a single-use set-password token
/// valid for `token_ttl` is returned.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    input: NewUser,
    token_ttl: Duration,
) -> DomainResult<CreatedUser> {
    scope::enter(db, ctx, domain_id, Permission::UsersWrite).await?;
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&input.email));
    let display_name = errors.check("display_name", DisplayName::parse(&input.display_name));
    let password = match &input.password {
        Some(p) => errors
            .check(
                "password",
                NewPassword::parse(p, email.as_ref().map(Email::as_str)),
            )
            .map(Some),
        None => Some(None),
    };
    if input.roles.is_empty() {
        errors.add("roles", "required", "a user needs at least one role");
    }
    let granted = roles::resolve_roles(
        db,
        RoleTarget::Domain(domain_id),
        &input.roles,
        "roles",
        &mut errors,
    )
    .await?;
    errors.into_result()?;
    let (Some(email), Some(display_name), Some(password)) = (email, display_name, password) else {
        return Err(DomainError::Internal("validated values missing".into()));
    };
    authorize_grant(&ctx.actor, union_of(&granted), Some(domain_id))?;
    let taken = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .count(db)
        .await?;
    if taken > 0 {
        return Err(DomainError::Conflict {
            code: "already_exists",
            message: "a user with this email already exists".into(),
            field: Some("email".into()),
        });
    }
    let hash = match &password {
        Some(p) => Some(hash_secret(p.secret().clone()).await?),
        None => None,
    };
    let status = if hash.is_some() {
        AccountStatus::Active
    } else {
        AccountStatus::Invited
    };

    let txn = crate::db::begin_write(db).await?;
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.as_str().to_owned()),
        display_name: Set(display_name.as_str().to_owned()),
        status: Set(status.as_str().to_owned()),
        password_changed_at: Set(hash.as_ref().map(|_| ctx.now)),
        password_hash: Set(hash),
        created_at: Set(ctx.now),
        updated_at: Set(ctx.now),
        last_login_at: Set(None),
    }
    .insert(&txn)
    .await?;
    for role in &granted {
        assign(&txn, ctx, user.id, Some(domain_id), role).await?;
    }
    let set_password = if status == AccountStatus::Invited {
        let (token, expires_at) =
            auth::issue_password_token(&txn, user.id, PURPOSE_INVITATION, token_ttl, ctx.now)
                .await?;
        Some(PasswordToken { token, expires_at })
    } else {
        None
    };
    let mut after = snapshot(&user);
    after["roles"] = json!(role_keys(&granted));
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: if set_password.is_some() {
                "user.invite"
            } else {
                "user.create"
            },
            target_kind: "user",
            target_id: Some(user.id.to_string()),
            before: None,
            after: Some(after),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedUser {
        member: Member {
            user,
            roles: granted,
        },
        set_password,
    })
}

async fn assign<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    user_id: Uuid,
    domain_id: Option<Uuid>,
    role: &RoleView,
) -> DomainResult<()> {
    role_assignments::ActiveModel::from(assignment_row(ctx, user_id, domain_id, role))
        .insert(db)
        .await?;
    Ok(())
}

/// The stored row of giving `role` to `user_id` in `domain_id` (the platform when `None`), for
/// writing many in one statement, as a bulk import does.
pub(crate) fn assignment_row(
    ctx: &Context,
    user_id: Uuid,
    domain_id: Option<Uuid>,
    role: &RoleView,
) -> role_assignments::Model {
    role_assignments::Model {
        id: Uuid::now_v7(),
        user_id,
        domain_id,
        scope_key: domain_id
            .map(|d| d.to_string())
            .unwrap_or_else(|| role_assignments::PLATFORM_SCOPE.to_owned()),
        role_key: role.key.clone(),
        custom_role_id: role.custom_role_id(),
        created_at: ctx.now,
    }
}

/// How many *other* active users hold `platform_admin`.
async fn other_active_platform_admins<C: ConnectionTrait>(
    db: &C,
    except: Uuid,
) -> DomainResult<u64> {
    let holders: Vec<Uuid> = role_assignments::Entity::find()
        .filter(role_assignments::Column::ScopeKey.eq(role_assignments::PLATFORM_SCOPE))
        .filter(role_assignments::Column::RoleKey.eq(BuiltinRole::PlatformAdmin.as_str()))
        .filter(role_assignments::Column::UserId.ne(except))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    if holders.is_empty() {
        return Ok(0);
    }
    Ok(users::Entity::find()
        .filter(users::Column::Id.is_in(holders))
        .filter(users::Column::Status.eq(AccountStatus::Active.as_str()))
        .count(db)
        .await?)
}

async fn holds_platform_admin<C: ConnectionTrait>(db: &C, user_id: Uuid) -> DomainResult<bool> {
    Ok(role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(user_id))
        .filter(role_assignments::Column::ScopeKey.eq(role_assignments::PLATFORM_SCOPE))
        .filter(role_assignments::Column::RoleKey.eq(BuiltinRole::PlatformAdmin.as_str()))
        .count(db)
        .await?
        > 0)
}

fn last_platform_admin() -> DomainError {
    DomainError::conflict(
        "last_platform_admin",
        "this is the last active platform administrator; make someone else platform_admin first",
    )
}

/// Changes a user's display name or status (`users.write`, and control over the whole
/// account). Disabling ends every session of the user at once; nobody disables themselves.
pub async fn update(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: UserPatch,
) -> DomainResult<Member> {
    scope::enter(db, ctx, domain_id, Permission::UsersWrite).await?;
    let before = find_member(db, domain_id, id).await?;
    let mut errors = FieldErrors::new();
    let display_name = match &patch.display_name {
        Some(n) => errors.check("display_name", DisplayName::parse(n)),
        None => None,
    };
    errors.into_result()?;
    let status = match patch.status {
        None => before.status.clone(),
        Some(StatusChange::Disabled) => AccountStatus::Disabled.as_str().to_owned(),
        Some(StatusChange::Active) if before.status == AccountStatus::Disabled.as_str() => {
            if before.password_hash.is_some() {
                AccountStatus::Active.as_str().to_owned()
            } else {
                AccountStatus::Invited.as_str().to_owned()
            }
        }
        Some(StatusChange::Active) => before.status.clone(),
    };
    let disabling = status == AccountStatus::Disabled.as_str()
        && before.status != AccountStatus::Disabled.as_str();
    if disabling {
        refuse_self(ctx, id, "disable")?;
    }
    let name_changes = display_name
        .as_ref()
        .is_some_and(|n| n.as_str() != before.display_name);
    if !name_changes && status == before.status {
        return member_of(db, domain_id, before).await;
    }
    check_account_control(db, &ctx.actor, id).await?;

    let txn = crate::db::begin_write(db).await?;
    if disabling
        && holds_platform_admin(&txn, id).await?
        && other_active_platform_admins(&txn, id).await? == 0
    {
        return Err(last_platform_admin());
    }
    let mut active = before.clone().into_active_model();
    if let Some(name) = display_name {
        active.display_name = Set(name.as_str().to_owned());
    }
    active.status = Set(status);
    active.updated_at = Set(ctx.now);
    let after = active.update(&txn).await?;
    if disabling {
        auth::revoke_user_sessions(&txn, id, None, "user_disabled", ctx.now).await?;
    }
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: if disabling {
                "user.disable"
            } else {
                "user.update"
            },
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&before)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    txn.commit().await?;
    member_of(db, domain_id, after).await
}

/// Admin password reset (`users.write`, and control over the whole account): the current
/// password stops working, every session ends, and a new single-use set-password token is
/// returned. An invited user simply gets a fresh invitation token.
pub async fn reset_password(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    token_ttl: Duration,
) -> DomainResult<PasswordToken> {
    scope::enter(db, ctx, domain_id, Permission::UsersWrite).await?;
    let user = find_member(db, domain_id, id).await?;
    refuse_self(
        ctx,
        id,
        "reset the password of (use POST /api/v1/me/password)",
    )?;
    check_account_control(db, &ctx.actor, id).await?;
    if user.status == AccountStatus::Disabled.as_str() {
        return Err(DomainError::conflict(
            "user_disabled",
            "the user is disabled; enable them before resetting their password",
        ));
    }
    let purpose = if user.status == AccountStatus::Invited.as_str() {
        PURPOSE_INVITATION
    } else {
        PURPOSE_RESET
    };
    let txn = crate::db::begin_write(db).await?;
    let mut active = user.clone().into_active_model();
    active.password_hash = Set(None);
    active.updated_at = Set(ctx.now);
    active.update(&txn).await?;
    auth::revoke_user_sessions(&txn, id, None, "password_reset", ctx.now).await?;
    let (token, expires_at) =
        auth::issue_password_token(&txn, id, purpose, token_ttl, ctx.now).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "user.password_reset",
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&user)),
            after: Some(json!({"purpose": purpose, "expires_at": expires_at})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(PasswordToken { token, expires_at })
}

/// Removes a user from the Domain (`users.write`; the caller must hold what the user's roles
/// there grant): their roles there go, the Extensions of the Domain linked to them are
/// unlinked (each audited, `extension.updated` published), and when they hold no role anywhere
/// any more the account is deleted. Returns whether the account was deleted. Nobody removes
/// themselves.
pub async fn remove(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<bool> {
    let domain = scope::enter(db, ctx, domain_id, Permission::UsersWrite).await?;
    let user = find_member(db, domain_id, id).await?;
    refuse_self(ctx, id, "remove")?;
    let held = roles::held_roles(db, id, RoleTarget::Domain(domain_id)).await?;
    authorize_grant(&ctx.actor, union_of(&held), Some(domain_id))?;

    let txn = crate::db::begin_write(db).await?;
    role_assignments::Entity::delete_many()
        .filter(role_assignments::Column::UserId.eq(id))
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .exec(&txn)
        .await?;
    let unlinked = unlink_extensions(&txn, ctx, domain_id, id).await?;
    let deleted = !roles::users_without_roles(&txn, &[id]).await?.is_empty();
    if deleted {
        users::Entity::delete_by_id(id).exec(&txn).await?;
    }
    let mut before = snapshot(&user);
    before["roles"] = json!(role_keys(&held));
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: if deleted {
                "user.delete"
            } else {
                "user.remove"
            },
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: Some(before),
            after: Some(json!({"account_deleted": deleted})),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish(unlinked.into_iter().map(|ext| {
        ChangeEvent::new(
            domain_id,
            &domain.sip_domain,
            ChangeKind::ExtensionUpdated,
            ext,
            ctx.now,
        )
    }));
    Ok(deleted)
}

/// Unlinks the user from every Extension of the Domain (a person who left the Domain no longer
/// acts as its Extension: presence, hot-desking, Location sign-in), auditing each; returns the
/// Extensions unlinked.
async fn unlink_extensions<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    domain_id: Uuid,
    user_id: Uuid,
) -> DomainResult<Vec<Uuid>> {
    let linked = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::UserId.eq(user_id))
        .all(db)
        .await?;
    for ext in &linked {
        extensions::Entity::update_many()
            .col_expr(
                extensions::Column::UserId,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(extensions::Column::UpdatedAt, Expr::value(ctx.now))
            .filter(extensions::Column::DomainId.eq(domain_id))
            .filter(extensions::Column::Id.eq(ext.id))
            .exec(db)
            .await?;
        audit::record(
            db,
            ctx,
            audit::Entry {
                domain_id: Some(domain_id),
                action: "extension.unlink_user",
                target_kind: "extension",
                target_id: Some(ext.id.to_string()),
                before: Some(json!({"number": ext.number, "user_id": user_id})),
                after: Some(json!({"number": ext.number, "user_id": null})),
            },
        )
        .await?;
    }
    Ok(linked.into_iter().map(|e| e.id).collect())
}

/// The roles a user holds in the Domain (`users.read`).
pub async fn roles_in_domain(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<Vec<RoleView>> {
    scope::enter(db, ctx, domain_id, Permission::UsersRead).await?;
    find_member(db, domain_id, id).await?;
    roles::held_roles(db, id, RoleTarget::Domain(domain_id)).await
}

/// Which roles to add and which to remove to go from `current` to `wanted`.
fn diff(current: &[RoleView], wanted: &[RoleView]) -> (Vec<RoleView>, Vec<RoleView>) {
    let added = wanted
        .iter()
        .filter(|w| !current.iter().any(|c| c.key == w.key))
        .cloned()
        .collect();
    let removed = current
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.key == c.key))
        .cloned()
        .collect();
    (added, removed)
}

/// Replaces the roles a user holds in the Domain (`users.write`). The caller must hold every
/// permission of each role added and of each role removed. The user may be a member already,
/// or an existing user the caller can see in another Domain (this gives them a role in one
/// more Domain). The set cannot be empty: removing someone from a Domain is `remove`.
pub async fn replace_roles(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    keys: &[String],
) -> DomainResult<Member> {
    scope::enter(db, ctx, domain_id, Permission::UsersWrite).await?;
    let user = match find_member(db, domain_id, id).await {
        Err(DomainError::NotFound(_)) => find_visible_user(db, &ctx.actor, id).await?,
        other => other?,
    };
    let mut errors = FieldErrors::new();
    if keys.is_empty() {
        errors.add(
            "roles",
            "required",
            "a member needs at least one role; DELETE the user to remove them from the Domain",
        );
    }
    let wanted = roles::resolve_roles(
        db,
        RoleTarget::Domain(domain_id),
        keys,
        "roles",
        &mut errors,
    )
    .await?;
    errors.into_result()?;
    let current = roles::held_roles(db, id, RoleTarget::Domain(domain_id)).await?;
    let (added, removed) = diff(&current, &wanted);
    authorize_grant(
        &ctx.actor,
        union_of(&added).union(union_of(&removed)),
        Some(domain_id),
    )?;
    if added.is_empty() && removed.is_empty() {
        return Ok(Member {
            user,
            roles: current,
        });
    }
    let txn = crate::db::begin_write(db).await?;
    write_diff(&txn, ctx, id, Some(domain_id), &added, &removed).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "user.roles_replace",
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: Some(json!({"roles": role_keys(&current)})),
            after: Some(json!({"roles": role_keys(&wanted)})),
        },
    )
    .await?;
    txn.commit().await?;
    member_of(db, domain_id, user).await
}

async fn write_diff<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    user_id: Uuid,
    domain_id: Option<Uuid>,
    added: &[RoleView],
    removed: &[RoleView],
) -> DomainResult<()> {
    let scope_key = domain_id
        .map(|d| d.to_string())
        .unwrap_or_else(|| role_assignments::PLATFORM_SCOPE.to_owned());
    if !removed.is_empty() {
        role_assignments::Entity::delete_many()
            .filter(role_assignments::Column::UserId.eq(user_id))
            .filter(role_assignments::Column::ScopeKey.eq(scope_key))
            .filter(role_assignments::Column::RoleKey.is_in(role_keys(removed)))
            .exec(db)
            .await?;
    }
    for role in added {
        assign(db, ctx, user_id, domain_id, role).await?;
    }
    Ok(())
}

/// A user's platform roles (platform `domains.manage`).
pub async fn platform_roles(
    db: &DatabaseConnection,
    ctx: &Context,
    id: Uuid,
) -> DomainResult<(users::Model, Vec<RoleView>)> {
    authorize_platform(&ctx.actor, Permission::DomainsManage)?;
    let user = users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let held = roles::held_roles(db, id, RoleTarget::Platform).await?;
    Ok((user, held))
}

/// Replaces a user's platform roles (platform `domains.manage`; the caller must hold every
/// permission of each role added or removed). Only platform-scope roles are accepted; the last
/// active `platform_admin` cannot lose the role.
pub async fn replace_platform_roles(
    db: &DatabaseConnection,
    ctx: &Context,
    id: Uuid,
    keys: &[String],
) -> DomainResult<(users::Model, Vec<RoleView>)> {
    authorize_platform(&ctx.actor, Permission::DomainsManage)?;
    let user = users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let mut errors = FieldErrors::new();
    let wanted = roles::resolve_roles(db, RoleTarget::Platform, keys, "roles", &mut errors).await?;
    errors.into_result()?;
    let current = roles::held_roles(db, id, RoleTarget::Platform).await?;
    let (added, removed) = diff(&current, &wanted);
    authorize_grant(&ctx.actor, union_of(&added).union(union_of(&removed)), None)?;
    if added.is_empty() && removed.is_empty() {
        return Ok((user, current));
    }
    let txn = crate::db::begin_write(db).await?;
    let loses_admin = removed
        .iter()
        .any(|r| r.key == BuiltinRole::PlatformAdmin.as_str());
    if loses_admin && other_active_platform_admins(&txn, id).await? == 0 {
        return Err(last_platform_admin());
    }
    write_diff(&txn, ctx, id, None, &added, &removed).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "user.platform_roles_replace",
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: Some(json!({"roles": role_keys(&current)})),
            after: Some(json!({"roles": role_keys(&wanted)})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok((user, wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::authz::Principal;

    fn actor(platform: PermissionSet, domains: &[(Uuid, BuiltinRole)]) -> Actor {
        Actor {
            principal: Principal::User {
                id: Uuid::from_u128(99),
                session_id: Uuid::nil(),
            },
            label: "test".into(),
            platform,
            domains: domains.iter().map(|(d, r)| (*d, r.permissions())).collect(),
        }
    }

    fn holds(domains: &[(Uuid, BuiltinRole)]) -> HashMap<Uuid, PermissionSet> {
        domains.iter().map(|(d, r)| (*d, r.permissions())).collect()
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada Lovelace ").map(|n| n.0).ok(),
            Some("Ada Lovelace".to_owned())
        );
        assert!(DisplayName::parse(" ").is_err());
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(101)).is_err());
        assert!(DisplayName::parse("Ada\nLovelace").is_err());
    }

    #[test]
    fn a_domain_admin_controls_accounts_that_live_only_in_their_domain() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let admin = actor(PermissionSet::EMPTY, &[(a, BuiltinRole::DomainAdmin)]);
        let target = holds(&[(a, BuiltinRole::Manager)]);
        assert!(authorize_account_control(&admin, PermissionSet::EMPTY, &target).is_ok());
        let peer = holds(&[(a, BuiltinRole::DomainAdmin)]);
        assert!(authorize_account_control(&admin, PermissionSet::EMPTY, &peer).is_ok());
        let elsewhere_too = holds(&[(a, BuiltinRole::Member), (b, BuiltinRole::Member)]);
        assert!(authorize_account_control(&admin, PermissionSet::EMPTY, &elsewhere_too).is_err());
        assert!(
            authorize_account_control(&admin, BuiltinRole::PlatformAdmin.permissions(), &target)
                .is_err()
        );
    }

    #[test]
    fn users_write_alone_does_not_control_a_more_powerful_account() {
        let a = Uuid::from_u128(1);
        let mut user_admin = actor(PermissionSet::EMPTY, &[]);
        user_admin.domains.insert(
            a,
            PermissionSet::of(&[Permission::UsersRead, Permission::UsersWrite]),
        );
        let target = holds(&[(a, BuiltinRole::DomainAdmin)]);
        assert!(authorize_account_control(&user_admin, PermissionSet::EMPTY, &target).is_err());
        let member = holds(&[(a, BuiltinRole::Member)]);
        assert!(authorize_account_control(&user_admin, PermissionSet::EMPTY, &member).is_err());
        let weaker = HashMap::from([(a, PermissionSet::of(&[Permission::UsersRead]))]);
        assert!(authorize_account_control(&user_admin, PermissionSet::EMPTY, &weaker).is_ok());
    }

    #[test]
    fn a_platform_admin_controls_every_account() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let platform = actor(BuiltinRole::PlatformAdmin.permissions(), &[]);
        let target = holds(&[(a, BuiltinRole::DomainAdmin), (b, BuiltinRole::Member)]);
        assert!(
            authorize_account_control(&platform, BuiltinRole::PlatformAdmin.permissions(), &target)
                .is_ok()
        );
    }

    #[test]
    fn role_diffs_name_what_is_added_and_removed() {
        let views = |rs: &[BuiltinRole]| -> Vec<RoleView> {
            rs.iter().map(|r| RoleView::builtin(*r)).collect()
        };
        let (added, removed) = diff(
            &views(&[BuiltinRole::Member, BuiltinRole::Agent]),
            &views(&[BuiltinRole::Agent, BuiltinRole::Manager]),
        );
        assert_eq!(role_keys(&added), vec!["manager"]);
        assert_eq!(role_keys(&removed), vec!["member"]);
    }
}
