//! Who rings when an Extension is dialled, and the FreeSWITCH dial string that says so.
//!
//! The plan lists what is *bound* to the Extension — its direct registration, its fixed
//! devices, the hot-desk devices it is logged in to, the devices of the Location it is signed in
//! to — and, separately, what happens to a call ([`Disposition`]). Presence aggregates over the
//! same bound endpoints, so the two can never disagree, even while DND or forward-always keeps
//! them from ringing.
//!
//! Choices where the issue is silent:
//! - The plan does not look at registrations. A bound phone that is not registered shows up in
//!   FreeSWITCH as `error/user_not_registered` from `sofia_contact`; when every leg fails that
//!   way, the dialplan applies `on_not_registered`, the same outcome as a
//!   plan with nothing bound. The plan (and a directory compiled from it) therefore changes only
//!   when bindings change, not on every REGISTER.
//! - A Location's sequential ring runs as its own hunt *in parallel* with the personal group
//!   (FreeSWITCH enterprise originate, `:_:`): the person's own phones ring from the first
//!   second while the Location's phones are tried one by one. The overall ring timeout
//!   (`originate_timeout`; FreeSWITCH ignores `call_timeout` in a dial string) still ends everything.
//! - A hot-desk device of the Location that someone else is logged in to does not ring for the
//!   Location sign-in: for the session it is that person's phone. A fixed device of the Location
//!   does ring, whoever owns it: putting a fixed device in a Location declares it shared.
//! - A device that qualifies twice rings once, with the first reason (order: direct
//!   registration, fixed, hot-desk, Location). Positions in a sequential ring count the devices
//!   that are actually tried.
//! - A session on a device that is no longer hot-desk is ignored, as are disabled devices.
//!   Logged-out phones ring for their placeholder Extension only when the placeholder says so
//!   (`placeholder_rings`); they then ring with its personal group, like fixed devices.
//! - DND wins over forward-always; a forward without a destination does not apply. On busy, the
//!   call goes to the busy forward, else voicemail, else the caller hears busy.
//! - `now` only shapes the reasons ("since 09:02" today, "since 28 Mar 09:02" before). A session
//!   overdue for auto-logout still rings until the scheduler ends it: the sessions table is the
//!   truth, and the plan must not change by itself with the clock.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::identity::logged_out_placeholder;
use super::snapshot::{
    Bindings, DEFAULT_LOCATION_LEG_TIMEOUT_SECS, DeviceFacts, ExtensionFacts,
    FALLBACK_RING_TIMEOUT_SECS, HotdeskSession, SessionOrigin,
};
use super::{clock_time, ordinal};
use crate::telephony::policy::{DeviceMode, RingStrategy};

/// An Extension named by id and number (`switchboard_extension`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionRef {
    /// Id.
    pub id: Uuid,
    /// Number.
    pub number: String,
}

impl From<&ExtensionFacts> for ExtensionRef {
    fn from(e: &ExtensionFacts) -> Self {
        Self {
            id: e.id,
            number: e.number.clone(),
        }
    }
}

/// Where a Location target sits in its Location's ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum LocationRing {
    /// Rings with the personal group.
    Simultaneous,
    /// One step of the Location's own hunt.
    Sequential {
        /// 1-based step.
        position: u32,
    },
}

/// Why a target rings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSource {
    /// The Extension's own SIP registration.
    DirectRegistration,
    /// A fixed device it owns.
    FixedDevice,
    /// A hot-desk device it is logged in to.
    HotdeskSession {
        /// Since when.
        started_at: DateTime<Utc>,
        /// How the session started.
        via: SessionOrigin,
    },
    /// A device of the Location it is signed in to.
    Location {
        /// The Location.
        location_id: Uuid,
        /// Its place in the Location's ring.
        ring: LocationRing,
    },
    /// A hot-desk phone nobody is logged in to, logged out to this placeholder (which rings
    /// its phones).
    LoggedOutPhone,
}

/// One SIP user to ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingTarget {
    /// The SIP user (a device's user name, or the Extension's number for direct registration).
    pub sip_user: String,
    /// The device, if it is one.
    pub device_id: Option<Uuid>,
    /// The device's label, if it is one.
    pub device_label: Option<String>,
    /// Why it rings.
    pub source: TargetSource,
    /// How long this leg rings, where the plan limits it.
    pub leg_timeout_secs: Option<u32>,
    /// For people: "hot-desk session since 09:02 via *11".
    pub reason: String,
    /// The device's Location, for the call history (not shown in the plan).
    #[serde(skip)]
    pub location_id: Option<Uuid>,
}

/// Targets that ring at the same time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The targets.
    pub targets: Vec<RingTarget>,
}

/// Steps tried one after another; hunts of a plan run in parallel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunt {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Which forwarding rule a forward comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardRule {
    /// Forward always.
    Always,
    /// Forward when busy.
    Busy,
    /// Forward when not answered.
    NoAnswer,
    /// Forward when nothing can ring.
    NotRegistered,
}

/// What happens to a call that the ring did not (or could not) take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Fallback {
    /// Transfer to a destination, dialled in the Extension's context.
    Forward {
        /// Where to.
        destination: String,
        /// The dialplan context to dial it in.
        context: String,
        /// Which rule.
        rule: ForwardRule,
    },
    /// The Extension's voicemail box.
    Voicemail {
        /// The mailbox (the Extension's number).
        mailbox: String,
    },
    /// The caller hears busy.
    Busy,
    /// The call ends as unavailable.
    Unavailable,
}

/// What a call to the Extension does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Disposition {
    /// No such Extension, or it is disabled.
    NotFound,
    /// Do-Not-Disturb: busy, nothing rings.
    Busy,
    /// Forward-always: nothing rings.
    Forward {
        /// Where to.
        destination: String,
        /// The dialplan context to dial it in.
        context: String,
    },
    /// Nothing is bound: straight to the fallback.
    NothingToRing {
        /// What happens instead.
        then: Fallback,
    },
    /// The hunts ring.
    Ring {
        /// Nobody answered within the ring timeout.
        on_no_answer: Fallback,
        /// Every leg was busy.
        on_busy: Fallback,
        /// No leg was registered (as `NothingToRing`).
        on_not_registered: Fallback,
    },
}

/// The answer to "who rings when this Extension is dialled".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingPlan {
    /// The Extension, unless not found.
    pub extension: Option<ExtensionRef>,
    /// Every endpoint bound to it, in parallel hunts (the first is the personal group).
    pub hunts: Vec<Hunt>,
    /// Seconds before the no-answer outcome.
    pub ring_timeout_secs: u32,
    /// What the call does.
    pub disposition: Disposition,
}

impl RingPlan {
    /// Every target, hunt by hunt, step by step.
    pub fn targets(&self) -> impl Iterator<Item = &RingTarget> {
        self.hunts
            .iter()
            .flat_map(|h| h.steps.iter())
            .flat_map(|s| s.targets.iter())
    }

    /// The SIP users bound to the Extension, each once, in plan order.
    pub fn sip_users(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.targets()
            .map(|t| t.sip_user.as_str())
            .filter(|u| seen.insert(*u))
            .collect()
    }

    /// True when a call rings phones (rather than going straight to an outcome).
    pub fn rings(&self) -> bool {
        matches!(self.disposition, Disposition::Ring { .. })
    }
}

fn not_found() -> RingPlan {
    RingPlan {
        extension: None,
        hunts: Vec::new(),
        ring_timeout_secs: FALLBACK_RING_TIMEOUT_SECS,
        disposition: Disposition::NotFound,
    }
}

/// Collects targets, skipping SIP users already present (first reason wins).
#[derive(Default)]
struct Collector {
    seen: BTreeSet<String>,
}

impl Collector {
    fn admit(&mut self, sip_user: &str) -> bool {
        self.seen.insert(sip_user.to_ascii_lowercase())
    }
}

fn device_target(
    device: &DeviceFacts,
    source: TargetSource,
    leg_timeout_secs: Option<u32>,
    reason: String,
) -> RingTarget {
    RingTarget {
        sip_user: device.sip_username.clone(),
        device_id: Some(device.id),
        device_label: Some(device.label.clone()),
        source,
        leg_timeout_secs,
        reason,
        location_id: device.location_id,
    }
}

/// Computes the ring plan of an Extension from the bindings (pure; see the module notes).
pub fn ring_plan(bindings: &Bindings, extension_id: Uuid, now: DateTime<Utc>) -> RingPlan {
    ring_plan_indexed(bindings, None, extension_id, now)
}

/// The enabled fixed Devices of each owner and the hot-desk sessions of each Extension of a
/// Domain: [`ring_plan_indexed`] for every Extension of a large Domain then costs the size of
/// the Domain, not its square (a recompile after each change plans every Extension).
#[derive(Debug, Default)]
pub struct RingIndex<'a> {
    fixed: HashMap<Uuid, Vec<&'a DeviceFacts>>,
    sessions: HashMap<Uuid, Vec<&'a HotdeskSession>>,
}

impl<'a> RingIndex<'a> {
    /// The index of one Domain's bindings (valid while they do not change).
    pub fn of(b: &'a Bindings) -> Self {
        let mut index = Self::default();
        for d in b.devices.values() {
            if let Some(owner) = d.owner_extension_id.filter(|_| is_fixed(d)) {
                index.fixed.entry(owner).or_default().push(d);
            }
        }
        for s in b.sessions.values() {
            index.sessions.entry(s.extension_id).or_default().push(s);
        }
        for sessions in index.sessions.values_mut() {
            sessions.sort_by_key(|s| (s.started_at, s.device_id));
        }
        index
    }
}

fn is_fixed(d: &DeviceFacts) -> bool {
    d.enabled && d.mode == DeviceMode::Fixed
}

/// [`ring_plan`], with the Domain's [`RingIndex`] when many Extensions are planned.
pub fn ring_plan_indexed(
    bindings: &Bindings,
    index: Option<&RingIndex<'_>>,
    extension_id: Uuid,
    now: DateTime<Utc>,
) -> RingPlan {
    let Some(ext) = bindings.extensions.get(&extension_id).filter(|e| e.enabled) else {
        return not_found();
    };
    let hunts = bound_hunts(bindings, index, ext, now);
    let context = bindings.context_of(ext);
    let forward = |rule: ForwardRule, destination: &str| Fallback::Forward {
        destination: destination.to_owned(),
        context: context.clone(),
        rule,
    };
    let voicemail = || {
        ext.voicemail_enabled.then(|| Fallback::Voicemail {
            mailbox: ext.number.clone(),
        })
    };
    let on_not_registered = ext
        .forward_not_registered
        .target()
        .map(|d| forward(ForwardRule::NotRegistered, d))
        .or_else(voicemail)
        .unwrap_or(Fallback::Unavailable);

    let disposition = if ext.dnd {
        Disposition::Busy
    } else if let Some(destination) = ext.forward_always.target() {
        Disposition::Forward {
            destination: destination.to_owned(),
            context: context.clone(),
        }
    } else if hunts.is_empty() {
        Disposition::NothingToRing {
            then: on_not_registered,
        }
    } else {
        Disposition::Ring {
            on_no_answer: ext
                .forward_no_answer
                .target()
                .map(|d| forward(ForwardRule::NoAnswer, d))
                .or_else(voicemail)
                .unwrap_or(Fallback::Unavailable),
            on_busy: busy_fallback(bindings, ext),
            on_not_registered,
        }
    };
    RingPlan {
        extension: Some(ExtensionRef::from(ext)),
        hunts,
        ring_timeout_secs: ext
            .ring_timeout_secs
            .unwrap_or(bindings.settings.default_ring_timeout_secs),
        disposition,
    }
}

/// What a busy call to the Extension does: the busy forward, else voicemail, else the caller
/// hears busy. The dialplan applies it to Do-Not-Disturb too (DND is busy on purpose).
pub fn busy_fallback(bindings: &Bindings, ext: &ExtensionFacts) -> Fallback {
    if let Some(destination) = ext.forward_busy.target() {
        return Fallback::Forward {
            destination: destination.to_owned(),
            context: bindings.context_of(ext),
            rule: ForwardRule::Busy,
        };
    }
    if ext.voicemail_enabled {
        return Fallback::Voicemail {
            mailbox: ext.number.clone(),
        };
    }
    Fallback::Busy
}

/// The personal group (and, for a sequential Location, its own hunt).
fn bound_hunts(
    b: &Bindings,
    index: Option<&RingIndex<'_>>,
    ext: &ExtensionFacts,
    now: DateTime<Utc>,
) -> Vec<Hunt> {
    let tz = b.domain.time_zone;
    let mut seen = Collector::default();
    let mut personal: Vec<RingTarget> = Vec::new();

    if ext.sip_registration_enabled && seen.admit(&ext.number) {
        personal.push(RingTarget {
            sip_user: ext.number.clone(),
            device_id: None,
            device_label: None,
            source: TargetSource::DirectRegistration,
            leg_timeout_secs: None,
            reason: "direct registration".to_owned(),
            location_id: None,
        });
    }

    let mut fixed: Vec<&DeviceFacts> = match index {
        Some(index) => index.fixed.get(&ext.id).cloned().unwrap_or_default(),
        None => b
            .devices
            .values()
            .filter(|d| is_fixed(d) && d.owner_extension_id == Some(ext.id))
            .collect(),
    };
    fixed.sort_by(|x, y| (&x.label, x.id).cmp(&(&y.label, y.id)));
    for d in fixed {
        if seen.admit(&d.sip_username) {
            personal.push(device_target(
                d,
                TargetSource::FixedDevice,
                None,
                format!("fixed device {}", d.label),
            ));
        }
    }

    let sessions = match index {
        Some(index) => index.sessions.get(&ext.id).cloned().unwrap_or_default(),
        None => b.sessions_of(ext.id),
    };
    for s in sessions {
        let Some(d) = b
            .devices
            .get(&s.device_id)
            .filter(|d| d.enabled && d.mode == DeviceMode::Hotdesk)
        else {
            continue;
        };
        if seen.admit(&d.sip_username) {
            personal.push(device_target(
                d,
                TargetSource::HotdeskSession {
                    started_at: s.started_at,
                    via: s.via,
                },
                None,
                format!(
                    "hot-desk session since {} via {}",
                    clock_time(s.started_at, tz, now),
                    s.via.label()
                ),
            ));
        }
    }

    if ext.placeholder_rings {
        let mut phones: Vec<&DeviceFacts> = b
            .devices
            .values()
            .filter(|d| d.enabled && d.mode == DeviceMode::Hotdesk)
            .filter(|d| {
                b.sessions
                    .get(&d.id)
                    .is_none_or(|s| b.extensions.get(&s.extension_id).is_none_or(|e| !e.enabled))
            })
            .filter(|d| logged_out_placeholder(b, d).is_some_and(|p| p.id == ext.id))
            .collect();
        phones.sort_by(|x, y| (&x.label, x.id).cmp(&(&y.label, y.id)));
        for d in phones {
            if seen.admit(&d.sip_username) {
                personal.push(device_target(
                    d,
                    TargetSource::LoggedOutPhone,
                    None,
                    format!("logged-out phone {}", d.label),
                ));
            }
        }
    }

    let mut sequential: Vec<Step> = Vec::new();
    if let Some(location) = b
        .sign_ins
        .get(&ext.id)
        .and_then(|s| b.locations.get(&s.location_id))
    {
        let mut members: Vec<&DeviceFacts> = b
            .devices
            .values()
            .filter(|d| d.enabled && d.location_id == Some(location.id))
            .filter(|d| {
                // Someone else's hot-desk session makes the phone theirs for now.
                d.mode != DeviceMode::Hotdesk
                    || b.sessions
                        .get(&d.id)
                        .is_none_or(|s| s.extension_id == ext.id)
            })
            .collect();
        members.sort_by(|x, y| {
            (x.location_position, &x.label, x.id).cmp(&(y.location_position, &y.label, y.id))
        });
        for d in members {
            if !seen.admit(&d.sip_username) {
                continue;
            }
            match location.ring_strategy {
                RingStrategy::Simultaneous => personal.push(device_target(
                    d,
                    TargetSource::Location {
                        location_id: location.id,
                        ring: LocationRing::Simultaneous,
                    },
                    None,
                    format!("Location {} (simultaneous)", location.name),
                )),
                RingStrategy::Sequential => {
                    let position = u32::try_from(sequential.len() + 1).unwrap_or(u32::MAX);
                    sequential.push(Step {
                        targets: vec![device_target(
                            d,
                            TargetSource::Location {
                                location_id: location.id,
                                ring: LocationRing::Sequential { position },
                            },
                            Some(
                                d.location_ring_timeout_secs
                                    .unwrap_or(DEFAULT_LOCATION_LEG_TIMEOUT_SECS),
                            ),
                            format!(
                                "Location {} (sequential, {})",
                                location.name,
                                ordinal(position)
                            ),
                        )],
                    });
                }
            }
        }
    }

    let mut hunts = Vec::new();
    if !personal.is_empty() {
        hunts.push(Hunt {
            steps: vec![Step { targets: personal }],
        });
    }
    if !sequential.is_empty() {
        hunts.push(Hunt { steps: sequential });
    }
    hunts
}

/// True for SIP users and domains that can sit inside `${sofia_contact(...)}` unescaped.
fn dial_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

/// The FreeSWITCH dial string of a plan that rings, or `None` when nothing can ring.
///
/// `${sofia_contact(*/<user>@<domain>)}` per target, `,` within a step, `|` between steps,
/// `[leg_timeout=N]` where the plan limits a leg, `:_:` between parallel hunts. A SIP user that
/// could break the syntax (never the case for validated data) is left out rather than escaped.
/// `[leg_timeout=N]` binds to the first contact `sofia_contact` expands to, which is the only
/// one unless the profile keeps several registrations per user.
pub fn render_dial_string(plan: &RingPlan, sip_domain: &str) -> Option<String> {
    render(plan, sip_domain, false)
}

/// [`render_dial_string`] as FreeSWITCH gets it: each device's leg also carries
/// `switchboard_device_id` (and `switchboard_location_id`), so the call history knows which
/// phone answered and where it stands.
pub fn render_dial_string_for_switch(plan: &RingPlan, sip_domain: &str) -> Option<String> {
    render(plan, sip_domain, true)
}

fn render(plan: &RingPlan, sip_domain: &str, leg_ids: bool) -> Option<String> {
    if !plan.rings() || !dial_safe(sip_domain) {
        return None;
    }
    let hunts: Vec<String> = plan
        .hunts
        .iter()
        .map(|hunt| {
            hunt.steps
                .iter()
                .map(|step| {
                    step.targets
                        .iter()
                        .filter(|t| dial_safe(&t.sip_user))
                        .map(|t| {
                            let mut vars: Vec<String> = Vec::new();
                            if let Some(n) = t.leg_timeout_secs {
                                vars.push(format!("leg_timeout={n}"));
                            }
                            if leg_ids {
                                if let Some(id) = t.device_id {
                                    vars.push(format!("switchboard_device_id={id}"));
                                }
                                if let Some(id) = t.location_id {
                                    vars.push(format!("switchboard_location_id={id}"));
                                }
                            }
                            let leg = if vars.is_empty() {
                                String::new()
                            } else {
                                format!("[{}]", vars.join(","))
                            };
                            format!("{leg}${{sofia_contact(*/{}@{sip_domain})}}", t.sip_user)
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|step| !step.is_empty())
                .collect::<Vec<_>>()
                .join("|")
        })
        .filter(|hunt| !hunt.is_empty())
        .collect();
    (!hunts.is_empty()).then(|| hunts.join(":_:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::{Kit, SIP_DOMAIN, at};

    const NOW: &str = "2025-03-28T14:00:00Z";

    #[test]
    fn the_indexed_plan_is_the_plan() {
        let mut k = Kit::new();
        let ann = k.ext("201", "Ann");
        let bob = k.ext("202", "Bob");
        let cid = k.ext("203", "Cid");
        k.ext_mut(cid).sip_registration_enabled = true;
        k.fixed("Desk B", "d-ann-b", ann);
        k.fixed("Desk A", "d-ann-a", ann);
        let off = k.fixed("Spare", "d-ann-off", ann);
        k.device_mut(off).enabled = false;
        k.fixed("Bob's desk", "d-bob", bob);
        let hot1 = k.hotdesk("Hot 1", "d-hot1");
        let hot2 = k.hotdesk("Hot 2", "d-hot2");
        k.login(hot2, bob, "2025-03-28T10:00:00Z", SessionOrigin::Api);
        k.login(hot1, bob, "2025-03-28T09:00:00Z", SessionOrigin::Api);
        let office = k.location("Office", RingStrategy::Sequential);
        let shared = k.fixed("Lobby", "d-lobby", bob);
        k.place(shared, office, 0, Some(10));
        k.sign_in(cid, office, "2025-03-28T08:00:00Z");
        let index = RingIndex::of(&k.b);
        let now = at(NOW);
        for id in [ann, bob, cid, Uuid::from_u128(7)] {
            let plan = ring_plan(&k.b, id, now);
            assert_eq!(ring_plan_indexed(&k.b, Some(&index), id, now), plan);
        }
        // The index changes nothing, but the plans are not empty either.
        let users = |id| {
            render_dial_string(&ring_plan_indexed(&k.b, Some(&index), id, now), SIP_DOMAIN)
                .unwrap_or_default()
        };
        assert!(users(ann).contains("d-ann-a") && users(ann).contains("d-ann-b"));
        assert!(!users(ann).contains("d-ann-off"));
        let bobs = users(bob);
        let (first, second) = (bobs.find("d-hot1"), bobs.find("d-hot2"));
        assert!(first.is_some() && first < second, "{bobs}");
        assert!(users(cid).contains("d-lobby"));
    }

    /// A compact description of an outcome, for tables.
    fn outcome(d: &Disposition) -> String {
        fn fallback(f: &Fallback) -> String {
            match f {
                Fallback::Forward {
                    destination,
                    context,
                    rule,
                } => format!("forward {rule:?} {destination}@{context}"),
                Fallback::Voicemail { mailbox } => format!("voicemail {mailbox}"),
                Fallback::Busy => "busy".into(),
                Fallback::Unavailable => "unavailable".into(),
            }
        }
        match d {
            Disposition::NotFound => "not found".into(),
            Disposition::Busy => "busy (dnd)".into(),
            Disposition::Forward {
                destination,
                context,
            } => format!("forward always {destination}@{context}"),
            Disposition::NothingToRing { then } => format!("nothing to ring → {}", fallback(then)),
            Disposition::Ring {
                on_no_answer,
                on_busy,
                on_not_registered,
            } => format!(
                "ring; no answer → {}; busy → {}; not registered → {}",
                fallback(on_no_answer),
                fallback(on_busy),
                fallback(on_not_registered)
            ),
        }
    }

    /// Hunts as text: hunts split by " :_: ", steps by " | ", targets by ", ";
    /// each target as `sip_user "reason"` (with `/Ns` for a leg timeout).
    fn shape(plan: &RingPlan) -> String {
        plan.hunts
            .iter()
            .map(|h| {
                h.steps
                    .iter()
                    .map(|s| {
                        s.targets
                            .iter()
                            .map(|t| match t.leg_timeout_secs {
                                Some(n) => format!("{} {:?}/{n}s", t.sip_user, t.reason),
                                None => format!("{} {:?}", t.sip_user, t.reason),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join(" :_: ")
    }

    struct Case {
        name: &'static str,
        /// Builds the Domain; returns the Extension dialled.
        setup: fn(&mut Kit) -> Uuid,
        shape: &'static str,
        outcome: &'static str,
        dial: Option<&'static str>,
    }

    const VM: &str =
        "ring; no answer → voicemail 201; busy → voicemail 201; not registered → voicemail 201";

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "fixed device",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Reception 2F", "dfix1", a);
                    a
                },
                shape: r#"dfix1 "fixed device Reception 2F""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dfix1@acme.example.net)}"),
            },
            Case {
                name: "direct registration",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.ext_mut(a).sip_registration_enabled = true;
                    a
                },
                shape: r#"201 "direct registration""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/201@acme.example.net)}"),
            },
            Case {
                name: "hot-desk logged in today (Berlin time)",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, a, "2025-03-28T08:02:00Z", SessionOrigin::FeatureCode);
                    a
                },
                shape: r#"dhot4 "hot-desk session since 09:02 via *11""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dhot4@acme.example.net)}"),
            },
            Case {
                name: "hot-desk logged in yesterday through the API",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, a, "2025-03-27T16:30:00Z", SessionOrigin::Api);
                    a
                },
                shape: r#"dhot4 "hot-desk session since 27 Mar 17:30 via API""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dhot4@acme.example.net)}"),
            },
            Case {
                name: "hot-desk logged out: nothing bound, voicemail",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.hotdesk("Desk 4", "dhot4");
                    a
                },
                shape: "",
                outcome: "nothing to ring → voicemail 201",
                dial: None,
            },
            Case {
                name: "hot-desk device of someone else does not ring",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let b = k.ext("202", "Bob");
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, b, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    a
                },
                shape: "",
                outcome: "nothing to ring → voicemail 201",
                dial: None,
            },
            Case {
                name: "everything personal rings together, in order",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.ext_mut(a).sip_registration_enabled = true;
                    k.fixed("Office", "dfix1", a);
                    let d = k.hotdesk("Desk 4", "dhot4");
                    k.login(d, a, "2025-03-28T08:02:00Z", SessionOrigin::Admin);
                    a
                },
                shape: r#"201 "direct registration", dfix1 "fixed device Office", dhot4 "hot-desk session since 09:02 via admin""#,
                outcome: VM,
                dial: Some(
                    "${sofia_contact(*/201@acme.example.net)},${sofia_contact(*/dfix1@acme.example.net)},${sofia_contact(*/dhot4@acme.example.net)}",
                ),
            },
            Case {
                name: "Location simultaneous joins the personal group",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Mobile desk", "dfix1", a);
                    let l = k.location("Office 3", RingStrategy::Simultaneous);
                    let d1 = k.hotdesk("Window", "dloc1");
                    let d2 = k.hotdesk("Door", "dloc2");
                    k.place(d1, l, 2, None);
                    k.place(d2, l, 1, Some(15));
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dfix1 "fixed device Mobile desk", dloc2 "Location Office 3 (simultaneous)", dloc1 "Location Office 3 (simultaneous)""#,
                outcome: VM,
                dial: Some(
                    "${sofia_contact(*/dfix1@acme.example.net)},${sofia_contact(*/dloc2@acme.example.net)},${sofia_contact(*/dloc1@acme.example.net)}",
                ),
            },
            Case {
                name: "Location sequential is its own hunt, in parallel",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Mobile desk", "dfix1", a);
                    let l = k.location("Office 3", RingStrategy::Sequential);
                    let d1 = k.hotdesk("Window", "dloc1");
                    let d2 = k.hotdesk("Door", "dloc2");
                    k.place(d1, l, 2, None);
                    k.place(d2, l, 1, Some(15));
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dfix1 "fixed device Mobile desk" :_: dloc2 "Location Office 3 (sequential, 1st)"/15s | dloc1 "Location Office 3 (sequential, 2nd)"/20s"#,
                outcome: VM,
                dial: Some(
                    "${sofia_contact(*/dfix1@acme.example.net)}:_:[leg_timeout=15]${sofia_contact(*/dloc2@acme.example.net)}|[leg_timeout=20]${sofia_contact(*/dloc1@acme.example.net)}",
                ),
            },
            Case {
                name: "Location sequential alone",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let l = k.location("Office 3", RingStrategy::Sequential);
                    let d1 = k.hotdesk("Window", "dloc1");
                    k.place(d1, l, 0, Some(10));
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dloc1 "Location Office 3 (sequential, 1st)"/10s"#,
                outcome: VM,
                dial: Some("[leg_timeout=10]${sofia_contact(*/dloc1@acme.example.net)}"),
            },
            Case {
                name: "dedup: own fixed device in the Location rings once, as fixed",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let l = k.location("Office 3", RingStrategy::Sequential);
                    let own = k.fixed("Alice's phone", "dfix1", a);
                    let other = k.hotdesk("Window", "dloc1");
                    k.place(own, l, 1, None);
                    k.place(other, l, 2, None);
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dfix1 "fixed device Alice's phone" :_: dloc1 "Location Office 3 (sequential, 1st)"/20s"#,
                outcome: VM,
                dial: Some(
                    "${sofia_contact(*/dfix1@acme.example.net)}:_:[leg_timeout=20]${sofia_contact(*/dloc1@acme.example.net)}",
                ),
            },
            Case {
                name: "dedup: own hot-desk session in the Location rings once, as hot-desk",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let l = k.location("Office 3", RingStrategy::Simultaneous);
                    let d = k.hotdesk("Window", "dloc1");
                    k.place(d, l, 1, None);
                    k.login(d, a, "2025-03-28T08:02:00Z", SessionOrigin::FeatureCode);
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dloc1 "hot-desk session since 09:02 via *11""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dloc1@acme.example.net)}"),
            },
            Case {
                name: "Location: someone else's hot-desk session keeps the phone out, fixed phones stay",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let b = k.ext("202", "Bob");
                    let l = k.location("Office 3", RingStrategy::Simultaneous);
                    let taken = k.hotdesk("Window", "dloc1");
                    let shared = k.fixed("Bob's desk", "dloc2", b);
                    k.place(taken, l, 1, None);
                    k.place(shared, l, 2, None);
                    k.login(taken, b, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    k.sign_in(a, l, "2025-03-28T07:00:00Z");
                    a
                },
                shape: r#"dloc2 "Location Office 3 (simultaneous)""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dloc2@acme.example.net)}"),
            },
            Case {
                name: "disabled devices never ring",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let f = k.fixed("Office", "dfix1", a);
                    k.device_mut(f).enabled = false;
                    let h = k.hotdesk("Desk 4", "dhot4");
                    k.login(h, a, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    k.device_mut(h).enabled = false;
                    a
                },
                shape: "",
                outcome: "nothing to ring → voicemail 201",
                dial: None,
            },
            Case {
                name: "a session on a device turned fixed is ignored",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    let b = k.ext("202", "Bob");
                    let d = k.fixed("Bob's", "dfix2", b);
                    k.login(d, a, "2025-03-28T08:00:00Z", SessionOrigin::Api);
                    a
                },
                shape: "",
                outcome: "nothing to ring → voicemail 201",
                dial: None,
            },
            Case {
                name: "disabled Extension: not found",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    k.ext_mut(a).enabled = false;
                    a
                },
                shape: "",
                outcome: "not found",
                dial: None,
            },
            Case {
                name: "unknown Extension: not found",
                setup: |k| {
                    k.ext("201", "Alice");
                    Uuid::from_u128(99)
                },
                shape: "",
                outcome: "not found",
                dial: None,
            },
            Case {
                name: "DND: busy, bound phones listed but not rung",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    k.ext_mut(a).dnd = true;
                    Kit::forward(&mut k.ext_mut(a).forward_always, "+4930123456");
                    a
                },
                shape: r#"dfix1 "fixed device Office""#,
                outcome: "busy (dnd)",
                dial: None,
            },
            Case {
                name: "forward always, in the Domain's context",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    Kit::forward(&mut k.ext_mut(a).forward_always, "+4930123456");
                    a
                },
                shape: r#"dfix1 "fixed device Office""#,
                outcome: "forward always +4930123456@acme.example.net",
                dial: None,
            },
            Case {
                name: "forward always, in the Extension's own context",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.ext_mut(a).context = Some("acme-sales".into());
                    Kit::forward(&mut k.ext_mut(a).forward_always, "300");
                    a
                },
                shape: "",
                outcome: "forward always 300@acme-sales",
                dial: None,
            },
            Case {
                name: "forward always without a destination does not apply",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    k.ext_mut(a).forward_always.enabled = true;
                    a
                },
                shape: r#"dfix1 "fixed device Office""#,
                outcome: VM,
                dial: Some("${sofia_contact(*/dfix1@acme.example.net)}"),
            },
            Case {
                name: "nothing bound: forward-not-registered",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    Kit::forward(&mut k.ext_mut(a).forward_not_registered, "+4917000000");
                    a
                },
                shape: "",
                outcome: "nothing to ring → forward NotRegistered +4917000000@acme.example.net",
                dial: None,
            },
            Case {
                name: "nothing bound, no voicemail: unavailable",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.ext_mut(a).voicemail_enabled = false;
                    a
                },
                shape: "",
                outcome: "nothing to ring → unavailable",
                dial: None,
            },
            Case {
                name: "each forward of a ringing plan",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    let e = k.ext_mut(a);
                    Kit::forward(&mut e.forward_no_answer, "301");
                    Kit::forward(&mut e.forward_busy, "302");
                    Kit::forward(&mut e.forward_not_registered, "303");
                    a
                },
                shape: r#"dfix1 "fixed device Office""#,
                outcome: "ring; no answer → forward NoAnswer 301@acme.example.net; busy → forward Busy 302@acme.example.net; not registered → forward NotRegistered 303@acme.example.net",
                dial: Some("${sofia_contact(*/dfix1@acme.example.net)}"),
            },
            Case {
                name: "ringing plan without voicemail or forwards",
                setup: |k| {
                    let a = k.ext("201", "Alice");
                    k.fixed("Office", "dfix1", a);
                    k.ext_mut(a).voicemail_enabled = false;
                    a
                },
                shape: r#"dfix1 "fixed device Office""#,
                outcome: "ring; no answer → unavailable; busy → busy; not registered → unavailable",
                dial: Some("${sofia_contact(*/dfix1@acme.example.net)}"),
            },
            Case {
                name: "a placeholder that rings rings its logged-out phones, not the busy ones",
                setup: |k| {
                    let p = k.ext("299", "Lobby");
                    k.ext_mut(p).placeholder = true;
                    k.ext_mut(p).placeholder_rings = true;
                    k.b.settings.logged_out_mode =
                        crate::telephony::policy::LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    k.ext_mut(p).voicemail_enabled = false;
                    k.hotdesk("Desk 5", "dhot5");
                    k.hotdesk("Desk 4", "dhot4");
                    let busy = k.hotdesk("Desk 6", "dhot6");
                    let a = k.ext("201", "Alice");
                    k.login(
                        busy,
                        a,
                        "2025-03-28T09:02:00Z",
                        super::super::snapshot::SessionOrigin::Api,
                    );
                    let full = k.hotdesk("Desk 7", "dhot7");
                    k.device_mut(full).logged_out_mode =
                        crate::telephony::policy::LoggedOutMode::Full;
                    p
                },
                shape: r#"dhot4 "logged-out phone Desk 4", dhot5 "logged-out phone Desk 5""#,
                outcome: "ring; no answer → unavailable; busy → busy; not registered → unavailable",
                dial: Some(
                    "${sofia_contact(*/dhot4@acme.example.net)},${sofia_contact(*/dhot5@acme.example.net)}",
                ),
            },
            Case {
                name: "logged-out phones do not ring for the placeholder",
                setup: |k| {
                    let p = k.ext("299", "Lobby");
                    k.ext_mut(p).placeholder = true;
                    k.b.settings.logged_out_mode =
                        crate::telephony::policy::LoggedOutMode::Placeholder;
                    k.b.settings.placeholder_extension_id = Some(p);
                    k.ext_mut(p).voicemail_enabled = false;
                    k.hotdesk("Desk 4", "dhot4");
                    p
                },
                shape: "",
                outcome: "nothing to ring → unavailable",
                dial: None,
            },
        ]
    }

    #[test]
    fn every_binding_combination_gives_the_expected_plan_and_dial_string() {
        let mut failures = Vec::new();
        for case in cases() {
            let mut kit = Kit::new();
            let ext = (case.setup)(&mut kit);
            let plan = ring_plan(&kit.b, ext, at(NOW));
            let dial = render_dial_string(&plan, SIP_DOMAIN);
            let got = (shape(&plan), outcome(&plan.disposition), dial.clone());
            let want = (
                case.shape.to_owned(),
                case.outcome.to_owned(),
                case.dial.map(str::to_owned),
            );
            if got != want {
                failures.push(format!("{}:\n  got  {got:?}\n  want {want:?}", case.name));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn ring_timeout_is_the_extension_s_or_the_domain_default() {
        let mut kit = Kit::new();
        let a = kit.ext("201", "Alice");
        let b = kit.ext("202", "Bob");
        kit.ext_mut(b).ring_timeout_secs = Some(45);
        kit.b.settings.default_ring_timeout_secs = 25;
        assert_eq!(ring_plan(&kit.b, a, at(NOW)).ring_timeout_secs, 25);
        assert_eq!(ring_plan(&kit.b, b, at(NOW)).ring_timeout_secs, 45);
    }

    #[test]
    fn targets_carry_their_device_and_source() {
        let mut kit = Kit::new();
        let a = kit.ext("201", "Alice");
        let l = kit.location("Office 3", RingStrategy::Sequential);
        let d = kit.hotdesk("Window", "dloc1");
        kit.place(d, l, 0, None);
        kit.sign_in(a, l, "2025-03-28T07:00:00Z");
        let plan = ring_plan(&kit.b, a, at(NOW));
        let t = plan.targets().next();
        assert_eq!(t.and_then(|t| t.device_id), Some(d));
        assert_eq!(
            t.map(|t| t.source.clone()),
            Some(TargetSource::Location {
                location_id: l,
                ring: LocationRing::Sequential { position: 1 }
            })
        );
        assert_eq!(plan.sip_users(), ["dloc1"]);
    }

    #[test]
    fn dial_strings_leave_out_what_could_break_the_syntax() {
        let target = |user: &str| RingTarget {
            sip_user: user.into(),
            device_id: None,
            device_label: None,
            source: TargetSource::DirectRegistration,
            leg_timeout_secs: None,
            reason: String::new(),
            location_id: None,
        };
        let plan = |users: &[&str]| RingPlan {
            extension: None,
            hunts: vec![Hunt {
                steps: vec![Step {
                    targets: users.iter().map(|u| target(u)).collect(),
                }],
            }],
            ring_timeout_secs: 30,
            disposition: Disposition::Ring {
                on_no_answer: Fallback::Unavailable,
                on_busy: Fallback::Busy,
                on_not_registered: Fallback::Unavailable,
            },
        };
        assert_eq!(
            render_dial_string(&plan(&["201", "x)},${system(rm)"]), SIP_DOMAIN).as_deref(),
            Some("${sofia_contact(*/201@acme.example.net)}")
        );
        assert_eq!(render_dial_string(&plan(&["a,b"]), SIP_DOMAIN), None);
        assert_eq!(render_dial_string(&plan(&["201"]), "evil}.net"), None);
        assert_eq!(render_dial_string(&plan(&[]), SIP_DOMAIN), None);
    }
}
