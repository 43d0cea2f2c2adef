//! Hot-desk sessions: logging Extensions in to and out of hot-desk phones.
//!
//! load the snapshot → check the PIN and its lockout → decide (pure, [`bindings::hotdesk`]) →
//! end the sessions the decision ends and insert the new one in one transaction, with an audit
//! entry for each start and end → publish after commit.
//!
//! Rules chosen where the issue is silent:
//! - A caller with `hotdesk.others` logs in without a PIN (an admin login, origin `admin`); any
//!   PIN it sends is ignored. Everyone else needs `hotdesk.self` and the PIN; the PIN is the
//!   proof, so a `hotdesk.self` holder may log in any Extension whose PIN they know.
//! - A wrong PIN is a 422 on `pin` (`wrong_pin`), a missing one 422 (`required`); both count
//!   as failures. While the Extension, the device or the client address is locked out, every
//!   attempt answers 423 with the wait, even with the right PIN, and is audited.
//! - Races the snapshot could not see are caught by the database (one active session per
//!   device, and per Extension under one-phone-at-a-time) and by ending only rows that are
//!   still active; the use case then decides again from a fresh snapshot (up to three times),
//!   so the caller gets the answer the current state deserves: 200, 409 or 423, never a 500.
//! - When a phone is left without a session and its logged-out mode is `full`, the event asks
//!   for its registrations to be dropped (it must come back restricted); otherwise its
//!   directory entry is only refreshed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::settle::{Left, Settled, settle};
use super::{Context, audit, snapshot, throttle};
use crate::bindings::Bindings;
use crate::bindings::hotdesk::{
    LoginDecision, LoginRequest, LogoutBy, SessionEnd, decide_login, decide_logout,
};
use crate::bindings::lockout::{
    SCOPE_PIN_ADDRESS, SCOPE_PIN_DEVICE, SCOPE_PIN_EXTENSION, pin_limits,
};
use crate::bindings::snapshot::{HotdeskSession, SessionOrigin};
use crate::error::{DomainError, DomainResult};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::{Actor, authorize, can, visible_domains};
use crate::identity::password::verify_secret;
use crate::identity::permissions::Permission;
use crate::store::{devices, extensions, hotdesk_sessions};

/// How often a use case decides again after losing a race to a concurrent change.
const ATTEMPTS: usize = 3;

/// What the hot-desk use cases need.
#[derive(Debug, Clone, Copy)]
pub struct Deps<'a> {
    /// The database.
    pub db: &'a DatabaseConnection,
    /// Where committed changes go.
    pub bus: &'a EventBus,
}

/// An active session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    /// The session's id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// The hot-desk device.
    pub device_id: Uuid,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// Its number.
    pub extension_number: String,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code`, `api` or `admin`.
    pub started_via: String,
    /// Who started it.
    pub started_by: String,
}

/// A login: which Extension, with which PIN, from where.
#[derive(Debug, Clone)]
pub struct LoginInput {
    /// The Extension's number.
    pub extension: String,
    /// Its PIN (may be omitted by callers holding `hotdesk.others`).
    pub pin: Option<SecretString>,
    /// The client's address, for the per-address lockout.
    pub client_address: Option<String>,
    /// The layout and template chosen for the phone (checked against what the person may
    /// choose; none: their default).
    pub choice: crate::provisioning::keys::LoginChoice,
}

/// How the caller stands towards hot-desking in a Domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// `hotdesk.others`.
    Others,
    /// `hotdesk.self` only.
    SelfOnly,
    /// Someone at the phone itself (a feature code): the PIN is the proof.
    Phone,
}

fn standing(actor: &Actor, domain_id: Uuid) -> DomainResult<Standing> {
    if can(actor, Permission::HotdeskOthers, Some(domain_id)) {
        return Ok(Standing::Others);
    }
    authorize(actor, Permission::HotdeskSelf, domain_id)?;
    Ok(Standing::SelfOnly)
}

/// The Extension linked to the acting User in the Domain, if any.
pub async fn own_extension<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    domain_id: Uuid,
) -> DomainResult<Option<extensions::Model>> {
    let Some(user_id) = actor.user_id() else {
        return Ok(None);
    };
    Ok(extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

fn no_extension() -> DomainError {
    DomainError::conflict("no_extension", "your User has no Extension in this Domain")
}

/// The Domain of a device the actor can see (for `/me` routes, which name only the device).
pub async fn device_domain<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    device_id: Uuid,
) -> DomainResult<Uuid> {
    let mut query = devices::Entity::find().filter(devices::Column::Id.eq(device_id));
    if let Some(visible) = visible_domains(actor) {
        query = query.filter(devices::Column::DomainId.is_in(visible));
    }
    query
        .one(db)
        .await?
        .map(|d| d.domain_id)
        .ok_or(DomainError::NotFound("device"))
}

async fn view(
    db: &impl ConnectionTrait,
    b: &Bindings,
    row: hotdesk_sessions::Model,
) -> DomainResult<SessionView> {
    let number = match b.extensions.get(&row.extension_id) {
        Some(e) => e.number.clone(),
        None => extensions::Entity::find_by_id(row.extension_id)
            .filter(extensions::Column::DomainId.eq(row.domain_id))
            .one(db)
            .await?
            .map(|e| e.number)
            .unwrap_or_default(),
    };
    Ok(SessionView {
        id: row.id,
        domain_id: row.domain_id,
        device_id: row.device_id,
        extension_id: row.extension_id,
        extension_number: number,
        started_at: row.started_at,
        started_via: row.started_via,
        started_by: row.started_by,
    })
}

async fn active_row<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<Option<hotdesk_sessions::Model>> {
    Ok(hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::DomainId.eq(domain_id))
        .filter(hotdesk_sessions::Column::DeviceId.eq(device_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .one(db)
        .await?)
}

/// The device's active session (`devices.read`, `hotdesk.self` or `hotdesk.others`); none is
/// a 404 `no_session`.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<SessionView> {
    if !can(&ctx.actor, Permission::DevicesRead, Some(domain_id)) {
        standing(&ctx.actor, domain_id)?;
    }
    let b = snapshot::load(db, domain_id).await?;
    if !b.devices.contains_key(&device_id) {
        return Err(DomainError::NotFound("device"));
    }
    match active_row(db, domain_id, device_id).await? {
        Some(row) => view(db, &b, row).await,
        None => Err(DomainError::NotFound("no_session")),
    }
}

/// Logs an Extension in to a hot-desk device (see the module for who may, and with what).
pub async fn login(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    input: LoginInput,
) -> DomainResult<SessionView> {
    let standing = standing(&ctx.actor, domain_id)?;
    login_as(deps, ctx, domain_id, device_id, input, standing).await
}

/// Self-service login of the caller's own Extension (`hotdesk.self`, PIN required).
pub async fn login_self(
    deps: Deps<'_>,
    ctx: &Context,
    device_id: Uuid,
    pin: Option<SecretString>,
    client_address: Option<String>,
    choice: crate::provisioning::keys::LoginChoice,
) -> DomainResult<SessionView> {
    let domain_id = device_domain(deps.db, &ctx.actor, device_id).await?;
    authorize(&ctx.actor, Permission::HotdeskSelf, domain_id)?;
    let own = own_extension(deps.db, &ctx.actor, domain_id)
        .await?
        .ok_or_else(no_extension)?;
    let input = LoginInput {
        extension: own.number,
        pin,
        client_address,
        choice,
    };
    login_as(deps, ctx, domain_id, device_id, input, Standing::SelfOnly).await
}

async fn login_as(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    input: LoginInput,
    standing: Standing,
) -> DomainResult<SessionView> {
    let b = snapshot::load(deps.db, domain_id).await?;
    if !b.devices.contains_key(&device_id) {
        return Err(DomainError::NotFound("device"));
    }
    let extension_id = b
        .extension_by_number(input.extension.trim())
        .map(|e| e.id)
        .ok_or_else(|| {
            DomainError::invalid("extension", "not_found", "no such Extension in this Domain")
        })?;
    let via = match standing {
        Standing::Others => SessionOrigin::Admin,
        Standing::SelfOnly => {
            check_pin(deps, ctx, &b, device_id, extension_id, &input, "hotdesk").await?;
            SessionOrigin::Api
        }
        Standing::Phone => {
            check_pin(deps, ctx, &b, device_id, extension_id, &input, "hotdesk").await?;
            SessionOrigin::FeatureCode
        }
    };
    if input.choice != crate::provisioning::keys::LoginChoice::default() {
        let device = crate::store::devices::Entity::find_by_id(device_id)
            .filter(crate::store::devices::Column::DomainId.eq(domain_id))
            .one(deps.db)
            .await?
            .ok_or(DomainError::NotFound("device"))?;
        super::provisioning::check_login_choice(deps.db, &b, &device, extension_id, input.choice)
            .await?;
    }
    let mut last = None;
    for _ in 0..ATTEMPTS {
        // Logins to this device, and of this Extension, take turns, each deciding on the state
        // the one before it left: the loser of a race is answered as if it came a moment later.
        let txn = crate::db::begin_write(deps.db).await?;
        let keys = [
            format!("hotdesk.device\u{1f}{device_id}"),
            format!("hotdesk.extension\u{1f}{extension_id}"),
        ];
        crate::db::lock_keys(&txn, &keys).await?;
        let b = snapshot::load_rows(&txn, domain_id)
            .await?
            .map(Bindings::from_rows)
            .ok_or(DomainError::NotFound("domain"))?;
        let decision = decide_login(
            &b,
            &LoginRequest {
                device_id,
                extension_id,
                acts_for_others: standing == Standing::Others,
                via,
                now: ctx.now,
            },
        )?;
        match apply_login(deps, ctx, txn, &b, decision, input.choice).await {
            Ok(view) => return Ok(view),
            Err(e) if is_race(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(race_answer(last))
}

/// The Extension numbered `extension` of the Domain, after its PIN was checked from the phone
/// `device_id` with the same lockout as hot-desk logins (failures count per Extension, per
/// phone; a success clears the Extension's), audited as `<purpose>.pin_failed` /
/// `<purpose>.pin_locked`. For voicemail retrieval (`*97`, `*98`).
pub async fn check_pin_from_phone(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    extension: &str,
    pin: SecretString,
    purpose: &str,
) -> DomainResult<extensions::Model> {
    let b = snapshot::load(deps.db, domain_id).await?;
    if !b.devices.contains_key(&device_id) {
        return Err(DomainError::NotFound("device"));
    }
    let extension_id = b
        .extension_by_number(extension.trim())
        .map(|e| e.id)
        .ok_or_else(|| {
            DomainError::invalid("extension", "not_found", "no such Extension in this Domain")
        })?;
    let input = LoginInput {
        extension: extension.to_owned(),
        pin: Some(pin),
        client_address: None,
        choice: Default::default(),
    };
    check_pin(deps, ctx, &b, device_id, extension_id, &input, purpose).await?;
    extensions::Entity::find_by_id(extension_id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(deps.db)
        .await?
        .ok_or(DomainError::NotFound("extension"))
}

/// Checks the lockout, then the PIN; records failures, clears the Extension's on success.
async fn check_pin(
    deps: Deps<'_>,
    ctx: &Context,
    b: &Bindings,
    device_id: Uuid,
    extension_id: Uuid,
    input: &LoginInput,
    purpose: &str,
) -> DomainResult<()> {
    let settings = super::calling_settings::load(deps.db, b.domain.id).await?;
    let limits = pin_limits(&settings);
    let ext_key = extension_id.to_string();
    let dev_key = device_id.to_string();
    let address = input.client_address.clone().unwrap_or_default();
    let now = ctx.now;
    let mut subjects = vec![
        throttle::Subject {
            scope: SCOPE_PIN_EXTENSION,
            subject: &ext_key,
            limit: limits.extension,
        },
        throttle::Subject {
            scope: SCOPE_PIN_DEVICE,
            subject: &dev_key,
            limit: limits.device,
        },
    ];
    if !address.is_empty() {
        subjects.push(throttle::Subject {
            scope: SCOPE_PIN_ADDRESS,
            subject: &address,
            limit: limits.address,
        });
    }
    // The attempt counts as a failure before the PIN is checked, so a burst of guesses cannot
    // all see "under the limit": at most the limit is ever evaluated (throttle::reserve).
    let reservation = match throttle::reserve(deps.db, &subjects, now).await? {
        Ok(reservation) => reservation,
        Err(wait) => {
            audit_pin(
                deps.db,
                ctx,
                b,
                device_id,
                extension_id,
                &format!("{purpose}.pin_locked"),
                wait,
            )
            .await?;
            return Err(DomainError::Locked {
                retry_after_secs: wait,
            });
        }
    };
    let row = extensions::Entity::find_by_id(extension_id)
        .filter(extensions::Column::DomainId.eq(b.domain.id))
        .one(deps.db)
        .await?
        .ok_or(DomainError::NotFound("extension"))?;
    let ok = match &input.pin {
        Some(pin) => verify_secret(pin.clone(), row.pin_hash).await?,
        None => false,
    };
    if ok {
        let txn = crate::db::begin_write(deps.db).await?;
        reservation.release(&txn).await?;
        throttle::clear(&txn, SCOPE_PIN_EXTENSION, &ext_key).await?;
        txn.commit().await?;
        return Ok(());
    }
    // The reservation stays: it is this failure.
    audit_pin(
        deps.db,
        ctx,
        b,
        device_id,
        extension_id,
        &format!("{purpose}.pin_failed"),
        0,
    )
    .await?;
    Err(match input.pin {
        Some(_) => DomainError::invalid("pin", "wrong_pin", "the PIN is not right"),
        None => DomainError::invalid("pin", "required", "the Extension's PIN is required"),
    })
}

async fn audit_pin<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    b: &Bindings,
    device_id: Uuid,
    extension_id: Uuid,
    action: &str,
    retry_after_secs: u64,
) -> DomainResult<()> {
    let number = b.extensions.get(&extension_id).map(|e| e.number.clone());
    audit::record(
        db,
        ctx,
        audit::Entry {
            domain_id: Some(b.domain.id),
            action,
            target_kind: "device",
            target_id: Some(device_id.to_string()),
            before: None,
            after: Some(json!({
                "extension_id": extension_id,
                "extension_number": number,
                "retry_after_secs": retry_after_secs,
            })),
        },
    )
    .await
}

/// True for the errors a concurrent change causes: deciding again may answer differently.
fn is_race(err: &DomainError) -> bool {
    match err {
        DomainError::Conflict {
            code: "already_exists" | "session_changed",
            ..
        } => true,
        DomainError::Database(e) => is_transient(e),
        _ => false,
    }
}

pub(crate) use crate::db::is_transient;

/// The 409 a lost race ends in when deciding again did not settle it.
fn race_answer(last: Option<DomainError>) -> DomainError {
    match last {
        Some(DomainError::Conflict {
            field: Some(field), ..
        }) if field == "extension_id" => DomainError::conflict(
            "extension_in_use",
            "this Extension is logged in to another phone (one phone at a time)",
        ),
        _ => DomainError::conflict(
            "device_in_use",
            "the device changed hands while logging in; try again",
        ),
    }
}

/// Ends one still-active session row inside `txn`; `session_changed` when it is gone already.
async fn end_row<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    b: &Bindings,
    end: &SessionEnd,
) -> DomainResult<()> {
    if end_row_if_active(txn, ctx, b, end).await? {
        Ok(())
    } else {
        Err(DomainError::conflict(
            "session_changed",
            "the session ended meanwhile",
        ))
    }
}

/// Ends one session row inside `txn` and audits it, if it is still active; false when it
/// ended meanwhile (nothing written).
pub(crate) async fn end_row_if_active<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    b: &Bindings,
    end: &SessionEnd,
) -> DomainResult<bool> {
    let s = &end.session;
    let result = hotdesk_sessions::Entity::update_many()
        .col_expr(hotdesk_sessions::Column::EndedAt, Expr::value(ctx.now))
        .col_expr(
            hotdesk_sessions::Column::EndedReason,
            Expr::value(end.reason.code()),
        )
        .col_expr(
            hotdesk_sessions::Column::EndedBy,
            Expr::value(ctx.actor.label.clone()),
        )
        .filter(hotdesk_sessions::Column::DomainId.eq(b.domain.id))
        .filter(hotdesk_sessions::Column::DeviceId.eq(s.device_id))
        .filter(hotdesk_sessions::Column::ExtensionId.eq(s.extension_id))
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        return Ok(false);
    }
    audit::record(
        txn,
        ctx,
        audit::Entry {
            domain_id: Some(b.domain.id),
            action: "hotdesk.session.end",
            target_kind: "device",
            target_id: Some(s.device_id.to_string()),
            before: Some(session_json(b, s)),
            after: Some(json!({
                "ended_reason": end.reason.code(),
                "why": end.reason.describe(),
                "reason": end.reason,
                "ended_by": ctx.actor.label,
            })),
        },
    )
    .await?;
    Ok(true)
}

fn session_json(b: &Bindings, s: &HotdeskSession) -> serde_json::Value {
    json!({
        "device_id": s.device_id,
        "extension_id": s.extension_id,
        "extension_number": b.extensions.get(&s.extension_id).map(|e| e.number.clone()),
        "started_at": s.started_at,
        "started_via": s.via.as_str(),
    })
}

fn sip_user(b: &Bindings, device_id: Uuid) -> Vec<String> {
    b.devices
        .get(&device_id)
        .map(|d| d.sip_username.clone())
        .into_iter()
        .collect()
}

fn number(b: &Bindings, extension_id: Uuid) -> Vec<String> {
    b.extensions
        .get(&extension_id)
        .map(|e| e.number.clone())
        .into_iter()
        .collect()
}

/// The events of ended sessions; `restarted` are devices that get a new session at once,
/// `settled` says what the others became (followed by the events of its home sessions).
pub(crate) fn end_events(
    b: &Bindings,
    ends: &[SessionEnd],
    restarted: &BTreeSet<Uuid>,
    settled: &Settled,
    now: DateTime<Utc>,
) -> Vec<ChangeEvent> {
    let mut events: Vec<ChangeEvent> = ends
        .iter()
        .map(|end| {
            let s = &end.session;
            let event = ChangeEvent::new(
                b.domain.id,
                &b.domain.sip_domain,
                ChangeKind::SessionEnded,
                s.device_id,
                now,
            )
            .refresh(number(b, s.extension_id))
            .refresh(ringing_placeholders(b));
            if restarted.contains(&s.device_id) || settled.home.contains(&s.device_id) {
                // A new session on the same phone: its own event asks it to re-sync.
                event.refresh(sip_user(b, s.device_id))
            } else if settled.full.contains(&s.device_id) {
                event.drop_registrations(sip_user(b, s.device_id))
            } else {
                // Logged out to its placeholder: same registration, another identity.
                event.check_sync(sip_user(b, s.device_id))
            }
        })
        .collect();
    events.extend(settled.events.iter().cloned());
    events
}

/// Inserts a new active session row inside `txn` and audits its start with `why`.
pub(crate) async fn start_session<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    b: &Bindings,
    session: &HotdeskSession,
    why: &str,
) -> DomainResult<hotdesk_sessions::Model> {
    let row = hotdesk_sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        domain_id: Set(b.domain.id),
        device_id: Set(session.device_id),
        extension_id: Set(session.extension_id),
        started_at: Set(session.started_at),
        started_via: Set(session.via.as_str().to_owned()),
        started_by: Set(ctx.actor.label.clone()),
        exclusive_session: Set(b.settings.one_phone_at_a_time),
        layout_id: Set(None),
        template_id: Set(None),
        ended_at: Set(None),
        ended_reason: Set(None),
        ended_by: Set(None),
    }
    .insert(txn)
    .await?;
    audit::record(
        txn,
        ctx,
        audit::Entry {
            domain_id: Some(b.domain.id),
            action: "hotdesk.session.start",
            target_kind: "device",
            target_id: Some(session.device_id.to_string()),
            before: None,
            after: Some(json!({
                "session_id": row.id,
                "device_id": session.device_id,
                "extension_id": session.extension_id,
                "extension_number": b.extensions.get(&session.extension_id).map(|e| e.number.clone()),
                "started_via": session.via.as_str(),
                "why": why,
                "started_by": ctx.actor.label,
            })),
        },
    )
    .await?;
    Ok(row)
}

/// The event of a started session: the phone re-syncs, its Extension's dial string and those
/// of ringing placeholders change.
pub(crate) fn started_event(
    b: &Bindings,
    session: &HotdeskSession,
    now: DateTime<Utc>,
) -> ChangeEvent {
    ChangeEvent::new(
        b.domain.id,
        &b.domain.sip_domain,
        ChangeKind::SessionStarted,
        session.device_id,
        now,
    )
    .check_sync(sip_user(b, session.device_id))
    .refresh(number(b, session.extension_id))
    .refresh(ringing_placeholders(b))
}

/// The numbers of the Domain's placeholders that ring their logged-out phones: their dial
/// strings change whenever a phone logs in or out.
pub(crate) fn ringing_placeholders(b: &Bindings) -> Vec<String> {
    b.extensions
        .values()
        .filter(|e| e.placeholder_rings)
        .map(|e| e.number.clone())
        .collect()
}

/// The `(device, extension)` pairs of ended sessions, for [`settle`].
pub(crate) fn left_pairs(ends: &[SessionEnd]) -> Vec<(Uuid, Uuid)> {
    ends.iter()
        .map(|e| (e.session.device_id, e.session.extension_id))
        .collect()
}

async fn apply_login(
    deps: Deps<'_>,
    ctx: &Context,
    txn: DatabaseTransaction,
    b: &Bindings,
    decision: LoginDecision,
    choice: crate::provisioning::keys::LoginChoice,
) -> DomainResult<SessionView> {
    let (session, ends) = match decision {
        LoginDecision::AlreadyLoggedIn { session } => {
            let row = active_row(&txn, b.domain.id, session.device_id).await?;
            txn.rollback().await?;
            return match row {
                Some(row) if row.extension_id == session.extension_id => {
                    view(deps.db, b, row).await
                }
                _ => Err(DomainError::conflict(
                    "session_changed",
                    "the session ended meanwhile",
                )),
            };
        }
        LoginDecision::Start { session, end } => (session, end),
    };
    for end in &ends {
        end_row(&txn, ctx, b, end).await?;
    }
    let why = format!("login via {}", session.via.label());
    let mut row = start_session(&txn, ctx, b, &session, &why).await?;
    if choice != crate::provisioning::keys::LoginChoice::default() {
        let mut active = row.clone().into_active_model();
        active.layout_id = Set(choice.layout_id);
        active.template_id = Set(choice.template_id);
        row = active.update(&txn).await?;
    }
    let pairs = left_pairs(&ends);
    let settled = settle(
        &txn,
        ctx,
        b.domain.id,
        Left {
            sessions: &pairs,
            keep_devices: &[session.device_id],
            barred: &[],
        },
    )
    .await?;
    txn.commit().await?;
    let restarted: BTreeSet<Uuid> = [session.device_id].into();
    let mut events = end_events(b, &ends, &restarted, &settled, ctx.now);
    events.push(started_event(b, &session, ctx.now));
    deps.bus.publish(events);
    view(deps.db, b, row).await
}

/// Logs a device out through the Domain route: `hotdesk.others` ends any session (with an
/// optional note), `hotdesk.self` only the session of the caller's own Extension.
/// Nobody logged in is fine (idempotent).
pub async fn logout(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    note: Option<String>,
) -> DomainResult<()> {
    let by = match standing(&ctx.actor, domain_id)? {
        Standing::Others => LogoutBy::Admin {
            note: note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
        },
        Standing::SelfOnly | Standing::Phone => holder(deps.db, &ctx.actor, domain_id).await?,
    };
    logout_as(deps, ctx, domain_id, device_id, by).await?;
    Ok(())
}

/// `*11` on a hot-desk phone: logs `extension` in to the phone with its PIN (origin
/// `feature_code`). The phone is identified by FreeSWITCH from its SIP credentials, never by
/// digits the caller typed; the same PIN check, lockout, rules and audit as the API apply.
pub async fn login_from_phone(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    extension: &str,
    pin: SecretString,
) -> DomainResult<SessionView> {
    let input = LoginInput {
        extension: extension.to_owned(),
        pin: Some(pin),
        client_address: None,
        choice: Default::default(),
    };
    login_as(deps, ctx, domain_id, device_id, input, Standing::Phone).await
}

/// `*12` on a hot-desk phone: logs out whoever is logged in there. Returns the Extension
/// number that was logged out, if anybody was.
pub async fn logout_from_phone(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<Option<String>> {
    logout_as(deps, ctx, domain_id, device_id, LogoutBy::Phone).await
}

/// The Extension number logged in to a phone right now, if any (for `*13`, toggle).
pub async fn logged_in_at(
    db: &DatabaseConnection,
    domain_id: Uuid,
    device_id: Uuid,
) -> DomainResult<Option<String>> {
    let Some(row) = active_row(db, domain_id, device_id).await? else {
        return Ok(None);
    };
    Ok(extensions::Entity::find_by_id(row.extension_id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .map(|e| e.number))
}

/// Self-service logout of the caller's own Extension from a device (`hotdesk.self`).
pub async fn logout_self(deps: Deps<'_>, ctx: &Context, device_id: Uuid) -> DomainResult<()> {
    let domain_id = device_domain(deps.db, &ctx.actor, device_id).await?;
    authorize(&ctx.actor, Permission::HotdeskSelf, domain_id)?;
    let by = holder(deps.db, &ctx.actor, domain_id).await?;
    logout_as(deps, ctx, domain_id, device_id, by).await?;
    Ok(())
}

async fn holder(db: &DatabaseConnection, actor: &Actor, domain_id: Uuid) -> DomainResult<LogoutBy> {
    let own = own_extension(db, actor, domain_id)
        .await?
        .ok_or_else(no_extension)?;
    Ok(LogoutBy::Holder {
        extension_id: own.id,
    })
}

async fn logout_as(
    deps: Deps<'_>,
    ctx: &Context,
    domain_id: Uuid,
    device_id: Uuid,
    by: LogoutBy,
) -> DomainResult<Option<String>> {
    let mut target: Option<HotdeskSession> = None;
    for _ in 0..ATTEMPTS {
        let b = snapshot::load(deps.db, domain_id).await?;
        let end = match decide_logout(&b, device_id, &by) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(None),
            // The caller's own session ended meanwhile and someone else (the desk's home
            // Extension) is there now: the caller is logged out, as asked.
            Err(_) if target.is_some() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // Only the session this logout was for: if it ended meanwhile and the phone went back
        // to its home Extension, that session is not this caller's to end.
        if target.as_ref().is_some_and(|t| *t != end.session) {
            return Ok(None);
        }
        target = Some(end.session.clone());
        let number = b
            .extensions
            .get(&end.session.extension_id)
            .map(|e| e.number.clone());
        match end_sessions(deps, ctx, &b, &[end]).await {
            Ok(_) => return Ok(number),
            Err(e) if is_race(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    // Whatever ended it meanwhile, the device is no longer in this caller's session.
    Ok(None)
}

/// Ends sessions in one transaction, audits each, publishes after commit; returns how many.
pub(crate) async fn end_sessions(
    deps: Deps<'_>,
    ctx: &Context,
    b: &Bindings,
    ends: &[SessionEnd],
) -> DomainResult<usize> {
    if ends.is_empty() {
        return Ok(0);
    }
    let txn = crate::db::begin_write(deps.db).await?;
    for end in ends {
        end_row(&txn, ctx, b, end).await?;
    }
    let pairs = left_pairs(ends);
    let settled = settle(
        &txn,
        ctx,
        b.domain.id,
        Left {
            sessions: &pairs,
            ..Left::default()
        },
    )
    .await?;
    txn.commit().await?;
    deps.bus
        .publish(end_events(b, ends, &BTreeSet::new(), &settled, ctx.now));
    Ok(ends.len())
}
