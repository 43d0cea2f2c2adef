//! One call of the history, summarised from its legs.
//!
//! FreeSWITCH posts one CDR per leg: the caller's leg, each leg it bridged to (a phone, a
//! carrier) and the loopback legs of forwards and voicemail. The call is its first leg (the
//! root); [`summarize`] reads the root and whatever other legs have arrived into one
//! [`CallRecord`], in any order and as often as legs arrive: the result depends only on the
//! set of legs, never on the order they came in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cdr::LegFacts;

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Between the Domain's own phones (and features such as voicemail).
    Internal,
    /// From a carrier, on one of the Domain's Numbers.
    Inbound,
    /// Out through an Outbound Route and a gateway.
    Outbound,
}

impl Direction {
    /// Stored and API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "internal" => Some(Self::Internal),
            "inbound" => Some(Self::Inbound),
            "outbound" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// A call, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The history's id: a UUIDv7 of the start time (so ids sort by time), derived from the
    /// root leg, so the same call always gets the same id.
    pub id: Uuid,
    /// FreeSWITCH's id of the root leg.
    pub root_uuid: Uuid,
    /// The Domain.
    pub domain_id: Option<Uuid>,
    /// Which way.
    pub direction: Direction,
    /// The caller's number as presented.
    pub caller_number: Option<String>,
    /// The caller's name as presented.
    pub caller_name: Option<String>,
    /// What was dialled (the Number, on an inbound call).
    pub callee_number: Option<String>,
    /// The callee's name, when known.
    pub callee_name: Option<String>,
    /// The person who called: the Extension logged in on the calling device (or its owner).
    pub caller_extension_id: Option<Uuid>,
    /// Its number.
    pub caller_extension_number: Option<String>,
    /// The calling Device.
    pub caller_device_id: Option<Uuid>,
    /// The calling Device's Location.
    pub caller_location_id: Option<Uuid>,
    /// The Extension the call rang.
    pub callee_extension_id: Option<Uuid>,
    /// Its number.
    pub callee_extension_number: Option<String>,
    /// The Device that answered.
    pub callee_device_id: Option<Uuid>,
    /// Its Location.
    pub callee_location_id: Option<Uuid>,
    /// The Outbound Route.
    pub route_id: Option<Uuid>,
    /// The gateway (the carrier's trunk).
    pub gateway_id: Option<Uuid>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// Answer.
    pub answered_at: Option<DateTime<Utc>>,
    /// End.
    pub ended_at: DateTime<Utc>,
    /// Seconds from answer to end.
    pub billed_secs: i64,
    /// FreeSWITCH's hangup cause of the root leg.
    pub hangup_cause: String,
    /// The recording's path on the node.
    pub recording_path: Option<String>,
    /// The recording's length.
    pub recording_ms: Option<i64>,
    /// An emergency call.
    pub emergency: bool,
    /// The FreeSWITCH node.
    pub node: Option<String>,
    /// How many legs are known.
    pub legs: usize,
}

/// The history's id of the call whose root leg is `root`: UUIDv7 with the root's start time
/// (milliseconds) and the root's own bits.
pub fn call_id(root: &LegFacts) -> Uuid {
    let millis = u64::try_from(root.started_at.timestamp_millis()).unwrap_or(0);
    let bytes = root.uuid.as_bytes();
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&bytes[6..16]);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// The smallest and largest ids of calls started in `[from, to]` (milliseconds), for a time
/// range as an id range.
pub fn id_bounds(from: DateTime<Utc>, to: DateTime<Utc>) -> (Uuid, Uuid) {
    let ms = |t: DateTime<Utc>| u64::try_from(t.timestamp_millis()).unwrap_or(0);
    let low = uuid::Builder::from_unix_timestamp_millis(ms(from), &[0u8; 10]).into_uuid();
    let high = uuid::Builder::from_unix_timestamp_millis(ms(to), &[0xffu8; 10]).into_uuid();
    (low, high)
}

/// The call of `root`, from the root and the other legs known so far (in any order).
pub fn summarize(root: &LegFacts, others: &[LegFacts]) -> CallRecord {
    let mut others: Vec<&LegFacts> = others.iter().filter(|l| l.uuid != root.uuid).collect();
    // A stable order, whatever order the legs came in.
    others.sort_by_key(|l| (l.started_at, l.uuid));
    let direction = if root.inbound_number.is_some() || root.context.as_deref() == Some("public") {
        Direction::Inbound
    } else if root.route_id.is_some() || others.iter().any(|l| l.route_id.is_some()) {
        Direction::Outbound
    } else {
        Direction::Internal
    };
    // The phone that took the call: the first answered leg on a Device (not the caller's).
    let answered_phone = others
        .iter()
        .filter(|l| l.answered_at.is_some() && l.device_id.is_some() && !l.loopback)
        .min_by_key(|l| (l.answered_at, l.uuid));
    let answered_leg = others
        .iter()
        .filter(|l| l.answered_at.is_some() && !l.loopback)
        .min_by_key(|l| (l.answered_at, l.uuid));
    let first =
        |f: fn(&LegFacts) -> Option<Uuid>| f(root).or_else(|| others.iter().find_map(|l| f(l)));
    let callee_extension_id = first(|l| l.callee_extension_id);
    let callee_extension_number = root.callee_extension_number.clone().or_else(|| {
        others
            .iter()
            .find_map(|l| l.callee_extension_number.clone())
    });
    let recording = std::iter::once(root)
        .chain(others.iter().copied())
        .find(|l| l.recording_path.is_some());
    let gateway_id = root.gateway_id.or_else(|| {
        answered_leg
            .and_then(|l| l.gateway_id)
            .or_else(|| others.iter().rev().find_map(|l| l.gateway_id))
    });
    CallRecord {
        id: call_id(root),
        root_uuid: root.uuid,
        domain_id: first(|l| l.domain_id),
        direction,
        caller_number: root.caller_number.clone(),
        caller_name: root.caller_name.clone(),
        callee_number: root
            .inbound_number
            .clone()
            .or_else(|| root.destination.clone()),
        callee_name: answered_leg
            .and_then(|l| l.callee_name.clone())
            .or_else(|| root.callee_name.clone()),
        caller_extension_id: root.extension_id,
        caller_extension_number: root.extension_number.clone(),
        caller_device_id: root.device_id,
        caller_location_id: root.location_id,
        callee_extension_id,
        callee_extension_number,
        callee_device_id: answered_phone.and_then(|l| l.device_id),
        callee_location_id: answered_phone.and_then(|l| l.location_id),
        route_id: first(|l| l.route_id),
        gateway_id,
        started_at: root.started_at,
        answered_at: root.answered_at,
        ended_at: root.ended_at,
        billed_secs: root.billed_secs,
        hangup_cause: root.hangup_cause.clone(),
        recording_path: recording.and_then(|l| l.recording_path.clone()),
        recording_ms: recording.and_then(|l| l.recording_ms),
        emergency: root.emergency || others.iter().any(|l| l.emergency),
        node: root.node.clone(),
        legs: others.len() + 1,
    }
}

/// Where a leg belongs: its parent's call, else what FreeSWITCH says.
pub fn root_hint(leg: &LegFacts) -> Uuid {
    leg.parent.unwrap_or(leg.call_hint)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    fn leg(uuid: Uuid) -> LegFacts {
        LegFacts {
            uuid,
            call_hint: uuid,
            parent: None,
            node: Some("fs1".into()),
            channel_direction: Some("inbound".into()),
            loopback: false,
            context: Some("acme.test".into()),
            caller_number: Some("200".into()),
            caller_name: Some("Alice".into()),
            destination: Some("201".into()),
            callee_name: None,
            callee_number: None,
            domain_id: None,
            extension_id: None,
            extension_number: None,
            device_id: None,
            location_id: None,
            callee_extension_id: None,
            callee_extension_number: None,
            route_id: None,
            gateway_id: None,
            inbound_number: None,
            emergency: false,
            forwarded_by: None,
            started_at: at(0),
            answered_at: None,
            ended_at: at(10),
            billed_secs: 0,
            hangup_cause: "NORMAL_CLEARING".into(),
            recording_path: None,
            recording_ms: None,
        }
    }

    #[test]
    fn an_internal_call_names_both_people_and_the_answering_phone() {
        let domain = Uuid::new_v4();
        let (alice, bob, desk, bobs_phone, loc) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let mut a = leg(Uuid::new_v4());
        a.domain_id = Some(domain);
        a.extension_id = Some(alice);
        a.device_id = Some(desk);
        a.callee_extension_id = Some(bob);
        a.answered_at = Some(at(3));
        a.billed_secs = 7;
        let mut b = leg(Uuid::new_v4());
        b.parent = Some(a.uuid);
        b.call_hint = a.uuid;
        b.device_id = Some(bobs_phone);
        b.location_id = Some(loc);
        b.answered_at = Some(at(3));
        b.callee_name = Some("Bob".into());
        let mut other_phone = leg(Uuid::new_v4());
        other_phone.parent = Some(a.uuid);
        other_phone.device_id = Some(Uuid::new_v4());
        other_phone.hangup_cause = "LOSE_RACE".into();
        let one = summarize(&a, &[b.clone(), other_phone.clone()]);
        let two = summarize(&a, &[other_phone, b]);
        assert_eq!(one, two, "the order legs arrive in does not matter");
        assert_eq!(one.direction, Direction::Internal);
        assert_eq!(one.domain_id, Some(domain));
        assert_eq!(one.caller_extension_id, Some(alice));
        assert_eq!(one.caller_device_id, Some(desk));
        assert_eq!(one.callee_extension_id, Some(bob));
        assert_eq!(one.callee_device_id, Some(bobs_phone));
        assert_eq!(one.callee_location_id, Some(loc));
        assert_eq!(one.callee_name.as_deref(), Some("Bob"));
        assert_eq!(one.billed_secs, 7);
        assert_eq!(one.legs, 3);
    }

    #[test]
    fn carriers_calls_are_inbound_and_routed_calls_outbound() {
        let gw = Uuid::new_v4();
        let mut a = leg(Uuid::new_v4());
        a.context = Some("public".into());
        a.inbound_number = Some("+4930123456".into());
        a.gateway_id = Some(gw);
        let call = summarize(&a, &[]);
        assert_eq!(call.direction, Direction::Inbound);
        assert_eq!(call.gateway_id, Some(gw));
        assert_eq!(call.callee_number.as_deref(), Some("+4930123456"));

        let route = Uuid::new_v4();
        let mut a = leg(Uuid::new_v4());
        a.route_id = Some(route);
        a.emergency = true;
        let mut b = leg(Uuid::new_v4());
        b.parent = Some(a.uuid);
        b.gateway_id = Some(gw);
        b.answered_at = Some(at(2));
        let call = summarize(&a, &[b]);
        assert_eq!(call.direction, Direction::Outbound);
        assert_eq!(call.route_id, Some(route));
        assert_eq!(call.gateway_id, Some(gw));
        assert!(call.emergency);
    }

    #[test]
    fn the_id_is_stable_and_sorts_by_start_time() {
        let a = leg(Uuid::new_v4());
        let mut later = leg(Uuid::new_v4());
        later.started_at = at(1);
        assert_eq!(call_id(&a), call_id(&a.clone()));
        assert!(call_id(&a) < call_id(&later));
        let (low, high) = id_bounds(at(0), at(0));
        assert!(low <= call_id(&a) && call_id(&a) <= high);
        assert!(call_id(&later) > high);
    }

    #[test]
    fn a_recording_on_any_leg_is_the_calls() {
        let a = leg(Uuid::new_v4());
        let mut b = leg(Uuid::new_v4());
        b.parent = Some(a.uuid);
        b.recording_path = Some("/r/x.wav".into());
        b.recording_ms = Some(1200);
        let call = summarize(&a, &[b]);
        assert_eq!(call.recording_path.as_deref(), Some("/r/x.wav"));
        assert_eq!(call.recording_ms, Some(1200));
    }
}
