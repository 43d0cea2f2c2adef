//! Test fixtures: a small Domain in Europe/Berlin built fact by fact.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::snapshot::{
    AutoLogoutPolicy, Bindings, CallerIdParts, CallingDefaults, DeviceFacts, DomainFacts,
    ExtensionFacts, Forward, HotdeskSession, LocationFacts, LocationSignIn, SessionOrigin,
};
use crate::telephony::policy::{
    DeviceMode, LoggedOutMode, RecordingPolicy, RingStrategy, SignInPolicy,
};

/// The SIP domain of the test Domain.
pub const SIP_DOMAIN: &str = "acme.example.net";

/// An instant from RFC 3339 text.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Builds a snapshot fact by fact, with readable ids.
#[derive(Debug)]
pub struct Kit {
    pub b: Bindings,
    next: u128,
}

impl Default for Kit {
    fn default() -> Self {
        Self::new()
    }
}

impl Kit {
    /// An empty Domain: Europe/Berlin, logged-out mode full, 30 s ring timeout.
    pub fn new() -> Self {
        Self {
            b: Bindings {
                domain: DomainFacts {
                    id: Uuid::from_u128(1),
                    sip_domain: SIP_DOMAIN.to_owned(),
                    time_zone: chrono_tz::Europe::Berlin,
                },
                settings: CallingDefaults {
                    logged_out_mode: LoggedOutMode::Full,
                    placeholder_extension_id: None,
                    one_phone_at_a_time: true,
                    auto_logout: AutoLogoutPolicy::Never,
                    emergency_caller_id: CallerIdParts::default(),
                    emergency_numbers: vec!["112".into()],
                    default_ring_timeout_secs: 30,
                },
                extensions: BTreeMap::new(),
                devices: BTreeMap::new(),
                locations: BTreeMap::new(),
                groups: BTreeMap::new(),
                sessions: BTreeMap::new(),
                sign_ins: BTreeMap::new(),
                registered: BTreeSet::new(),
            },
            next: 100,
        }
    }

    fn id(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }

    /// An enabled Extension with voicemail on and everything else default.
    pub fn ext(&mut self, number: &str, name: &str) -> Uuid {
        let id = self.id();
        self.b.extensions.insert(
            id,
            ExtensionFacts {
                id,
                number: number.into(),
                display_name: name.into(),
                internal_caller_id: CallerIdParts::default(),
                outbound_caller_id: CallerIdParts::default(),
                emergency_caller_id: CallerIdParts::default(),
                voicemail_enabled: true,
                ring_timeout_secs: None,
                dnd: false,
                forward_always: Forward::default(),
                forward_busy: Forward::default(),
                forward_no_answer: Forward::default(),
                forward_not_registered: Forward::default(),
                record_inbound: RecordingPolicy::Never,
                record_outbound: RecordingPolicy::Never,
                context: None,
                toll_allow: "local,domestic".into(),
                account_code: None,
                call_group: None,
                hotdesk_allowed: true,
                placeholder: false,
                placeholder_rings: false,
                internal_allow: None,
                group_id: None,
                sip_registration_enabled: false,
                max_registrations: 3,
                enabled: true,
            },
        );
        id
    }

    /// A group with a logout action.
    pub fn group(&mut self, name: &str, mode: LoggedOutMode, placeholder: Option<Uuid>) -> Uuid {
        let id = self.id();
        self.b.groups.insert(
            id,
            super::snapshot::GroupFacts {
                id,
                name: name.into(),
                logged_out_mode: mode,
                placeholder_extension_id: placeholder,
            },
        );
        id
    }

    /// Changes an Extension.
    pub fn ext_mut(&mut self, id: Uuid) -> &mut ExtensionFacts {
        self.b
            .extensions
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no extension {id}"))
    }

    fn device(&mut self, label: &str, sip: &str, mode: DeviceMode, owner: Option<Uuid>) -> Uuid {
        let id = self.id();
        self.b.devices.insert(
            id,
            DeviceFacts {
                id,
                label: label.into(),
                sip_username: sip.into(),
                mode,
                owner_extension_id: owner,
                location_id: None,
                location_position: 0,
                location_ring_timeout_secs: None,
                emergency_caller_id: CallerIdParts::default(),
                logged_out_mode: LoggedOutMode::Inherit,
                placeholder_extension_id: None,
                auto_logout: AutoLogoutPolicy::Inherit,
                home_extension_id: None,
                last_extension_id: None,
                enabled: true,
            },
        );
        id
    }

    /// A fixed device owned by `owner`.
    pub fn fixed(&mut self, label: &str, sip: &str, owner: Uuid) -> Uuid {
        self.device(label, sip, DeviceMode::Fixed, Some(owner))
    }

    /// A hot-desk device.
    pub fn hotdesk(&mut self, label: &str, sip: &str) -> Uuid {
        self.device(label, sip, DeviceMode::Hotdesk, None)
    }

    /// Changes a device.
    pub fn device_mut(&mut self, id: Uuid) -> &mut DeviceFacts {
        self.b
            .devices
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no device {id}"))
    }

    /// A Location that everyone may sign in to.
    pub fn location(&mut self, name: &str, strategy: RingStrategy) -> Uuid {
        let id = self.id();
        self.b.locations.insert(
            id,
            LocationFacts {
                id,
                name: name.into(),
                ring_strategy: strategy,
                emergency_caller_id: CallerIdParts::default(),
                emergency_address: None,
                sign_in_policy: SignInPolicy::Everyone,
                allowed_roles: BTreeSet::new(),
                allowed_extension_ids: BTreeSet::new(),
                auto_sign_out: AutoLogoutPolicy::Never,
                short_code: None,
            },
        );
        id
    }

    /// Puts a device in a Location.
    pub fn place(&mut self, device: Uuid, location: Uuid, position: i32, timeout: Option<u32>) {
        let d = self.device_mut(device);
        d.location_id = Some(location);
        d.location_position = position;
        d.location_ring_timeout_secs = timeout;
    }

    /// Logs an Extension in to a hot-desk device.
    pub fn login(&mut self, device: Uuid, ext: Uuid, started: &str, via: SessionOrigin) {
        self.b.sessions.insert(
            device,
            HotdeskSession {
                device_id: device,
                extension_id: ext,
                started_at: at(started),
                via,
            },
        );
    }

    /// Signs an Extension in to a Location.
    pub fn sign_in(&mut self, ext: Uuid, location: Uuid, since: &str) {
        self.b.sign_ins.insert(
            ext,
            LocationSignIn {
                extension_id: ext,
                location_id: location,
                since: at(since),
            },
        );
    }

    /// Turns a forward on.
    pub fn forward(f: &mut Forward, destination: &str) {
        f.enabled = true;
        f.destination = Some(destination.into());
    }
}
