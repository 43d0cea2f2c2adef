//! Logging in, sessions with rotating refresh tokens, password changes, and authenticating
//! each request (access-token sessions and API keys) into an [`Actor`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use super::throttle::{self, Limit};
use super::{Context, access, audit};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::identity::authz::{Actor, Principal};
use crate::identity::email::Email;
use crate::identity::password::{NewPassword, hash_secret, verify_secret};
use crate::identity::tokens::{random_token, token_digest};
use crate::store::{api_keys, password_tokens, refresh_tokens, sessions, users};

/// Throttling scope of failed logins per account.
pub const SCOPE_LOGIN_ACCOUNT: &str = "login_account";
/// Throttling scope of failed logins per client address.
pub const SCOPE_LOGIN_ADDRESS: &str = "login_address";

/// The one answer to every failed login, whatever failed.
const BAD_CREDENTIALS: &str = "invalid email or password";

/// How logins and sessions behave.
#[derive(Debug, Clone, Copy)]
pub struct AuthPolicy {
    /// Failed logins per account and per address before 429.
    pub login_limit: Limit,
    /// Absolute lifetime of a session.
    pub session_ttl: Duration,
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

/// A session with a fresh refresh token (shown to the client once).
#[derive(Debug)]
pub struct IssuedSession {
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The refresh token, in clear, for the client only.
    pub refresh_token: SecretString,
    /// End of the session.
    pub expires_at: DateTime<Utc>,
}

fn anonymous(now: DateTime<Utc>, request_id: Option<String>, label: &str) -> Context {
    let mut actor = Actor::system(label);
    actor.platform = crate::identity::permissions::PermissionSet::EMPTY;
    Context {
        actor,
        now,
        request_id,
    }
}

async fn issue_refresh_token<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<SecretString> {
    let token = format!("rt_{}", random_token(32));
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(token_digest(&token)),
        created_at: Set(now),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(SecretString::from(token))
}

/// Checks email and password and opens a session.
///
/// Unknown emails, wrong passwords, disabled and invited accounts all get the same 401 after the
/// same amount of work. After `login_limit` failures per account or per address within the
/// window, every attempt (even a correct one) answers 429 until the window passes.
pub async fn login(
    db: &DatabaseConnection,
    policy: &AuthPolicy,
    email: &str,
    password: SecretString,
    client: &ClientInfo,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> DomainResult<IssuedSession> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    if password.expose_secret().is_empty() {
        errors.add("password", "required", "a password is required");
    }
    errors.into_result()?;
    let Some(email) = email else {
        return Err(DomainError::Internal("email missing".into()));
    };
    let address = client.ip.clone().unwrap_or_else(|| "unknown".to_owned());
    let ctx = anonymous(now, request_id, email.as_str());

    // The attempt counts as a failure of the account and the address before the password is
    // checked, so a burst of guesses cannot all see "under the limit" (see throttle::reserve).
    let subjects = [
        throttle::Subject {
            scope: SCOPE_LOGIN_ACCOUNT,
            subject: email.as_str(),
            limit: policy.login_limit,
        },
        throttle::Subject {
            scope: SCOPE_LOGIN_ADDRESS,
            subject: &address,
            limit: policy.login_limit,
        },
    ];
    let reservation = match throttle::reserve(db, &subjects, now).await? {
        Ok(reservation) => reservation,
        Err(retry_after_secs) => {
            audit::record(
                db,
                &ctx,
                audit::Entry {
                    domain_id: None,
                    action: "auth.login_throttled",
                    target_kind: "user",
                    target_id: None,
                    before: None,
                    after: Some(json!({"email": email.as_str(), "ip": address, "retry_after_secs": retry_after_secs})),
                },
            )
            .await?;
            return Err(DomainError::RateLimited { retry_after_secs });
        }
    };

    let user = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = verify_secret(password, hash).await?;
    let user = match user {
        Some(user) if password_ok && user.status == "active" => user,
        _ => {
            // The reservation stays: it is this failure.
            audit::record(
                db,
                &ctx,
                audit::Entry {
                    domain_id: None,
                    action: "auth.login_failed",
                    target_kind: "user",
                    target_id: None,
                    before: None,
                    after: Some(json!({"email": email.as_str(), "ip": address})),
                },
            )
            .await?;
            return Err(DomainError::Unauthenticated(BAD_CREDENTIALS));
        }
    };

    let txn = crate::db::begin_write(db).await?;
    reservation.release(&txn).await?;
    throttle::clear(&txn, SCOPE_LOGIN_ACCOUNT, email.as_str()).await?;
    let session_id = Uuid::now_v7();
    let expires_at = now + policy.session_ttl;
    sessions::ActiveModel {
        id: Set(session_id),
        user_id: Set(user.id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        revoked_reason: Set(None),
        user_agent: Set(client
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(255).collect())),
        ip_address: Set(client.ip.clone()),
    }
    .insert(&txn)
    .await?;
    let refresh_token = issue_refresh_token(&txn, session_id, now).await?;
    let user_id = user.id;
    let mut active = user.into_active_model();
    active.last_login_at = Set(Some(now));
    active.update(&txn).await?;
    let ctx = Context {
        actor: Actor {
            principal: Principal::User {
                id: user_id,
                session_id,
            },
            ..ctx.actor
        },
        ..ctx
    };
    audit::record(
        &txn,
        &ctx,
        audit::Entry {
            domain_id: None,
            action: "auth.login",
            target_kind: "session",
            target_id: Some(session_id.to_string()),
            before: None,
            after: Some(json!({"ip": client.ip, "user_agent": client.user_agent})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(IssuedSession {
        session_id,
        user_id,
        refresh_token,
        expires_at,
    })
}

/// Revokes a session (idempotent).
async fn revoke<C: ConnectionTrait>(
    db: &C,
    session_id: Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new one (rotation). Presenting a token that was already
/// used revokes the whole session: someone else has a copy.
pub async fn refresh(
    db: &DatabaseConnection,
    token: &str,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> DomainResult<IssuedSession> {
    let invalid = DomainError::Unauthenticated("the refresh token is invalid or expired");
    let Some(stored) = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(token_digest(token)))
        .one(db)
        .await?
    else {
        return Err(invalid);
    };
    let Some(session) = sessions::Entity::find_by_id(stored.session_id)
        .one(db)
        .await?
    else {
        return Err(invalid);
    };
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(invalid);
    }
    let txn = crate::db::begin_write(db).await?;
    // Claim the token atomically; losing the claim means it was used already.
    let claimed = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(stored.id))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        revoke(&txn, session.id, "refresh_token_reuse", now).await?;
        let ctx = Context {
            actor: Actor {
                principal: Principal::User {
                    id: session.user_id,
                    session_id: session.id,
                },
                ..Actor::system("refresh")
            },
            now,
            request_id,
        };
        audit::record(
            &txn,
            &ctx,
            audit::Entry {
                domain_id: None,
                action: "auth.refresh_token_reuse",
                target_kind: "session",
                target_id: Some(session.id.to_string()),
                before: None,
                after: Some(json!({"revoked": true})),
            },
        )
        .await?;
        txn.commit().await?;
        return Err(DomainError::Unauthenticated(
            "the refresh token was already used; the session has been revoked",
        ));
    }
    let user = users::Entity::find_by_id(session.user_id).one(&txn).await?;
    if user.as_ref().is_none_or(|u| u.status != "active") {
        return Err(invalid);
    }
    let refresh_token = issue_refresh_token(&txn, session.id, now).await?;
    let (session_id, user_id, expires_at) = (session.id, session.user_id, session.expires_at);
    let mut active = session.into_active_model();
    active.last_seen_at = Set(now);
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(IssuedSession {
        session_id,
        user_id,
        refresh_token,
        expires_at,
    })
}

/// Ends the caller's session.
pub async fn logout(db: &DatabaseConnection, ctx: &Context) -> DomainResult<()> {
    let Principal::User { session_id, .. } = ctx.actor.principal else {
        return Err(DomainError::invalid(
            "authorization",
            "not_a_session",
            "only a login session can log out; API keys are revoked instead",
        ));
    };
    let txn = crate::db::begin_write(db).await?;
    revoke(&txn, session_id, "logout", ctx.now).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "auth.logout",
            target_kind: "session",
            target_id: Some(session_id.to_string()),
            before: None,
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The user's live sessions, oldest first.
pub async fn list_sessions(
    db: &DatabaseConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Vec<sessions::Model>> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .order_by_asc(sessions::Column::Id)
        .all(db)
        .await?)
}

/// Revokes one of the user's own sessions; another user's session is not found.
pub async fn revoke_own_session(
    db: &DatabaseConnection,
    ctx: &Context,
    session_id: Uuid,
) -> DomainResult<()> {
    let Some(user_id) = ctx.actor.user_id() else {
        return Err(DomainError::NotFound("session"));
    };
    let found = sessions::Entity::find_by_id(session_id)
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .one(db)
        .await?;
    if found.is_none() {
        return Err(DomainError::NotFound("session"));
    }
    let txn = crate::db::begin_write(db).await?;
    revoke(&txn, session_id, "revoked_by_user", ctx.now).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "session.revoke",
            target_kind: "session",
            target_id: Some(session_id.to_string()),
            before: None,
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Revokes every live session of a user except `keep` (after a password change or reset, or
/// when the user is disabled).
pub async fn revoke_user_sessions<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let mut query = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        query = query.filter(sessions::Column::Id.ne(keep));
    }
    query.exec(db).await?;
    Ok(())
}

/// Self-service password change: needs the current password (throttled like logins); ends
/// every other session of the user.
pub async fn change_password(
    db: &DatabaseConnection,
    policy: &AuthPolicy,
    ctx: &Context,
    current: SecretString,
    new: SecretString,
) -> DomainResult<()> {
    let Principal::User {
        id: user_id,
        session_id,
    } = ctx.actor.principal
    else {
        return Err(DomainError::invalid(
            "authorization",
            "not_a_session",
            "only a logged-in user has a password",
        ));
    };
    let user = users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let new = NewPassword::parse(&new, Some(&user.email)).map_err(|e| {
        DomainError::Validation(vec![crate::FieldError {
            field: "new_password".into(),
            ..e
        }])
    })?;
    let subject = [throttle::Subject {
        scope: SCOPE_LOGIN_ACCOUNT,
        subject: &user.email,
        limit: policy.login_limit,
    }];
    let reservation = match throttle::reserve(db, &subject, ctx.now).await? {
        Ok(reservation) => reservation,
        Err(retry_after_secs) => return Err(DomainError::RateLimited { retry_after_secs }),
    };
    if !verify_secret(current, user.password_hash.clone()).await? {
        // The reservation stays: it is this failure.
        return Err(DomainError::invalid(
            "current_password",
            "incorrect",
            "the current password is not correct",
        ));
    }
    reservation.release(db).await?;
    let hash = hash_secret(new.secret().clone()).await?;
    let txn = crate::db::begin_write(db).await?;
    let mut active = user.into_active_model();
    active.password_hash = Set(Some(hash));
    active.password_changed_at = Set(Some(ctx.now));
    active.updated_at = Set(ctx.now);
    active.update(&txn).await?;
    revoke_user_sessions(&txn, user_id, Some(session_id), "password_changed", ctx.now).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "user.password_change",
            target_kind: "user",
            target_id: Some(user_id.to_string()),
            before: None,
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Creates a single-use set-password token (invitation or admin reset) inside the caller's
/// transaction; returns the token in clear, to hand to the user once.
pub async fn issue_password_token<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> DomainResult<(SecretString, DateTime<Utc>)> {
    // Older unused tokens of the user stop working: only the newest is valid.
    password_tokens::Entity::update_many()
        .col_expr(password_tokens::Column::UsedAt, Expr::value(now))
        .filter(password_tokens::Column::UserId.eq(user_id))
        .filter(password_tokens::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    let token = format!("pt_{}", random_token(32));
    let expires_at = now + ttl;
    password_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        token_hash: Set(token_digest(&token)),
        purpose: Set(purpose.to_owned()),
        created_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((SecretString::from(token), expires_at))
}

/// Sets a password with a set-password token: activates an invited user, ends every session.
pub async fn set_password_with_token(
    db: &DatabaseConnection,
    token: &str,
    password: SecretString,
    now: DateTime<Utc>,
    request_id: Option<String>,
) -> DomainResult<()> {
    let invalid = || {
        DomainError::invalid(
            "token",
            "invalid_token",
            "the token is invalid, expired or already used",
        )
    };
    let stored = password_tokens::Entity::find()
        .filter(password_tokens::Column::TokenHash.eq(token_digest(token)))
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    if stored.used_at.is_some() || stored.expires_at <= now {
        return Err(invalid());
    }
    let user = users::Entity::find_by_id(stored.user_id)
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    if user.status == "disabled" {
        return Err(invalid());
    }
    let new = NewPassword::parse(&password, Some(&user.email))?;
    let hash = hash_secret(new.secret().clone()).await?;
    let txn = crate::db::begin_write(db).await?;
    let claimed = password_tokens::Entity::update_many()
        .col_expr(password_tokens::Column::UsedAt, Expr::value(now))
        .filter(password_tokens::Column::Id.eq(stored.id))
        .filter(password_tokens::Column::UsedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        return Err(invalid());
    }
    let user_id = user.id;
    let before = user.status.clone();
    let mut active = user.into_active_model();
    active.password_hash = Set(Some(hash));
    active.password_changed_at = Set(Some(now));
    active.status = Set("active".to_owned());
    active.updated_at = Set(now);
    active.update(&txn).await?;
    revoke_user_sessions(&txn, user_id, None, "password_set", now).await?;
    let ctx = Context {
        actor: Actor {
            principal: Principal::User {
                id: user_id,
                session_id: Uuid::nil(),
            },
            ..anonymous(now, None, "password_token").actor
        },
        now,
        request_id,
    };
    audit::record(
        &txn,
        &ctx,
        audit::Entry {
            domain_id: None,
            action: "user.password_set",
            target_kind: "user",
            target_id: Some(user_id.to_string()),
            before: Some(json!({"status": before})),
            after: Some(json!({"status": "active", "purpose": stored.purpose})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Resolves an access token's session into an [`Actor`]. A revoked or expired session, or a
/// user who is no longer active, is refused at once, whatever the token's own expiry says.
pub async fn authenticate_session(
    db: &DatabaseConnection,
    user_id: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<Actor> {
    // Every request pays this: the three reads go out side by side (one round trip's
    // latency), and are judged in order afterwards.
    let (session, user, (platform, domains)) = tokio::try_join!(
        async {
            Ok::<_, DomainError>(
                sessions::Entity::find_by_id(session_id)
                    .filter(sessions::Column::UserId.eq(user_id))
                    .one(db)
                    .await?,
            )
        },
        async { Ok(users::Entity::find_by_id(user_id).one(db).await?) },
        access::user_permissions(db, user_id),
    )?;
    let session = session.ok_or(DomainError::Unauthenticated("the session does not exist"))?;
    if session.revoked_at.is_some() {
        return Err(DomainError::Unauthenticated("the session has been revoked"));
    }
    if session.expires_at <= now {
        return Err(DomainError::Unauthenticated("the session has expired"));
    }
    let user = user.ok_or(DomainError::Unauthenticated("the user does not exist"))?;
    if user.status != "active" {
        return Err(DomainError::Unauthenticated("the account is disabled"));
    }
    Ok(Actor {
        principal: Principal::User {
            id: user_id,
            session_id,
        },
        label: user.email,
        platform,
        domains,
    })
}

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "sk_";

/// Builds the presented form of an API key: `sk_<key id>_<secret>`.
pub fn format_api_key(id: Uuid, secret: &str) -> String {
    format!("{API_KEY_PREFIX}{}_{secret}", id.simple())
}

/// Splits a presented API key into its id and secret.
pub fn parse_api_key(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.is_empty() {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Remembers API key secrets that verified recently, so a busy client does not pay an argon2
/// verification per request. Only the verification is cached: the key row (revocation, expiry,
/// role) is read on every request.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    verified: Mutex<HashMap<String, Instant>>,
}

impl ApiKeyCache {
    const TTL: StdDuration = StdDuration::from_secs(300);
    const MAX_ENTRIES: usize = 10_000;

    fn is_fresh(&self, digest: &str) -> bool {
        self.verified
            .lock()
            .map(|m| m.get(digest).is_some_and(|t| t.elapsed() < Self::TTL))
            .unwrap_or(false)
    }

    fn remember(&self, digest: String) {
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= Self::MAX_ENTRIES {
                m.retain(|_, t| t.elapsed() < Self::TTL);
            }
            m.insert(digest, Instant::now());
        }
    }
}

/// Resolves an API key into an [`Actor`] with its role's permissions in its scope.
pub async fn authenticate_api_key(
    db: &DatabaseConnection,
    cache: &ApiKeyCache,
    token: &str,
    now: DateTime<Utc>,
) -> DomainResult<Actor> {
    let invalid = DomainError::Unauthenticated("the API key is invalid, revoked or expired");
    let Some((id, secret)) = parse_api_key(token) else {
        return Err(invalid);
    };
    let key = api_keys::Entity::find_by_id(id).one(db).await?;
    let digest = token_digest(token);
    let verified = match &key {
        Some(_) if cache.is_fresh(&digest) => true,
        Some(key) => {
            verify_secret(
                SecretString::from(secret.to_owned()),
                Some(key.secret_hash.clone()),
            )
            .await?
        }
        None => {
            // Same work as a real key, so key ids cannot be probed by timing.
            verify_secret(SecretString::from(secret.to_owned()), None).await?;
            false
        }
    };
    let Some(key) = key.filter(|_| verified) else {
        return Err(invalid);
    };
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid);
    }
    cache.remember(digest);
    let actor = api_key_actor(db, &key, now).await?;
    if key
        .last_used_at
        .is_none_or(|t| now - t > Duration::seconds(60))
    {
        api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, Expr::value(now))
            .filter(api_keys::Column::Id.eq(key.id))
            .exec(db)
            .await?;
    }
    Ok(actor)
}

/// The [`Actor`] of a verified, live API key: its role's permissions in its scope. A key of a
/// disabled Domain is refused.
async fn api_key_actor(
    db: &DatabaseConnection,
    key: &api_keys::Model,
    now: DateTime<Utc>,
) -> DomainResult<Actor> {
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::Unauthenticated(
            "the API key is invalid, revoked or expired",
        ));
    }
    if let Some(domain) = key.domain_id
        && !access::disabled_domains(db, vec![domain]).await?.is_empty()
    {
        return Err(DomainError::Unauthenticated(
            "the API key's Domain is disabled",
        ));
    }
    let permissions = access::role_permissions(db, key.domain_id, &key.role_key)
        .await?
        .unwrap_or_default();
    let (platform, domains) = match key.domain_id {
        None => (permissions, HashMap::new()),
        Some(d) => (
            crate::identity::permissions::PermissionSet::EMPTY,
            HashMap::from([(d, permissions)]),
        ),
    };
    Ok(Actor {
        principal: Principal::ApiKey { id: key.id },
        label: format!("api_key:{}", key.name),
        platform,
        domains,
    })
}

/// Resolves an already authenticated principal again, as it stands now: what a long-lived
/// connection (the live event stream) uses to notice that its session was revoked or expired,
/// its user disabled, its key revoked, or its roles changed. The secret is not checked again.
pub async fn reauthenticate(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
) -> DomainResult<Actor> {
    match *principal {
        Principal::User { id, session_id } => authenticate_session(db, id, session_id, now).await,
        Principal::ApiKey { id } => {
            let key = api_keys::Entity::find_by_id(id).one(db).await?.ok_or(
                DomainError::Unauthenticated("the API key is invalid, revoked or expired"),
            )?;
            api_key_actor(db, &key, now).await
        }
        Principal::System => Err(DomainError::Unauthenticated(
            "only a session or an API key can be checked again",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_round_trip_through_their_presented_form() {
        let id = Uuid::now_v7();
        let token = format_api_key(id, "abc_def-123");
        assert_eq!(parse_api_key(&token), Some((id, "abc_def-123")));
        for bad in [
            "",
            "sk_",
            "sk_nothex_abc",
            &format!("sk_{}_", id.simple()),
            "pk_abc_def",
        ] {
            assert_eq!(parse_api_key(bad), None, "{bad}");
        }
    }
}
