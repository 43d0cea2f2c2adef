//! One leg of a call, read from the CDR FreeSWITCH's `mod_json_cdr` posts at hangup.
//!
//! The CDR is FreeSWITCH's JSON (`switch_ivr_generate_json_cdr`): `variables` (every channel
//! variable, values not URL-encoded: `encode-values=false` in the shipped `json_cdr.conf.xml`),
//! `callflow` (the caller profiles, newest first) and `channel_data`. Only what the call history
//! needs is kept, as a [`LegFacts`]: FreeSWITCH's own identifiers and times, and the
//! `switchboard_*` variables our directory and dialplan put on the channel, which name the
//! Domain, the person (the Extension logged in on the device at that moment), the Device, the
//! Location, the route and the gateway.

use chrono::{DateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Why a CDR cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdrError {
    /// Not JSON, or not an object.
    #[error("the CDR is not a JSON object: {0}")]
    NotJson(String),
    /// No `variables` object.
    #[error("the CDR has no variables")]
    NoVariables,
    /// No usable leg id.
    #[error("the CDR has no valid uuid")]
    NoUuid,
    /// No start or end time.
    #[error("the CDR has no {0}")]
    NoTime(&'static str),
}

/// What the call history keeps of one leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegFacts {
    /// FreeSWITCH's id of this leg.
    pub uuid: Uuid,
    /// The leg FreeSWITCH says this one belongs to (`call_uuid`: its own id on a call's first
    /// leg, the caller's on a bridged leg).
    pub call_hint: Uuid,
    /// The leg that created this one: `originating_leg_uuid` (a bridge) or, for the second
    /// half of a loopback (forwards, voicemail), the leg that dialled the loopback.
    pub parent: Option<Uuid>,
    /// The FreeSWITCH node (`switchname`).
    pub node: Option<String>,
    /// FreeSWITCH's direction of the channel: `inbound` (it called FreeSWITCH) or `outbound`.
    pub channel_direction: Option<String>,
    /// A loopback leg (internal plumbing of forwards and voicemail).
    pub loopback: bool,
    /// The dialplan context of the first lookup.
    pub context: Option<String>,
    /// The caller's number as presented (`effective_caller_id_number`, else the profile's).
    pub caller_number: Option<String>,
    /// The caller's name as presented.
    pub caller_name: Option<String>,
    /// What was dialled (the first lookup's destination).
    pub destination: Option<String>,
    /// The callee's name, when the leg knew it (`callee_id_name`).
    pub callee_name: Option<String>,
    /// The callee's number, when the leg knew it (`callee_id_number`).
    pub callee_number: Option<String>,
    /// `switchboard_domain_id`.
    pub domain_id: Option<Uuid>,
    /// `switchboard_extension_id`: the Extension the device called as at that moment.
    pub extension_id: Option<Uuid>,
    /// `switchboard_extension`.
    pub extension_number: Option<String>,
    /// `switchboard_device_id`.
    pub device_id: Option<Uuid>,
    /// `switchboard_location_id`.
    pub location_id: Option<Uuid>,
    /// `switchboard_callee_extension_id`: the Extension the call rang.
    pub callee_extension_id: Option<Uuid>,
    /// `switchboard_called_extension`.
    pub callee_extension_number: Option<String>,
    /// `switchboard_outbound_route_id`.
    pub route_id: Option<Uuid>,
    /// The gateway (`switchboard_gateway` on a carrier's call, `sip_gateway_name` on a leg to
    /// a carrier), when it is one of ours (`sb_<id>`).
    pub gateway_id: Option<Uuid>,
    /// `switchboard_inbound_number`: the Number a carrier's call came in on.
    pub inbound_number: Option<String>,
    /// `switchboard_emergency`.
    pub emergency: bool,
    /// `switchboard_forwarded_by`: set on a forward's leg.
    pub forwarded_by: Option<Uuid>,
    /// Start (`start_uepoch`).
    pub started_at: DateTime<Utc>,
    /// Answer (`answer_uepoch`), if answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// End (`end_uepoch`).
    pub ended_at: DateTime<Utc>,
    /// Seconds from answer to end (`billsec`).
    pub billed_secs: i64,
    /// FreeSWITCH's hangup cause (`NORMAL_CLEARING`, `NO_ANSWER`, …).
    pub hangup_cause: String,
    /// The recording's path on the FreeSWITCH node, when something was recorded.
    pub recording_path: Option<String>,
    /// How long the recording is, in milliseconds.
    pub recording_ms: Option<i64>,
}

fn text(vars: &Map<String, Value>, name: &str) -> Option<String> {
    match vars.get(name)? {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn id(vars: &Map<String, Value>, name: &str) -> Option<Uuid> {
    text(vars, name).and_then(|v| Uuid::parse_str(&v).ok())
}

fn int(vars: &Map<String, Value>, name: &str) -> Option<i64> {
    text(vars, name).and_then(|v| v.parse::<i64>().ok())
}

/// Microseconds since the epoch (`*_uepoch`); 0 means "never".
fn micros(vars: &Map<String, Value>, name: &str) -> Option<DateTime<Utc>> {
    int(vars, name)
        .filter(|us| *us > 0)
        .and_then(|us| Utc.timestamp_micros(us).single())
}

/// `sb_<uuid, simple>` (see `routing::outbound::freeswitch_gateway_name`).
pub fn gateway_id_of(name: &str) -> Option<Uuid> {
    name.strip_prefix("sb_")
        .and_then(|id| Uuid::parse_str(id).ok())
}

fn truthy(vars: &Map<String, Value>, name: &str) -> bool {
    text(vars, name)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// The caller profile of the first lookup (the oldest `callflow` entry).
fn first_profile(cdr: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let flows: Vec<&Value> = match cdr.get("callflow")? {
        Value::Array(items) => items.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    let created = |flow: &Value| {
        flow.get("times")
            .and_then(|t| t.get("profile_created_time"))
            .and_then(|v| match v {
                Value::String(s) => s.parse::<i64>().ok(),
                Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .unwrap_or(i64::MAX)
    };
    flows
        .into_iter()
        // Newest first; with equal (or missing) times the last entry is the first lookup.
        .rev()
        .min_by_key(|f| created(f))
        .and_then(|f| f.get("caller_profile"))
        .and_then(Value::as_object)
}

impl LegFacts {
    /// Reads a CDR as `mod_json_cdr` posts it.
    pub fn from_json(body: &[u8]) -> Result<Self, CdrError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| CdrError::NotJson(e.to_string()))?;
        let Value::Object(cdr) = value else {
            return Err(CdrError::NotJson("not an object".to_owned()));
        };
        Self::from_cdr(&cdr)
    }

    /// Reads a parsed CDR.
    pub fn from_cdr(cdr: &Map<String, Value>) -> Result<Self, CdrError> {
        let vars = cdr
            .get("variables")
            .and_then(Value::as_object)
            .ok_or(CdrError::NoVariables)?;
        let profile = first_profile(cdr);
        let from_profile = |name: &str| profile.and_then(|p| text(p, name));
        let uuid = id(vars, "uuid")
            .or_else(|| profile.and_then(|p| id(p, "uuid")))
            .ok_or(CdrError::NoUuid)?;
        let loopback = text(vars, "is_loopback").is_some_and(|v| v == "1" || v == "true");
        let parent = id(vars, "originating_leg_uuid").or_else(|| {
            (text(vars, "loopback_leg").as_deref() == Some("B"))
                .then(|| id(vars, "other_loopback_from_uuid"))
                .flatten()
        });
        let started_at = micros(vars, "start_uepoch")
            .or_else(|| micros(vars, "created_uepoch"))
            .ok_or(CdrError::NoTime("start time"))?;
        let ended_at = micros(vars, "end_uepoch").ok_or(CdrError::NoTime("end time"))?;
        let recording_ms = int(vars, "record_ms").filter(|ms| *ms > 0);
        let gateway_id = text(vars, "switchboard_gateway")
            .or_else(|| text(vars, "sip_gateway_name"))
            .as_deref()
            .and_then(gateway_id_of);
        Ok(Self {
            uuid,
            call_hint: id(vars, "call_uuid").unwrap_or(uuid),
            parent,
            node: text(cdr, "switchname").or_else(|| text(vars, "switchname")),
            channel_direction: cdr
                .get("channel_data")
                .and_then(Value::as_object)
                .and_then(|c| text(c, "direction"))
                .or_else(|| text(vars, "direction")),
            loopback,
            context: from_profile("context"),
            caller_number: text(vars, "effective_caller_id_number")
                .or_else(|| from_profile("caller_id_number"))
                .or_else(|| text(vars, "caller_id_number")),
            caller_name: text(vars, "effective_caller_id_name")
                .or_else(|| from_profile("caller_id_name"))
                .or_else(|| text(vars, "caller_id_name")),
            destination: from_profile("destination_number")
                .or_else(|| text(vars, "destination_number")),
            callee_name: text(vars, "callee_id_name"),
            callee_number: text(vars, "callee_id_number"),
            domain_id: id(vars, "switchboard_domain_id"),
            extension_id: id(vars, "switchboard_extension_id"),
            extension_number: text(vars, "switchboard_extension"),
            device_id: id(vars, "switchboard_device_id"),
            location_id: id(vars, "switchboard_location_id"),
            callee_extension_id: id(vars, "switchboard_callee_extension_id"),
            callee_extension_number: text(vars, "switchboard_called_extension"),
            route_id: id(vars, "switchboard_outbound_route_id"),
            gateway_id,
            inbound_number: text(vars, "switchboard_inbound_number"),
            emergency: truthy(vars, "switchboard_emergency"),
            forwarded_by: id(vars, "switchboard_forwarded_by"),
            started_at,
            answered_at: micros(vars, "answer_uepoch"),
            ended_at,
            billed_secs: int(vars, "billsec").unwrap_or(0).max(0),
            hangup_cause: text(vars, "hangup_cause").unwrap_or_else(|| "UNKNOWN".to_owned()),
            recording_path: recording_ms.and(text(vars, "switchboard_recording")),
            recording_ms,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cdr(vars: Value) -> Vec<u8> {
        json!({
            "core-uuid": "c0000000-0000-0000-0000-000000000000",
            "switchname": "fs1",
            "channel_data": {"direction": "inbound"},
            "variables": vars,
            "callflow": [
                {"caller_profile": {"destination_number": "switchboard-outcome-NO_ANSWER", "context": "acme.test"}, "times": {"profile_created_time": "1700000002000000"}},
                {"caller_profile": {"caller_id_number": "dev1", "caller_id_name": "Desk", "destination_number": "201", "context": "acme.test"}, "times": {"profile_created_time": "1700000000000000"}}
            ]
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_phone_leg_reads_its_person_device_and_times() {
        let ext = Uuid::new_v4();
        let dev = Uuid::new_v4();
        let leg = LegFacts::from_json(&cdr(json!({
            "uuid": "11111111-1111-4111-8111-111111111111",
            "call_uuid": "11111111-1111-4111-8111-111111111111",
            "switchboard_extension_id": ext.to_string(),
            "switchboard_extension": "200",
            "switchboard_device_id": dev.to_string(),
            "effective_caller_id_name": "Alice",
            "effective_caller_id_number": "200",
            "start_uepoch": "1700000000000000",
            "answer_uepoch": "1700000003000000",
            "end_uepoch": "1700000010500000",
            "billsec": "7",
            "hangup_cause": "NORMAL_CLEARING",
            "switchboard_recording": "/rec/a.wav",
            "record_ms": "7000",
        })))
        .unwrap();
        assert_eq!(leg.extension_id, Some(ext));
        assert_eq!(leg.device_id, Some(dev));
        assert_eq!(leg.caller_name.as_deref(), Some("Alice"));
        // The first lookup's destination, not the later outcome lookup's.
        assert_eq!(leg.destination.as_deref(), Some("201"));
        assert_eq!(leg.billed_secs, 7);
        assert_eq!(leg.started_at.timestamp(), 1_700_000_000);
        assert_eq!(leg.answered_at.map(|t| t.timestamp()), Some(1_700_000_003));
        assert_eq!(leg.recording_path.as_deref(), Some("/rec/a.wav"));
        assert_eq!(leg.node.as_deref(), Some("fs1"));
        assert!(leg.parent.is_none());
    }

    #[test]
    fn an_unanswered_leg_has_no_answer_time_and_no_recording() {
        let leg = LegFacts::from_json(&cdr(json!({
            "uuid": "11111111-1111-4111-8111-111111111111",
            "start_uepoch": "1700000000000000",
            "answer_uepoch": "0",
            "end_uepoch": "1700000010000000",
            "switchboard_recording": "/rec/a.wav",
            "sip_gateway_name": format!("sb_{}", Uuid::nil().simple()),
        })))
        .unwrap();
        assert!(leg.answered_at.is_none());
        assert!(leg.recording_path.is_none());
        assert_eq!(leg.gateway_id, Some(Uuid::nil()));
    }

    #[test]
    fn bridged_and_loopback_legs_name_their_parent() {
        let a = "22222222-2222-4222-8222-222222222222";
        let b = LegFacts::from_json(&cdr(json!({
            "uuid": "33333333-3333-4333-8333-333333333333",
            "call_uuid": a,
            "originating_leg_uuid": a,
            "start_uepoch": "1700000000000000",
            "end_uepoch": "1700000001000000",
        })))
        .unwrap();
        assert_eq!(b.parent, Some(Uuid::parse_str(a).unwrap()));
        assert_eq!(b.call_hint, Uuid::parse_str(a).unwrap());
        let lb = LegFacts::from_json(&cdr(json!({
            "uuid": "44444444-4444-4444-8444-444444444444",
            "is_loopback": "1",
            "loopback_leg": "B",
            "other_loopback_from_uuid": a,
            "start_uepoch": "1700000000000000",
            "end_uepoch": "1700000001000000",
        })))
        .unwrap();
        assert!(lb.loopback);
        assert_eq!(lb.parent, Some(Uuid::parse_str(a).unwrap()));
    }

    #[test]
    fn unreadable_cdrs_are_refused_with_a_reason() {
        assert!(matches!(
            LegFacts::from_json(b"cdr=%7B"),
            Err(CdrError::NotJson(_))
        ));
        assert_eq!(LegFacts::from_json(b"{}"), Err(CdrError::NoVariables));
        assert_eq!(
            LegFacts::from_json(br#"{"variables":{"uuid":"nope"}}"#),
            Err(CdrError::NoUuid)
        );
        assert_eq!(
            LegFacts::from_json(
                br#"{"variables":{"uuid":"11111111-1111-4111-8111-111111111111","start_uepoch":"1"}}"#
            ),
            Err(CdrError::NoTime("end time"))
        );
    }
}
