//! Ending hot-desk sessions and Location sign-ins because a change makes them impossible: a
//! device made fixed, disabled or deleted; an Extension disabled, no longer allowed to
//! hot-desk, made a placeholder or deleted; a Location deleted.
//!
//! Use case: inside the change's own write transaction, find the active rows → end them (a
//! session keeps its row with `ended_at`; a sign-in row goes) → audit each ending → hand the
//! caller the events to publish after commit. Nothing is left for a database cascade to delete
//! silently, and nothing comes back when the change is undone: an ended session stays ended.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::Context;
use super::audit;
use super::settle::{Left, settle};
use crate::bindings::hotdesk::{ChangeCause, EndReason};
use crate::error::DomainResult;
use crate::events::{ChangeEvent, ChangeKind};
use crate::store::{devices, extensions, hotdesk_sessions, location_sign_ins};

/// What ends: the sessions on these devices or of these Extensions, the sign-ins of these
/// Extensions or to these Locations.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ending<'a> {
    /// Sessions on these devices.
    pub devices: &'a [Uuid],
    /// Sessions of these Extensions.
    pub extensions: &'a [Uuid],
    /// Sign-ins of these Extensions.
    pub signed_in: &'a [Uuid],
    /// Sign-ins to these Locations.
    pub locations: &'a [Uuid],
}

/// Ends what `ending` names, inside `txn`, auditing each with `cause`; returns the events to
/// publish once `txn` has committed.
pub(crate) async fn end_for_change<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    sip_domain: &str,
    ending: Ending<'_>,
    cause: ChangeCause,
) -> DomainResult<Vec<ChangeEvent>> {
    let mut events = end_sessions(txn, ctx, domain_id, sip_domain, ending, cause).await?;
    events.extend(end_sign_ins(txn, ctx, domain_id, sip_domain, ending, cause).await?);
    Ok(events)
}

async fn end_sessions<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    sip_domain: &str,
    ending: Ending<'_>,
    cause: ChangeCause,
) -> DomainResult<Vec<ChangeEvent>> {
    if ending.devices.is_empty() && ending.extensions.is_empty() {
        return Ok(Vec::new());
    }
    let rows = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .filter(
            Condition::any()
                .add(hotdesk_sessions::Column::DeviceId.is_in(ending.devices.iter().copied()))
                .add(
                    hotdesk_sessions::Column::ExtensionId.is_in(ending.extensions.iter().copied()),
                ),
        )
        .all(txn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let reason = EndReason::Invalidated { cause };
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        hotdesk_sessions::Entity::update_many()
            .col_expr(hotdesk_sessions::Column::EndedAt, Expr::value(ctx.now))
            .col_expr(
                hotdesk_sessions::Column::EndedReason,
                Expr::value(reason.code()),
            )
            .col_expr(
                hotdesk_sessions::Column::EndedBy,
                Expr::value(ctx.actor.label.clone()),
            )
            .filter(hotdesk_sessions::Column::Id.eq(row.id))
            .filter(hotdesk_sessions::Column::EndedAt.is_null())
            .exec(txn)
            .await?;
        let number = extension_number(txn, domain_id, row.extension_id).await?;
        audit::record(
            txn,
            ctx,
            audit::Entry {
                domain_id: Some(domain_id),
                action: "hotdesk.session.end",
                target_kind: "device",
                target_id: Some(row.device_id.to_string()),
                before: Some(json!({
                    "device_id": row.device_id,
                    "extension_id": row.extension_id,
                    "extension_number": number,
                    "started_at": row.started_at,
                    "started_via": row.started_via,
                })),
                after: Some(json!({
                    "ended_reason": reason.code(),
                    "why": reason.describe(),
                    "reason": reason,
                    "ended_by": ctx.actor.label,
                })),
            },
        )
        .await?;
        events.push(
            ChangeEvent::new(
                domain_id,
                sip_domain,
                ChangeKind::SessionEnded,
                row.device_id,
                ctx.now,
            )
            .refresh(number),
        );
    }
    // A phone that stays a hot-desk phone returns to its home Extension or falls back to its
    // logout action; a device made fixed, disabled or deleted is handled by that change's own
    // event, and an Extension taken out of service is not sent back anywhere.
    let pairs: Vec<(Uuid, Uuid)> = rows.iter().map(|r| (r.device_id, r.extension_id)).collect();
    let devices_changed: Vec<Uuid> = if cause.concerns_the_device() {
        rows.iter().map(|r| r.device_id).collect()
    } else {
        Vec::new()
    };
    let settled = settle(
        txn,
        ctx,
        domain_id,
        Left {
            sessions: &pairs,
            keep_devices: &devices_changed,
            barred: ending.extensions,
        },
    )
    .await?;
    if !cause.concerns_the_device() {
        for (event, row) in events.iter_mut().zip(&rows) {
            let Some(device) = devices::Entity::find_by_id(row.device_id)
                .filter(devices::Column::DomainId.eq(domain_id))
                .one(txn)
                .await?
            else {
                continue;
            };
            let users = [device.sip_username];
            let event = &mut *event;
            *event = event.clone().refresh(settled.placeholders.clone());
            *event = if settled.home.contains(&row.device_id) {
                event.clone().refresh(users)
            } else if settled.full.contains(&row.device_id) {
                event.clone().drop_registrations(users)
            } else {
                event.clone().check_sync(users)
            };
        }
    }
    events.extend(settled.events);
    Ok(events)
}

async fn end_sign_ins<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    sip_domain: &str,
    ending: Ending<'_>,
    cause: ChangeCause,
) -> DomainResult<Vec<ChangeEvent>> {
    if ending.signed_in.is_empty() && ending.locations.is_empty() {
        return Ok(Vec::new());
    }
    let rows = location_sign_ins::Entity::find()
        .filter(location_sign_ins::Column::DomainId.eq(domain_id))
        .filter(
            Condition::any()
                .add(location_sign_ins::Column::ExtensionId.is_in(ending.signed_in.iter().copied()))
                .add(location_sign_ins::Column::LocationId.is_in(ending.locations.iter().copied())),
        )
        .all(txn)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        location_sign_ins::Entity::delete_many()
            .filter(location_sign_ins::Column::DomainId.eq(domain_id))
            .filter(location_sign_ins::Column::ExtensionId.eq(row.extension_id))
            .exec(txn)
            .await?;
        let number = extension_number(txn, domain_id, row.extension_id).await?;
        audit::record(
            txn,
            ctx,
            audit::Entry {
                domain_id: Some(domain_id),
                action: "location.sign_out",
                target_kind: "extension",
                target_id: Some(row.extension_id.to_string()),
                before: Some(json!({"location_id": row.location_id, "since": row.since})),
                after: Some(json!({
                    "signed_out_by": ctx.actor.label,
                    "reason": cause.code(),
                    "why": cause.describe(),
                })),
            },
        )
        .await?;
        events.push(
            ChangeEvent::new(
                domain_id,
                sip_domain,
                ChangeKind::LocationSignedOut,
                row.extension_id,
                ctx.now,
            )
            .refresh(number),
        );
    }
    Ok(events)
}

async fn extension_number<C: ConnectionTrait>(
    txn: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Option<String>> {
    Ok(extensions::Entity::find_by_id(extension_id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(txn)
        .await?
        .map(|e| e.number))
}
