//! Who is calling: what the compiled plan keeps of each phone and Extension of a Domain, so
//! that a dialplan lookup decides toll class, outbound caller ID and the emergency identity of
//! the place from the current bindings (not from whatever a channel carried when it started).

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use crate::bindings::Bindings;
use crate::bindings::identity::{
    CallingIdentity, EmergencyCallerId, calling_identity, extension_as_caller, extension_identity,
};
use crate::bindings::ring_plan::ExtensionRef;
use crate::telephony::internal_allow::InternalAllow;
use crate::telephony::policy::RecordingPolicy;

/// Who is calling, as a dialplan request tells it (our own channel variables; a phone cannot
/// set them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerRef {
    /// A Device (`switchboard_device_id`).
    Device(Uuid),
    /// An Extension registered directly (`switchboard_extension_id` without a device).
    Extension(Uuid),
    /// An Extension whose forward sent the call here (`switchboard_forwarded_by`).
    ForwardedBy(Uuid),
    /// A call that came in on this Number (`switchboard_inbound_number`).
    InboundNumber(String),
    /// Nothing we know.
    Unknown,
}

/// What the plan knows of one caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerFacts {
    /// The Device, if a phone.
    pub device_id: Option<Uuid>,
    /// Its label.
    pub device_label: Option<String>,
    /// The Extension it calls as (the person's, when hot-desking).
    pub extension: Option<ExtensionRef>,
    /// Toll classes it may reach.
    pub toll_allow: Vec<String>,
    /// Its outbound caller ID name.
    pub outbound_name: Option<String>,
    /// Its outbound caller ID number.
    pub outbound_number: Option<String>,
    /// Logged out (only emergency numbers and login codes).
    pub restricted: bool,
    /// The internal numbers it may dial (none: every one), its Extension's list.
    #[serde(skip)]
    pub internal_allow: Option<InternalAllow>,
    /// Recording of the calls it places (its Extension's `recording.outbound`).
    #[serde(serialize_with = "crate::bindings::identity::recording_name")]
    pub record_outbound: RecordingPolicy,
    /// The emergency caller ID of the place.
    pub emergency: EmergencyCallerId,
    /// The Device's Location.
    pub location: Option<LocationRef>,
    /// How the identity was found, for people.
    pub reason: String,
}

/// A Location, as an emergency call names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationRef {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Street address for emergency services.
    pub emergency_address: Option<String>,
}

impl CallerFacts {
    fn of(b: &Bindings, identity: CallingIdentity) -> Self {
        let device = identity.device_id.and_then(|id| b.devices.get(&id));
        let location = device
            .and_then(|d| d.location_id)
            .and_then(|id| b.locations.get(&id))
            .map(|l| LocationRef {
                id: l.id,
                name: l.name.clone(),
                emergency_address: l.emergency_address.clone(),
            });
        let internal_allow = identity
            .effective_extension
            .as_ref()
            .and_then(|e| b.extensions.get(&e.id))
            .and_then(|e| e.internal_allow.clone());
        Self {
            internal_allow,
            device_id: identity.device_id,
            device_label: device.map(|d| d.label.clone()),
            extension: identity.effective_extension,
            toll_allow: identity
                .toll_allow
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            outbound_name: identity
                .caller_id
                .as_ref()
                .and_then(|c| c.outbound_name.clone().or(Some(c.internal_name.clone()))),
            outbound_number: identity.caller_id.and_then(|c| c.outbound_number),
            restricted: identity.restricted,
            record_outbound: identity.record_outbound,
            emergency: identity.emergency_caller_id,
            location,
            reason: identity.reason,
        }
    }

    /// The Domain itself (a Number's forward, or a call we cannot attribute): no toll
    /// restriction of its own for a Number the admin pointed outside, the Domain's emergency
    /// caller ID.
    pub fn domain(b: &Bindings) -> Self {
        Self {
            device_id: None,
            device_label: None,
            extension: None,
            toll_allow: Vec::new(),
            outbound_name: None,
            outbound_number: None,
            restricted: false,
            internal_allow: None,
            record_outbound: RecordingPolicy::Never,
            emergency: EmergencyCallerId {
                name: b.settings.emergency_caller_id.name.clone(),
                number: b.settings.emergency_caller_id.number.clone(),
                name_from: b
                    .settings
                    .emergency_caller_id
                    .name
                    .as_ref()
                    .map(|_| crate::bindings::identity::EmergencySource::Domain),
                number_from: b
                    .settings
                    .emergency_caller_id
                    .number
                    .as_ref()
                    .map(|_| crate::bindings::identity::EmergencySource::Domain),
            },
            location: None,
            reason: "the Domain".into(),
        }
    }
}

/// Every caller of a Domain, by device id and by Extension id.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    devices: HashMap<Uuid, CallerFacts>,
    extensions: HashMap<Uuid, CallerFacts>,
    domain: Option<Box<CallerFacts>>,
}

impl Callers {
    /// Compiles the callers of a Domain.
    pub fn compile(b: &Bindings) -> Self {
        let devices = b
            .devices
            .keys()
            .filter_map(|id| calling_identity(b, *id).map(|i| (*id, CallerFacts::of(b, i))))
            .collect();
        let extensions = b
            .extensions
            .keys()
            .filter_map(|id| {
                extension_identity(b, *id)
                    .or_else(|| extension_as_caller(b, *id))
                    .map(|i| (*id, CallerFacts::of(b, i)))
            })
            .collect();
        Self {
            devices,
            extensions,
            domain: Some(Box::new(CallerFacts::domain(b))),
        }
    }

    /// A Device's facts.
    pub fn device(&self, id: Uuid) -> Option<&CallerFacts> {
        self.devices.get(&id)
    }

    /// An Extension's facts (direct registration, or the Extension a forward came from).
    pub fn extension(&self, id: Uuid) -> Option<&CallerFacts> {
        self.extensions.get(&id)
    }

    /// The Domain as a caller.
    pub fn domain(&self) -> Option<&CallerFacts> {
        self.domain.as_deref()
    }
}
