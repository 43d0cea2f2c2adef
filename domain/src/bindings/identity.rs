//! Who is calling: the identity a Device (or an Extension's direct registration) calls with.
//!
//! Identity follows the person, emergency identity follows the place: a fixed device calls as
//! its owner, a hot-desk device as whoever is logged in, and an emergency call carries the
//! emergency caller ID of the Device, else its Location, else the Extension's fallback, else the
//! Domain's. Name and number fall back independently (a Device may name its desk while the
//! Location supplies the number); the number is what emergency services route on.
//!
//! Choices where the issue is silent:
//! - A logged-out hot-desk phone, and a fixed phone whose owner is disabled or gone, still
//!   registers: it gets the restricted context [`LOGGED_OUT_CONTEXT`], so emergency numbers
//!   keep working. A disabled or unknown device has no identity (`None`: not found).
//! - A `full` logout is restricted: no toll-allow classes, so a call that leaks past the
//!   restricted context is still refused by toll checks.
//! - A phone logged out to a placeholder calls as the placeholder, with its context, toll
//!   classes, internal-number list and caller ID: the placeholder is a real, limited Extension,
//!   so an admin decides what a logged-out phone may reach.
//! - What a logout leaves the phone in is decided by who logged out last: their group's logout
//!   action, else the phone's, else the Domain's ([`logout_action`]).
//! - A session of a disabled or deleted Extension is treated as no session (logged out).
//! - `placeholder` mode without an enabled placeholder Extension falls back to `full`.

use serde::Serialize;
use uuid::Uuid;

use super::local_date_time;
use super::ring_plan::ExtensionRef;
use super::snapshot::{Bindings, CallerIdParts, DeviceFacts, ExtensionFacts, SessionOrigin};
use crate::telephony::policy::{DeviceMode, LoggedOutMode, RecordingPolicy};

/// The dialplan context of phones nobody is logged in to: only the login codes and the
/// Domain's emergency numbers are allowed there (served by the dialplan endpoint).
pub const LOGGED_OUT_CONTEXT: &str = "switchboard-logged-out";

/// How the device came by its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IdentityBinding {
    /// An Extension registered with its own credentials.
    DirectRegistration,
    /// A fixed device, calling as its owner.
    Fixed,
    /// A hot-desk device, calling as the Extension logged in.
    HotdeskSession {
        /// Since when.
        started_at: chrono::DateTime<chrono::Utc>,
        /// How the session started.
        via: SessionOrigin,
    },
    /// A logged-out hot-desk device in `full` mode: no Extension identity.
    LoggedOutFull,
    /// A logged-out hot-desk device in `placeholder` mode.
    LoggedOutPlaceholder,
    /// A fixed device whose owner is disabled or missing: emergency calls only.
    OwnerUnavailable,
}

/// Caller IDs with their fallbacks applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerIds {
    /// Internal caller ID name (default: the display name).
    pub internal_name: String,
    /// Internal caller ID number (default: the number).
    pub internal_number: String,
    /// Outbound caller ID name, as configured.
    pub outbound_name: Option<String>,
    /// Outbound caller ID number, as configured.
    pub outbound_number: Option<String>,
}

/// Which level an emergency caller ID came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencySource {
    /// The Device.
    Device,
    /// The Device's Location.
    Location,
    /// The effective Extension's fallback.
    Extension,
    /// The Domain's calling settings.
    Domain,
}

/// The emergency caller ID, each part from the first level that has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EmergencyCallerId {
    /// Name.
    pub name: Option<String>,
    /// Number.
    pub number: Option<String>,
    /// Where the name came from.
    pub name_from: Option<EmergencySource>,
    /// Where the number came from.
    pub number_from: Option<EmergencySource>,
}

pub(crate) fn recording_name<S: serde::Serializer>(
    p: &RecordingPolicy,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.as_str())
}

/// The identity a phone calls with: what the directory puts in the user's variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallingIdentity {
    /// The device (none for an Extension's direct registration).
    pub device_id: Option<Uuid>,
    /// How the identity was found.
    pub binding: IdentityBinding,
    /// The Extension it calls as (`switchboard_extension`), if any.
    pub effective_extension: Option<ExtensionRef>,
    /// Caller IDs, if it calls as an Extension.
    pub caller_id: Option<CallerIds>,
    /// Dialplan context (`user_context`).
    pub context: String,
    /// True in the restricted logged-out context.
    pub restricted: bool,
    /// Toll-allow classes, comma-separated (empty when restricted).
    pub toll_allow: String,
    /// Account code.
    pub account_code: Option<String>,
    /// Call group.
    pub call_group: Option<String>,
    /// Recording of inbound calls.
    #[serde(serialize_with = "recording_name")]
    pub record_inbound: RecordingPolicy,
    /// Recording of outbound calls.
    #[serde(serialize_with = "recording_name")]
    pub record_outbound: RecordingPolicy,
    /// `<number>@<sip domain>` of the effective Extension.
    pub presence_id: Option<String>,
    /// The mailbox whose message-waiting lamp the phone shows (`mwi-account` is
    /// `<mailbox>@<sip domain>`).
    pub mailbox: Option<String>,
    /// Emergency caller ID.
    pub emergency_caller_id: EmergencyCallerId,
    /// For people: "hot-desk session of 201 Alice since 2025-03-28 09:02 via *11".
    pub reason: String,
}

/// Picks name and number independently from the first level that has each.
fn emergency(levels: &[(EmergencySource, &CallerIdParts)]) -> EmergencyCallerId {
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let name = levels.iter().find(|(_, p)| present(&p.name));
    let number = levels.iter().find(|(_, p)| present(&p.number));
    EmergencyCallerId {
        name: name.and_then(|(_, p)| p.name.clone()),
        number: number.and_then(|(_, p)| p.number.clone()),
        name_from: name.map(|(s, _)| *s),
        number_from: number.map(|(s, _)| *s),
    }
}

/// The emergency levels of a device: Device, its Location, then (if any) the Extension, Domain.
fn emergency_for(
    b: &Bindings,
    device: Option<&DeviceFacts>,
    extension: Option<&ExtensionFacts>,
) -> EmergencyCallerId {
    let mut levels: Vec<(EmergencySource, &CallerIdParts)> = Vec::with_capacity(4);
    if let Some(d) = device {
        levels.push((EmergencySource::Device, &d.emergency_caller_id));
        if let Some(l) = d.location_id.and_then(|id| b.locations.get(&id)) {
            levels.push((EmergencySource::Location, &l.emergency_caller_id));
        }
    }
    if let Some(e) = extension {
        levels.push((EmergencySource::Extension, &e.emergency_caller_id));
    }
    levels.push((EmergencySource::Domain, &b.settings.emergency_caller_id));
    emergency(&levels)
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

/// The caller IDs of an Extension, with the internal ones defaulted.
pub fn caller_ids(e: &ExtensionFacts) -> CallerIds {
    CallerIds {
        internal_name: non_empty(&e.internal_caller_id.name)
            .unwrap_or_else(|| e.display_name.clone()),
        internal_number: non_empty(&e.internal_caller_id.number)
            .unwrap_or_else(|| e.number.clone()),
        outbound_name: non_empty(&e.outbound_caller_id.name),
        outbound_number: non_empty(&e.outbound_caller_id.number),
    }
}

fn describe(e: &ExtensionFacts) -> String {
    format!("{} {}", e.number, e.display_name)
}

/// The full identity of an Extension (context restricted when `restricted`).
fn as_extension(
    b: &Bindings,
    device: Option<&DeviceFacts>,
    e: &ExtensionFacts,
    binding: IdentityBinding,
    restricted: bool,
    reason: String,
) -> CallingIdentity {
    CallingIdentity {
        device_id: device.map(|d| d.id),
        binding,
        effective_extension: Some(ExtensionRef::from(e)),
        caller_id: Some(caller_ids(e)),
        context: if restricted {
            LOGGED_OUT_CONTEXT.to_owned()
        } else {
            b.context_of(e)
        },
        restricted,
        toll_allow: if restricted {
            String::new()
        } else {
            e.toll_allow.clone()
        },
        account_code: e.account_code.clone(),
        call_group: e.call_group.clone(),
        record_inbound: e.record_inbound,
        record_outbound: e.record_outbound,
        presence_id: Some(format!("{}@{}", e.number, b.domain.sip_domain)),
        mailbox: e.voicemail_enabled.then(|| e.number.clone()),
        emergency_caller_id: emergency_for(b, device, Some(e)),
        reason,
    }
}

/// The identity of a phone without an Extension: restricted context, emergency calls only.
fn anonymous(
    b: &Bindings,
    device: &DeviceFacts,
    binding: IdentityBinding,
    reason: String,
) -> CallingIdentity {
    CallingIdentity {
        device_id: Some(device.id),
        binding,
        effective_extension: None,
        caller_id: None,
        context: LOGGED_OUT_CONTEXT.to_owned(),
        restricted: true,
        toll_allow: String::new(),
        account_code: None,
        call_group: None,
        record_inbound: RecordingPolicy::Never,
        record_outbound: RecordingPolicy::Never,
        presence_id: None,
        mailbox: None,
        emergency_caller_id: emergency_for(b, Some(device), None),
        reason,
    }
}

fn enabled_extension(b: &Bindings, id: Option<Uuid>) -> Option<&ExtensionFacts> {
    id.and_then(|id| b.extensions.get(&id))
        .filter(|e| e.enabled)
}

/// The identity a Device calls with; `None` for an unknown or disabled device.
pub fn calling_identity(bindings: &Bindings, device_id: Uuid) -> Option<CallingIdentity> {
    let b = bindings;
    let device = b.devices.get(&device_id).filter(|d| d.enabled)?;
    Some(match device.mode {
        DeviceMode::Fixed => match enabled_extension(b, device.owner_extension_id) {
            Some(owner) => as_extension(
                b,
                Some(device),
                owner,
                IdentityBinding::Fixed,
                false,
                format!("fixed device of {}", describe(owner)),
            ),
            None => anonymous(
                b,
                device,
                IdentityBinding::OwnerUnavailable,
                "fixed device without an enabled owner: emergency numbers only".to_owned(),
            ),
        },
        DeviceMode::Hotdesk => {
            let session = b
                .sessions
                .get(&device.id)
                .and_then(|s| enabled_extension(b, Some(s.extension_id)).map(|e| (s, e)));
            match session {
                Some((s, e)) => as_extension(
                    b,
                    Some(device),
                    e,
                    IdentityBinding::HotdeskSession {
                        started_at: s.started_at,
                        via: s.via,
                    },
                    false,
                    format!(
                        "hot-desk session of {} since {} via {}",
                        describe(e),
                        local_date_time(s.started_at, b.domain.time_zone),
                        s.via.label()
                    ),
                ),
                None => logged_out(b, device),
            }
        }
    })
}

/// Where a logout action comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionSource {
    /// The group of whoever logged out last.
    Group {
        /// The group.
        id: Uuid,
        /// Its name.
        name: String,
    },
    /// The phone's own setting.
    Device,
    /// The Domain's calling settings.
    Domain,
}

impl ActionSource {
    fn describe(&self) -> String {
        match self {
            Self::Group { name, .. } => format!("group {name}"),
            Self::Device => "the phone's setting".to_owned(),
            Self::Domain => "the Domain's setting".to_owned(),
        }
    }
}

/// What a hot-desk phone nobody is logged in to is left in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutAction {
    /// `Full` or `Placeholder`, never `Inherit`.
    pub mode: LoggedOutMode,
    /// The placeholder for `Placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Which level decided.
    pub from: ActionSource,
}

/// The logout action of a phone after `last` logged out of it: the group of `last` when it
/// says `full` or `placeholder`, else the phone's own mode, else the Domain's.
pub fn logout_action(b: &Bindings, device: &DeviceFacts, last: Option<Uuid>) -> LogoutAction {
    let group = last
        .and_then(|id| b.extensions.get(&id))
        .and_then(|e| e.group_id)
        .and_then(|id| b.groups.get(&id))
        .filter(|g| g.logged_out_mode != LoggedOutMode::Inherit);
    if let Some(g) = group {
        return LogoutAction {
            mode: g.logged_out_mode,
            placeholder_extension_id: g.placeholder_extension_id,
            from: ActionSource::Group {
                id: g.id,
                name: g.name.clone(),
            },
        };
    }
    match device.logged_out_mode {
        LoggedOutMode::Inherit => LogoutAction {
            mode: b.settings.logged_out_mode,
            placeholder_extension_id: b.settings.placeholder_extension_id,
            from: ActionSource::Domain,
        },
        mode => LogoutAction {
            mode,
            placeholder_extension_id: device
                .placeholder_extension_id
                .or(b.settings.placeholder_extension_id),
            from: ActionSource::Device,
        },
    }
}

/// The placeholder a logged-out hot-desk phone calls as, if its logout action names one that
/// is in service.
pub fn logged_out_placeholder<'a>(
    b: &'a Bindings,
    device: &DeviceFacts,
) -> Option<&'a ExtensionFacts> {
    let action = logout_action(b, device, device.last_extension_id);
    (action.mode == LoggedOutMode::Placeholder)
        .then(|| enabled_extension(b, action.placeholder_extension_id))
        .flatten()
}

/// A logged-out hot-desk device, by its logout action.
fn logged_out(b: &Bindings, device: &DeviceFacts) -> CallingIdentity {
    let action = logout_action(b, device, device.last_extension_id);
    let from = action.from.describe();
    if action.mode == LoggedOutMode::Placeholder {
        if let Some(p) = enabled_extension(b, action.placeholder_extension_id) {
            return as_extension(
                b,
                Some(device),
                p,
                IdentityBinding::LoggedOutPlaceholder,
                false,
                format!(
                    "logged out to the placeholder {} ({from}): calls as the placeholder",
                    describe(p)
                ),
            );
        }
        return anonymous(
            b,
            device,
            IdentityBinding::LoggedOutFull,
            format!(
                "logged out (placeholder unavailable, so full; {from}): login codes and emergency numbers only"
            ),
        );
    }
    anonymous(
        b,
        device,
        IdentityBinding::LoggedOutFull,
        format!("logged out (full; {from}): login codes and emergency numbers only"),
    )
}

/// The identity of an Extension's direct registration; `None` when it is unknown, disabled, or
/// not allowed to register directly.
pub fn extension_identity(bindings: &Bindings, extension_id: Uuid) -> Option<CallingIdentity> {
    let e =
        enabled_extension(bindings, Some(extension_id)).filter(|e| e.sip_registration_enabled)?;
    Some(as_extension(
        bindings,
        None,
        e,
        IdentityBinding::DirectRegistration,
        false,
        format!("direct registration of {}", describe(e)),
    ))
}

/// The identity an enabled Extension calls with wherever it places a call that is not from a
/// phone of its own (a forward it set, the call explanation): like a direct registration, but
/// whether it may register is beside the point.
pub fn extension_as_caller(bindings: &Bindings, extension_id: Uuid) -> Option<CallingIdentity> {
    let e = enabled_extension(bindings, Some(extension_id))?;
    Some(as_extension(
        bindings,
        None,
        e,
        IdentityBinding::DirectRegistration,
        false,
        format!("{} itself", describe(e)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::Kit;

    /// The parts of an identity a table compares: binding, extension number, internal caller
    /// ID, outbound number, context, toll allow, presence id, mailbox, reason.
    fn summary(i: &CallingIdentity) -> String {
        format!(
            "{:?} | ext {} | cid {} | out {} | ctx {} | toll {:?} | presence {} | mwi {} | {}",
            i.binding,
            i.effective_extension
                .as_ref()
                .map_or("-", |e| e.number.as_str()),
            i.caller_id.as_ref().map_or("-".into(), |c| format!(
                "{} <{}>",
                c.internal_name, c.internal_number
            )),
            i.caller_id
                .as_ref()
                .and_then(|c| c.outbound_number.as_deref())
                .unwrap_or("-"),
            i.context,
            i.toll_allow,
            i.presence_id.as_deref().unwrap_or("-"),
            i.mailbox.as_deref().unwrap_or("-"),
            i.reason,
        )
    }

    struct Case {
        name: &'static str,
        /// Builds the Domain; returns the device asked about.
        setup: fn(&mut Kit) -> Uuid,
        want: Option<&'static str>,
    }

    fn alice(k: &mut Kit) -> Uuid {
        let a = k.ext("201", "Alice");
        k.ext_mut(a).outbound_caller_id.number = Some("+4930123456".into());
        a
    }

    fn lobby(k: &mut Kit) -> Uuid {
        let p = k.ext("299", "Lobby");
        k.ext_mut(p).placeholder = true;
        k.ext_mut(p).voicemail_enabled = false;
        p
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "fixed: the owner, with caller ID fallbacks",
                setup: |k| {
                    let a = alice(k);
                    k.fixed("Office", "dfix1", a)
                },
                want: Some(
                    r#"Fixed | ext 201 | cid Alice <201> | out +4930123456 | ctx acme.example.net | toll "local,domestic" | presence 201@acme.example.net | mwi 201 | fixed device of 201 Alice"#,
                ),
            },
            Case {
                name: "fixed: configured internal caller ID and context, no voicemail",
                setup: |k| {
                    let a = alice(k);
                    let e = k.ext_mut(a);
                    e.internal_caller_id.name = Some("Alice (Sales)".into());
                    e.internal_caller_id.number = Some("2010".into());
                    e.context = Some("acme-sales".into());
                    e.voicemail_enabled = false;
                    k.fixed("Office", "dfix1", a)
                },
                want: Some(
                    r#"Fixed | ext 201 | cid Alice (Sales) <2010> | out +4930123456 | ctx acme-sales | toll "local,domestic" | presence 201@acme.example.net | mwi - | fixed device of 201 Alice"#,
                ),
            },
            Case {
                name: "fixed whose owner is disabled: emergency only",
                setup: |k| {
                    let a = alice(k);
                    k.ext_mut(a).enabled = false;
                    k.fixed("Office", "dfix1", a)
                },
                want: Some(
                    r#"OwnerUnavailable | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | fixed device without an enabled owner: emergency numbers only"#,
                ),
            },
            Case {
                name: "hot-desk logged in: the person logged in",
                setup: |k| {
                    let a = alice(k);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, a, "2025-03-28T08:02:00Z", SessionOrigin::FeatureCode);
                    d
                },
                want: Some(
                    r#"HotdeskSession { started_at: 2025-03-28T08:02:00Z, via: FeatureCode } | ext 201 | cid Alice <201> | out +4930123456 | ctx acme.example.net | toll "local,domestic" | presence 201@acme.example.net | mwi 201 | hot-desk session of 201 Alice since 2025-03-28 09:02 via *11"#,
                ),
            },
            Case {
                name: "hot-desk logged out, inheriting full",
                setup: |k| k.hotdesk("Desk 4", "dhot4"),
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (full; the Domain's setting): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "hot-desk logged out, inheriting placeholder",
                setup: |k| {
                    let p = lobby(k);
                    k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    k.hotdesk("Desk 4", "dhot4")
                },
                want: Some(
                    r#"LoggedOutPlaceholder | ext 299 | cid Lobby <299> | out - | ctx acme.example.net | toll "local,domestic" | presence 299@acme.example.net | mwi - | logged out to the placeholder 299 Lobby (the Domain's setting): calls as the placeholder"#,
                ),
            },
            Case {
                name: "hot-desk logged out, device says placeholder with its own",
                setup: |k| {
                    let p = lobby(k);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.device_mut(d).logged_out_mode = LoggedOutMode::Placeholder;
                    k.device_mut(d).placeholder_extension_id = Some(p);
                    d
                },
                want: Some(
                    r#"LoggedOutPlaceholder | ext 299 | cid Lobby <299> | out - | ctx acme.example.net | toll "local,domestic" | presence 299@acme.example.net | mwi - | logged out to the placeholder 299 Lobby (the phone's setting): calls as the placeholder"#,
                ),
            },
            Case {
                name: "hot-desk logged out, device says full although the Domain says placeholder",
                setup: |k| {
                    let p = lobby(k);
                    k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.device_mut(d).logged_out_mode = LoggedOutMode::Full;
                    d
                },
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (full; the phone's setting): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "placeholder disabled: full",
                setup: |k| {
                    let p = lobby(k);
                    k.ext_mut(p).enabled = false;
                    k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    k.hotdesk("Desk 4", "dhot4")
                },
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (placeholder unavailable, so full; the Domain's setting): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "the group of whoever logged out last decides over the phone",
                setup: |k| {
                    let p = lobby(k);
                    let visitor = k.ext("250", "Vera");
                    let g = k.group("Visitors", LoggedOutMode::Placeholder, Some(p));
                    k.ext_mut(visitor).group_id = Some(g);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.device_mut(d).logged_out_mode = LoggedOutMode::Full;
                    k.device_mut(d).last_extension_id = Some(visitor);
                    d
                },
                want: Some(
                    r#"LoggedOutPlaceholder | ext 299 | cid Lobby <299> | out - | ctx acme.example.net | toll "local,domestic" | presence 299@acme.example.net | mwi - | logged out to the placeholder 299 Lobby (group Visitors): calls as the placeholder"#,
                ),
            },
            Case {
                name: "a group that inherits leaves it to the phone",
                setup: |k| {
                    let p = lobby(k);
                    let staff = k.ext("251", "Sam");
                    let g = k.group("Staff", LoggedOutMode::Inherit, None);
                    k.ext_mut(staff).group_id = Some(g);
                    k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.device_mut(d).logged_out_mode = LoggedOutMode::Full;
                    k.device_mut(d).last_extension_id = Some(staff);
                    d
                },
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (full; the phone's setting): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "a group saying full wins over the Domain's placeholder",
                setup: |k| {
                    let p = lobby(k);
                    let guest = k.ext("252", "Gus");
                    let g = k.group("Guests", LoggedOutMode::Full, None);
                    k.ext_mut(guest).group_id = Some(g);
                    k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.device_mut(d).last_extension_id = Some(guest);
                    d
                },
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (full; group Guests): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "a session of a disabled Extension counts as logged out",
                setup: |k| {
                    let a = alice(k);
                    k.ext_mut(a).enabled = false;
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, a, "2025-03-28T08:02:00Z", SessionOrigin::Api);
                    d
                },
                want: Some(
                    r#"LoggedOutFull | ext - | cid - | out - | ctx switchboard-logged-out | toll "" | presence - | mwi - | logged out (full; the Domain's setting): login codes and emergency numbers only"#,
                ),
            },
            Case {
                name: "disabled device: none",
                setup: |k| {
                    let a = alice(k);
                    let d = k.fixed("Office", "dfix1", a);
                    k.device_mut(d).enabled = false;
                    d
                },
                want: None,
            },
            Case {
                name: "unknown device: none",
                setup: |_| Uuid::from_u128(99),
                want: None,
            },
        ]
    }

    #[test]
    fn every_binding_gives_the_expected_identity() {
        let mut failures = Vec::new();
        for case in cases() {
            let mut kit = Kit::new();
            let device = (case.setup)(&mut kit);
            let got = calling_identity(&kit.b, device).map(|i| summary(&i));
            if got.as_deref() != case.want {
                failures.push(format!(
                    "{}:\n  got  {got:?}\n  want {:?}",
                    case.name, case.want
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn identity_carries_account_code_call_group_recording_and_extension_ref() {
        let mut kit = Kit::new();
        let a = alice(&mut kit);
        let e = kit.ext_mut(a);
        e.account_code = Some("sales".into());
        e.call_group = Some("support".into());
        e.record_outbound = RecordingPolicy::Always;
        let d = kit.fixed("Office", "dfix1", a);
        let i = calling_identity(&kit.b, d);
        assert_eq!(
            i.as_ref().and_then(|i| i.account_code.as_deref()),
            Some("sales")
        );
        assert_eq!(
            i.as_ref().and_then(|i| i.call_group.as_deref()),
            Some("support")
        );
        assert_eq!(
            i.as_ref().map(|i| i.record_outbound),
            Some(RecordingPolicy::Always)
        );
        assert_eq!(
            i.as_ref().map(|i| i.record_inbound),
            Some(RecordingPolicy::Never)
        );
        assert_eq!(
            i.and_then(|i| i.effective_extension),
            Some(ExtensionRef {
                id: a,
                number: "201".into()
            })
        );
    }

    /// Emergency levels as (device, location, extension, domain); `N` = name only,
    /// `#` = number only, `B` = both, `-` = neither.
    #[test]
    fn emergency_caller_id_falls_back_device_location_extension_domain() {
        use EmergencySource::{Device, Domain, Extension, Location};
        let cases: [(&str, bool, Option<EmergencySource>, Option<EmergencySource>); 8] = [
            ("BBBB", true, Some(Device), Some(Device)),
            ("-BBB", true, Some(Location), Some(Location)),
            ("--BB", true, Some(Extension), Some(Extension)),
            ("---B", true, Some(Domain), Some(Domain)),
            ("----", true, None, None),
            ("N#--", true, Some(Device), Some(Location)),
            ("#N--", true, Some(Location), Some(Device)),
            // Logged out: no Extension level.
            ("--BB", false, Some(Domain), Some(Domain)),
        ];
        for (levels, logged_in, name_from, number_from) in cases {
            let mut k = Kit::new();
            let a = k.ext("201", "Alice");
            let l = k.location(
                "Office 3",
                crate::telephony::policy::RingStrategy::Simultaneous,
            );
            let d = k.hotdesk("Desk 4", "dhot4");
            k.place(d, l, 0, None);
            if logged_in {
                k.login(d, a, "2025-03-28T08:00:00Z", SessionOrigin::Api);
            }
            let parts = |c: u8, tag: &str| CallerIdParts {
                name: matches!(c, b'N' | b'B').then(|| format!("{tag} name")),
                number: matches!(c, b'#' | b'B').then(|| format!("{tag} number")),
            };
            let l4: Vec<u8> = levels.bytes().collect();
            k.device_mut(d).emergency_caller_id = parts(l4[0], "device");
            if let Some(loc) = k.b.locations.get_mut(&l) {
                loc.emergency_caller_id = parts(l4[1], "location");
            }
            k.ext_mut(a).emergency_caller_id = parts(l4[2], "extension");
            k.b.settings.emergency_caller_id = parts(l4[3], "domain");
            let got = calling_identity(&k.b, d).map(|i| i.emergency_caller_id);
            assert_eq!(
                got.as_ref().map(|e| (e.name_from, e.number_from)),
                Some((name_from, number_from)),
                "{levels} logged in: {logged_in}"
            );
            let tag = |s: Option<EmergencySource>| match s {
                Some(Device) => "device",
                Some(Location) => "location",
                Some(Extension) => "extension",
                Some(Domain) => "domain",
                None => "",
            };
            let want_name = name_from.map(|s| format!("{} name", tag(Some(s))));
            let want_number = number_from.map(|s| format!("{} number", tag(Some(s))));
            assert_eq!(
                got.map(|e| (e.name, e.number)),
                Some((want_name, want_number)),
                "{levels}"
            );
        }
    }

    #[test]
    fn a_placeholder_identity_uses_the_placeholder_s_emergency_fallback() {
        let mut k = Kit::new();
        let p = lobby(&mut k);
        k.ext_mut(p).emergency_caller_id.number = Some("+4930111".into());
        k.b.settings.emergency_caller_id.number = Some("+4930000".into());
        k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
        k.b.settings.placeholder_extension_id = Some(p);
        let d = k.hotdesk("Desk 4", "dhot4");
        let e = calling_identity(&k.b, d).map(|i| i.emergency_caller_id);
        assert_eq!(
            e.map(|e| (e.number, e.number_from)),
            Some((Some("+4930111".into()), Some(EmergencySource::Extension)))
        );
    }

    #[test]
    fn direct_registration_identity() {
        let mut k = Kit::new();
        let a = alice(&mut k);
        assert_eq!(extension_identity(&k.b, a), None, "not allowed to register");
        k.ext_mut(a).sip_registration_enabled = true;
        k.b.settings.emergency_caller_id.number = Some("+4930000".into());
        let i = extension_identity(&k.b, a);
        assert_eq!(
            i.as_ref().map(summary).as_deref(),
            Some(
                r#"DirectRegistration | ext 201 | cid Alice <201> | out +4930123456 | ctx acme.example.net | toll "local,domestic" | presence 201@acme.example.net | mwi 201 | direct registration of 201 Alice"#
            )
        );
        assert_eq!(
            i.map(|i| (i.device_id, i.emergency_caller_id.number_from)),
            Some((None, Some(EmergencySource::Domain)))
        );
        k.ext_mut(a).enabled = false;
        assert_eq!(extension_identity(&k.b, a), None, "disabled");
    }
}
