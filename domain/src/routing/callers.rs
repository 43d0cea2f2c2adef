//! Who is calling: what the compiled plan keeps of each phone and Extension of a Domain, so
//! that a dialplan lookup decides toll class, outbound caller ID and the emergency identity of
//! the place from the current bindings (not from whatever a channel carried when it started).

use serde::Serialize;
use uuid::Uuid;

use crate::bindings::Bindings;
use crate::bindings::identity::{
    CallingIdentity, EmergencyCallerId, EmergencySource, calling_identity, extension_as_caller,
    extension_identity,
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
///
/// A Domain holds one per phone and one per Extension (hundreds of thousands on a large node),
/// so each is kept packed ([`Stored`]: its ids and flags, every string in one allocation) in a
/// sorted slice, and unpacked into [`CallerFacts`] when a lookup asks for it.
#[derive(Debug, Clone, Default)]
pub struct Callers {
    devices: Box<[(Uuid, Stored)]>,
    extensions: Box<[(Uuid, Stored)]>,
    domain: Option<Box<CallerFacts>>,
}

impl Callers {
    /// Compiles the callers of a Domain.
    pub fn compile(b: &Bindings) -> Self {
        // The bindings' maps iterate in id order: the slices come out sorted.
        let devices = b
            .devices
            .keys()
            .filter_map(|id| {
                calling_identity(b, *id).map(|i| (*id, Stored::of(*id, &CallerFacts::of(b, i))))
            })
            .collect();
        let extensions = b
            .extensions
            .keys()
            .filter_map(|id| {
                extension_identity(b, *id)
                    .or_else(|| extension_as_caller(b, *id))
                    .map(|i| (*id, Stored::of(*id, &CallerFacts::of(b, i))))
            })
            .collect();
        Self {
            devices,
            extensions,
            domain: Some(Box::new(CallerFacts::domain(b))),
        }
    }

    /// These Devices' and Extensions' facts recomputed from `b` (which holds every row they
    /// come from: the Device, its owner or session's Extension, the Domain's Locations and
    /// settings), the others' as they were; a Device or Extension gone from `b` (or no longer
    /// a caller) is left out.
    pub fn with_changes(&self, b: &Bindings, extensions: &[Uuid], devices: &[Uuid]) -> Self {
        Self {
            devices: replaced(&self.devices, devices, |id| {
                calling_identity(b, id).map(|i| Stored::of(id, &CallerFacts::of(b, i)))
            }),
            extensions: replaced(&self.extensions, extensions, |id| {
                extension_identity(b, id)
                    .or_else(|| extension_as_caller(b, id))
                    .map(|i| Stored::of(id, &CallerFacts::of(b, i)))
            }),
            domain: self.domain.clone(),
        }
    }

    /// A Device's facts.
    pub fn device(&self, id: Uuid) -> Option<CallerFacts> {
        find(&self.devices, id)
    }

    /// An Extension's facts (direct registration, or the Extension a forward came from).
    pub fn extension(&self, id: Uuid) -> Option<CallerFacts> {
        find(&self.extensions, id)
    }

    /// The Domain as a caller.
    pub fn domain(&self) -> Option<CallerFacts> {
        self.domain.as_deref().cloned()
    }
}

/// `slice` (sorted by id) with the entries of `ids` recomputed by `of` (left out when `None`).
fn replaced(
    slice: &[(Uuid, Stored)],
    ids: &[Uuid],
    of: impl Fn(Uuid) -> Option<Stored>,
) -> Box<[(Uuid, Stored)]> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut fresh = ids
        .iter()
        .filter_map(|id| of(*id).map(|s| (*id, s)))
        .peekable();
    // Both in id order: merged, no entry moved twice.
    let mut out: Vec<(Uuid, Stored)> = Vec::with_capacity(slice.len() + ids.len());
    for (id, stored) in slice
        .iter()
        .filter(|(id, _)| ids.binary_search(id).is_err())
    {
        out.extend(std::iter::from_fn(|| fresh.next_if(|(f, _)| f < id)));
        out.push((*id, stored.clone()));
    }
    out.extend(fresh);
    out.into_boxed_slice()
}

fn find(slice: &[(Uuid, Stored)], id: Uuid) -> Option<CallerFacts> {
    let i = slice.binary_search_by(|(k, _)| k.cmp(&id)).ok()?;
    Some(slice[i].1.unpack(id))
}

/// A caller as [`Callers`] keeps it: the Extension's id and the flags as they are; the
/// Device's id only when it is not the caller's own key (a phone's caller is the phone), and the
/// Location's id when there is one, at the head of the one allocation that holds the strings
/// (label, Extension number, toll classes, caller IDs, the Location's name and address, the
/// reason), length-prefixed. 64 bytes and the strings, against 80 with every id in place.
#[derive(Debug, Clone)]
struct Stored {
    extension_id: Option<Uuid>,
    /// [`DEVICE_IS_KEY`], [`DEVICE_STORED`], [`LOCATION_STORED`].
    ids: u8,
    restricted: bool,
    record_outbound: RecordingPolicy,
    emergency_from: [Option<EmergencySource>; 2],
    internal_allow: Option<Box<InternalAllow>>,
    strings: Box<[u8]>,
}

/// The caller's Device is the one it is kept under.
const DEVICE_IS_KEY: u8 = 1;
/// The caller's Device id is the first 16 bytes of the strings.
const DEVICE_STORED: u8 = 2;
/// The Location's id follows (after the Device's, if stored).
const LOCATION_STORED: u8 = 4;

impl Stored {
    /// `f` packed, to be kept under `key` (its Device's or its Extension's id).
    fn of(key: Uuid, f: &CallerFacts) -> Self {
        let mut w = Vec::with_capacity(128);
        let mut ids = 0;
        match f.device_id {
            None => {}
            Some(id) if id == key => ids |= DEVICE_IS_KEY,
            Some(id) => {
                ids |= DEVICE_STORED;
                w.extend_from_slice(id.as_bytes());
            }
        }
        if let Some(location) = &f.location {
            ids |= LOCATION_STORED;
            w.extend_from_slice(location.id.as_bytes());
        }
        put(&mut w, f.device_label.as_deref());
        put(&mut w, f.extension.as_ref().map(|e| e.number.as_str()));
        put_len(&mut w, f.toll_allow.len());
        for class in &f.toll_allow {
            put(&mut w, Some(class));
        }
        put(&mut w, f.outbound_name.as_deref());
        put(&mut w, f.outbound_number.as_deref());
        put(&mut w, f.emergency.name.as_deref());
        put(&mut w, f.emergency.number.as_deref());
        put(&mut w, f.location.as_ref().map(|l| l.name.as_str()));
        put(
            &mut w,
            f.location
                .as_ref()
                .and_then(|l| l.emergency_address.as_deref()),
        );
        put(&mut w, Some(&f.reason));
        Self {
            extension_id: f.extension.as_ref().map(|e| e.id),
            ids,
            restricted: f.restricted,
            record_outbound: f.record_outbound,
            emergency_from: [f.emergency.name_from, f.emergency.number_from],
            internal_allow: f.internal_allow.clone().map(Box::new),
            strings: w.into_boxed_slice(),
        }
    }

    fn unpack(&self, key: Uuid) -> CallerFacts {
        let mut r = Reader(&self.strings);
        let device_id = if self.ids & DEVICE_IS_KEY != 0 {
            Some(key)
        } else if self.ids & DEVICE_STORED != 0 {
            r.uuid()
        } else {
            None
        };
        let location_id = if self.ids & LOCATION_STORED != 0 {
            r.uuid()
        } else {
            None
        };
        let device_label = r.string();
        let number = r.string();
        let classes = r.len();
        let toll_allow = (0..classes).filter_map(|_| r.string()).collect();
        let outbound_name = r.string();
        let outbound_number = r.string();
        let emergency_name = r.string();
        let emergency_number = r.string();
        let location_name = r.string();
        let emergency_address = r.string();
        let reason = r.string().unwrap_or_default();
        CallerFacts {
            device_id,
            device_label,
            extension: self.extension_id.map(|id| ExtensionRef {
                id,
                number: number.unwrap_or_default(),
            }),
            toll_allow,
            outbound_name,
            outbound_number,
            restricted: self.restricted,
            internal_allow: self.internal_allow.as_deref().cloned(),
            record_outbound: self.record_outbound,
            emergency: EmergencyCallerId {
                name: emergency_name,
                number: emergency_number,
                name_from: self.emergency_from[0],
                number_from: self.emergency_from[1],
            },
            location: location_id.map(|id| LocationRef {
                id,
                name: location_name.unwrap_or_default(),
                emergency_address,
            }),
            reason,
        }
    }
}

/// A length as LEB128.
fn put_len(w: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            w.push(byte);
            return;
        }
        w.push(byte | 0x80);
    }
}

/// An optional string: 0 for none, else its length + 1, then its bytes.
fn put(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_len(w, 0),
        Some(s) => {
            put_len(w, s.len() + 1);
            w.extend_from_slice(s.as_bytes());
        }
    }
}

/// Reads back what [`put`] and [`put_len`] wrote, in order.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn len(&mut self) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        while let Some((&byte, rest)) = self.0.split_first() {
            self.0 = rest;
            n |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 || shift >= usize::BITS as usize {
                break;
            }
        }
        n
    }

    fn uuid(&mut self) -> Option<Uuid> {
        let (id, rest) = self.0.split_first_chunk::<16>()?;
        self.0 = rest;
        Some(Uuid::from_bytes(*id))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len().checked_sub(1)?;
        let len = len.min(self.0.len());
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        // Written from a `&str`: always UTF-8.
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::Kit;

    fn rich() -> CallerFacts {
        CallerFacts {
            device_id: Some(Uuid::from_u128(7)),
            device_label: Some("Réception, desk 2".into()),
            extension: Some(ExtensionRef {
                id: Uuid::from_u128(9),
                number: "201".into(),
            }),
            toll_allow: vec!["local".into(), "domestic".into(), String::new()],
            outbound_name: Some(String::new()),
            outbound_number: Some("+4930123456".into()),
            restricted: true,
            internal_allow: Some(
                InternalAllow::parse(&["2xx".to_owned(), "300".to_owned()]).unwrap_or_default(),
            ),
            record_outbound: RecordingPolicy::Always,
            emergency: EmergencyCallerId {
                name: Some("Acme HQ".into()),
                number: None,
                name_from: Some(EmergencySource::Location),
                number_from: None,
            },
            location: Some(LocationRef {
                id: Uuid::from_u128(11),
                name: "HQ \u{0}floor 2".into(),
                emergency_address: Some("x".repeat(300)),
            }),
            reason: "hot-desk session of 201 Zoë since 2025-03-28 09:02 via *11".into(),
        }
    }

    #[test]
    fn a_caller_comes_back_as_it_was_stored() {
        let f = rich();
        let phone = Uuid::from_u128(7);
        // Kept under its own Device (the id not stored) or under another key (stored).
        assert_eq!(Stored::of(phone, &f).unpack(phone), f);
        let other = Uuid::from_u128(9);
        assert_eq!(Stored::of(other, &f).unpack(other), f);
        // The Device's id only, no Location.
        let no_location = CallerFacts {
            location: None,
            ..rich()
        };
        assert_eq!(Stored::of(other, &no_location).unpack(other), no_location);
        assert_eq!(Stored::of(phone, &no_location).unpack(phone), no_location);
        // No device, no Extension, no strings but the reason.
        let bare = CallerFacts::domain(&Kit::new().b);
        assert_eq!(Stored::of(other, &bare).unpack(other), bare);
        // The fixed part: the Extension's id and the flags beside the two pointers.
        assert!(std::mem::size_of::<Stored>() <= 64);
    }

    #[test]
    fn every_phone_and_extension_is_found_by_its_id() {
        let mut k = Kit::new();
        let mut phones = Vec::new();
        for i in 0..50 {
            let ext = k.ext(&format!("{}", 300 + i), &format!("Person {i}"));
            phones.push((k.fixed(&format!("Desk {i}"), &format!("d{i}"), ext), ext));
        }
        let callers = Callers::compile(&k.b);
        for (phone, ext) in phones {
            let facts = callers.device(phone);
            assert_eq!(facts.as_ref().and_then(|f| f.device_id), Some(phone));
            assert_eq!(
                facts.and_then(|f| f.extension).map(|e| e.id),
                Some(ext),
                "a fixed phone calls as its owner"
            );
            assert!(callers.extension(ext).is_some());
            assert!(callers.device(ext).is_none());
        }
        assert!(callers.device(Uuid::from_u128(u128::MAX)).is_none());
        assert!(callers.domain().is_some());
    }
}
