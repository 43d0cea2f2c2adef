//! API keys for machine clients: a role in one scope (one Domain, or the platform), an optional
//! expiry, a secret shown once and stored as an argon2id hash, revocation.
//!
//! A key is presented as `sk_<key id>_<secret>` (see [`auth::format_api_key`]); verifying it is
//! [`auth::authenticate_api_key`]'s job. Creating a key is granting its role, so the creator must
//! hold every permission of that role in the key's scope — an API key creating keys follows the
//! same rule, which confines it to its own scope and at most its own role.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Select, Set,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use super::roles::RoleView;
use super::{Context, access, audit, auth, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::identity::authz::{authorize_grant, authorize_platform};
use crate::identity::password::hash_secret;
use crate::identity::permissions::{BuiltinRole, Permission, RoleScope};
use crate::identity::tokens::random_token;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{api_keys, roles};

/// Longest key name, in characters.
pub const MAX_KEY_NAME: usize = 100;
/// Longest lifetime `expires_in_days` accepts (ten years).
pub const MAX_EXPIRY_DAYS: i64 = 3650;
/// Random bytes in a key's secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Where a key applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Platform-wide: the key carries a platform role.
    Platform,
    /// One Domain: the key carries a role of that Domain.
    Domain(Uuid),
}

impl KeyScope {
    /// The Domain, for Domain-scoped keys.
    pub fn domain_id(self) -> Option<Uuid> {
        match self {
            Self::Platform => None,
            Self::Domain(d) => Some(d),
        }
    }

    /// The scope a stored key belongs to.
    pub fn of(key: &api_keys::Model) -> Self {
        key.domain_id.map_or(Self::Platform, Self::Domain)
    }
}

/// A key's name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    /// Trims and checks a key name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim();
        let count = value.chars().count();
        if count == 0 || count > MAX_KEY_NAME {
            return Err(FieldError::new(
                "name",
                "invalid_length",
                format!("a key name has 1 to {MAX_KEY_NAME} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "invalid_format",
                "a key name cannot contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Works out when a new key expires: at `expires_at` (strictly after `now`), after
/// `expires_in_days` (1–3650), or never when both are absent. Giving both is an error.
pub fn expiry(
    expires_at: Option<DateTime<Utc>>,
    expires_in_days: Option<i64>,
    now: DateTime<Utc>,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    match (expires_at, expires_in_days) {
        (Some(_), Some(_)) => {
            errors.add(
                "expires_in_days",
                "conflicting_fields",
                "give either expires_at or expires_in_days, not both",
            );
            None
        }
        (Some(at), None) if at <= now => {
            errors.add(
                "expires_at",
                "not_in_future",
                "expires_at must be in the future",
            );
            None
        }
        (Some(at), None) => Some(at),
        (None, Some(days)) if !(1..=MAX_EXPIRY_DAYS).contains(&days) => {
            errors.add(
                "expires_in_days",
                "out_of_range",
                format!("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}"),
            );
            None
        }
        (None, Some(days)) => Some(now + Duration::days(days)),
        (None, None) => None,
    }
}

/// Whether a key works right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Accepted on requests.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl KeyStatus {
    /// The status of `key` at `now` (revocation wins over expiry).
    pub fn of(key: &api_keys::Model, now: DateTime<Utc>) -> Self {
        if key.revoked_at.is_some() {
            Self::Revoked
        } else if key.expires_at.is_some_and(|e| e <= now) {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// The non-secret start of every presented form of a key, `sk_<key id>_`, to recognise a key in
/// a configuration file or a log line without revealing it.
pub fn display_prefix(id: Uuid) -> String {
    format!("{}{}_", auth::API_KEY_PREFIX, id.simple())
}

/// A stored key with its role's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyView {
    /// The row (its `secret_hash` is never shown).
    pub key: api_keys::Model,
    /// The role's name: the built-in name or the custom role's name.
    pub role_name: String,
}

/// A key just created, with its secret in the presented form `sk_…`: the only time it exists
/// outside the client.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The key.
    pub view: ApiKeyView,
    /// The full key to send as `Authorization: Bearer …`.
    pub secret: SecretString,
}

/// A key to create.
#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    /// Name for people (1–100 characters).
    pub name: String,
    /// A built-in role name, or the id of a custom role of the key's Domain.
    pub role: String,
    /// Absolute expiry, in the future.
    pub expires_at: Option<DateTime<Utc>>,
    /// Relative expiry in days (1–3650).
    pub expires_in_days: Option<i64>,
}

/// Requires `api_keys.write` in `scope`: a Domain the caller cannot see is 404, a visible one
/// without the permission 403; at platform level it is 403.
async fn enter<C: ConnectionTrait>(db: &C, ctx: &Context, scope: KeyScope) -> DomainResult<()> {
    match scope {
        KeyScope::Platform => authorize_platform(&ctx.actor, Permission::ApiKeysWrite),
        KeyScope::Domain(d) => scope::enter(db, ctx, d, Permission::ApiKeysWrite)
            .await
            .map(|_| ()),
    }
}

/// Resolves the role a key of `scope` is to carry, recording a `role` error when it names no
/// role there: platform keys carry platform roles only, Domain keys Domain roles only.
async fn resolve_role<C: ConnectionTrait>(
    db: &C,
    scope: KeyScope,
    key: &str,
    errors: &mut FieldErrors,
) -> DomainResult<Option<RoleView>> {
    let key = key.trim();
    if let Some(builtin) = BuiltinRole::parse(key) {
        return Ok(match (scope, builtin.scope()) {
            (KeyScope::Platform, RoleScope::Platform)
            | (KeyScope::Domain(_), RoleScope::Domain) => Some(RoleView::builtin(builtin)),
            (KeyScope::Platform, RoleScope::Domain) => {
                errors.add(
                    "role",
                    "wrong_scope",
                    format!("{key} is a Domain role; create the key under /api/v1/domains/{{domain_id}}/api-keys"),
                );
                None
            }
            (KeyScope::Domain(_), RoleScope::Platform) => {
                errors.add(
                    "role",
                    "wrong_scope",
                    format!("{key} is a platform role; create the key under /api/v1/api-keys"),
                );
                None
            }
        });
    }
    let custom = match (scope, Uuid::try_parse(key)) {
        (KeyScope::Domain(domain_id), Ok(id)) => {
            roles::Entity::find_by_id(id)
                .filter(roles::Column::DomainId.eq(domain_id))
                .one(db)
                .await?
        }
        _ => None,
    };
    match custom {
        Some(role) => Ok(Some(RoleView::custom(role))),
        None => {
            let message = match scope {
                KeyScope::Platform => {
                    format!("{key:?} is not a platform role; platform keys carry platform_admin")
                }
                KeyScope::Domain(_) => format!(
                    "{key:?} is neither a built-in Domain role nor a custom role of this Domain"
                ),
            };
            errors.add("role", "unknown_role", message);
            Ok(None)
        }
    }
}

fn snapshot(key: &api_keys::Model) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "role": key.role_key,
        "domain_id": key.domain_id,
        "prefix": display_prefix(key.id),
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    })
}

/// Creates a key (`api_keys.write` in `scope`, and every permission of its role held by the
/// caller there) and returns it with its secret. The key and its `api_key.create` audit entry
/// commit together; the entry holds no secret and no hash.
pub async fn create(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: KeyScope,
    new: NewApiKey,
) -> DomainResult<CreatedApiKey> {
    enter(db, ctx, scope).await?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", KeyName::parse(&new.name));
    let expires_at = expiry(new.expires_at, new.expires_in_days, ctx.now, &mut errors);
    let role = resolve_role(db, scope, &new.role, &mut errors).await?;
    errors.into_result()?;
    let (Some(name), Some(role)) = (name, role) else {
        return Err(DomainError::Internal(
            "validated API key fields missing".into(),
        ));
    };
    authorize_grant(&ctx.actor, role.permissions, scope.domain_id())?;

    let id = Uuid::now_v7();
    let secret = random_token(SECRET_BYTES);
    let presented = auth::format_api_key(id, &secret);
    let secret_hash = hash_secret(SecretString::from(secret)).await?;
    let txn = crate::db::begin_write(db).await?;
    let key = api_keys::ActiveModel {
        id: Set(id),
        name: Set(name.as_str().to_owned()),
        domain_id: Set(scope.domain_id()),
        role_key: Set(role.key.clone()),
        custom_role_id: Set(role.custom_role_id()),
        secret_hash: Set(secret_hash),
        created_by: Set(ctx.actor.user_id()),
        created_at: Set(ctx.now),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: scope.domain_id(),
            action: "api_key.create",
            target_kind: "api_key",
            target_id: Some(key.id.to_string()),
            before: None,
            after: Some(snapshot(&key)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedApiKey {
        view: ApiKeyView {
            key,
            role_name: role.name,
        },
        secret: SecretString::from(presented),
    })
}

/// The keys of exactly `scope`: a Domain's keys, or the platform keys (no Domain).
fn scoped(scope: KeyScope) -> Select<api_keys::Entity> {
    match scope {
        KeyScope::Platform => api_keys::Entity::find().filter(api_keys::Column::DomainId.is_null()),
        KeyScope::Domain(d) => api_keys::Entity::find().filter(api_keys::Column::DomainId.eq(d)),
    }
}

/// The key `id` of `scope`; a key of another scope is not found.
async fn find<C: ConnectionTrait>(
    db: &C,
    scope: KeyScope,
    id: Uuid,
) -> DomainResult<api_keys::Model> {
    scoped(scope)
        .filter(api_keys::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("api key"))
}

/// Attaches role names, loading the custom roles of `keys` in one query.
async fn views<C: ConnectionTrait>(
    db: &C,
    keys: Vec<api_keys::Model>,
) -> DomainResult<Vec<ApiKeyView>> {
    let custom_ids: Vec<Uuid> = keys.iter().filter_map(|k| k.custom_role_id).collect();
    let names: HashMap<Uuid, String> = if custom_ids.is_empty() {
        HashMap::new()
    } else {
        roles::Entity::find()
            .filter(roles::Column::Id.is_in(custom_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect()
    };
    Ok(keys
        .into_iter()
        .map(|key| {
            let role_name = key
                .custom_role_id
                .and_then(|id| names.get(&id).cloned())
                .unwrap_or_else(|| key.role_key.clone());
            ApiKeyView { key, role_name }
        })
        .collect())
}

/// Lists the keys of `scope` (`api_keys.write`), revoked and expired ones included, oldest
/// first. Secrets are never part of a listing.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: KeyScope,
    page: &PageRequest,
) -> DomainResult<Page<ApiKeyView>> {
    enter(db, ctx, scope).await?;
    let found = fetch_page(db, scoped(scope), api_keys::Column::Id, |k| k.id, page).await?;
    let next_cursor = found.next_cursor;
    Ok(Page {
        items: views(db, found.items).await?,
        next_cursor,
    })
}

/// Reads one key of `scope` (`api_keys.write`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: KeyScope,
    id: Uuid,
) -> DomainResult<ApiKeyView> {
    enter(db, ctx, scope).await?;
    let key = find(db, scope, id).await?;
    let mut found = views(db, vec![key]).await?;
    found.pop().ok_or(DomainError::NotFound("api key"))
}

/// Revokes a key of `scope` (`api_keys.write`, and every permission of the key's role, as
/// for creating it: otherwise a narrow key manager could cut off a stronger one, such as the
/// Domain admin's provisioning key — 403); it is refused from the next request on. Revoking a
/// revoked key changes nothing and writes no audit entry.
pub async fn revoke(
    db: &DatabaseConnection,
    ctx: &Context,
    scope: KeyScope,
    id: Uuid,
) -> DomainResult<()> {
    enter(db, ctx, scope).await?;
    let key = find(db, scope, id).await?;
    // A custom role that no longer exists grants nothing: anyone managing keys may revoke it.
    let role = access::role_permissions(db, key.domain_id, &key.role_key)
        .await?
        .unwrap_or_default();
    authorize_grant(&ctx.actor, role, scope.domain_id())?;
    if key.revoked_at.is_some() {
        return Ok(());
    }
    let txn = crate::db::begin_write(db).await?;
    let revoked = api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(ctx.now))
        .filter(api_keys::Column::Id.eq(key.id))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if revoked == 0 {
        // Someone else revoked it meanwhile; their audit entry covers it.
        return Ok(());
    }
    let after = api_keys::Model {
        revoked_at: Some(ctx.now),
        ..key.clone()
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: key.domain_id,
            action: "api_key.revoke",
            target_kind: "api_key",
            target_id: Some(key.id.to_string()),
            before: Some(snapshot(&key)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000)
    }

    fn key(
        expires_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    ) -> api_keys::Model {
        api_keys::Model {
            id: Uuid::nil(),
            name: "ci".into(),
            domain_id: None,
            role_key: "platform_admin".into(),
            custom_role_id: None,
            secret_hash: String::new(),
            created_by: None,
            created_at: now(),
            expires_at,
            last_used_at: None,
            revoked_at,
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        let code = |s: &str| KeyName::parse(s).err().map(|e| e.code);
        assert_eq!(
            KeyName::parse("  ci deploy ")
                .ok()
                .map(|n| n.as_str().to_owned()),
            Some("ci deploy".to_owned())
        );
        assert_eq!(code("   ").as_deref(), Some("invalid_length"));
        assert_eq!(code(&"x".repeat(100)), None);
        assert_eq!(code(&"x".repeat(101)).as_deref(), Some("invalid_length"));
        assert_eq!(code("a\u{0}b").as_deref(), Some("invalid_format"));
    }

    #[test]
    fn expiry_is_absolute_relative_or_never() {
        let mut errors = FieldErrors::new();
        let later = now() + Duration::hours(1);
        assert_eq!(expiry(Some(later), None, now(), &mut errors), Some(later));
        assert_eq!(
            expiry(None, Some(30), now(), &mut errors),
            Some(now() + Duration::days(30))
        );
        assert_eq!(expiry(None, None, now(), &mut errors), None);
        assert!(errors.is_empty());
    }

    #[test]
    fn expiry_in_the_past_out_of_range_or_twice_is_refused() {
        let cases = [
            (Some(now()), None, "expires_at", "not_in_future"),
            (None, Some(0), "expires_in_days", "out_of_range"),
            (None, Some(3651), "expires_in_days", "out_of_range"),
            (None, Some(-1), "expires_in_days", "out_of_range"),
            (
                Some(now() + Duration::days(1)),
                Some(1),
                "expires_in_days",
                "conflicting_fields",
            ),
        ];
        for (at, days, field, code) in cases {
            let mut errors = FieldErrors::new();
            assert_eq!(expiry(at, days, now(), &mut errors), None);
            let errors = errors.into_vec();
            assert_eq!(errors.len(), 1, "{at:?} {days:?}");
            assert_eq!(
                (errors[0].field.as_str(), errors[0].code.as_str()),
                (field, code)
            );
        }
    }

    #[test]
    fn status_follows_revocation_then_expiry() {
        let past = Some(now() - Duration::seconds(1));
        let future = Some(now() + Duration::seconds(1));
        assert_eq!(KeyStatus::of(&key(None, None), now()), KeyStatus::Active);
        assert_eq!(KeyStatus::of(&key(future, None), now()), KeyStatus::Active);
        assert_eq!(
            KeyStatus::of(&key(Some(now()), None), now()),
            KeyStatus::Expired
        );
        assert_eq!(KeyStatus::of(&key(past, None), now()), KeyStatus::Expired);
        assert_eq!(KeyStatus::of(&key(past, past), now()), KeyStatus::Revoked);
    }

    #[test]
    fn the_prefix_is_the_start_of_the_presented_key() {
        let id = Uuid::now_v7();
        let presented = auth::format_api_key(id, "s3cr3t_with_underscore");
        assert!(presented.starts_with(&display_prefix(id)));
        assert!(!display_prefix(id).contains("s3cr3t"));
    }
}
