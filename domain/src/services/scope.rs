//! Entering a Domain: authorize, then load the Domain row the use case works in.

use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::Context;
use crate::error::{DomainError, DomainResult};
use crate::identity::authz::authorize;
use crate::identity::permissions::Permission;
use crate::store::domains;

/// Authorizes `permission` in `domain_id` for the context's actor and returns the Domain.
/// An invisible Domain and a missing one are the same 404.
pub async fn enter<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    domain_id: Uuid,
    permission: Permission,
) -> DomainResult<domains::Model> {
    authorize(&ctx.actor, permission, domain_id)?;
    domains::Entity::find_by_id(domain_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))
}
