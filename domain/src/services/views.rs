//! Read views over the bindings: who rings for an Extension and who a Device calls as.
//!
//! Both load the Domain's [`Bindings`](crate::bindings::Bindings) snapshot and answer with the
//! pure rules, so the views show exactly what the directory and dialplan will do.

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{Context, scope, snapshot};
use crate::bindings::identity::{CallingIdentity, calling_identity};
use crate::bindings::ring_plan::{RingPlan, render_dial_string, ring_plan};
use crate::error::{DomainError, DomainResult};
use crate::identity::permissions::Permission;

/// A ring plan with the FreeSWITCH dial string it renders to.
#[derive(Debug, Clone)]
pub struct RingPlanView {
    /// Who rings, in which order, and what happens otherwise.
    pub plan: RingPlan,
    /// The dial string (`None` when nothing rings).
    pub dial_string: Option<String>,
}

/// The ring plan of an Extension (`extensions.read`); another Domain's Extension is a 404.
pub async fn extension_ring_plan(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<RingPlanView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    let bindings = snapshot::load(db, domain_id).await?;
    if !bindings.extensions.contains_key(&extension_id) {
        return Err(DomainError::NotFound("extension"));
    }
    let plan = ring_plan(&bindings, extension_id, ctx.now);
    let dial_string = render_dial_string(&plan, &domain.sip_domain);
    Ok(RingPlanView { plan, dial_string })
}

/// The calling identity of a Device (`devices.read`); another Domain's Device is a 404, a
/// disabled one a 409 `device_disabled`.
pub async fn device_identity(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<CallingIdentity> {
    scope::enter(db, ctx, domain_id, Permission::DevicesRead).await?;
    let bindings = snapshot::load(db, domain_id).await?;
    if !bindings.devices.contains_key(&device_id) {
        return Err(DomainError::NotFound("device"));
    }
    calling_identity(&bindings, device_id).ok_or_else(|| {
        DomainError::conflict(
            "device_disabled",
            "the device is out of service and calls as nobody",
        )
    })
}
