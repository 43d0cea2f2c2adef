//! Creating platform administrators: the first one on an empty database, and more from the CLI.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::{Context, audit};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::identity::email::Email;
use crate::identity::password::{NewPassword, generate_password, hash_secret};
use crate::identity::permissions::BuiltinRole;
use crate::store::{role_assignments, users};

/// The email of the administrator created automatically when none is configured.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@switchboard.localhost";

/// A platform administrator that was just created.
#[derive(Debug)]
pub struct CreatedAdmin {
    /// The user's id.
    pub id: Uuid,
    /// The normalised email.
    pub email: String,
    /// The generated password, when none was supplied; shown once, never stored.
    pub generated_password: Option<SecretString>,
}

/// How many users hold the platform_admin role.
pub async fn count_platform_admins(db: &DatabaseConnection) -> DomainResult<u64> {
    Ok(role_assignments::Entity::find()
        .filter(role_assignments::Column::ScopeKey.eq(role_assignments::PLATFORM_SCOPE))
        .filter(role_assignments::Column::RoleKey.eq(BuiltinRole::PlatformAdmin.as_str()))
        .count(db)
        .await?)
}

/// Creates a platform administrator with `password`, or a generated one when `None`.
pub async fn create_platform_admin(
    db: &DatabaseConnection,
    ctx: &Context,
    email: &str,
    password: Option<SecretString>,
) -> DomainResult<CreatedAdmin> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(email));
    let (password, generated) = match password {
        Some(p) => (
            errors.check(
                "password",
                NewPassword::parse(&p, email.as_ref().map(Email::as_str)),
            ),
            None,
        ),
        None => {
            let p = generate_password();
            (NewPassword::parse(&p, None).ok(), Some(p))
        }
    };
    errors.into_result()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(DomainError::Internal("validated values missing".into()));
    };
    let hash = hash_secret(password.secret().clone()).await?;

    let id = Uuid::now_v7();
    let txn = crate::db::begin_write(db).await?;
    users::ActiveModel {
        id: Set(id),
        email: Set(email.as_str().to_owned()),
        display_name: Set("Platform administrator".to_owned()),
        status: Set("active".to_owned()),
        password_hash: Set(Some(hash)),
        created_at: Set(ctx.now),
        updated_at: Set(ctx.now),
        last_login_at: Set(None),
        password_changed_at: Set(Some(ctx.now)),
    }
    .insert(&txn)
    .await?;
    role_assignments::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(id),
        domain_id: Set(None),
        scope_key: Set(role_assignments::PLATFORM_SCOPE.to_owned()),
        role_key: Set(BuiltinRole::PlatformAdmin.as_str().to_owned()),
        custom_role_id: Set(None),
        created_at: Set(ctx.now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "user.create_platform_admin",
            target_kind: "user",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"email": email.as_str(), "role": "platform_admin"})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(CreatedAdmin {
        id,
        email: email.as_str().to_owned(),
        generated_password: generated,
    })
}

/// On an empty database (no platform administrator), creates one: with the configured email
/// and password if given, otherwise `admin@switchboard.localhost` with a generated password that
/// the caller prints once. Returns `None` when an administrator already exists.
pub async fn ensure_first_admin(
    db: &DatabaseConnection,
    email: Option<&str>,
    password: Option<SecretString>,
) -> DomainResult<Option<CreatedAdmin>> {
    if count_platform_admins(db).await? > 0 {
        return Ok(None);
    }
    let ctx = Context::system("bootstrap");
    let email = email.unwrap_or(DEFAULT_ADMIN_EMAIL);
    match create_platform_admin(db, &ctx, email, password).await {
        Ok(created) => Ok(Some(created)),
        // Another node won the race to bootstrap: that is fine.
        Err(DomainError::Conflict { .. }) if count_platform_admins(db).await? > 0 => Ok(None),
        Err(e) => Err(e),
    }
}
