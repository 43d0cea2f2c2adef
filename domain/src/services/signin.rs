//! Location sign-in: an Extension signed in to at most one Location (the table's key), where
//! every device of the Location rings for it.
//!
//! Who may: `hotdesk.others` for any Extension of the Domain; `hotdesk.self` for the
//! Extension linked to one's own User (another's is a 403 naming `hotdesk.others`). The
//! Location's policy is decided by [`decide_sign_in`] with the role keys the Extension's User
//! holds in the Domain; a `listed` Location that lists neither is a 422 on `location_id`
//! (`sign_in_not_allowed`). Signing in elsewhere replaces the previous sign-in in the same
//! transaction; devices bound directly to the Extension are not affected.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::hotdesk::{Deps, own_extension};
use super::{Context, audit, snapshot};
use crate::bindings::Bindings;
use crate::bindings::signin::{SignInDecision, SignInRequest, decide_sign_in, decide_sign_out};
use crate::bindings::snapshot::LocationSignIn;
use crate::error::{DomainError, DomainResult};
use crate::events::{ChangeEvent, ChangeKind};
use crate::identity::authz::{authorize, can};
use crate::identity::permissions::Permission;
use crate::store::{extensions, location_sign_ins, locations, role_assignments};

/// A sign-in as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignInView {
    /// The Extension.
    pub extension_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl From<LocationSignIn> for SignInView {
    fn from(s: LocationSignIn) -> Self {
        Self {
            extension_id: s.extension_id,
            location_id: s.location_id,
            since: s.since,
        }
    }
}

/// Checks that the actor may sign this Extension in or out, and returns its row.
async fn authorize_for(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<extensions::Model> {
    let others = can(&ctx.actor, Permission::HotdeskOthers, Some(domain_id));
    if !others {
        authorize(&ctx.actor, Permission::HotdeskSelf, domain_id)?;
    }
    let ext = extensions::Entity::find_by_id(extension_id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("extension"))?;
    if !others && (ext.user_id.is_none() || ext.user_id != ctx.actor.user_id()) {
        return Err(DomainError::Forbidden {
            permission: Permission::HotdeskOthers.as_str().to_owned(),
        });
    }
    Ok(ext)
}

/// The role keys the Extension's User holds in the Domain (none without a User).
async fn roles_of<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    ext: &extensions::Model,
) -> DomainResult<BTreeSet<String>> {
    let Some(user_id) = ext.user_id else {
        return Ok(BTreeSet::new());
    };
    Ok(role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(user_id))
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.role_key)
        .collect())
}

/// Signs an Extension in to a Location (idempotent; replaces a sign-in elsewhere).
pub async fn sign_in(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
    location_id: Uuid,
) -> DomainResult<SignInView> {
    let ext = authorize_for(deps.db, ctx, domain_id, extension_id).await?;
    sign_in_checked(deps, ctx, domain_id, ext, location_id).await
}

/// Signs the caller's own Extension in to a Location of a Domain (`hotdesk.self`).
pub async fn sign_in_self(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    location_id: Uuid,
) -> DomainResult<SignInView> {
    authorize(&ctx.actor, Permission::HotdeskSelf, domain_id)?;
    let ext = own_extension(deps.db, &ctx.actor, domain_id)
        .await?
        .ok_or_else(|| {
            DomainError::conflict("no_extension", "your User has no Extension in this Domain")
        })?;
    sign_in_checked(deps, ctx, domain_id, ext, location_id).await
}

/// `*14<short code>` on a phone: signs the Extension the phone calls as (`number`, the person
/// logged in there or its owner) in to the Location with that short code. The phone's SIP
/// identity is the proof, as for `*12`; the Location's sign-in policy applies. A code no
/// Location has is a 422 on `short_code`.
pub async fn sign_in_from_phone(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    number: &str,
    short_code: &str,
) -> DomainResult<SignInView> {
    let ext = extension_by_number(deps.db, domain_id, number).await?;
    let location = locations::Entity::find()
        .filter(locations::Column::DomainId.eq(domain_id))
        .filter(locations::Column::ShortCode.eq(short_code))
        .one(deps.db)
        .await?
        .ok_or_else(|| {
            DomainError::invalid("short_code", "unknown", "no Location has this short code")
        })?;
    sign_in_checked(deps, ctx, domain_id, ext, location.id).await
}

/// `*15` on a phone: signs the Extension the phone calls as out of its Location (nothing to do
/// is fine). Answers whether it was signed in.
pub async fn sign_out_from_phone(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    number: &str,
) -> DomainResult<bool> {
    let ext = extension_by_number(deps.db, domain_id, number).await?;
    let was = location_sign_ins::Entity::find_by_id(ext.id)
        .one(deps.db)
        .await?
        .is_some();
    sign_out_checked(deps, ctx, domain_id, ext.id).await?;
    Ok(was)
}

async fn extension_by_number(
    db: &sea_orm::DatabaseConnection,
    domain_id: Uuid,
    number: &str,
) -> DomainResult<extensions::Model> {
    extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::Number.eq(number))
        .one(db)
        .await?
        .ok_or_else(|| DomainError::invalid("extension", "unknown", "no such Extension"))
}

async fn sign_in_checked(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    ext: extensions::Model,
    location_id: Uuid,
) -> DomainResult<SignInView> {
    let roles = roles_of(deps.db, domain_id, &ext).await?;
    let mut last = None;
    for _ in 0..3 {
        let b = snapshot::load(deps.db, domain_id).await?;
        let decision = decide_sign_in(
            &b,
            &SignInRequest {
                extension_id: ext.id,
                location_id,
                roles: roles.clone(),
                now: ctx.now,
            },
        )?;
        let (sign_in, replaces) = match decision {
            SignInDecision::AlreadySignedIn { sign_in } => return Ok(sign_in.into()),
            SignInDecision::SignIn { sign_in, replaces } => (sign_in, replaces),
        };
        match save(deps, ctx, &b, &sign_in, replaces.as_ref()).await {
            Ok(()) => return Ok(sign_in.into()),
            Err(DomainError::Conflict { .. }) => {
                last = Some(DomainError::conflict(
                    "sign_in_changed",
                    "the Extension's sign-in changed meanwhile; try again",
                ));
            }
            Err(DomainError::Database(e)) if super::hotdesk::is_transient(&e) => {
                last = Some(DomainError::Database(e));
            }
            Err(e) => return Err(e),
        }
    }
    Err(match last {
        Some(DomainError::Database(_)) | None => DomainError::conflict(
            "sign_in_changed",
            "the Extension's sign-in changed meanwhile; try again",
        ),
        Some(e) => e,
    })
}

fn numbers(b: &Bindings, extension_id: Uuid) -> Vec<String> {
    b.extensions
        .get(&extension_id)
        .map(|e| e.number.clone())
        .into_iter()
        .collect()
}

async fn save(
    deps: Deps<'_>,
    ctx: &Context,
    b: &Bindings,
    sign_in: &LocationSignIn,
    replaces: Option<&LocationSignIn>,
) -> DomainResult<()> {
    let txn = crate::db::begin_write(deps.db).await?;
    if let Some(old) = replaces {
        let gone = location_sign_ins::Entity::delete_many()
            .filter(location_sign_ins::Column::DomainId.eq(b.domain.id))
            .filter(location_sign_ins::Column::ExtensionId.eq(old.extension_id))
            .filter(location_sign_ins::Column::LocationId.eq(old.location_id))
            .exec(&txn)
            .await?;
        if gone.rows_affected == 0 {
            return Err(DomainError::conflict(
                "sign_in_changed",
                "changed meanwhile",
            ));
        }
    }
    location_sign_ins::ActiveModel {
        domain_id: Set(b.domain.id),
        extension_id: Set(sign_in.extension_id),
        location_id: Set(sign_in.location_id),
        since: Set(sign_in.since),
        signed_in_by: Set(ctx.actor.label.clone()),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(b.domain.id),
            action: "location.sign_in",
            target_kind: "extension",
            target_id: Some(sign_in.extension_id.to_string()),
            before: replaces.map(|r| json!({"location_id": r.location_id, "since": r.since})),
            after: Some(json!({
                "location_id": sign_in.location_id,
                "since": sign_in.since,
                "signed_in_by": ctx.actor.label,
                "why": if replaces.is_some() { "signed in elsewhere (replaces)" } else { "signed in" },
            })),
        },
    )
    .await?;
    txn.commit().await?;
    let mut events = Vec::new();
    if let Some(old) = replaces {
        events.push(
            ChangeEvent::new(
                b.domain.id,
                &b.domain.sip_domain,
                ChangeKind::LocationSignedOut,
                old.extension_id,
                ctx.now,
            )
            .refresh(numbers(b, old.extension_id)),
        );
    }
    events.push(
        ChangeEvent::new(
            b.domain.id,
            &b.domain.sip_domain,
            ChangeKind::LocationSignedIn,
            sign_in.extension_id,
            ctx.now,
        )
        .refresh(numbers(b, sign_in.extension_id)),
    );
    deps.bus.publish(events);
    Ok(())
}

/// Signs an Extension out of its Location (idempotent).
pub async fn sign_out(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<()> {
    let ext = authorize_for(deps.db, ctx, domain_id, extension_id).await?;
    sign_out_checked(deps, ctx, domain_id, ext.id).await
}

/// Signs the caller's own Extension out of its Location in a Domain (`hotdesk.self`).
pub async fn sign_out_self(deps: Deps<'_>, ctx: &Context, domain_id: Uuid) -> DomainResult<()> {
    authorize(&ctx.actor, Permission::HotdeskSelf, domain_id)?;
    let ext = own_extension(deps.db, &ctx.actor, domain_id)
        .await?
        .ok_or_else(|| {
            DomainError::conflict("no_extension", "your User has no Extension in this Domain")
        })?;
    sign_out_checked(deps, ctx, domain_id, ext.id).await
}

async fn sign_out_checked(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<()> {
    let b = snapshot::load(deps.db, domain_id).await?;
    let Some(current) = decide_sign_out(&b, extension_id) else {
        return Ok(());
    };
    let txn = crate::db::begin_write(deps.db).await?;
    let gone = location_sign_ins::Entity::delete_many()
        .filter(location_sign_ins::Column::DomainId.eq(domain_id))
        .filter(location_sign_ins::Column::ExtensionId.eq(extension_id))
        .exec(&txn)
        .await?;
    if gone.rows_affected == 0 {
        // Signed out meanwhile: the end state is what was asked for.
        return Ok(());
    }
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "location.sign_out",
            target_kind: "extension",
            target_id: Some(extension_id.to_string()),
            before: Some(json!({"location_id": current.location_id, "since": current.since})),
            after: Some(json!({"signed_out_by": ctx.actor.label})),
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus.publish([ChangeEvent::new(
        domain_id,
        &b.domain.sip_domain,
        ChangeKind::LocationSignedOut,
        extension_id,
        ctx.now,
    )
    .refresh(numbers(&b, extension_id))]);
    Ok(())
}
