//! A snapshot of one Domain's bindings: the plain facts every binding rule reads.
//!
//! The services load it in a handful of queries (extensions, devices, locations, their sign-in
//! listings, calling settings, active hot-desk sessions, location sign-ins) and hand it to the
//! pure rules. Rows are converted with `From`, never failing: the stored strings were validated
//! on the way in, and where one is unknown anyway the conversion picks the choice that rings and
//! reveals the least (documented on each `From`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use uuid::Uuid;

use crate::store::{
    calling_settings, devices, domains, extension_groups, extensions, location_extensions,
    locations,
};
use crate::telephony::internal_allow::InternalAllow;
use crate::telephony::policy::{
    AutoLogout, DeviceMode, LoggedOutMode, RecordingPolicy, RingStrategy, SignInPolicy,
};
use crate::telephony::values::TimeOfDay;

/// Seconds a device rings in a sequential Location ring when it has no timeout of its own.
pub const DEFAULT_LOCATION_LEG_TIMEOUT_SECS: u32 = 20;

/// Ring timeout used when the stored one is missing or not positive.
pub const FALLBACK_RING_TIMEOUT_SECS: u32 = 30;

/// A positive `u32` from a stored `i32`, if it is one.
pub(crate) fn positive_u32(value: Option<i32>) -> Option<u32> {
    value.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0)
}

/// A caller ID name and number pair, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallerIdParts {
    /// The name.
    pub name: Option<String>,
    /// The number.
    pub number: Option<String>,
}

/// One call-forwarding rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// On or off.
    pub enabled: bool,
    /// Where to.
    pub destination: Option<String>,
}

impl Forward {
    /// The destination when the rule is on and has somewhere to go (an empty one never applies).
    pub fn target(&self) -> Option<&str> {
        self.destination
            .as_deref()
            .filter(|d| self.enabled && !d.trim().is_empty())
    }
}

/// When hot-desk sessions end by themselves, with the policy's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum AutoLogoutPolicy {
    /// Follow the Domain (devices only).
    Inherit,
    /// Never.
    Never,
    /// After a number of hours.
    AfterHours {
        /// Hours.
        hours: u32,
    },
    /// Every day at a time of day in the Domain's time zone.
    DailyAt {
        /// The time of day.
        #[serde(serialize_with = "serialize_time_of_day")]
        at: TimeOfDay,
    },
}

fn serialize_time_of_day<S: serde::Serializer>(t: &TimeOfDay, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

impl AutoLogoutPolicy {
    /// Reads the stored columns; an unknown policy or a missing parameter reads as `fallback`.
    pub fn from_columns(
        policy: &str,
        hours: Option<i32>,
        at: Option<&str>,
        fallback: AutoLogoutPolicy,
    ) -> Self {
        match AutoLogout::parse(policy) {
            Ok(AutoLogout::Inherit) => Self::Inherit,
            Ok(AutoLogout::Never) => Self::Never,
            Ok(AutoLogout::AfterHours) => match positive_u32(hours) {
                Some(hours) => Self::AfterHours { hours },
                None => fallback,
            },
            Ok(AutoLogout::DailyAt) => match at.map(TimeOfDay::parse) {
                Some(Ok(at)) => Self::DailyAt { at },
                _ => fallback,
            },
            Err(_) => fallback,
        }
    }

    /// The device's policy, or the Domain's when the device inherits (`Inherit` there is `Never`).
    pub fn effective(device: Self, domain: Self) -> Self {
        match (device, domain) {
            (Self::Inherit, Self::Inherit) => Self::Never,
            (Self::Inherit, domain) => domain,
            (device, _) => device,
        }
    }

    /// "after 8 hours", "daily at 18:00", "never".
    pub fn describe(&self) -> String {
        match self {
            Self::Inherit => "as the Domain says".to_owned(),
            Self::Never => "never".to_owned(),
            Self::AfterHours { hours: 1 } => "after 1 hour".to_owned(),
            Self::AfterHours { hours } => format!("after {hours} hours"),
            Self::DailyAt { at } => format!("daily at {at}"),
        }
    }
}

/// The Domain itself: its id, SIP domain and time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    /// Id.
    pub id: Uuid,
    /// The FreeSWITCH SIP domain, also the default dialplan context.
    pub sip_domain: String,
    /// The Domain's time zone (reasons and `daily_at` auto-logout are in local time).
    pub time_zone: Tz,
}

impl From<&domains::Model> for DomainFacts {
    /// An unknown time zone name reads as UTC (names are checked when saved).
    fn from(d: &domains::Model) -> Self {
        Self {
            id: d.id,
            sip_domain: d.sip_domain.clone(),
            time_zone: d.timezone.parse().unwrap_or(Tz::UTC),
        }
    }
}

/// An Extension group as the binding rules see it: the logout action of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// What a member's logout leaves the phone in (may be `Inherit`: the phone's, then the
    /// Domain's).
    pub logged_out_mode: LoggedOutMode,
    /// Placeholder Extension for `Placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
}

impl From<&extension_groups::Model> for GroupFacts {
    /// An unknown logged-out mode reads as `Inherit`.
    fn from(g: &extension_groups::Model) -> Self {
        Self {
            id: g.id,
            name: g.name.clone(),
            logged_out_mode: LoggedOutMode::parse(&g.logged_out_mode)
                .unwrap_or(LoggedOutMode::Inherit),
            placeholder_extension_id: g.placeholder_extension_id,
        }
    }
}

/// The Domain's calling settings that the binding rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingDefaults {
    /// Logged-out mode of hot-desk phones that inherit: `Full` or `Placeholder`, never `Inherit`.
    pub logged_out_mode: LoggedOutMode,
    /// The placeholder Extension for `Placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Logging in on a second phone ends the first session.
    pub one_phone_at_a_time: bool,
    /// Auto-logout of devices that inherit (never `Inherit`).
    pub auto_logout: AutoLogoutPolicy,
    /// The Domain's emergency caller ID (the last fallback).
    pub emergency_caller_id: CallerIdParts,
    /// Emergency numbers dialable from any phone.
    pub emergency_numbers: Vec<String>,
    /// Default ring timeout in seconds.
    pub default_ring_timeout_secs: u32,
}

impl From<&calling_settings::Model> for CallingDefaults {
    /// Unknown or `inherit` logged-out mode reads as `Full` (the restricted one); an unusable
    /// auto-logout policy as `Never`; a non-positive ring timeout as 30 s.
    fn from(s: &calling_settings::Model) -> Self {
        let logged_out_mode = match LoggedOutMode::parse(&s.logged_out_mode) {
            Ok(LoggedOutMode::Placeholder) => LoggedOutMode::Placeholder,
            _ => LoggedOutMode::Full,
        };
        let auto_logout = match AutoLogoutPolicy::from_columns(
            &s.auto_logout,
            s.auto_logout_hours,
            s.auto_logout_at.as_deref(),
            AutoLogoutPolicy::Never,
        ) {
            AutoLogoutPolicy::Inherit => AutoLogoutPolicy::Never,
            p => p,
        };
        Self {
            logged_out_mode,
            placeholder_extension_id: s.placeholder_extension_id,
            one_phone_at_a_time: s.one_phone_at_a_time,
            auto_logout,
            emergency_caller_id: CallerIdParts {
                name: s.emergency_caller_id_name.clone(),
                number: s.emergency_caller_id_number.clone(),
            },
            emergency_numbers: s
                .emergency_numbers
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            default_ring_timeout_secs: positive_u32(Some(s.default_ring_timeout_secs))
                .unwrap_or(FALLBACK_RING_TIMEOUT_SECS),
        }
    }
}

/// An Extension as the binding rules see it (no secrets: PIN and SIP secret stay in the row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFacts {
    /// Id.
    pub id: Uuid,
    /// The number; also the SIP user of its direct registration.
    pub number: String,
    /// Display name.
    pub display_name: String,
    /// Caller ID for internal calls, as configured (the rules fall back to name and number).
    pub internal_caller_id: CallerIdParts,
    /// Caller ID for outside calls, as configured.
    pub outbound_caller_id: CallerIdParts,
    /// Emergency caller ID fallback.
    pub emergency_caller_id: CallerIdParts,
    /// Voicemail box enabled.
    pub voicemail_enabled: bool,
    /// Own ring timeout (none: the Domain default).
    pub ring_timeout_secs: Option<u32>,
    /// Do-Not-Disturb.
    pub dnd: bool,
    /// Forward every call.
    pub forward_always: Forward,
    /// Forward when busy.
    pub forward_busy: Forward,
    /// Forward when not answered.
    pub forward_no_answer: Forward,
    /// Forward when nothing can ring.
    pub forward_not_registered: Forward,
    /// Recording of inbound calls.
    pub record_inbound: RecordingPolicy,
    /// Recording of outbound calls.
    pub record_outbound: RecordingPolicy,
    /// Dialplan context (none: the Domain's SIP domain).
    pub context: Option<String>,
    /// Toll-allow classes, comma-separated.
    pub toll_allow: String,
    /// Account code.
    pub account_code: Option<String>,
    /// Call group.
    pub call_group: Option<String>,
    /// May log in to hot-desk phones.
    pub hotdesk_allowed: bool,
    /// Stands in for logged-out phones.
    pub placeholder: bool,
    /// A placeholder whose logged-out phones ring when it is called.
    pub placeholder_rings: bool,
    /// The internal numbers it may dial (none: every one).
    pub internal_allow: Option<InternalAllow>,
    /// Its hot-desk group.
    pub group_id: Option<Uuid>,
    /// May register directly with its own SIP credentials.
    pub sip_registration_enabled: bool,
    /// Cap on simultaneous direct registrations.
    pub max_registrations: u32,
    /// In service.
    pub enabled: bool,
}

fn forward(enabled: bool, destination: &Option<String>) -> Forward {
    Forward {
        enabled,
        destination: destination.clone(),
    }
}

fn recording(stored: &str) -> RecordingPolicy {
    RecordingPolicy::parse(stored).unwrap_or(RecordingPolicy::Never)
}

impl From<&extensions::Model> for ExtensionFacts {
    /// An unknown recording policy reads as `never`.
    fn from(e: &extensions::Model) -> Self {
        Self {
            id: e.id,
            number: e.number.clone(),
            display_name: e.display_name.clone(),
            internal_caller_id: CallerIdParts {
                name: e.internal_caller_id_name.clone(),
                number: e.internal_caller_id_number.clone(),
            },
            outbound_caller_id: CallerIdParts {
                name: e.outbound_caller_id_name.clone(),
                number: e.outbound_caller_id_number.clone(),
            },
            emergency_caller_id: CallerIdParts {
                name: e.emergency_caller_id_name.clone(),
                number: e.emergency_caller_id_number.clone(),
            },
            voicemail_enabled: e.voicemail_enabled,
            ring_timeout_secs: positive_u32(e.ring_timeout_secs),
            dnd: e.dnd,
            forward_always: forward(e.forward_always_enabled, &e.forward_always_destination),
            forward_busy: forward(e.forward_busy_enabled, &e.forward_busy_destination),
            forward_no_answer: forward(
                e.forward_no_answer_enabled,
                &e.forward_no_answer_destination,
            ),
            forward_not_registered: forward(
                e.forward_not_registered_enabled,
                &e.forward_not_registered_destination,
            ),
            record_inbound: recording(&e.record_inbound),
            record_outbound: recording(&e.record_outbound),
            context: e.context.clone().filter(|c| !c.trim().is_empty()),
            toll_allow: e.toll_allow.clone(),
            account_code: e.account_code.clone(),
            call_group: e.call_group.clone(),
            hotdesk_allowed: e.hotdesk_allowed,
            placeholder: e.placeholder,
            placeholder_rings: e.placeholder && e.placeholder_rings,
            internal_allow: InternalAllow::from_stored(e.internal_allow.as_deref()),
            group_id: e.group_id,
            sip_registration_enabled: e.sip_registration_enabled,
            max_registrations: positive_u32(Some(e.max_registrations)).unwrap_or(1),
            enabled: e.enabled,
        }
    }
}

/// A Device as the binding rules see it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFacts {
    /// Id.
    pub id: Uuid,
    /// Label, e.g. "Reception 2F".
    pub label: String,
    /// Its SIP user name.
    pub sip_username: String,
    /// Fixed or hot-desk.
    pub mode: DeviceMode,
    /// Owner of a fixed device.
    pub owner_extension_id: Option<Uuid>,
    /// Its Location.
    pub location_id: Option<Uuid>,
    /// Order in the Location's sequential ring (lower first).
    pub location_position: i32,
    /// Seconds it rings in a sequential Location ring (none: 20).
    pub location_ring_timeout_secs: Option<u32>,
    /// Emergency caller ID of the phone's physical place.
    pub emergency_caller_id: CallerIdParts,
    /// Logged-out mode (may be `Inherit`).
    pub logged_out_mode: LoggedOutMode,
    /// Placeholder Extension for `Placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Auto-logout policy (may be `Inherit`).
    pub auto_logout: AutoLogoutPolicy,
    /// The desk's own person (a visitor's logout returns the phone to them).
    pub home_extension_id: Option<Uuid>,
    /// Who logged out of the phone last (their group's logout action applies).
    pub last_extension_id: Option<Uuid>,
    /// In service.
    pub enabled: bool,
}

impl From<&devices::Model> for DeviceFacts {
    /// An unknown mode reads as fixed when the row has an owner, else hot-desk; an unknown
    /// logged-out mode as `Full` (the restricted one); an unknown auto-logout as `Inherit`.
    fn from(d: &devices::Model) -> Self {
        let mode = DeviceMode::parse(&d.mode).unwrap_or(if d.owner_extension_id.is_some() {
            DeviceMode::Fixed
        } else {
            DeviceMode::Hotdesk
        });
        Self {
            id: d.id,
            label: d.label.clone(),
            sip_username: d.sip_username.clone(),
            mode,
            owner_extension_id: d.owner_extension_id,
            location_id: d.location_id,
            location_position: d.location_position,
            location_ring_timeout_secs: positive_u32(d.location_ring_timeout_secs),
            emergency_caller_id: CallerIdParts {
                name: d.emergency_caller_id_name.clone(),
                number: d.emergency_caller_id_number.clone(),
            },
            logged_out_mode: LoggedOutMode::parse(&d.logged_out_mode)
                .unwrap_or(LoggedOutMode::Full),
            placeholder_extension_id: d.placeholder_extension_id,
            auto_logout: AutoLogoutPolicy::from_columns(
                &d.auto_logout,
                d.auto_logout_hours,
                d.auto_logout_at.as_deref(),
                AutoLogoutPolicy::Inherit,
            ),
            home_extension_id: d.home_extension_id,
            last_extension_id: d.last_extension_id,
            enabled: d.enabled,
        }
    }
}

/// A Location as the binding rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationFacts {
    /// Id.
    pub id: Uuid,
    /// Name, e.g. "Office 3".
    pub name: String,
    /// How its devices ring for a signed-in Extension.
    pub ring_strategy: RingStrategy,
    /// Emergency caller ID of the place.
    pub emergency_caller_id: CallerIdParts,
    /// Street address for emergency services.
    pub emergency_address: Option<String>,
    /// Who may sign in.
    pub sign_in_policy: SignInPolicy,
    /// Role keys allowed to sign in when `Listed`.
    pub allowed_roles: BTreeSet<String>,
    /// Extensions allowed to sign in when `Listed` (filled by [`Bindings::from_rows`]).
    pub allowed_extension_ids: BTreeSet<Uuid>,
    /// When sign-ins end by themselves (`Never` for an unreadable policy).
    pub auto_sign_out: AutoLogoutPolicy,
    /// Digits dialled after `*14` to sign in here.
    pub short_code: Option<String>,
}

impl From<&locations::Model> for LocationFacts {
    /// An unknown ring strategy reads as simultaneous; an unknown sign-in policy as `Listed`
    /// (only those explicitly allowed).
    fn from(l: &locations::Model) -> Self {
        Self {
            id: l.id,
            name: l.name.clone(),
            ring_strategy: RingStrategy::parse(&l.ring_strategy)
                .unwrap_or(RingStrategy::Simultaneous),
            emergency_caller_id: CallerIdParts {
                name: l.emergency_caller_id_name.clone(),
                number: l.emergency_caller_id_number.clone(),
            },
            emergency_address: l.emergency_address.clone(),
            sign_in_policy: SignInPolicy::parse(&l.sign_in_policy).unwrap_or(SignInPolicy::Listed),
            allowed_roles: l
                .allowed_roles
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            allowed_extension_ids: BTreeSet::new(),
            auto_sign_out: match AutoLogoutPolicy::from_columns(
                &l.auto_sign_out,
                l.auto_sign_out_hours,
                l.auto_sign_out_at.as_deref(),
                AutoLogoutPolicy::Never,
            ) {
                AutoLogoutPolicy::Inherit => AutoLogoutPolicy::Never,
                policy => policy,
            },
            short_code: l.short_code.clone(),
        }
    }
}

/// How a hot-desk session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOrigin {
    /// A login code (`*11`) dialled on the phone.
    FeatureCode,
    /// The API, by the person (with their PIN).
    Api,
    /// The API, by someone acting for others (`hotdesk.others`).
    Admin,
    /// The phone returned to its home Extension when a visitor logged out.
    Home,
}

impl SessionOrigin {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FeatureCode => "feature_code",
            Self::Api => "api",
            Self::Admin => "admin",
            Self::Home => "home",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "feature_code" => Some(Self::FeatureCode),
            "api" => Some(Self::Api),
            "admin" => Some(Self::Admin),
            "home" => Some(Self::Home),
            _ => None,
        }
    }

    /// How reasons name it: "*11", "API", "admin".
    pub const fn label(self) -> &'static str {
        match self {
            Self::FeatureCode => "*11",
            Self::Api => "API",
            Self::Admin => "admin",
            Self::Home => "return to the home desk",
        }
    }
}

/// An active hot-desk session: an Extension logged in to a hot-desk Device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotdeskSession {
    /// The Device (at most one active session each).
    pub device_id: Uuid,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How it started.
    pub via: SessionOrigin,
}

/// An Extension signed in to a Location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationSignIn {
    /// The Extension (at most one sign-in each).
    pub extension_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// Everything the binding rules know about one Domain at one moment.
///
/// The maps are keyed by the id of their value (sessions by device, sign-ins by Extension), so
/// the one-session-per-device and one-Location-per-Extension invariants hold by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bindings {
    /// The Domain.
    pub domain: DomainFacts,
    /// Its calling settings.
    pub settings: CallingDefaults,
    /// Extensions by id.
    pub extensions: BTreeMap<Uuid, ExtensionFacts>,
    /// Devices by id.
    pub devices: BTreeMap<Uuid, DeviceFacts>,
    /// Locations by id.
    pub locations: BTreeMap<Uuid, LocationFacts>,
    /// Extension groups by id.
    pub groups: BTreeMap<Uuid, GroupFacts>,
    /// Active hot-desk sessions by device id.
    pub sessions: BTreeMap<Uuid, HotdeskSession>,
    /// Location sign-ins by Extension id.
    pub sign_ins: BTreeMap<Uuid, LocationSignIn>,
    /// SIP users known to be registered right now; empty means none or not known yet. Only
    /// presence reads it: the ring plan is the same whether or not phones are registered.
    pub registered: BTreeSet<String>,
}

/// The rows a snapshot is built from, as the services load them.
#[derive(Debug, Clone)]
pub struct SnapshotRows {
    /// The Domain.
    pub domain: domains::Model,
    /// Its calling settings (or `calling_settings::defaults`).
    pub settings: calling_settings::Model,
    /// Its Extensions.
    pub extensions: Vec<extensions::Model>,
    /// Its Devices.
    pub devices: Vec<devices::Model>,
    /// Its Locations.
    pub locations: Vec<locations::Model>,
    /// The Extensions listed on its Locations.
    pub location_extensions: Vec<location_extensions::Model>,
    /// Its Extension groups.
    pub groups: Vec<extension_groups::Model>,
    /// Its active hot-desk sessions.
    pub sessions: Vec<HotdeskSession>,
    /// Its Location sign-ins.
    pub sign_ins: Vec<LocationSignIn>,
    /// Registered SIP users.
    pub registered: BTreeSet<String>,
}

impl Bindings {
    /// Builds the snapshot. Rows of another Domain are dropped; if the rows break an invariant
    /// (two sessions on one device, two sign-ins of one Extension) the latest one wins.
    pub fn from_rows(rows: SnapshotRows) -> Self {
        let domain_id = rows.domain.id;
        let mut locations: BTreeMap<Uuid, LocationFacts> = rows
            .locations
            .iter()
            .filter(|l| l.domain_id == domain_id)
            .map(|l| (l.id, LocationFacts::from(l)))
            .collect();
        for listing in rows
            .location_extensions
            .iter()
            .filter(|r| r.domain_id == domain_id)
        {
            if let Some(l) = locations.get_mut(&listing.location_id) {
                l.allowed_extension_ids.insert(listing.extension_id);
            }
        }
        let mut bindings = Self {
            domain: DomainFacts::from(&rows.domain),
            settings: CallingDefaults::from(&rows.settings),
            extensions: rows
                .extensions
                .iter()
                .filter(|e| e.domain_id == domain_id)
                .map(|e| (e.id, ExtensionFacts::from(e)))
                .collect(),
            devices: rows
                .devices
                .iter()
                .filter(|d| d.domain_id == domain_id)
                .map(|d| (d.id, DeviceFacts::from(d)))
                .collect(),
            locations,
            groups: rows
                .groups
                .iter()
                .filter(|g| g.domain_id == domain_id)
                .map(|g| (g.id, GroupFacts::from(g)))
                .collect(),
            sessions: BTreeMap::new(),
            sign_ins: BTreeMap::new(),
            registered: rows.registered,
        };
        for s in rows.sessions {
            bindings.put_session(s);
        }
        for s in rows.sign_ins {
            bindings.put_sign_in(s);
        }
        bindings
    }

    /// Records a session for a device of this snapshot (the later of two on one device wins).
    pub fn put_session(&mut self, session: HotdeskSession) {
        if !self.devices.contains_key(&session.device_id)
            || !self.extensions.contains_key(&session.extension_id)
        {
            return;
        }
        match self.sessions.get(&session.device_id) {
            Some(existing) if existing.started_at > session.started_at => {}
            _ => {
                self.sessions.insert(session.device_id, session);
            }
        }
    }

    /// Records a sign-in to a Location of this snapshot (the later of two wins).
    pub fn put_sign_in(&mut self, sign_in: LocationSignIn) {
        if !self.locations.contains_key(&sign_in.location_id)
            || !self.extensions.contains_key(&sign_in.extension_id)
        {
            return;
        }
        match self.sign_ins.get(&sign_in.extension_id) {
            Some(existing) if existing.since > sign_in.since => {}
            _ => {
                self.sign_ins.insert(sign_in.extension_id, sign_in);
            }
        }
    }

    /// The Extension with this number (linear: for lookups by number at the edge).
    pub fn extension_by_number(&self, number: &str) -> Option<&ExtensionFacts> {
        self.extensions.values().find(|e| e.number == number)
    }

    /// The Device with this SIP user name, case-insensitively as FreeSWITCH matches users.
    pub fn device_by_sip_user(&self, sip_user: &str) -> Option<&DeviceFacts> {
        self.devices
            .values()
            .find(|d| d.sip_username.eq_ignore_ascii_case(sip_user))
    }

    /// The hot-desk sessions of an Extension, oldest first.
    pub fn sessions_of(&self, extension_id: Uuid) -> Vec<&HotdeskSession> {
        let mut out: Vec<&HotdeskSession> = self
            .sessions
            .values()
            .filter(|s| s.extension_id == extension_id)
            .collect();
        out.sort_by_key(|s| (s.started_at, s.device_id));
        out
    }

    /// The dialplan context of an Extension: its own, else the Domain's SIP domain.
    pub fn context_of(&self, extension: &ExtensionFacts) -> String {
        extension
            .context
            .clone()
            .unwrap_or_else(|| self.domain.sip_domain.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::at;
    use crate::services::{calling_settings as settings_service, devices as device_service};

    const NOW: &str = "2025-03-28T12:00:00Z";

    fn domain(id: Uuid, timezone: &str) -> domains::Model {
        domains::Model {
            id,
            name: "Acme".into(),
            sip_domain: "acme.example.net".into(),
            enabled: true,
            timezone: timezone.into(),
            created_at: at(NOW),
            updated_at: at(NOW),
        }
    }

    fn extension(domain_id: Uuid, id: u128, number: &str) -> extensions::Model {
        extensions::Model {
            id: Uuid::from_u128(id),
            domain_id,
            number: number.into(),
            display_name: format!("Ext {number}"),
            internal_caller_id_name: None,
            internal_caller_id_number: None,
            outbound_caller_id_name: Some("Acme".into()),
            outbound_caller_id_number: Some("+4930123456".into()),
            emergency_caller_id_name: None,
            emergency_caller_id_number: None,
            voicemail_enabled: true,
            pin_hash: Some("argon2id-hash".into()),
            ring_timeout_secs: Some(0),
            dnd: false,
            forward_always_enabled: true,
            forward_always_destination: Some("300".into()),
            forward_busy_enabled: false,
            forward_busy_destination: Some("301".into()),
            forward_no_answer_enabled: false,
            forward_no_answer_destination: None,
            forward_not_registered_enabled: false,
            forward_not_registered_destination: None,
            record_inbound: "always".into(),
            record_outbound: "sometimes".into(),
            context: Some(" ".into()),
            toll_allow: "local".into(),
            account_code: None,
            call_group: None,
            hotdesk_allowed: true,
            placeholder: false,
            placeholder_rings: false,
            internal_allow: None,
            group_id: None,
            sip_registration_enabled: false,
            sip_secret_encrypted: None,
            max_registrations: 3,
            user_id: None,
            enabled: true,
            created_at: at(NOW),
            updated_at: at(NOW),
        }
    }

    fn location(domain_id: Uuid, id: u128) -> locations::Model {
        locations::Model {
            id: Uuid::from_u128(id),
            domain_id,
            name: "Office 3".into(),
            description: String::new(),
            emergency_caller_id_name: Some("Acme 3F".into()),
            emergency_caller_id_number: Some("+4930999".into()),
            emergency_address: None,
            ring_strategy: "sequential".into(),
            sign_in_policy: "listed".into(),
            allowed_roles: serde_json::json!(["receptionist", 7]),
            auto_sign_out: "after_hours".into(),
            auto_sign_out_hours: Some(9),
            auto_sign_out_at: None,
            short_code: Some("3".into()),
            created_at: at(NOW),
            updated_at: at(NOW),
        }
    }

    fn session(device: u128, ext: u128, started: &str) -> HotdeskSession {
        HotdeskSession {
            device_id: Uuid::from_u128(device),
            extension_id: Uuid::from_u128(ext),
            started_at: at(started),
            via: SessionOrigin::Api,
        }
    }

    fn rows() -> SnapshotRows {
        let d = Uuid::from_u128(1);
        let other = Uuid::from_u128(2);
        let mut hot = device_service::new_row(d, at(NOW));
        hot.id = Uuid::from_u128(20);
        hot.label = "Desk 4".into();
        hot.sip_username = "dhot4".into();
        hot.auto_logout = "daily_at".into();
        hot.auto_logout_at = Some("18:00".into());
        hot.location_id = Some(Uuid::from_u128(30));
        hot.location_ring_timeout_secs = Some(15);
        let mut fixed = device_service::new_row(d, at(NOW));
        fixed.id = Uuid::from_u128(21);
        fixed.mode = "shared".into();
        fixed.owner_extension_id = Some(Uuid::from_u128(10));
        fixed.logged_out_mode = "bogus".into();
        let mut foreign = device_service::new_row(other, at(NOW));
        foreign.id = Uuid::from_u128(22);
        let mut settings = settings_service::defaults(d);
        settings.emergency_numbers = "112, 911,".into();
        settings.logged_out_mode = "inherit".into();
        settings.auto_logout = "after_hours".into();
        settings.auto_logout_hours = None;
        settings.default_ring_timeout_secs = -5;
        SnapshotRows {
            domain: domain(d, "Europe/Berlin"),
            settings,
            extensions: vec![
                extension(d, 10, "201"),
                extension(d, 11, "202"),
                extension(other, 12, "203"),
            ],
            devices: vec![hot, fixed, foreign],
            locations: vec![location(d, 30), location(other, 31)],
            location_extensions: vec![
                location_extensions::Model {
                    domain_id: d,
                    location_id: Uuid::from_u128(30),
                    extension_id: Uuid::from_u128(11),
                },
                location_extensions::Model {
                    domain_id: other,
                    location_id: Uuid::from_u128(30),
                    extension_id: Uuid::from_u128(12),
                },
            ],
            groups: Vec::new(),
            sessions: vec![
                session(20, 10, "2025-03-28T08:00:00Z"),
                session(20, 11, "2025-03-28T09:00:00Z"),
                session(20, 10, "2025-03-28T07:00:00Z"),
                session(22, 12, "2025-03-28T09:00:00Z"),
            ],
            sign_ins: vec![LocationSignIn {
                extension_id: Uuid::from_u128(10),
                location_id: Uuid::from_u128(31),
                since: at(NOW),
            }],
            registered: ["dhot4".to_owned()].into(),
        }
    }

    #[test]
    fn rows_of_another_domain_are_dropped() {
        let b = Bindings::from_rows(rows());
        let ids = |m: Vec<&Uuid>| m.into_iter().map(|u| u.as_u128()).collect::<Vec<_>>();
        assert_eq!(ids(b.extensions.keys().collect()), [10, 11]);
        assert_eq!(ids(b.devices.keys().collect()), [20, 21]);
        assert_eq!(ids(b.locations.keys().collect()), [30]);
        assert_eq!(ids(b.sessions.keys().collect()), [20]);
        // The sign-in names another Domain's Location.
        assert!(b.sign_ins.is_empty());
        assert_eq!(
            b.locations
                .get(&Uuid::from_u128(30))
                .map(|l| ids(l.allowed_extension_ids.iter().collect())),
            Some(vec![11])
        );
    }

    #[test]
    fn two_sessions_on_one_device_keep_the_latest() {
        let b = Bindings::from_rows(rows());
        assert_eq!(
            b.sessions
                .get(&Uuid::from_u128(20))
                .map(|s| s.extension_id.as_u128()),
            Some(11)
        );
    }

    #[test]
    fn stored_strings_are_read_with_safe_fallbacks() {
        let b = Bindings::from_rows(rows());
        assert_eq!(b.domain.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(b.settings.logged_out_mode, LoggedOutMode::Full);
        assert_eq!(b.settings.auto_logout, AutoLogoutPolicy::Never);
        assert_eq!(b.settings.default_ring_timeout_secs, 30);
        assert_eq!(b.settings.emergency_numbers, ["112", "911"]);

        let e = &b.extensions[&Uuid::from_u128(10)];
        assert_eq!(e.ring_timeout_secs, None);
        assert_eq!(e.context, None);
        assert_eq!(e.record_inbound, RecordingPolicy::Always);
        assert_eq!(e.record_outbound, RecordingPolicy::Never);
        assert_eq!(e.forward_always.target(), Some("300"));
        assert_eq!(e.forward_busy.target(), None);
        assert_eq!(e.outbound_caller_id.number.as_deref(), Some("+4930123456"));

        let hot = &b.devices[&Uuid::from_u128(20)];
        assert_eq!(hot.mode, DeviceMode::Hotdesk);
        assert_eq!(hot.logged_out_mode, LoggedOutMode::Inherit);
        assert_eq!(
            hot.auto_logout,
            AutoLogoutPolicy::DailyAt {
                at: TimeOfDay {
                    hour: 18,
                    minute: 0
                }
            }
        );
        assert_eq!(hot.location_ring_timeout_secs, Some(15));
        let fixed = &b.devices[&Uuid::from_u128(21)];
        assert_eq!(fixed.mode, DeviceMode::Fixed);
        assert_eq!(fixed.logged_out_mode, LoggedOutMode::Full);

        let l = &b.locations[&Uuid::from_u128(30)];
        assert_eq!(l.ring_strategy, RingStrategy::Sequential);
        assert_eq!(l.sign_in_policy, SignInPolicy::Listed);
        assert_eq!(l.allowed_roles.iter().collect::<Vec<_>>(), ["receptionist"]);
        assert!(b.registered.contains("dhot4"));
    }

    #[test]
    fn an_unknown_time_zone_reads_as_utc() {
        let mut r = rows();
        r.domain = domain(r.domain.id, "Mars/Olympus");
        assert_eq!(Bindings::from_rows(r).domain.time_zone, Tz::UTC);
    }

    #[test]
    fn auto_logout_policies_and_their_fallbacks() {
        let never = AutoLogoutPolicy::Never;
        let cases = [
            ("inherit", None, None, AutoLogoutPolicy::Inherit),
            ("never", Some(3), None, AutoLogoutPolicy::Never),
            (
                "after_hours",
                Some(8),
                None,
                AutoLogoutPolicy::AfterHours { hours: 8 },
            ),
            ("after_hours", Some(0), None, never),
            ("daily_at", None, Some("25:00"), never),
            ("sometimes", None, None, never),
        ];
        for (policy, hours, at, want) in cases {
            assert_eq!(
                AutoLogoutPolicy::from_columns(policy, hours, at, never),
                want,
                "{policy}"
            );
        }
        let daily = AutoLogoutPolicy::DailyAt {
            at: TimeOfDay {
                hour: 18,
                minute: 0,
            },
        };
        let eight = AutoLogoutPolicy::AfterHours { hours: 8 };
        use AutoLogoutPolicy::{Inherit, Never};
        assert_eq!(AutoLogoutPolicy::effective(Inherit, daily), daily);
        assert_eq!(AutoLogoutPolicy::effective(eight, daily), eight);
        assert_eq!(AutoLogoutPolicy::effective(Never, daily), Never);
        assert_eq!(AutoLogoutPolicy::effective(Inherit, Inherit), Never);
        assert_eq!(daily.describe(), "daily at 18:00");
        assert_eq!(eight.describe(), "after 8 hours");
    }

    #[test]
    fn lookups_by_number_and_sip_user() {
        let b = Bindings::from_rows(rows());
        assert_eq!(
            b.extension_by_number("202").map(|e| e.id.as_u128()),
            Some(11)
        );
        assert!(b.extension_by_number("203").is_none());
        assert_eq!(
            b.device_by_sip_user("DHOT4").map(|d| d.id.as_u128()),
            Some(20)
        );
    }
}
