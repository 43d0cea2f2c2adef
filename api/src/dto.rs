//! Response shapes shared by several resources.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::store::{domains, users};
use utoipa::ToSchema;
use uuid::Uuid;

/// A Domain (tenant).
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainDto {
    /// Id.
    pub id: Uuid,
    /// Display name.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// The FreeSWITCH SIP domain (lower-case FQDN, unique platform-wide).
    #[schema(example = "acme.pbx.example.net")]
    pub sip_domain: String,
    /// Whether the Domain is in service.
    pub enabled: bool,
    /// IANA time zone.
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<domains::Model> for DomainDto {
    fn from(d: domains::Model) -> Self {
        Self {
            id: d.id,
            name: d.name,
            sip_domain: d.sip_domain,
            enabled: d.enabled,
            timezone: d.timezone,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A user's account status.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Can log in.
    Active,
    /// Cannot log in; sessions ended.
    Disabled,
    /// Created without a password; waits for the set-password token to be used.
    Invited,
}

impl UserStatus {
    /// Parses the stored value.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "invited" => Self::Invited,
            _ => Self::Disabled,
        }
    }
}

/// A dashboard user (a login, not an Extension).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDto {
    /// Id.
    pub id: Uuid,
    /// Email (lower-cased), the login name.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name.
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    /// Account status.
    pub status: UserStatus,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<users::Model> for UserDto {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            status: UserStatus::from_stored(&u.status),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// A role as held by someone.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleRef {
    /// A built-in role name (e.g. `manager`) or a custom role's id.
    #[schema(example = "manager")]
    pub key: String,
    /// The role's name.
    #[schema(example = "manager")]
    pub name: String,
}

/// `?force=true` on a deletion that is otherwise refused while something depends on the target.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForceQuery {
    /// Delete anyway, removing what depends on it in the same transaction.
    #[serde(default)]
    pub force: bool,
}

/// For optional input fields that cannot be cleared: absent is `None` (with
/// `#[serde(default)]`), but an explicit `null` is refused (422 naming the field) instead of
/// being read as "no change".
pub fn non_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// How a Device binds its identity: to its owner (`fixed`) or to whoever is logged in
/// (`hotdesk`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceMode {
    /// Bound to its owner Extension.
    Fixed,
    /// Bound to whoever is logged in.
    Hotdesk,
}

/// What a logged-out hot-desk phone does: only login codes and emergency numbers (`full`), or
/// acts as the placeholder Extension (`placeholder`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoggedOutMode {
    /// Login codes and emergency numbers only.
    Full,
    /// Calls as the placeholder Extension.
    Placeholder,
}

/// A Device's logged-out mode: the Domain's (`inherit`) or its own.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceLoggedOutMode {
    /// The Domain's setting.
    Inherit,
    /// Login codes and emergency numbers only.
    Full,
    /// Calls as the placeholder Extension.
    Placeholder,
}

/// When hot-desk sessions end by themselves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutoLogout {
    /// Never.
    Never,
    /// A number of hours after login.
    AfterHours,
    /// Every day at a time of day.
    DailyAt,
}

/// A Device's auto-logout: the Domain's (`inherit`) or its own.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAutoLogout {
    /// The Domain's setting.
    Inherit,
    /// Never.
    Never,
    /// A number of hours after login.
    AfterHours,
    /// Every day at a time of day.
    DailyAt,
}

/// When sign-ins to a Location end by themselves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationAutoSignOut {
    /// Never.
    Never,
    /// A number of hours after signing in.
    AfterHours,
    /// Every day at a time of day (the Domain's time zone).
    DailyAt,
}

/// How a Location's devices ring.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RingStrategy {
    /// All at once.
    Simultaneous,
    /// In ring order, each for its ring timeout.
    Sequential,
}

/// Who may sign in to a Location.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignInPolicy {
    /// Any Extension of the Domain.
    Everyone,
    /// Only the allowed Extensions and roles.
    Listed,
}

/// What a person set as their presence.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// Available.
    Available,
    /// Away.
    Away,
    /// Do-Not-Disturb (the Extension's DND switch).
    Dnd,
}

/// What a phone (or the phones of an Extension) does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TelephoneStatus {
    /// Not registered.
    Offline,
    /// Registered and idle.
    Available,
    /// Ringing.
    Ringing,
    /// In a call.
    InCall,
}

/// When calls are recorded.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Every call.
    Always,
    /// No call.
    Never,
    /// While either side asks for it: `*2` starts the recording, `*2` again stops it.
    OnDemand,
}

impl From<switchboard_domain::telephony::policy::RecordingPolicy> for RecordingMode {
    fn from(p: switchboard_domain::telephony::policy::RecordingPolicy) -> Self {
        use switchboard_domain::telephony::policy::RecordingPolicy as P;
        match p {
            P::Always => Self::Always,
            P::Never => Self::Never,
            P::OnDemand => Self::OnDemand,
        }
    }
}

/// How a hot-desk session started.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionOrigin {
    /// The login feature code on the phone (`*11`).
    FeatureCode,
    /// The person, through the API, with the PIN.
    Api,
    /// An administrator (`hotdesk.others`).
    Admin,
    /// The phone returned to its home Extension when a visitor logged out.
    Home,
}
