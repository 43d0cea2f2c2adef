//! What a hot-desk phone becomes once a session on it ended: its home Extension, else the
//! logout action of whoever logged out (their group's, else the phone's, else the Domain's).
//!
//! Every path that ends sessions (a logout, an admin's bulk end, auto-logout, one phone at a
//! time, a change that makes a session impossible) calls [`settle`] inside its own write
//! transaction, after the rows are ended (and after a login's new session is in): it records
//! who logged out last on each phone, starts the home sessions that are due (audited, origin
//! `home`), and tells the caller which phones are left logged out in `full` mode (their
//! registrations are dropped) so the events say so. The decisions are the pure rules
//! [`home_return`] and [`logout_action`], on a snapshot read inside the transaction.
//!
//! A home session is due on the phone a visitor left, and on the idle home desks of the
//! people whose sessions ended elsewhere (someone who logs out of a meeting-room phone is back
//! at their desk). One phone at a time is respected: a person logged in elsewhere does not
//! return home.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::hotdesk::{start_session, started_event};
use super::{Context, snapshot};
use crate::bindings::Bindings;
use crate::bindings::hotdesk::home_return;
use crate::bindings::identity::logout_action;
use crate::bindings::snapshot::{HotdeskSession, SessionOrigin};
use crate::error::{DomainError, DomainResult};
use crate::events::ChangeEvent;
use crate::store::devices;
use crate::telephony::policy::LoggedOutMode;

/// What ended, and what must not come back.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Left<'a> {
    /// `(device, extension)` of each session that ended.
    pub sessions: &'a [(Uuid, Uuid)],
    /// Devices that get no home session (the change is to the device itself).
    pub keep_devices: &'a [Uuid],
    /// Extensions that are not logged in anywhere (the change takes them out of service).
    pub barred: &'a [Uuid],
}

/// What [`settle`] did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Settled {
    /// Phones left logged out in `full` mode: their registrations are dropped.
    pub full: BTreeSet<Uuid>,
    /// Phones that returned to their home Extension.
    pub home: BTreeSet<Uuid>,
    /// The events of the home sessions, for after commit.
    pub events: Vec<ChangeEvent>,
    /// The numbers of placeholders that ring their logged-out phones (their dial strings
    /// change with every login and logout).
    pub placeholders: Vec<String>,
}

/// Settles the phones whose sessions ended inside `txn` (see the module).
pub(crate) async fn settle<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    left: Left<'_>,
) -> DomainResult<Settled> {
    let mut out = Settled::default();
    if left.sessions.is_empty() {
        return Ok(out);
    }
    let mut last: BTreeMap<Uuid, Uuid> = BTreeMap::new();
    for (device_id, extension_id) in left.sessions {
        last.insert(*device_id, *extension_id);
    }
    for (device_id, extension_id) in &last {
        devices::Entity::update_many()
            .col_expr(devices::Column::LastExtensionId, Expr::value(*extension_id))
            .filter(devices::Column::DomainId.eq(domain_id))
            .filter(devices::Column::Id.eq(*device_id))
            .exec(txn)
            .await?;
    }
    let mut b = snapshot::load_rows(txn, domain_id)
        .await?
        .map(Bindings::from_rows)
        .ok_or(DomainError::NotFound("domain"))?;
    out.placeholders = super::hotdesk::ringing_placeholders(&b);

    // The phones visitors left, then the idle home desks of whoever left a phone.
    let leavers: BTreeSet<Uuid> = last.values().copied().collect();
    let mut candidates: Vec<Uuid> = last.keys().copied().collect();
    candidates.extend(
        b.devices
            .values()
            .filter(|d| d.home_extension_id.is_some_and(|h| leavers.contains(&h)))
            .map(|d| d.id)
            .filter(|id| !last.contains_key(id)),
    );
    for device_id in candidates {
        if left.keep_devices.contains(&device_id) {
            continue;
        }
        let Some(home) = home_return(&b, device_id, left.barred) else {
            continue;
        };
        if last.get(&device_id) == Some(&home) {
            // The person logged out of their own desk: the logout action applies.
            continue;
        }
        let session = HotdeskSession {
            device_id,
            extension_id: home,
            started_at: ctx.now,
            via: SessionOrigin::Home,
        };
        start_home_session(txn, ctx, &b, &session, last.get(&device_id).copied()).await?;
        out.events.push(started_event(&b, &session, ctx.now));
        b.put_session(session);
        out.home.insert(device_id);
    }
    for (device_id, extension_id) in &last {
        if out.home.contains(device_id) {
            continue;
        }
        if let Some(d) = b.devices.get(device_id)
            && logout_action(&b, d, Some(*extension_id)).mode == LoggedOutMode::Full
        {
            out.full.insert(*device_id);
        }
    }
    Ok(out)
}

/// Logs a phone's home Extension in at once when nobody is logged in to it (its home was
/// just set); the event to publish after commit, if it did.
pub(crate) async fn home_now<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<Option<ChangeEvent>> {
    let b = snapshot::load_rows(txn, domain_id)
        .await?
        .map(Bindings::from_rows)
        .ok_or(DomainError::NotFound("domain"))?;
    let Some(home) = home_return(&b, device_id, &[]) else {
        return Ok(None);
    };
    let session = HotdeskSession {
        device_id,
        extension_id: home,
        started_at: ctx.now,
        via: SessionOrigin::Home,
    };
    start_home_session(txn, ctx, &b, &session, None).await?;
    Ok(Some(started_event(&b, &session, ctx.now)))
}

async fn start_home_session<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    b: &Bindings,
    session: &HotdeskSession,
    visitor: Option<Uuid>,
) -> DomainResult<()> {
    let number = |id: Uuid| b.extensions.get(&id).map(|e| e.number.clone());
    let why = match visitor
        .filter(|v| *v != session.extension_id)
        .and_then(number)
    {
        Some(v) => format!("returned to its home Extension after {v} logged out"),
        None => "returned to its home Extension".to_owned(),
    };
    start_session(txn, ctx, b, session, &why).await?;
    Ok(())
}
