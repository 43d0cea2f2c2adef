//! The hot-desk state machine: who may log in to which phone, what that ends, and when sessions
//! end by themselves.
//!
//! The functions decide; the services persist (one transaction, the database constraints of
//! one session per device and, with one-phone-at-a-time, one per Extension, as the backstop
//! against races) and audit every start and end with its [`EndReason`].
//!
//! Choices where the issue is silent:
//! - An Extension that may not hot-desk (disabled, a placeholder, `hotdesk_allowed` off) is a
//!   422 on the `extension` field: the request names something that can never be logged in,
//!   and a form can show it next to the field. An unknown Extension likewise (422, `not_found`),
//!   since it is a reference in the body; an unknown device is a 404 (it is in the path).
//! - A disabled device is a 409 (`device_disabled`), like a fixed one (`device_not_hotdesk`).
//! - Logging in again to the phone one is already logged in to changes nothing
//!   ([`LoginDecision::AlreadyLoggedIn`]): PUT is idempotent and the session keeps its start.
//! - Logging out a phone nobody is logged in to is `Ok(None)` (DELETE is idempotent). The
//!   person at the phone (`*12`) may log out whoever is logged in there; through the API a
//!   person may only log out their own session (409 otherwise), an admin any.
//! - `daily_at` in a DST gap (02:30 on the spring-forward night) ends sessions at the first
//!   minute that exists (03:00 local); in the repeated hour of the autumn night the first
//!   02:30 counts, and a session started after it lasts until the next day.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use super::snapshot::{AutoLogoutPolicy, Bindings, HotdeskSession, LocationSignIn, SessionOrigin};
use crate::error::DomainError;
use crate::telephony::policy::DeviceMode;
use crate::telephony::values::TimeOfDay;

/// A login attempt, after the PIN (or the right to omit it) has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// The hot-desk Device.
    pub device_id: Uuid,
    /// The Extension to log in.
    pub extension_id: Uuid,
    /// The actor holds `hotdesk.others` (admin login: may replace someone else's session).
    pub acts_for_others: bool,
    /// How the login comes in.
    pub via: SessionOrigin,
    /// The time of the login.
    pub now: DateTime<Utc>,
}

/// Why a session ends (for the audit log and the events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EndReason {
    /// The person logged out.
    LoggedOut {
        /// How: `*12` on the phone, or the API.
        via: SessionOrigin,
    },
    /// An admin logged the session out.
    ForcedByAdmin {
        /// The admin's note, if any.
        note: Option<String>,
    },
    /// An admin logged someone else in to the device.
    ReplacedByAdmin {
        /// The Extension logged in instead.
        by_extension_id: Uuid,
    },
    /// Someone logged in to the desk of the Extension logged in there (its home desk, which
    /// visitors may always take).
    VisitorLoggedIn {
        /// The Extension logged in instead.
        by_extension_id: Uuid,
    },
    /// One phone at a time: the Extension logged in on another device.
    LoggedInElsewhere {
        /// The other device.
        device_id: Uuid,
    },
    /// The auto-logout policy ended it.
    AutoLogout {
        /// The policy in force.
        policy: AutoLogoutPolicy,
    },
    /// A change to its device or Extension made it impossible.
    Invalidated {
        /// Which change.
        cause: ChangeCause,
    },
}

/// A change that ends hot-desk sessions or Location sign-ins: they cannot go on, and must not
/// come back when the change is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// The device was made fixed.
    DeviceFixed,
    /// The device was disabled.
    DeviceDisabled,
    /// The device was deleted.
    DeviceDeleted,
    /// The Extension was disabled.
    ExtensionDisabled,
    /// The Extension may no longer hot-desk.
    HotdeskNotAllowed,
    /// The Extension was made a placeholder.
    ExtensionMadePlaceholder,
    /// The Extension was deleted.
    ExtensionDeleted,
    /// The Location was deleted.
    LocationDeleted,
    /// One phone at a time was turned on: the Extension stays on its newest phone only.
    OnePhoneAtATime,
}

impl ChangeCause {
    /// A stable code: `device_fixed`, `device_disabled`, `device_deleted`,
    /// `extension_disabled`, `hotdesk_not_allowed`, `extension_made_placeholder`,
    /// `extension_deleted`, `location_deleted`, `one_phone_at_a_time`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::DeviceFixed => "device_fixed",
            Self::DeviceDisabled => "device_disabled",
            Self::DeviceDeleted => "device_deleted",
            Self::ExtensionDisabled => "extension_disabled",
            Self::HotdeskNotAllowed => "hotdesk_not_allowed",
            Self::ExtensionMadePlaceholder => "extension_made_placeholder",
            Self::ExtensionDeleted => "extension_deleted",
            Self::LocationDeleted => "location_deleted",
            Self::OnePhoneAtATime => "one_phone_at_a_time",
        }
    }

    /// For people: "the device was made fixed".
    pub const fn describe(self) -> &'static str {
        match self {
            Self::DeviceFixed => "the device was made fixed",
            Self::DeviceDisabled => "the device was disabled",
            Self::DeviceDeleted => "the device was deleted",
            Self::ExtensionDisabled => "the Extension was disabled",
            Self::HotdeskNotAllowed => "the Extension may no longer hot-desk",
            Self::ExtensionMadePlaceholder => "the Extension was made a placeholder",
            Self::ExtensionDeleted => "the Extension was deleted",
            Self::LocationDeleted => "the Location was deleted",
            Self::OnePhoneAtATime => "one phone at a time was turned on",
        }
    }

    /// True when the change is to the device itself (its own change event re-reads it).
    pub const fn concerns_the_device(self) -> bool {
        matches!(
            self,
            Self::DeviceFixed | Self::DeviceDisabled | Self::DeviceDeleted
        )
    }
}

impl EndReason {
    /// A stable code: `logged_out`, `forced_by_admin`, `replaced_by_admin`,
    /// `logged_in_elsewhere`, `auto_logout`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::LoggedOut { .. } => "logged_out",
            Self::ForcedByAdmin { .. } => "forced_by_admin",
            Self::ReplacedByAdmin { .. } => "replaced_by_admin",
            Self::VisitorLoggedIn { .. } => "visitor_logged_in",
            Self::LoggedInElsewhere { .. } => "logged_in_elsewhere",
            Self::AutoLogout { .. } => "auto_logout",
            Self::Invalidated { cause } => cause.code(),
        }
    }

    /// For people: "replaced by admin", "logged out via *12", "automatic logout (daily at 18:00)".
    pub fn describe(&self) -> String {
        match self {
            Self::LoggedOut {
                via: SessionOrigin::FeatureCode,
            } => "logged out via *12".to_owned(),
            Self::LoggedOut { via } => format!("logged out via {}", via.label()),
            Self::ForcedByAdmin { note: Some(note) } => format!("logged out by admin: {note}"),
            Self::ForcedByAdmin { note: None } => "logged out by admin".to_owned(),
            Self::ReplacedByAdmin { .. } => "replaced by admin".to_owned(),
            Self::VisitorLoggedIn { .. } => "a visitor logged in to the home desk".to_owned(),
            Self::LoggedInElsewhere { .. } => {
                "logged in on another phone (one phone at a time)".to_owned()
            }
            Self::AutoLogout { policy } => format!("automatic logout ({})", policy.describe()),
            Self::Invalidated { cause } => format!("ended because {}", cause.describe()),
        }
    }
}

/// A session to end, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionEnd {
    /// The session.
    pub session: HotdeskSession,
    /// Why.
    pub reason: EndReason,
}

/// What a login does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LoginDecision {
    /// The Extension is already logged in to this device: nothing changes.
    AlreadyLoggedIn {
        /// The existing session.
        session: HotdeskSession,
    },
    /// End these sessions, then start this one.
    Start {
        /// The new session.
        session: HotdeskSession,
        /// Sessions to end first.
        end: Vec<SessionEnd>,
    },
}

/// Why an Extension may not hot-desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotAllowed {
    /// It is disabled.
    Disabled,
    /// It is a placeholder.
    Placeholder,
    /// `hotdesk_allowed` is off.
    HotdeskNotAllowed,
}

/// Why a login is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// No such device in the Domain (404).
    #[error("device not found")]
    DeviceNotFound,
    /// The device is disabled (409).
    #[error("the device is disabled")]
    DeviceDisabled,
    /// The device is fixed, not hot-desk (409).
    #[error("the device is not a hot-desk device")]
    DeviceNotHotdesk,
    /// No such Extension in the Domain (422 on `extension`).
    #[error("no such Extension in this Domain")]
    ExtensionNotFound,
    /// The Extension may not hot-desk (422 on `extension`).
    #[error("this Extension may not log in to hot-desk phones ({0:?})")]
    ExtensionNotAllowed(NotAllowed),
    /// Someone else is logged in (409; an admin replaces them instead).
    #[error("the device is in use by Extension {number}")]
    DeviceInUse {
        /// Who.
        extension_id: Uuid,
        /// Their number.
        number: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

impl LoginRefusal {
    /// The HTTP status the edge answers with.
    pub const fn status(&self) -> u16 {
        match self {
            Self::DeviceNotFound => 404,
            Self::DeviceDisabled | Self::DeviceNotHotdesk | Self::DeviceInUse { .. } => 409,
            Self::ExtensionNotFound | Self::ExtensionNotAllowed(_) => 422,
        }
    }

    /// A stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::DeviceNotFound => "not_found",
            Self::DeviceDisabled => "device_disabled",
            Self::DeviceNotHotdesk => "device_not_hotdesk",
            Self::ExtensionNotFound => "not_found",
            Self::ExtensionNotAllowed(NotAllowed::Disabled) => "extension_disabled",
            Self::ExtensionNotAllowed(NotAllowed::Placeholder) => "extension_is_placeholder",
            Self::ExtensionNotAllowed(NotAllowed::HotdeskNotAllowed) => "hotdesk_not_allowed",
            Self::DeviceInUse { .. } => "device_in_use",
        }
    }
}

impl From<LoginRefusal> for DomainError {
    fn from(r: LoginRefusal) -> Self {
        match r {
            LoginRefusal::DeviceNotFound => DomainError::NotFound("device"),
            LoginRefusal::ExtensionNotFound | LoginRefusal::ExtensionNotAllowed(_) => {
                DomainError::invalid("extension", r.code(), r.to_string())
            }
            _ => DomainError::conflict(r.code(), r.to_string()),
        }
    }
}

/// Decides a hot-desk login (pure; the PIN and lockout are checked before).
pub fn decide_login(b: &Bindings, req: &LoginRequest) -> Result<LoginDecision, LoginRefusal> {
    let device = b
        .devices
        .get(&req.device_id)
        .ok_or(LoginRefusal::DeviceNotFound)?;
    if !device.enabled {
        return Err(LoginRefusal::DeviceDisabled);
    }
    if device.mode != DeviceMode::Hotdesk {
        return Err(LoginRefusal::DeviceNotHotdesk);
    }
    let ext = b
        .extensions
        .get(&req.extension_id)
        .ok_or(LoginRefusal::ExtensionNotFound)?;
    let not_allowed = if !ext.enabled {
        Some(NotAllowed::Disabled)
    } else if ext.placeholder {
        Some(NotAllowed::Placeholder)
    } else if !ext.hotdesk_allowed {
        Some(NotAllowed::HotdeskNotAllowed)
    } else {
        None
    };
    if let Some(why) = not_allowed {
        return Err(LoginRefusal::ExtensionNotAllowed(why));
    }

    let mut end = Vec::new();
    if let Some(current) = b.sessions.get(&device.id) {
        if current.extension_id == ext.id {
            return Ok(LoginDecision::AlreadyLoggedIn {
                session: current.clone(),
            });
        }
        // The desk's own person does not keep visitors out: they take the desk, and it
        // returns to its person when they log out.
        let at_home = device.home_extension_id == Some(current.extension_id);
        if at_home {
            end.push(SessionEnd {
                session: current.clone(),
                reason: EndReason::VisitorLoggedIn {
                    by_extension_id: ext.id,
                },
            });
        } else if !req.acts_for_others {
            return Err(LoginRefusal::DeviceInUse {
                extension_id: current.extension_id,
                number: b
                    .extensions
                    .get(&current.extension_id)
                    .map(|e| e.number.clone())
                    .unwrap_or_default(),
                since: current.started_at,
            });
        } else {
            end.push(SessionEnd {
                session: current.clone(),
                reason: EndReason::ReplacedByAdmin {
                    by_extension_id: ext.id,
                },
            });
        }
    }
    if b.settings.one_phone_at_a_time {
        for other in b.sessions_of(ext.id) {
            if other.device_id != device.id {
                end.push(SessionEnd {
                    session: other.clone(),
                    reason: EndReason::LoggedInElsewhere {
                        device_id: device.id,
                    },
                });
            }
        }
    }
    Ok(LoginDecision::Start {
        session: HotdeskSession {
            device_id: device.id,
            extension_id: ext.id,
            started_at: req.now,
            via: req.via,
        },
        end,
    })
}

/// Who logs a device out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutBy {
    /// The person, through the API (self-service): only their own session.
    Holder {
        /// Their Extension.
        extension_id: Uuid,
    },
    /// Someone at the phone dialling `*12`: whoever is logged in there.
    Phone,
    /// An admin (`hotdesk.others`), with an optional note.
    Admin {
        /// Why.
        note: Option<String>,
    },
}

/// Why a logout is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutRefusal {
    /// No such device in the Domain (404).
    #[error("device not found")]
    DeviceNotFound,
    /// The device is fixed, not hot-desk (409).
    #[error("the device is not a hot-desk device")]
    DeviceNotHotdesk,
    /// Someone else is logged in; only they or an admin may log them out (409).
    #[error("someone else is logged in to this device")]
    NotYourSession,
}

impl LogoutRefusal {
    /// The HTTP status the edge answers with.
    pub const fn status(&self) -> u16 {
        match self {
            Self::DeviceNotFound => 404,
            Self::DeviceNotHotdesk | Self::NotYourSession => 409,
        }
    }

    /// A stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::DeviceNotFound => "not_found",
            Self::DeviceNotHotdesk => "device_not_hotdesk",
            Self::NotYourSession => "device_in_use",
        }
    }
}

impl From<LogoutRefusal> for DomainError {
    fn from(r: LogoutRefusal) -> Self {
        match r {
            LogoutRefusal::DeviceNotFound => DomainError::NotFound("device"),
            _ => DomainError::conflict(r.code(), r.to_string()),
        }
    }
}

/// Decides a logout: the session to end, or `None` when nobody is logged in.
pub fn decide_logout(
    b: &Bindings,
    device_id: Uuid,
    by: &LogoutBy,
) -> Result<Option<SessionEnd>, LogoutRefusal> {
    let device = b
        .devices
        .get(&device_id)
        .ok_or(LogoutRefusal::DeviceNotFound)?;
    if device.mode != DeviceMode::Hotdesk {
        return Err(LogoutRefusal::DeviceNotHotdesk);
    }
    let Some(session) = b.sessions.get(&device.id) else {
        return Ok(None);
    };
    let reason = match by {
        LogoutBy::Holder { extension_id } if *extension_id != session.extension_id => {
            return Err(LogoutRefusal::NotYourSession);
        }
        LogoutBy::Holder { .. } => EndReason::LoggedOut {
            via: SessionOrigin::Api,
        },
        LogoutBy::Phone => EndReason::LoggedOut {
            via: SessionOrigin::FeatureCode,
        },
        LogoutBy::Admin { note } => EndReason::ForcedByAdmin { note: note.clone() },
    };
    Ok(Some(SessionEnd {
        session: session.clone(),
        reason,
    }))
}

/// `at` on `date` in `tz`: the earlier instant when the time occurs twice, the first minute
/// after the gap when it does not occur at all.
fn local_instant(date: NaiveDate, at: TimeOfDay, tz: Tz) -> Option<DateTime<Utc>> {
    let mut naive = date.and_hms_opt(at.hour, at.minute, 0)?;
    // Gaps are at most a day long (Samoa skipped 30 Dec 2011); usually an hour.
    for _ in 0..=(26 * 60) {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            return Some(t.with_timezone(&Utc));
        }
        naive += Duration::minutes(1);
    }
    None
}

/// When the session ends by itself under the effective policy (device, else Domain), if ever.
pub fn auto_logout_deadline(
    session: &HotdeskSession,
    device_policy: AutoLogoutPolicy,
    domain_policy: AutoLogoutPolicy,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    deadline_after(
        session.started_at,
        AutoLogoutPolicy::effective(device_policy, domain_policy),
        tz,
    )
}

/// When something that started at `started` ends by itself under `policy` (`None`: never).
pub fn deadline_after(
    started: DateTime<Utc>,
    policy: AutoLogoutPolicy,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    match policy {
        AutoLogoutPolicy::Inherit | AutoLogoutPolicy::Never => None,
        AutoLogoutPolicy::AfterHours { hours } => Some(started + Duration::hours(i64::from(hours))),
        AutoLogoutPolicy::DailyAt { at } => {
            // The first HH:MM boundary strictly after the start. Neighbouring days are checked
            // too, so a boundary pushed across midnight by a gap is still found.
            let start_day = started.with_timezone(&tz).date_naive();
            (-1..=2)
                .filter_map(|offset| start_day.checked_add_signed(Duration::days(offset)))
                .filter_map(|day| local_instant(day, at, tz))
                .filter(|t| *t > started)
                .min()
        }
    }
}

/// Every Location sign-in the scheduler should end at `now` (its Location's
/// `auto_sign_out`), oldest first, with the policy that ended it.
pub fn due_sign_ins(b: &Bindings, now: DateTime<Utc>) -> Vec<(LocationSignIn, AutoLogoutPolicy)> {
    let tz = b.domain.time_zone;
    let mut due: Vec<(LocationSignIn, AutoLogoutPolicy)> = b
        .sign_ins
        .values()
        .filter_map(|s| {
            let policy = b.locations.get(&s.location_id)?.auto_sign_out;
            deadline_after(s.since, policy, tz)
                .is_some_and(|t| t <= now)
                .then(|| (s.clone(), policy))
        })
        .collect();
    due.sort_by_key(|(s, _)| (s.since, s.extension_id));
    due
}

/// True when the session is due for auto-logout at `now`: for `daily_at`, when an HH:MM
/// boundary lies after its start and not after `now`; for `after_hours`, when N hours passed.
pub fn auto_logout_due(
    session: &HotdeskSession,
    device_policy: AutoLogoutPolicy,
    domain_policy: AutoLogoutPolicy,
    tz: Tz,
    now: DateTime<Utc>,
) -> bool {
    auto_logout_deadline(session, device_policy, domain_policy, tz).is_some_and(|t| t <= now)
}

/// The policy that applies to a session's device.
fn policy_of(b: &Bindings, session: &HotdeskSession) -> AutoLogoutPolicy {
    let device = b
        .devices
        .get(&session.device_id)
        .map_or(AutoLogoutPolicy::Inherit, |d| d.auto_logout);
    AutoLogoutPolicy::effective(device, b.settings.auto_logout)
}

/// True when the session is the desk's own person at their desk: it never ends by itself
/// (auto-logout would only bring the same person back).
fn at_home(b: &Bindings, session: &HotdeskSession) -> bool {
    b.devices
        .get(&session.device_id)
        .is_some_and(|d| d.home_extension_id == Some(session.extension_id))
}

/// The Extension a hot-desk phone returns to now that nobody is logged in to it: its home
/// Extension, when the phone is enabled and hot-desk, nobody is logged in, the home Extension
/// is in service and may hot-desk, is not in `barred` (a change is taking it out of service),
/// and (one phone at a time) is not logged in elsewhere. `b` is the state after the logout.
pub fn home_return(b: &Bindings, device_id: Uuid, barred: &[Uuid]) -> Option<Uuid> {
    let device = b.devices.get(&device_id)?;
    if !device.enabled || device.mode != DeviceMode::Hotdesk || b.sessions.contains_key(&device_id)
    {
        return None;
    }
    let home = b.extensions.get(&device.home_extension_id?)?;
    let usable = home.enabled && home.hotdesk_allowed && !home.placeholder;
    let elsewhere = b.settings.one_phone_at_a_time && !b.sessions_of(home.id).is_empty();
    (usable && !elsewhere && !barred.contains(&home.id)).then_some(home.id)
}

/// Every session the scheduler should end at `now`, oldest first. The desk's own person at
/// their desk is never due.
pub fn due_sessions(b: &Bindings, now: DateTime<Utc>) -> Vec<SessionEnd> {
    let tz = b.domain.time_zone;
    let mut due: Vec<SessionEnd> = b
        .sessions
        .values()
        .filter(|s| !at_home(b, s))
        .filter_map(|s| {
            let policy = policy_of(b, s);
            auto_logout_due(s, policy, AutoLogoutPolicy::Never, tz, now).then(|| SessionEnd {
                session: s.clone(),
                reason: EndReason::AutoLogout { policy },
            })
        })
        .collect();
    due.sort_by_key(|e| (e.session.started_at, e.session.device_id));
    due
}

/// The next instant a session of this Domain is due, for the scheduler to sleep until.
pub fn next_auto_logout(b: &Bindings) -> Option<DateTime<Utc>> {
    b.sessions
        .values()
        .filter(|s| !at_home(b, s))
        .filter_map(|s| {
            auto_logout_deadline(
                s,
                policy_of(b, s),
                AutoLogoutPolicy::Never,
                b.domain.time_zone,
            )
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::{Kit, at};
    use chrono_tz::Europe::Berlin;

    const NOW: &str = "2025-03-28T14:00:00Z";

    struct Domain {
        kit: Kit,
        alice: Uuid,
        bob: Uuid,
        desk4: Uuid,
        desk5: Uuid,
    }

    /// Alice and Bob, hot-desk phones Desk 4 and Desk 5, a fixed phone, a placeholder.
    fn domain() -> Domain {
        let mut kit = Kit::new();
        let alice = kit.ext("201", "Alice");
        let bob = kit.ext("202", "Bob");
        let desk4 = kit.hotdesk("Desk 4", "dhot4");
        let desk5 = kit.hotdesk("Desk 5", "dhot5");
        Domain {
            kit,
            alice,
            bob,
            desk4,
            desk5,
        }
    }

    fn login(device: Uuid, extension: Uuid, acts_for_others: bool) -> LoginRequest {
        LoginRequest {
            device_id: device,
            extension_id: extension,
            acts_for_others,
            via: if acts_for_others {
                SessionOrigin::Admin
            } else {
                SessionOrigin::Api
            },
            now: at(NOW),
        }
    }

    /// A decision as text: `start <device label> for <number>; end <label>/<number> (<reason>)`.
    fn describe(k: &Kit, r: Result<LoginDecision, LoginRefusal>) -> String {
        let label = |id: &Uuid| k.b.devices.get(id).map_or("?".into(), |d| d.label.clone());
        let number = |id: &Uuid| {
            k.b.extensions
                .get(id)
                .map_or("?".into(), |e| e.number.clone())
        };
        match r {
            Err(e) => format!("refused {} {} ({e})", e.status(), e.code()),
            Ok(LoginDecision::AlreadyLoggedIn { session }) => format!(
                "already {} for {}",
                label(&session.device_id),
                number(&session.extension_id)
            ),
            Ok(LoginDecision::Start { session, end }) => {
                let mut s = format!(
                    "start {} for {} at {} via {}",
                    label(&session.device_id),
                    number(&session.extension_id),
                    session.started_at,
                    session.via.as_str()
                );
                for e in end {
                    s.push_str(&format!(
                        "; end {}/{} ({})",
                        label(&e.session.device_id),
                        number(&e.session.extension_id),
                        e.reason.describe()
                    ));
                }
                s
            }
        }
    }

    #[test]
    fn login_decisions() {
        type Setup = fn(&mut Domain) -> LoginRequest;
        let cases: Vec<(&str, Setup, &str)> = vec![
            (
                "a free hot-desk phone",
                |d| login(d.desk4, d.alice, false),
                "start Desk 4 for 201 at 2025-03-28 14:00:00 UTC via api",
            ),
            (
                "a fixed phone",
                |d| {
                    let f = d.kit.fixed("Office", "dfix1", d.bob);
                    login(f, d.alice, true)
                },
                "refused 409 device_not_hotdesk (the device is not a hot-desk device)",
            ),
            (
                "a disabled phone",
                |d| {
                    d.kit.device_mut(d.desk4).enabled = false;
                    login(d.desk4, d.alice, false)
                },
                "refused 409 device_disabled (the device is disabled)",
            ),
            (
                "an unknown phone",
                |d| login(Uuid::from_u128(99), d.alice, false),
                "refused 404 not_found (device not found)",
            ),
            (
                "an unknown Extension",
                |d| login(d.desk4, Uuid::from_u128(99), false),
                "refused 422 not_found (no such Extension in this Domain)",
            ),
            (
                "an Extension without hotdesk_allowed",
                |d| {
                    d.kit.ext_mut(d.alice).hotdesk_allowed = false;
                    login(d.desk4, d.alice, true)
                },
                "refused 422 hotdesk_not_allowed (this Extension may not log in to hot-desk phones (HotdeskNotAllowed))",
            ),
            (
                "a placeholder",
                |d| {
                    d.kit.ext_mut(d.alice).placeholder = true;
                    login(d.desk4, d.alice, true)
                },
                "refused 422 extension_is_placeholder (this Extension may not log in to hot-desk phones (Placeholder))",
            ),
            (
                "a disabled Extension",
                |d| {
                    d.kit.ext_mut(d.alice).enabled = false;
                    login(d.desk4, d.alice, true)
                },
                "refused 422 extension_disabled (this Extension may not log in to hot-desk phones (Disabled))",
            ),
            (
                "a phone in use by someone else",
                |d| {
                    d.kit
                        .login(d.desk4, d.bob, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    login(d.desk4, d.alice, false)
                },
                "refused 409 device_in_use (the device is in use by Extension 202)",
            ),
            (
                "a phone in use, by an admin: replaces",
                |d| {
                    d.kit
                        .login(d.desk4, d.bob, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    login(d.desk4, d.alice, true)
                },
                "start Desk 4 for 201 at 2025-03-28 14:00:00 UTC via admin; end Desk 4/202 (replaced by admin)",
            ),
            (
                "the phone one is already logged in to",
                |d| {
                    d.kit.login(
                        d.desk4,
                        d.alice,
                        "2025-03-28T08:00:00Z",
                        SessionOrigin::FeatureCode,
                    );
                    login(d.desk4, d.alice, false)
                },
                "already Desk 4 for 201",
            ),
            (
                "one phone at a time: the other session ends",
                |d| {
                    d.kit
                        .login(d.desk5, d.alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    login(d.desk4, d.alice, false)
                },
                "start Desk 4 for 201 at 2025-03-28 14:00:00 UTC via api; end Desk 5/201 (logged in on another phone (one phone at a time))",
            ),
            (
                "several phones allowed: the other session stays",
                |d| {
                    d.kit.b.settings.one_phone_at_a_time = false;
                    d.kit
                        .login(d.desk5, d.alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    login(d.desk4, d.alice, false)
                },
                "start Desk 4 for 201 at 2025-03-28 14:00:00 UTC via api",
            ),
            (
                "admin replaces and one phone at a time: both end",
                |d| {
                    d.kit
                        .login(d.desk4, d.bob, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    d.kit
                        .login(d.desk5, d.alice, "2025-03-28T09:00:00Z", SessionOrigin::Api);
                    login(d.desk4, d.alice, true)
                },
                "start Desk 4 for 201 at 2025-03-28 14:00:00 UTC via admin; end Desk 4/202 (replaced by admin); end Desk 5/201 (logged in on another phone (one phone at a time))",
            ),
        ];
        let mut failures = Vec::new();
        for (name, setup, want) in cases {
            let mut d = domain();
            let req = setup(&mut d);
            let got = describe(&d.kit, decide_login(&d.kit.b, &req));
            if got != want {
                failures.push(format!("{name}:\n  got  {got}\n  want {want}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn refusals_map_to_domain_errors() {
        let in_use = DomainError::from(LoginRefusal::DeviceInUse {
            extension_id: Uuid::from_u128(5),
            number: "202".into(),
            since: at(NOW),
        });
        assert!(matches!(
            in_use,
            DomainError::Conflict {
                code: "device_in_use",
                ..
            }
        ));
        let not_allowed =
            DomainError::from(LoginRefusal::ExtensionNotAllowed(NotAllowed::Placeholder));
        assert!(matches!(
            &not_allowed,
            DomainError::Validation(errors) if errors[0].field == "extension"
                && errors[0].code == "extension_is_placeholder"
        ));
        assert!(matches!(
            DomainError::from(LoginRefusal::DeviceNotFound),
            DomainError::NotFound("device")
        ));
        assert!(matches!(
            DomainError::from(LogoutRefusal::NotYourSession),
            DomainError::Conflict {
                code: "device_in_use",
                ..
            }
        ));
    }

    /// (name, someone logged in, who logs out, the reason described or the refusal)
    type LogoutCase = (
        &'static str,
        bool,
        LogoutBy,
        Result<Option<&'static str>, LogoutRefusal>,
    );

    #[test]
    fn logout_decisions() {
        let cases: Vec<LogoutCase> = vec![
            (
                "the holder through the API",
                true,
                LogoutBy::Holder {
                    extension_id: Uuid::nil(),
                },
                Ok(Some("logged out via API")),
            ),
            (
                "the phone (*12)",
                true,
                LogoutBy::Phone,
                Ok(Some("logged out via *12")),
            ),
            (
                "an admin with a note",
                true,
                LogoutBy::Admin {
                    note: Some("left the company".into()),
                },
                Ok(Some("logged out by admin: left the company")),
            ),
            (
                "an admin without one",
                true,
                LogoutBy::Admin { note: None },
                Ok(Some("logged out by admin")),
            ),
            (
                "someone else through the API",
                true,
                LogoutBy::Holder {
                    extension_id: Uuid::from_u128(7),
                },
                Err(LogoutRefusal::NotYourSession),
            ),
            ("nobody logged in", false, LogoutBy::Phone, Ok(None)),
        ];
        for (name, logged_in, by, want) in cases {
            let mut d = domain();
            if logged_in {
                d.kit
                    .login(d.desk4, d.alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
            }
            let by = match by {
                LogoutBy::Holder { extension_id } if extension_id.is_nil() => LogoutBy::Holder {
                    extension_id: d.alice,
                },
                other => other,
            };
            let got = decide_logout(&d.kit.b, d.desk4, &by);
            let got_text = got
                .as_ref()
                .map(|e| e.as_ref().map(|e| e.reason.describe()))
                .map_err(Clone::clone);
            let want_text = want.clone().map(|w| w.map(str::to_owned));
            assert_eq!(got_text, want_text, "{name}");
            if let Ok(Some(end)) = got {
                assert_eq!(
                    (end.session.device_id, end.session.extension_id),
                    (d.desk4, d.alice)
                );
            }
        }
        let mut d = domain();
        let f = d.kit.fixed("Office", "dfix1", d.bob);
        assert_eq!(
            decide_logout(&d.kit.b, f, &LogoutBy::Phone),
            Err(LogoutRefusal::DeviceNotHotdesk)
        );
        assert_eq!(
            decide_logout(&d.kit.b, Uuid::from_u128(99), &LogoutBy::Phone),
            Err(LogoutRefusal::DeviceNotFound)
        );
    }

    fn session(started: &str) -> HotdeskSession {
        HotdeskSession {
            device_id: Uuid::from_u128(1),
            extension_id: Uuid::from_u128(2),
            started_at: at(started),
            via: SessionOrigin::FeatureCode,
        }
    }

    fn daily(hour: u32, minute: u32) -> AutoLogoutPolicy {
        AutoLogoutPolicy::DailyAt {
            at: TimeOfDay { hour, minute },
        }
    }

    #[test]
    fn auto_logout_with_an_injected_clock() {
        use AutoLogoutPolicy::{Inherit, Never};
        let eight = AutoLogoutPolicy::AfterHours { hours: 8 };
        // (name, device policy, domain policy, started, now, due)
        let cases = [
            (
                "never",
                Never,
                daily(18, 0),
                "2025-03-20T08:00:00Z",
                NOW,
                false,
            ),
            (
                "inherit never",
                Inherit,
                Never,
                "2025-03-20T08:00:00Z",
                NOW,
                false,
            ),
            (
                "8 h not yet",
                eight,
                Never,
                "2025-03-28T06:00:01Z",
                NOW,
                false,
            ),
            (
                "8 h exactly",
                eight,
                Never,
                "2025-03-28T06:00:00Z",
                NOW,
                true,
            ),
            (
                "inherit 8 h",
                Inherit,
                eight,
                "2025-03-28T06:00:00Z",
                NOW,
                true,
            ),
            // 18:00 Berlin (CET, UTC+1) is 17:00 UTC.
            (
                "daily before 18:00",
                daily(18, 0),
                Never,
                "2025-03-28T07:00:00Z",
                "2025-03-28T16:59:59Z",
                false,
            ),
            (
                "daily at 18:00",
                daily(18, 0),
                Never,
                "2025-03-28T07:00:00Z",
                "2025-03-28T17:00:00Z",
                true,
            ),
            (
                "started after 18:00: next day",
                daily(18, 0),
                Never,
                "2025-03-28T17:30:00Z",
                "2025-03-28T23:00:00Z",
                false,
            ),
            (
                "started after 18:00, next 18:00 passed",
                daily(18, 0),
                Never,
                "2025-03-27T17:30:00Z",
                "2025-03-28T17:00:00Z",
                true,
            ),
            (
                "started exactly at the boundary",
                daily(18, 0),
                Never,
                "2025-03-28T17:00:00Z",
                "2025-03-28T20:00:00Z",
                false,
            ),
            (
                "started days ago",
                daily(18, 0),
                Never,
                "2025-03-20T08:00:00Z",
                "2025-03-21T08:00:00Z",
                true,
            ),
            (
                "device overrides the Domain",
                daily(18, 0),
                eight,
                "2025-03-28T07:00:00Z",
                "2025-03-28T15:30:00Z",
                false,
            ),
            (
                "inherit the Domain's daily_at",
                Inherit,
                daily(18, 0),
                "2025-03-28T07:00:00Z",
                "2025-03-28T17:00:00Z",
                true,
            ),
        ];
        for (name, device, domain, started, now, due) in cases {
            assert_eq!(
                auto_logout_due(&session(started), device, domain, Berlin, at(now)),
                due,
                "{name}"
            );
        }
    }

    #[test]
    fn daily_at_in_the_spring_dst_gap_ends_at_the_first_minute_that_exists() {
        // Berlin, 30 Mar 2025: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
        let s = session("2025-03-29T20:00:00Z");
        let deadline = auto_logout_deadline(&s, daily(2, 30), AutoLogoutPolicy::Never, Berlin);
        assert_eq!(deadline, Some(at("2025-03-30T01:00:00Z")));
        assert!(!auto_logout_due(
            &s,
            daily(2, 30),
            AutoLogoutPolicy::Never,
            Berlin,
            at("2025-03-30T00:59:59Z")
        ));
        assert!(auto_logout_due(
            &s,
            daily(2, 30),
            AutoLogoutPolicy::Never,
            Berlin,
            at("2025-03-30T01:00:00Z")
        ));
        // The day after, 02:30 CEST is 00:30 UTC again.
        let s = session("2025-03-30T01:00:00Z");
        assert_eq!(
            auto_logout_deadline(&s, daily(2, 30), AutoLogoutPolicy::Never, Berlin),
            Some(at("2025-03-31T00:30:00Z"))
        );
    }

    #[test]
    fn daily_at_in_the_repeated_autumn_hour_counts_once() {
        // Berlin, 26 Oct 2025: 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30 UTC
        // and again at 01:30 UTC. The first counts.
        let before = session("2025-10-25T20:00:00Z");
        assert_eq!(
            auto_logout_deadline(&before, daily(2, 30), AutoLogoutPolicy::Never, Berlin),
            Some(at("2025-10-26T00:30:00Z"))
        );
        // Logged in between the two 02:30s: no second logout an hour later.
        let between = session("2025-10-26T00:45:00Z");
        assert!(!auto_logout_due(
            &between,
            daily(2, 30),
            AutoLogoutPolicy::Never,
            Berlin,
            at("2025-10-26T01:30:00Z")
        ));
        assert_eq!(
            auto_logout_deadline(&between, daily(2, 30), AutoLogoutPolicy::Never, Berlin),
            Some(at("2025-10-27T01:30:00Z"))
        );
    }

    #[test]
    fn after_hours_counts_real_hours_across_a_dst_change() {
        let eight = AutoLogoutPolicy::AfterHours { hours: 8 };
        // 22:00 CET on 29 Mar → 8 real hours later is 07:00 CEST (05:00 UTC).
        let s = session("2025-03-29T21:00:00Z");
        assert_eq!(
            auto_logout_deadline(&s, eight, AutoLogoutPolicy::Never, Berlin),
            Some(at("2025-03-30T05:00:00Z"))
        );
    }

    #[test]
    fn the_scheduler_finds_due_sessions_and_when_to_wake_up() {
        let mut d = domain();
        d.kit.b.settings.auto_logout = daily(18, 0);
        d.kit.device_mut(d.desk5).auto_logout = AutoLogoutPolicy::AfterHours { hours: 2 };
        d.kit
            .login(d.desk4, d.alice, "2025-03-28T07:00:00Z", SessionOrigin::Api);
        d.kit
            .login(d.desk5, d.bob, "2025-03-28T13:00:00Z", SessionOrigin::Api);
        assert_eq!(next_auto_logout(&d.kit.b), Some(at("2025-03-28T15:00:00Z")));
        assert!(due_sessions(&d.kit.b, at(NOW)).is_empty());
        let due = due_sessions(&d.kit.b, at("2025-03-28T17:00:00Z"));
        let got: Vec<(Uuid, String)> = due
            .iter()
            .map(|e| (e.session.device_id, e.reason.describe()))
            .collect();
        assert_eq!(
            got,
            [
                (d.desk4, "automatic logout (daily at 18:00)".to_owned()),
                (d.desk5, "automatic logout (after 2 hours)".to_owned()),
            ]
        );
        assert_eq!(due[0].reason.code(), "auto_logout");
    }

    #[test]
    fn a_home_desk_takes_visitors_returns_to_its_person_and_never_logs_out_by_itself() {
        let mut d = domain();
        d.kit.device_mut(d.desk4).home_extension_id = Some(d.alice);
        d.kit.login(
            d.desk4,
            d.alice,
            "2025-03-28T07:00:00Z",
            SessionOrigin::Home,
        );
        // Bob, with his PIN and no admin right, takes Alice's desk.
        assert_eq!(
            describe(
                &d.kit,
                decide_login(&d.kit.b, &login(d.desk4, d.bob, false))
            ),
            "start Desk 4 for 202 at 2025-03-28 14:00:00 UTC via api; end Desk 4/201 (a visitor logged in to the home desk)"
        );
        // Alice at home is never due; Bob at Desk 5 is.
        d.kit.b.settings.auto_logout = daily(18, 0);
        d.kit
            .login(d.desk5, d.bob, "2025-03-28T08:00:00Z", SessionOrigin::Api);
        let due: Vec<Uuid> = due_sessions(&d.kit.b, at("2025-03-28T19:00:00Z"))
            .iter()
            .map(|e| e.session.device_id)
            .collect();
        assert_eq!(due, [d.desk5]);
        assert_eq!(next_auto_logout(&d.kit.b), Some(at("2025-03-28T17:00:00Z")));

        // Once nobody is at Desk 4, it returns to Alice; not while she sits elsewhere (one
        // phone at a time), not when she may not hot-desk, not when she is barred.
        d.kit.b.sessions.clear();
        assert_eq!(home_return(&d.kit.b, d.desk4, &[]), Some(d.alice));
        assert_eq!(home_return(&d.kit.b, d.desk4, &[d.alice]), None);
        assert_eq!(home_return(&d.kit.b, d.desk5, &[]), None, "no home");
        d.kit
            .login(d.desk5, d.alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
        assert_eq!(home_return(&d.kit.b, d.desk4, &[]), None);
        d.kit.b.settings.one_phone_at_a_time = false;
        assert_eq!(home_return(&d.kit.b, d.desk4, &[]), Some(d.alice));
        d.kit.ext_mut(d.alice).hotdesk_allowed = false;
        assert_eq!(home_return(&d.kit.b, d.desk4, &[]), None);
        d.kit.ext_mut(d.alice).hotdesk_allowed = true;
        d.kit.device_mut(d.desk4).enabled = false;
        assert_eq!(home_return(&d.kit.b, d.desk4, &[]), None);
    }

    #[test]
    fn sign_ins_are_due_by_their_locations_policy_in_the_domains_time_zone() {
        use crate::telephony::policy::RingStrategy;
        let mut kit = Kit::new();
        let ada = kit.ext("201", "Ada");
        let bob = kit.ext("202", "Bob");
        let cy = kit.ext("203", "Cy");
        let day = kit.location("Day", RingStrategy::Simultaneous);
        let evening = kit.location("Evening", RingStrategy::Simultaneous);
        let always = kit.location("Always", RingStrategy::Simultaneous);
        for (location, policy) in [
            (day, AutoLogoutPolicy::AfterHours { hours: 8 }),
            (evening, daily(18, 0)),
        ] {
            if let Some(l) = kit.b.locations.get_mut(&location) {
                l.auto_sign_out = policy;
            }
        }
        // Ada and Bob since 08:00 Berlin (07:00 UTC), Cy too, in a Location that never ends.
        kit.sign_in(ada, day, "2025-03-28T07:00:00Z");
        kit.sign_in(bob, evening, "2025-03-28T07:00:00Z");
        kit.sign_in(cy, always, "2025-03-28T07:00:00Z");
        let b = &kit.b;
        let due = |now: &str| -> Vec<Uuid> {
            due_sign_ins(b, at(now))
                .into_iter()
                .map(|(s, _)| s.extension_id)
                .collect()
        };
        assert!(due("2025-03-28T14:59:00Z").is_empty());
        assert_eq!(
            due("2025-03-28T15:00:00Z"),
            [ada],
            "8 hours after 07:00 UTC"
        );
        // 18:00 Berlin (CET) is 17:00 UTC: not 18:00 UTC.
        assert_eq!(due("2025-03-28T16:59:00Z"), [ada]);
        let both = due_sign_ins(b, at("2025-03-28T17:00:00Z"));
        assert_eq!(
            both.iter().map(|(s, _)| s.extension_id).collect::<Vec<_>>(),
            [ada, bob]
        );
        assert_eq!(both[1].1, daily(18, 0), "with the policy that ended it");
        assert!(!due("2026-03-28T17:00:00Z").contains(&cy), "never is never");
        // A sign-in to a Location the snapshot does not know is left alone.
        let mut kit = Kit::new();
        let dan = kit.ext("204", "Dan");
        kit.sign_in(dan, Uuid::from_u128(9_999), "2025-03-28T07:00:00Z");
        assert!(due_sign_ins(&kit.b, at("2026-01-01T00:00:00Z")).is_empty());
    }
}
