//! The compiled dialplan of one Domain: what a number dialled in the Domain's own context (its
//! phones' context, named after its SIP domain) does.
//!
//! [`DialPlan::compile`] is a pure function of the Domain's [`Bindings`]; it is rebuilt whenever
//! the Domain changes (with the directory) and then answers two questions without a database:
//! - [`DialPlan::dial`]: a number was dialled, or a forward sent the call here;
//! - [`DialPlan::after_ring`]: ringing an Extension failed with a FreeSWITCH hangup cause.
//!
//! Each Extension in service is a [`Route`]: it rings (its ring plan), or it goes straight to an
//! [`Outcome`] (Do-Not-Disturb, forward-always, nothing bound). A failed ring goes to the
//! Extension's busy, no-answer or not-registered outcome, chosen by the cause ([`RingFailure`]).
//! Every forward counts one hop; past [`MAX_FORWARD_HOPS`] the call ends with
//! `EXCHANGE_ROUTING_ERROR` (SIP 483, "too many hops") instead of looping.
//!
//! [`DialPlan::place`] answers a number dialled by a known caller ([`CallerRef`]): the Domain's
//! emergency numbers first (always through the emergency route, with the place's emergency
//! caller ID, never refused by a toll class), then its Extensions, then its Outbound Routes
//! ([`OutboundPlan`]); [`DialPlan::inbound`] answers a Number called from a carrier.
//!
//! Choices where the issue is silent:
//! - An emergency number that no route matches is left to the operator's own dialplan
//!   ([`Decision::EmergencyUnrouted`]: FreeSWITCH is answered "not found", and the call is still
//!   reported): an emergency call must never be refused because switchboard has no route.
//! - A forward to a number that is not an Extension in service of the Domain is dialled in the
//!   Domain's context like any number: through the Outbound Routes, as the forwarding
//!   Extension (its toll class, its caller ID). A forward into another context (an Extension
//!   with a context of its own) is handed to that context as it is; its hop is counted all the
//!   same.
//! - Do-Not-Disturb applies the busy outcome (busy forward, else voicemail, else busy), as a
//!   busy phone would.
//! - Causes: `USER_BUSY` and `CALL_REJECTED` (a phone's "reject" key) are busy; `NO_ANSWER`,
//!   `NO_USER_RESPONSE` and `ALLOTTED_TIMEOUT` are no answer; `ORIGINATOR_CANCEL` (the caller hung
//!   up) and `SUCCESS`/`NORMAL_CLEARING` just end; anything else (`USER_NOT_REGISTERED`, a phone
//!   that answers 5xx, no media in common…) means the Extension could not be reached and takes
//!   the not-registered outcome.
//! - "Unavailable" (no forward, no voicemail) ends with the cause that happened: `NO_ANSWER`
//!   (SIP 480) after ringing out, `USER_NOT_REGISTERED` when nothing could ring.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::callers::{CallerFacts, CallerRef, Callers};
use super::destination::Destination;
use super::facts::{NumberFacts, RoutingRows};
use super::flows::{CompiledFlow, FlowPlan};
use super::outbound::{
    CallerIdSource, ChosenCallerId, CompiledRoute, DialPattern, OutboundPlan, RouteDecision,
};
use crate::bindings::Bindings;
use crate::bindings::ring_plan::{
    Disposition, ExtensionRef, Fallback, RingIndex, RingPlan, busy_fallback, ring_plan_indexed,
};
use crate::bindings::snapshot::ExtensionFacts;
use crate::telephony::policy::RecordingPolicy;

/// Forwards one call may take before it is ended. A real chain (an assistant forwarding to a
/// deputy forwarding to a team line, then voicemail) is two or three hops; five leaves room for
/// that and still stops two Extensions forwarding to each other after a handful of lookups.
pub const MAX_FORWARD_HOPS: u32 = 5;

/// A FreeSWITCH hangup cause the dialplan ends a call with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HangupCause {
    /// Busy (SIP 486).
    UserBusy,
    /// Rang out without an answer (SIP 480).
    NoAnswer,
    /// Nothing could ring (SIP 404).
    UserNotRegistered,
    /// No such number (SIP 404).
    UnallocatedNumber,
    /// A known number that cannot be reached from here, e.g. a forward to an external number
    /// without outbound routes (SIP 404).
    NoRouteDestination,
    /// Too many forwarding hops (SIP 483).
    ExchangeRoutingError,
    /// Refused (SIP 603).
    CallRejected,
    /// Ended normally.
    NormalClearing,
    /// The caller's toll class does not allow the number (SIP 403).
    OutgoingCallBarred,
    /// No gateway could take the call (SIP 503).
    NormalTemporaryFailure,
}

impl HangupCause {
    /// The cause as FreeSWITCH names it (`hangup <cause>`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserBusy => "USER_BUSY",
            Self::NoAnswer => "NO_ANSWER",
            Self::UserNotRegistered => "USER_NOT_REGISTERED",
            Self::UnallocatedNumber => "UNALLOCATED_NUMBER",
            Self::NoRouteDestination => "NO_ROUTE_DESTINATION",
            Self::ExchangeRoutingError => "EXCHANGE_ROUTING_ERROR",
            Self::CallRejected => "CALL_REJECTED",
            Self::NormalClearing => "NORMAL_CLEARING",
            Self::OutgoingCallBarred => "OUTGOING_CALL_BARRED",
            Self::NormalTemporaryFailure => "NORMAL_TEMPORARY_FAILURE",
        }
    }
}

/// Where a call goes instead of (or after) ringing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Outcome {
    /// Dial `destination` in `context` (another Extension of the Domain, or the Extension's own
    /// context).
    Forward {
        /// The number.
        destination: Box<str>,
        /// The context to dial it in.
        context: Box<str>,
    },
    /// The Extension's voicemail box.
    Voicemail {
        /// The mailbox (the Extension's number).
        mailbox: Box<str>,
    },
    /// End the call.
    HangUp {
        /// With this cause.
        cause: HangupCause,
    },
}

/// Why a call goes straight to an outcome without ringing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Divert {
    /// Do-Not-Disturb is on: the busy outcome.
    DoNotDisturb,
    /// Forward-always is on.
    ForwardAlways,
    /// Nothing is bound to the Extension: the not-registered outcome.
    NothingToRing,
}

/// What dialling an Extension does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "treatment", rename_all = "snake_case")]
pub enum Treatment {
    /// Ring its ring plan for `ring_timeout_secs`; on failure, the outcome of the cause.
    Ring {
        /// The ring timeout.
        ring_timeout_secs: u32,
        /// Nobody answered.
        on_no_answer: Outcome,
        /// Busy (or rejected).
        on_busy: Outcome,
        /// Nothing could be reached.
        on_not_registered: Outcome,
    },
    /// Straight to an outcome.
    Divert {
        /// Why.
        reason: Divert,
        /// Where.
        outcome: Outcome,
    },
}

/// One number of the Domain's context: an Extension and what dialling it does, plus what the
/// renderer attached to it (esl-bridge: the rendered dial string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<X> {
    /// The Extension.
    pub extension: ExtensionRef,
    /// What dialling it does.
    pub treatment: Treatment,
    /// Recording of the calls it receives (`recording.inbound`).
    pub record_inbound: RecordingPolicy,
    /// The renderer's payload, computed once per compile.
    pub payload: X,
}

/// How a ring failed, as far as outcomes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RingFailure {
    /// Busy or rejected: the busy outcome.
    Busy,
    /// Rang out: the no-answer outcome.
    NoAnswer,
    /// Could not be reached: the not-registered outcome.
    NotRegistered,
    /// The caller hung up (or the call ended normally): nothing to do.
    CallerGone,
}

impl RingFailure {
    /// Classifies a FreeSWITCH hangup cause (`originate_disposition`), see the module notes.
    pub fn from_cause(cause: &str) -> Self {
        match cause.trim().to_ascii_uppercase().as_str() {
            "USER_BUSY" | "CALL_REJECTED" => Self::Busy,
            "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" => Self::NoAnswer,
            "ORIGINATOR_CANCEL" | "SUCCESS" | "NORMAL_CLEARING" => Self::CallerGone,
            _ => Self::NotRegistered,
        }
    }
}

/// What one step of a call does, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// Dial `destination` in `context`, the call having now taken `hops` forwards.
    Forward {
        /// The number.
        destination: &'a str,
        /// The context.
        context: &'a str,
        /// Forwards taken, this one included.
        hops: u32,
    },
    /// Answer and leave a message in `mailbox`.
    Voicemail {
        /// The mailbox.
        mailbox: &'a str,
    },
    /// End the call with `cause`.
    HangUp {
        /// The cause.
        cause: HangupCause,
    },
    /// A forward that would exceed [`MAX_FORWARD_HOPS`]: the call ends with
    /// `EXCHANGE_ROUTING_ERROR`.
    TooManyHops {
        /// Forwards already taken.
        hops: u32,
    },
}

impl Step<'_> {
    /// The cause a [`Step::TooManyHops`] ends with.
    pub const TOO_MANY_HOPS_CAUSE: HangupCause = HangupCause::ExchangeRoutingError;
}

/// An emergency call, as the Domain's live stream reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmergencyCall {
    /// The number dialled.
    pub dialled: String,
    /// The caller ID sent with it.
    pub caller_id_name: Option<String>,
    /// The caller ID number sent with it.
    pub caller_id_number: Option<String>,
    /// Who and which phone, with the Location and its emergency address.
    pub caller: Option<CallerFacts>,
    /// The route it leaves through (none: no emergency route; the operator's dialplan).
    pub route: Option<String>,
}

/// A call leaving through an Outbound Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall<'a> {
    /// The route.
    pub route: &'a CompiledRoute,
    /// The pattern that matched.
    pub pattern: &'a DialPattern,
    /// What was dialled.
    pub dialled: String,
    /// What the gateways are sent (E.164 where it can be).
    pub number: String,
    /// The caller ID and why.
    pub caller_id: ChosenCallerId,
    /// Set for an emergency call.
    pub emergency: Option<EmergencyCall>,
}

/// Whether a bridged call is recorded, and why: the stronger of the caller's policy for the
/// calls it places and the called Extension's for the calls it receives (`always` over
/// `on_demand` over `never`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    /// `always`: from the answer to the end; `on_demand`: a DTMF code starts and stops it;
    /// `never`.
    #[serde(serialize_with = "crate::bindings::identity::recording_name")]
    pub policy: RecordingPolicy,
    /// Why, in words.
    pub reason: String,
}

impl Recording {
    fn rank(p: RecordingPolicy) -> u8 {
        match p {
            RecordingPolicy::Never => 0,
            RecordingPolicy::OnDemand => 1,
            RecordingPolicy::Always => 2,
        }
    }
}

/// Why a call is refused before it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The caller's toll class does not allow the route's class.
    TollClass,
    /// The route that matched has no gateway the Domain can use.
    NoGateway,
    /// An external number dialled by nobody we know (no toll class to check).
    UnknownCaller,
    /// A logged-out phone dialled something other than an emergency number.
    LoggedOut,
    /// The caller's Extension may not dial this internal number (its `internal_allow`).
    InternalNotAllowed,
}

/// The answer to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a, X> {
    /// Not for this plan to answer.
    NotOurs,
    /// An emergency number that no route matches: the operator's dialplan (see the module
    /// notes); reported all the same.
    EmergencyUnrouted(EmergencyCall),
    /// Leave through a gateway.
    Outbound(OutboundCall<'a>),
    /// Refused before it left.
    Refused {
        /// The cause it ends with.
        cause: HangupCause,
        /// Why.
        reason: Refusal,
        /// The route that matched, if any.
        route: Option<&'a CompiledRoute>,
    },
    /// No such number: `UNALLOCATED_NUMBER`.
    Unallocated,
    /// Ring the Extension; if the ring fails, ask [`DialPlan::after_ring`].
    Ring {
        /// The route.
        route: &'a Route<X>,
    },
    /// Apply an outcome of the Extension now.
    Apply {
        /// The route.
        route: &'a Route<X>,
        /// What to do.
        step: Step<'a>,
    },
    /// The caller is gone: just end.
    End,
    /// A ring group, IVR menu or time condition dialled by its internal number.
    Flow {
        /// The flow.
        flow: &'a CompiledFlow,
    },
}

/// Where a destination sends a call, resolved against the compiled Domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// Dial this number in the Domain's context (an Extension in service, or an external
    /// number for the Outbound Routes).
    Dial(&'a str),
    /// Leave a message in this box.
    Voicemail(&'a str),
    /// Enter a flow.
    Flow(&'a CompiledFlow),
    /// End the call.
    HangUp(HangupCause),
}

/// A Domain's compiled dialplan.
#[derive(Debug, Clone)]
pub struct DialPlan<X> {
    domain_id: Uuid,
    context: String,
    emergency_numbers: Vec<String>,
    /// The Extensions in service, by number (sorted once [`finish`](Self::finish)ed: a Domain
    /// holds one per Extension, kept without a hash table's spare room).
    routes: Vec<Route<X>>,
    /// Whether `routes` is in number order and `by_id` indexes it.
    sorted: bool,
    /// Index into `routes` by Extension id (built by `finish`).
    by_id: Box<[(Uuid, u32)]>,
    outbound: OutboundPlan,
    numbers: HashMap<String, NumberFacts>,
    /// The Number that rings each Extension (the lowest, when several do).
    dids: HashMap<Uuid, String>,
    callers: Callers,
    /// Extension numbers with a voicemail box, by Extension id (sorted).
    mailboxes: Box<[(Uuid, Box<str>)]>,
    /// Ring groups, IVR menus, time conditions.
    flows: FlowPlan,
    /// The Domain's time zone (time conditions without their own).
    time_zone: chrono_tz::Tz,
}

impl<X> DialPlan<X> {
    /// An empty plan for the Domain; fill it with [`insert`](Self::insert) (or use
    /// [`compile`](Self::compile)).
    pub fn empty(bindings: &Bindings) -> Self {
        Self {
            domain_id: bindings.domain.id,
            context: bindings.domain.sip_domain.to_ascii_lowercase(),
            emergency_numbers: bindings.settings.emergency_numbers.clone(),
            routes: Vec::new(),
            sorted: true,
            by_id: Box::default(),
            outbound: OutboundPlan::default(),
            numbers: HashMap::new(),
            dids: HashMap::new(),
            callers: Callers::compile(bindings),
            // The bindings' map iterates in id order: sorted.
            mailboxes: bindings
                .extensions
                .values()
                .filter(|e| e.voicemail_enabled)
                .map(|e| (e.id, Box::from(e.number.as_str())))
                .collect(),
            flows: FlowPlan::default(),
            time_zone: bindings.domain.time_zone,
        }
    }

    /// Adds the Domain's Outbound Routes, gateways and Numbers.
    pub fn with_routing(mut self, rows: &RoutingRows) -> Self {
        let (outbound, numbers) = super::facts::compile(rows);
        let mut dids: HashMap<Uuid, String> = HashMap::new();
        for n in numbers.values() {
            if let Some(super::destination::Destination::Extension { extension_id }) =
                &n.destination
            {
                let slot = dids
                    .entry(*extension_id)
                    .or_insert_with(|| n.number.clone());
                if n.number < *slot {
                    slot.clone_from(&n.number);
                }
            }
        }
        self.outbound = outbound;
        self.numbers = numbers;
        self.dids = dids;
        self.flows = FlowPlan::compile(&rows.flows);
        self
    }

    /// Takes the Outbound Routes, gateways, Numbers and call flows of another plan of the same
    /// Domain, compiled from the routing rows as they still are: a recompile after a change
    /// that cannot touch them ([`ChangeKind::keeps_routing`](crate::events::ChangeKind::keeps_routing))
    /// reads and compiles the bindings only. The same as [`with_routing`](Self::with_routing)
    /// of the rows `other` was compiled from.
    pub fn with_routing_from<Y>(mut self, other: &DialPlan<Y>) -> Self {
        self.outbound = other.outbound.clone();
        self.numbers = other.numbers.clone();
        self.dids = other.dids.clone();
        self.flows = other.flows.clone();
        self
    }

    /// The plan with the routes of `extensions` replaced by `routes` (each Extension with its
    /// ring plan and payload; an Extension of `extensions` without one is no longer routed)
    /// and the caller facts of `extensions` and `devices` recomputed from `bindings`, the rest
    /// as it was: a change to some phones applied without recompiling the Domain. `bindings`
    /// must hold every row those routes and callers are computed from; the Extensions' numbers,
    /// mailboxes and the routing are unchanged (the caller checks it).
    pub fn with_changes<'e>(
        &self,
        bindings: &Bindings,
        routes: impl IntoIterator<Item = (&'e ExtensionFacts, &'e RingPlan, X)>,
        extensions: &[Uuid],
        devices: &[Uuid],
    ) -> Self
    where
        X: Clone,
    {
        let mut changed = extensions.to_vec();
        changed.sort_unstable();
        let mut fresh: Vec<Route<X>> = routes
            .into_iter()
            .filter_map(|(ext, ring, payload)| {
                Some(Route {
                    extension: ExtensionRef::from(ext),
                    treatment: treatment(bindings, ext, ring)?,
                    record_inbound: ext.record_inbound,
                    payload,
                })
            })
            .collect();
        fresh.sort_by(|a, b| a.extension.number.cmp(&b.extension.number));
        // The routes kept and the new ones, merged in number order (a new one replaces a kept
        // one of its number, as `insert` does); no route moved twice.
        let mut merged = Vec::with_capacity(self.routes.len() + fresh.len());
        let mut fresh = fresh.into_iter().peekable();
        for kept in self
            .routes
            .iter()
            .filter(|r| changed.binary_search(&r.extension.id).is_err())
        {
            let mut replaced = false;
            while let Some(new) = fresh.next_if(|f| f.extension.number <= kept.extension.number) {
                replaced |= new.extension.number == kept.extension.number;
                merged.push(new);
            }
            if !replaced {
                merged.push(kept.clone());
            }
        }
        merged.extend(fresh);
        let mut plan = Self {
            domain_id: self.domain_id,
            context: self.context.clone(),
            emergency_numbers: self.emergency_numbers.clone(),
            routes: merged,
            // In number order when the kept routes were (a finished plan's are).
            sorted: self.sorted,
            by_id: Box::default(),
            outbound: self.outbound.clone(),
            numbers: self.numbers.clone(),
            dids: self.dids.clone(),
            callers: self.callers.with_changes(bindings, extensions, devices),
            mailboxes: self.mailboxes.clone(),
            flows: self.flows.clone(),
            time_zone: self.time_zone,
        };
        plan.finish();
        plan
    }

    /// Whether `id` has a voicemail box in this plan.
    pub fn has_mailbox(&self, id: Uuid) -> bool {
        self.mailboxes.binary_search_by(|(k, _)| k.cmp(&id)).is_ok()
    }

    /// The Domain's ring groups, IVR menus and time conditions.
    pub fn flows(&self) -> &FlowPlan {
        &self.flows
    }

    /// Where a destination sends a call: an Extension not in service (or a box that is gone,
    /// a flow deleted since) ends as unallocated.
    pub fn target<'a>(&'a self, destination: &'a Destination) -> Target<'a> {
        let unallocated = Target::HangUp(HangupCause::UnallocatedNumber);
        match destination {
            Destination::Extension { extension_id } => self
                .extension_number(*extension_id)
                .map_or(unallocated, Target::Dial),
            Destination::Voicemail { extension_id } => self
                .mailboxes
                .binary_search_by(|(id, _)| id.cmp(extension_id))
                .map_or(unallocated, |i| Target::Voicemail(&self.mailboxes[i].1)),
            Destination::External { number } => Target::Dial(number),
            Destination::HangUp { cause } => Target::HangUp(cause.cause()),
            Destination::RingGroup { ring_group_id: id }
            | Destination::Ivr { ivr_id: id }
            | Destination::TimeCondition {
                time_condition_id: id,
            } => self.flows.get(*id).map_or(unallocated, Target::Flow),
        }
    }

    /// Compiles the plan of every Extension in service; `payload` renders what the answer needs
    /// per Extension (it sees the ring plan, computed once).
    pub fn compile(
        bindings: &Bindings,
        routing: &RoutingRows,
        now: DateTime<Utc>,
        mut payload: impl FnMut(&ExtensionFacts, &RingPlan) -> X,
    ) -> Self {
        let mut plan = Self::empty(bindings).with_routing(routing);
        let mut extensions: Vec<&ExtensionFacts> = bindings.extensions.values().collect();
        extensions.sort_by(|a, b| a.number.cmp(&b.number));
        let index = RingIndex::of(bindings);
        for ext in extensions {
            let ring = ring_plan_indexed(bindings, Some(&index), ext.id, now);
            let x = payload(ext, &ring);
            plan.insert(bindings, ext, &ring, x);
        }
        plan.finish();
        plan
    }

    /// Adds an Extension with its ring plan (a disabled one is left out: its number is
    /// unallocated); an Extension of the same number replaces the one before. Inserting in
    /// number order, then calling [`finish`](Self::finish), leaves the plan ready for fast
    /// lookups (before `finish`, lookups are right but scan).
    pub fn insert(
        &mut self,
        bindings: &Bindings,
        ext: &ExtensionFacts,
        plan: &RingPlan,
        payload: X,
    ) {
        if let Some(treatment) = treatment(bindings, ext, plan) {
            let route = Route {
                extension: ExtensionRef::from(ext),
                treatment,
                record_inbound: ext.record_inbound,
                payload,
            };
            if let Some(i) = self.route_index(&ext.number) {
                self.routes[i] = route;
                self.by_id = Box::default();
                return;
            }
            let in_order = self
                .routes
                .last()
                .is_none_or(|last| last.extension.number < ext.number);
            self.sorted &= in_order;
            self.by_id = Box::default();
            self.routes.push(route);
        }
    }

    /// Sorts what [`insert`](Self::insert) added and gives back the spare room: lookups are
    /// binary searches from here on.
    pub fn finish(&mut self) {
        if !self.sorted {
            self.routes
                .sort_by(|a, b| a.extension.number.cmp(&b.extension.number));
            self.sorted = true;
        }
        self.routes.shrink_to_fit();
        let mut by_id: Vec<(Uuid, u32)> = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((r.extension.id, u32::try_from(i).ok()?)))
            .collect();
        by_id.sort_unstable();
        self.by_id = by_id.into_boxed_slice();
    }

    /// Where the route of `number` is.
    fn route_index(&self, number: &str) -> Option<usize> {
        if self.sorted {
            self.routes
                .binary_search_by(|r| r.extension.number.as_str().cmp(number))
                .ok()
        } else {
            self.routes
                .iter()
                .position(|r| r.extension.number == number)
        }
    }

    fn route_of(&self, number: &str) -> Option<&Route<X>> {
        self.route_index(number).map(|i| &self.routes[i])
    }

    /// The Domain.
    pub fn domain_id(&self) -> Uuid {
        self.domain_id
    }

    /// The context it answers: the Domain's SIP domain, lower-case.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The route of a number, if it is an Extension in service.
    pub fn route(&self, number: &str) -> Option<&Route<X>> {
        self.route_of(number)
    }

    /// The numbers of its Extensions in service.
    pub fn extension_numbers(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.extension.number.as_str())
    }

    /// The Domain's time zone.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.time_zone
    }

    /// How many numbers it routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when it routes no number.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The Numbers (E.164) that carriers' calls reach this Domain on.
    pub fn inbound_numbers(&self) -> impl Iterator<Item = &str> {
        self.numbers.keys().map(String::as_str)
    }

    /// The number of an Extension in service.
    pub fn extension_number(&self, id: Uuid) -> Option<&str> {
        let route = if self.by_id.len() == self.routes.len() {
            let i = self.by_id.binary_search_by(|(k, _)| k.cmp(&id)).ok()?;
            self.routes.get(self.by_id[i].1 as usize)
        } else {
            self.routes.iter().find(|r| r.extension.id == id)
        };
        route.map(|r| r.extension.number.as_str())
    }

    /// The outbound side: routes, numbering, caller-ID rules.
    pub fn outbound(&self) -> &OutboundPlan {
        &self.outbound
    }

    /// Whether `number` is one of the Domain's emergency numbers.
    pub fn is_emergency(&self, number: &str) -> bool {
        self.emergency_numbers.iter().any(|n| n == number)
    }

    /// What the plan knows of a caller (`None` for an unknown one).
    pub fn caller(&self, caller: &CallerRef) -> Option<CallerFacts> {
        match caller {
            CallerRef::Device(id) => self.callers.device(*id),
            CallerRef::Extension(id) | CallerRef::ForwardedBy(id) => self.callers.extension(*id),
            CallerRef::InboundNumber(_) => self.callers.domain(),
            CallerRef::Unknown => None,
        }
    }

    /// The Number a call from a carrier is for: as sent, or with a `+` the carrier left off,
    /// or read with the Domain's numbering.
    pub fn inbound(&self, called: &str) -> Option<&NumberFacts> {
        let called = called.trim();
        self.numbers
            .get(called)
            .or_else(|| {
                called
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| self.numbers.get(&format!("+{called}")))
                    .flatten()
            })
            .or_else(|| {
                self.outbound
                    .numbering
                    .to_e164(called)
                    .and_then(|n| self.numbers.get(&n))
            })
    }

    /// `destination` dialled in the Domain's context by `caller`, the call having taken `hops`
    /// forwards: an emergency number, an Extension, or a number for the Outbound Routes.
    pub fn place(&self, caller: &CallerRef, destination: &str, hops: u32) -> Decision<'_, X> {
        let facts = self.caller(caller);
        let facts = facts.as_ref();
        if self.is_emergency(destination) {
            return self.emergency(facts, destination);
        }
        let flow = self.flows.by_number(destination);
        if self.route_index(destination).is_some() || flow.is_some() {
            let barred = facts.is_some_and(|f| {
                f.restricted
                    || f.internal_allow
                        .as_ref()
                        .is_some_and(|allow| !allow.permits(destination))
            });
            if barred && !matches!(caller, CallerRef::InboundNumber(_)) {
                return Decision::Refused {
                    cause: HangupCause::OutgoingCallBarred,
                    reason: if facts.is_some_and(|f| f.restricted) {
                        Refusal::LoggedOut
                    } else {
                        Refusal::InternalNotAllowed
                    },
                    route: None,
                };
            }
            if let Some(flow) = flow {
                return Decision::Flow { flow };
            }
            return self.dial(destination, hops);
        }
        if facts.is_some_and(|f| f.restricted) {
            return Decision::Refused {
                cause: HangupCause::OutgoingCallBarred,
                reason: Refusal::LoggedOut,
                route: None,
            };
        }
        let Some(facts) = facts else {
            return match self.outbound.route(destination, &[] as &[&str], false) {
                RouteDecision::NoRoute => Decision::Unallocated,
                _ => Decision::Refused {
                    cause: HangupCause::OutgoingCallBarred,
                    reason: Refusal::UnknownCaller,
                    route: None,
                },
            };
        };
        // A Number pointed outside by the Domain admin: no toll class of its own.
        let inbound = matches!(caller, CallerRef::InboundNumber(_));
        let all_classes: Vec<&str> = super::outbound::TollClass::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        let decision = if inbound {
            self.outbound.route(destination, &all_classes, false)
        } else {
            self.outbound.route(destination, &facts.toll_allow, false)
        };
        match decision {
            RouteDecision::NoRoute => Decision::Unallocated,
            RouteDecision::Barred { route } => Decision::Refused {
                cause: HangupCause::OutgoingCallBarred,
                reason: Refusal::TollClass,
                route: Some(route),
            },
            RouteDecision::NoGateway { route } => Decision::Refused {
                cause: HangupCause::NormalTemporaryFailure,
                reason: Refusal::NoGateway,
                route: Some(route),
            },
            RouteDecision::Route {
                route,
                pattern,
                number,
            } => {
                let caller_id = match caller {
                    CallerRef::InboundNumber(did) => ChosenCallerId {
                        name: None,
                        number: Some(did.clone()),
                        source: CallerIdSource::InboundNumber,
                    },
                    _ => self.outbound.caller_id(
                        facts.outbound_name.as_deref(),
                        facts.outbound_number.as_deref(),
                        facts
                            .extension
                            .as_ref()
                            .and_then(|e| self.dids.get(&e.id))
                            .map(String::as_str),
                    ),
                };
                Decision::Outbound(OutboundCall {
                    route,
                    pattern,
                    dialled: destination.to_owned(),
                    number,
                    caller_id,
                    emergency: None,
                })
            }
        }
    }

    /// An emergency number: the emergency route, the place's emergency caller ID.
    fn emergency(&self, facts: Option<&CallerFacts>, dialled: &str) -> Decision<'_, X> {
        let domain = self.callers.domain();
        let facts = facts.or(domain.as_ref());
        let id = facts.map(|f| &f.emergency);
        let mut call = EmergencyCall {
            dialled: dialled.to_owned(),
            caller_id_name: id.and_then(|e| e.name.clone()),
            caller_id_number: id.and_then(|e| e.number.clone()),
            caller: facts.cloned(),
            route: None,
        };
        match self.outbound.route(dialled, &[] as &[&str], true) {
            RouteDecision::Route {
                route,
                pattern,
                number,
            } => {
                call.route = Some(route.name.clone());
                Decision::Outbound(OutboundCall {
                    route,
                    pattern,
                    dialled: dialled.to_owned(),
                    number,
                    caller_id: ChosenCallerId {
                        name: call.caller_id_name.clone(),
                        number: call.caller_id_number.clone(),
                        source: CallerIdSource::Emergency,
                    },
                    emergency: Some(call),
                })
            }
            // A route without a usable gateway, or none at all: the operator's dialplan may
            // still reach the emergency services; never refused here.
            _ => Decision::EmergencyUnrouted(call),
        }
    }

    /// `destination` dialled in the Domain's context: an Extension in service, else
    /// unallocated (see [`place`](Self::place) for every other kind of number).
    pub fn dial(&self, destination: &str, hops: u32) -> Decision<'_, X> {
        let Some(route) = self.route_of(destination) else {
            return Decision::Unallocated;
        };
        match &route.treatment {
            Treatment::Ring { .. } => Decision::Ring { route },
            Treatment::Divert { outcome, .. } => Decision::Apply {
                route,
                step: step(outcome, hops),
            },
        }
    }

    /// Whether the call `caller` places, decided as `decision`, is recorded. Only a call that
    /// is bridged (an Extension rings, or it leaves through a gateway) can be; a carrier's
    /// call (or one forwarded for a Number) has no policy of its own, the called Extension's
    /// decides.
    pub fn recording(&self, caller: &CallerRef, decision: &Decision<'_, X>) -> Recording {
        let never = |reason: &str| Recording {
            policy: RecordingPolicy::Never,
            reason: reason.to_owned(),
        };
        let callee = match decision {
            Decision::Ring { route } => Some(route),
            Decision::Outbound(_) => None,
            _ => return never("nothing is bridged"),
        };
        let placing = match caller {
            CallerRef::InboundNumber(_) | CallerRef::Unknown => None,
            _ => self.caller(caller).map(|f| {
                let who = f
                    .extension
                    .as_ref()
                    .map(|e| format!("Extension {}", e.number))
                    .or_else(|| f.device_label.as_ref().map(|l| format!("the phone {l:?}")))
                    .unwrap_or_else(|| "the caller".to_owned());
                (
                    f.record_outbound,
                    format!("{who} (calling) records the calls it places"),
                )
            }),
        };
        let receiving = callee.map(|r| {
            (
                r.record_inbound,
                format!(
                    "Extension {} (called) records the calls it receives",
                    r.extension.number
                ),
            )
        });
        let chosen = [placing, receiving]
            .into_iter()
            .flatten()
            .max_by_key(|(p, _)| Recording::rank(*p));
        match chosen {
            Some((policy, why)) if policy != RecordingPolicy::Never => Recording {
                policy,
                reason: format!("{why}: {}", policy.as_str()),
            },
            _ => never("neither the caller nor the called Extension records its calls"),
        }
    }

    /// Ringing `extension` failed with `cause`: its outcome for that cause.
    pub fn after_ring(&self, extension: &str, cause: &str, hops: u32) -> Decision<'_, X> {
        let Some(route) = self.route_of(extension) else {
            return Decision::Unallocated;
        };
        let failure = RingFailure::from_cause(cause);
        let outcome = match (&route.treatment, failure) {
            (_, RingFailure::CallerGone) => return Decision::End,
            (
                Treatment::Ring {
                    on_no_answer,
                    on_busy,
                    on_not_registered,
                    ..
                },
                failure,
            ) => match failure {
                RingFailure::Busy => on_busy,
                RingFailure::NoAnswer => on_no_answer,
                _ => on_not_registered,
            },
            // Changed since the ring started (DND switched on while it rang): today's outcome.
            (Treatment::Divert { outcome, .. }, _) => outcome,
        };
        Decision::Apply {
            route,
            step: step(outcome, hops),
        }
    }
}

/// The step of an outcome for a call that has taken `hops` forwards.
fn step(outcome: &Outcome, hops: u32) -> Step<'_> {
    match outcome {
        Outcome::Forward {
            destination,
            context,
        } if hops < MAX_FORWARD_HOPS => Step::Forward {
            destination,
            context,
            hops: hops + 1,
        },
        Outcome::Forward { .. } => Step::TooManyHops { hops },
        Outcome::Voicemail { mailbox } => Step::Voicemail { mailbox },
        Outcome::HangUp { cause } => Step::HangUp { cause: *cause },
    }
}

/// What dialling an Extension does; `None` when it is not in service.
fn treatment(bindings: &Bindings, ext: &ExtensionFacts, plan: &RingPlan) -> Option<Treatment> {
    let then = |f: &Fallback, unavailable: HangupCause| outcome(bindings, f, unavailable);
    Some(match &plan.disposition {
        Disposition::NotFound => return None,
        Disposition::Busy => Treatment::Divert {
            reason: Divert::DoNotDisturb,
            outcome: then(&busy_fallback(bindings, ext), HangupCause::UserBusy),
        },
        Disposition::Forward {
            destination,
            context,
        } => Treatment::Divert {
            reason: Divert::ForwardAlways,
            outcome: forward(bindings, destination, context),
        },
        Disposition::NothingToRing { then: fallback } => Treatment::Divert {
            reason: Divert::NothingToRing,
            outcome: then(fallback, HangupCause::UserNotRegistered),
        },
        Disposition::Ring {
            on_no_answer,
            on_busy,
            on_not_registered,
        } => Treatment::Ring {
            ring_timeout_secs: plan.ring_timeout_secs,
            on_no_answer: then(on_no_answer, HangupCause::NoAnswer),
            on_busy: then(on_busy, HangupCause::UserBusy),
            on_not_registered: then(on_not_registered, HangupCause::UserNotRegistered),
        },
    })
}

/// The outcome of a ring plan's fallback; `unavailable` is the cause an "unavailable" ends with.
fn outcome(bindings: &Bindings, fallback: &Fallback, unavailable: HangupCause) -> Outcome {
    match fallback {
        Fallback::Forward {
            destination,
            context,
            ..
        } => forward(bindings, destination, context),
        Fallback::Voicemail { mailbox } => Outcome::Voicemail {
            mailbox: mailbox.as_str().into(),
        },
        Fallback::Busy => Outcome::HangUp {
            cause: HangupCause::UserBusy,
        },
        Fallback::Unavailable => Outcome::HangUp { cause: unavailable },
    }
}

/// A forward: to a number of the Domain's context (an Extension, or anything the Outbound
/// Routes reach), or into another context as it is.
fn forward(bindings: &Bindings, destination: &str, context: &str) -> Outcome {
    let destination = destination.trim();
    let own_context = context.eq_ignore_ascii_case(&bindings.domain.sip_domain);
    if !destination.is_empty() {
        Outcome::Forward {
            destination: destination.into(),
            context: if own_context {
                bindings.domain.sip_domain.to_ascii_lowercase().into()
            } else {
                context.into()
            },
        }
    } else {
        Outcome::HangUp {
            cause: HangupCause::NoRouteDestination,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::snapshot::SessionOrigin;
    use crate::bindings::testkit::{Kit, SIP_DOMAIN, at};
    use crate::telephony::policy::RingStrategy;

    const NOW: &str = "2025-03-28T14:00:00Z";

    fn compile(k: &Kit) -> DialPlan<()> {
        DialPlan::compile(&k.b, &RoutingRows::default(), at(NOW), |_, _| ())
    }

    /// A decision as text, for tables.
    fn show<X>(d: &Decision<'_, X>) -> String {
        match d {
            Decision::NotOurs => "not ours".into(),
            Decision::EmergencyUnrouted(call) => format!("emergency {} unrouted", call.dialled),
            Decision::Outbound(call) => format!(
                "out {} via {} as {}",
                call.number,
                call.route
                    .gateways
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(">"),
                call.caller_id.number.as_deref().unwrap_or("-")
            ),
            Decision::Refused { cause, reason, .. } => {
                format!("refused {} ({reason:?})", cause.as_str())
            }
            Decision::Unallocated => "hangup UNALLOCATED_NUMBER".into(),
            Decision::End => "end".into(),
            Decision::Flow { flow } => format!("flow {}", flow.name),
            Decision::Ring { route } => format!("ring {}", route.extension.number),
            Decision::Apply { route, step } => {
                let what = match step {
                    Step::Forward {
                        destination,
                        context,
                        hops,
                    } => format!("forward {destination}@{context} hop {hops}"),
                    Step::Voicemail { mailbox } => format!("voicemail {mailbox}"),
                    Step::HangUp { cause } => format!("hangup {}", cause.as_str()),
                    Step::TooManyHops { hops } => format!("too many hops after {hops}"),
                };
                format!("{}: {what}", route.extension.number)
            }
        }
    }

    #[test]
    fn the_stronger_of_the_callers_and_the_called_extensions_recording_policy_applies() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        let desk = k.fixed("Desk", "d-201", alice);
        let bob = k.ext("202", "Bob");
        k.fixed("Desk", "d-202", bob);
        let me = CallerRef::Device(desk);
        let carrier = CallerRef::InboundNumber("+4930123456".into());
        let recording = |plan: &DialPlan<()>, caller: &CallerRef, digits: &str| {
            plan.recording(caller, &plan.place(caller, digits, 0))
        };

        let plan = compile(&k);
        let none = recording(&plan, &me, "202");
        assert_eq!(none.policy, RecordingPolicy::Never);
        assert!(none.reason.contains("neither"), "{}", none.reason);

        k.ext_mut(bob).record_inbound = RecordingPolicy::OnDemand;
        let plan = compile(&k);
        let r = recording(&plan, &me, "202");
        assert_eq!(r.policy, RecordingPolicy::OnDemand);
        assert!(r.reason.contains("Extension 202 (called)"), "{}", r.reason);
        // A carrier's call has no policy of its own: the called Extension's decides.
        assert_eq!(
            recording(&plan, &carrier, "202").policy,
            RecordingPolicy::OnDemand
        );

        k.ext_mut(alice).record_outbound = RecordingPolicy::Always;
        let plan = compile(&k);
        let r = recording(&plan, &me, "202");
        assert_eq!(r.policy, RecordingPolicy::Always);
        assert!(r.reason.contains("Extension 201 (calling)"), "{}", r.reason);
        // Nothing bridged, nothing recorded, whatever the caller's policy.
        assert_eq!(recording(&plan, &me, "299").policy, RecordingPolicy::Never);
        // Calls to 201 are not recorded: it records only what it places.
        let bobs = CallerRef::Extension(bob);
        assert_eq!(
            recording(&plan, &bobs, "201").policy,
            RecordingPolicy::Never
        );
    }

    #[test]
    fn an_extension_with_a_phone_rings_and_its_failures_go_to_their_outcomes() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        k.fixed("Desk", "d-201", alice);
        let bob = k.ext("202", "Bob");
        k.fixed("Desk", "d-202", bob);
        Kit::forward(&mut k.ext_mut(alice).forward_busy, "202");
        k.ext_mut(alice).ring_timeout_secs = Some(12);
        let plan = compile(&k);

        assert_eq!(show(&plan.dial("201", 0)), "ring 201");
        let Some(Route {
            treatment: Treatment::Ring {
                ring_timeout_secs, ..
            },
            ..
        }) = plan.route("201")
        else {
            panic!("201 rings");
        };
        assert_eq!(*ring_timeout_secs, 12);
        let cases = [
            ("USER_BUSY", "201: forward 202@acme.example.net hop 1"),
            ("CALL_REJECTED", "201: forward 202@acme.example.net hop 1"),
            ("NO_ANSWER", "201: voicemail 201"),
            ("NO_USER_RESPONSE", "201: voicemail 201"),
            ("ALLOTTED_TIMEOUT", "201: voicemail 201"),
            ("USER_NOT_REGISTERED", "201: voicemail 201"),
            ("DESTINATION_OUT_OF_ORDER", "201: voicemail 201"),
            ("", "201: voicemail 201"),
            ("ORIGINATOR_CANCEL", "end"),
            ("SUCCESS", "end"),
        ];
        for (cause, want) in cases {
            assert_eq!(show(&plan.after_ring("201", cause, 0)), want, "{cause}");
        }
        assert_eq!(
            show(&plan.after_ring("299", "USER_BUSY", 0)),
            "hangup UNALLOCATED_NUMBER"
        );
    }

    #[test]
    fn without_voicemail_or_forwards_each_failure_ends_with_its_own_cause() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        k.fixed("Desk", "d-201", alice);
        k.ext_mut(alice).voicemail_enabled = false;
        let nobody = k.ext("203", "Nobody");
        k.ext_mut(nobody).voicemail_enabled = false;
        let plan = compile(&k);
        assert_eq!(
            show(&plan.after_ring("201", "USER_BUSY", 0)),
            "201: hangup USER_BUSY"
        );
        assert_eq!(
            show(&plan.after_ring("201", "NO_ANSWER", 0)),
            "201: hangup NO_ANSWER"
        );
        assert_eq!(
            show(&plan.after_ring("201", "USER_NOT_REGISTERED", 0)),
            "201: hangup USER_NOT_REGISTERED"
        );
        assert_eq!(
            show(&plan.dial("203", 0)),
            "203: hangup USER_NOT_REGISTERED",
            "nothing bound: straight to the not-registered outcome"
        );
    }

    #[test]
    fn dnd_forward_always_and_nothing_to_ring_divert_without_ringing() {
        let mut k = Kit::new();
        let dnd = k.ext("201", "DND with voicemail");
        k.fixed("Desk", "d-201", dnd);
        k.ext_mut(dnd).dnd = true;
        let dnd_plain = k.ext("202", "DND without voicemail");
        k.fixed("Desk", "d-202", dnd_plain);
        k.ext_mut(dnd_plain).dnd = true;
        k.ext_mut(dnd_plain).voicemail_enabled = false;
        let always = k.ext("203", "Forward always");
        Kit::forward(&mut k.ext_mut(always).forward_always, "201");
        let unbound = k.ext("204", "Unbound, forward when not registered");
        Kit::forward(&mut k.ext_mut(unbound).forward_not_registered, "203");
        let plan = compile(&k);

        assert_eq!(show(&plan.dial("201", 0)), "201: voicemail 201");
        assert_eq!(show(&plan.dial("202", 0)), "202: hangup USER_BUSY");
        assert_eq!(
            show(&plan.dial("203", 2)),
            "203: forward 201@acme.example.net hop 3"
        );
        assert_eq!(
            show(&plan.dial("204", 0)),
            "204: forward 203@acme.example.net hop 1"
        );
        assert!(matches!(
            plan.route("201").map(|r| &r.treatment),
            Some(Treatment::Divert {
                reason: Divert::DoNotDisturb,
                ..
            })
        ));
    }

    #[test]
    fn two_extensions_forwarding_to_each_other_stop_after_the_hop_bound() {
        let mut k = Kit::new();
        let a = k.ext("201", "A");
        let b = k.ext("202", "B");
        Kit::forward(&mut k.ext_mut(a).forward_always, "202");
        Kit::forward(&mut k.ext_mut(b).forward_always, "201");
        let plan = compile(&k);

        // Follow the call as FreeSWITCH would: each forward is a new lookup.
        let mut dialled = "201".to_owned();
        let mut hops = 0;
        let mut path = Vec::new();
        loop {
            match plan.dial(&dialled, hops) {
                Decision::Apply {
                    step:
                        Step::Forward {
                            destination,
                            hops: now,
                            ..
                        },
                    ..
                } => {
                    path.push(destination.to_owned());
                    dialled = destination.to_owned();
                    hops = now;
                }
                Decision::Apply {
                    step: Step::TooManyHops { hops },
                    route,
                } => {
                    path.push(format!("stop at {} after {hops}", route.extension.number));
                    break;
                }
                other => panic!("unexpected {}", show(&other)),
            }
            assert!(path.len() <= 10, "loops: {path:?}");
        }
        assert_eq!(
            path,
            ["202", "201", "202", "201", "202", "stop at 202 after 5"]
        );
        assert_eq!(Step::TOO_MANY_HOPS_CAUSE.as_str(), "EXCHANGE_ROUTING_ERROR");
    }

    #[test]
    fn unknown_numbers_are_unallocated_and_emergency_numbers_are_left_to_the_operator() {
        let mut k = Kit::new();
        let off = k.ext("205", "Disabled");
        k.ext_mut(off).enabled = false;
        let plan = compile(&k);
        assert_eq!(show(&plan.dial("299", 0)), "hangup UNALLOCATED_NUMBER");
        assert_eq!(
            show(&plan.dial("205", 0)),
            "hangup UNALLOCATED_NUMBER",
            "a disabled Extension's number is unallocated"
        );
        assert_eq!(
            show(&plan.place(&CallerRef::Unknown, "112", 0)),
            "emergency 112 unrouted",
            "no emergency route: left to the operator's dialplan, reported all the same"
        );
        assert_eq!(
            show(&plan.place(&CallerRef::Unknown, "299", 0)),
            "hangup UNALLOCATED_NUMBER"
        );
        assert_eq!(plan.context(), SIP_DOMAIN);
        assert_eq!(plan.len(), 0);
    }

    #[test]
    fn forwards_to_numbers_that_are_not_extensions_are_dialled_in_the_domains_context() {
        let mut k = Kit::new();
        let a = k.ext("201", "A");
        Kit::forward(&mut k.ext_mut(a).forward_always, "+4930123456");
        let b = k.ext("202", "B");
        Kit::forward(&mut k.ext_mut(b).forward_not_registered, "205");
        let off = k.ext("205", "Disabled");
        k.ext_mut(off).enabled = false;
        let own = k.ext("206", "Own context");
        k.ext_mut(own).context = Some("acme-lobby".into());
        Kit::forward(&mut k.ext_mut(own).forward_always, "0");
        let plan = compile(&k);
        assert_eq!(
            show(&plan.dial("201", 0)),
            "201: forward +4930123456@acme.example.net hop 1"
        );
        assert_eq!(
            show(&plan.dial("202", 0)),
            "202: forward 205@acme.example.net hop 1"
        );
        assert_eq!(
            show(&plan.place(&CallerRef::ForwardedBy(b), "205", 1)),
            "hangup UNALLOCATED_NUMBER",
            "a disabled Extension, and no route: unallocated"
        );
        assert_eq!(
            show(&plan.dial("206", 0)),
            "206: forward 0@acme-lobby hop 1",
            "another context is the operator's: handed over as it is"
        );
    }

    #[test]
    fn hot_desk_and_location_bindings_ring_like_a_fixed_phone() {
        let mut k = Kit::new();
        let carol = k.ext("207", "Carol");
        let hot = k.hotdesk("Hot desk", "d-hot");
        k.login(
            hot,
            carol,
            "2025-03-28T08:00:00Z",
            SessionOrigin::FeatureCode,
        );
        let dave = k.ext("208", "Dave");
        let room = k.location("Room", RingStrategy::Simultaneous);
        let shared = k.fixed("Room phone", "d-room", carol);
        k.place(shared, room, 1, None);
        k.sign_in(dave, room, "2025-03-28T08:00:00Z");
        let plan = compile(&k);
        assert_eq!(show(&plan.dial("207", 0)), "ring 207");
        assert_eq!(show(&plan.dial("208", 0)), "ring 208");
    }

    #[test]
    fn the_payload_sees_each_extensions_ring_plan_once() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        k.fixed("Desk", "d-201", alice);
        k.ext("202", "Bob");
        let mut seen = Vec::new();
        let plan = DialPlan::compile(&k.b, &RoutingRows::default(), at(NOW), |ext, ring| {
            seen.push(ext.number.clone());
            ring.sip_users().join(",")
        });
        seen.sort();
        assert_eq!(seen, ["201", "202"]);
        assert_eq!(plan.route("201").map(|r| r.payload.as_str()), Some("d-201"));
        assert_eq!(plan.route("202").map(|r| r.payload.as_str()), Some(""));
    }

    mod outbound {
        use super::*;
        use crate::routing::destination::Destination;
        use crate::routing::facts::NumberFacts;
        use crate::store::{calling_settings, gateways, outbound_route_gateways, outbound_routes};
        use crate::telephony::internal_allow::InternalAllow;

        fn gateway(name: &str, enabled: bool) -> gateways::Model {
            gateways::Model {
                id: Uuid::now_v7(),
                domain_id: None,
                owner_key: "platform".into(),
                name: name.into(),
                description: String::new(),
                proxy: "127.0.0.2:5080".into(),
                realm: None,
                username: None,
                password_encrypted: None,
                register: false,
                transport: "udp".into(),
                caller_id_in_from: true,
                ping_secs: None,
                expire_secs: 600,
                from_domain: None,
                inbound_addresses: String::new(),
                enabled,
                created_at: at(NOW),
                updated_at: at(NOW),
            }
        }

        fn route(
            rows: &mut RoutingRows,
            name: &str,
            position: i32,
            patterns: &str,
            class: &str,
            gws: &[Uuid],
        ) {
            let id = Uuid::now_v7();
            rows.routes.push(outbound_routes::Model {
                id,
                domain_id: Uuid::nil(),
                name: name.into(),
                position,
                patterns: patterns.into(),
                strip_digits: 0,
                prepend: String::new(),
                toll_class: class.into(),
                enabled: true,
                created_at: at(NOW),
                updated_at: at(NOW),
            });
            for (i, g) in gws.iter().enumerate() {
                rows.route_gateways.push(outbound_route_gateways::Model {
                    route_id: id,
                    gateway_id: *g,
                    position: i32::try_from(i).unwrap_or_default(),
                });
            }
        }

        /// Acme in Germany: emergency, national and international routes; two carriers.
        fn acme(k: &mut Kit) -> RoutingRows {
            let first = gateway("first", true);
            let second = gateway("second", true);
            let off = gateway("off", false);
            let mut settings = crate::services::calling_settings::defaults(k.b.domain.id);
            settings.country_code = Some("49".into());
            settings.outbound_caller_id_number = Some("+4930100".into());
            settings.outbound_caller_id_name = Some("Acme".into());
            let mut rows = RoutingRows {
                settings: Some(settings),
                gateways: vec![first.clone(), second.clone(), off.clone()],
                ..RoutingRows::default()
            };
            route(
                &mut rows,
                "emergency",
                0,
                "112\n110",
                "emergency",
                &[off.id, second.id],
            );
            route(
                &mut rows,
                "international",
                1,
                "00Z.",
                "international",
                &[first.id],
            );
            route(
                &mut rows,
                "national",
                2,
                "0Z.",
                "national",
                &[first.id, second.id],
            );
            route(&mut rows, "dead", 3, "9.", "local", &[off.id]);
            let _: &calling_settings::Model =
                rows.settings.as_ref().unwrap_or_else(|| unreachable!());
            rows
        }

        #[test]
        fn a_phone_calls_out_through_its_route_with_the_right_caller_id() {
            let mut k = Kit::new();
            let alice = k.ext("201", "Alice");
            k.ext_mut(alice).outbound_caller_id.number = Some("+4930101".into());
            let desk = k.fixed("Desk", "d-201", alice);
            let mut rows = acme(&mut k);
            rows.numbers.push(NumberFacts {
                id: Uuid::now_v7(),
                number: "+4930101".into(),
                destination: Some(Destination::Extension {
                    extension_id: alice,
                }),
            });
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            let me = CallerRef::Device(desk);
            assert_eq!(
                show(&plan.place(&me, "030123456", 0)),
                "out +4930123456 via first>second as +4930101"
            );
            assert_eq!(
                show(&plan.place(&me, "0044201234", 0)),
                "refused OUTGOING_CALL_BARRED (TollClass)",
                "international is not in domestic"
            );
            assert_eq!(
                show(&plan.place(&me, "9123", 0)),
                "refused NORMAL_TEMPORARY_FAILURE (NoGateway)"
            );
            assert_eq!(
                show(&plan.place(&me, "555", 0)),
                "hangup UNALLOCATED_NUMBER"
            );
            assert_eq!(show(&plan.place(&me, "201", 0)), "ring 201");
            assert_eq!(
                show(&plan.place(&CallerRef::Unknown, "030123456", 0)),
                "refused OUTGOING_CALL_BARRED (UnknownCaller)"
            );
        }

        #[test]
        fn a_caller_id_the_domain_does_not_own_falls_back_to_the_domain_default() {
            let mut k = Kit::new();
            let bob = k.ext("202", "Bob");
            k.ext_mut(bob).outbound_caller_id.number = Some("+15550000".into());
            let desk = k.fixed("Desk", "d-202", bob);
            let mut rows = acme(&mut k);
            rows.numbers.push(NumberFacts {
                id: Uuid::now_v7(),
                number: "+4930100".into(),
                destination: None,
            });
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            assert_eq!(
                show(&plan.place(&CallerRef::Device(desk), "030123456", 0)),
                "out +4930123456 via first>second as +4930100"
            );
        }

        #[test]
        fn emergency_calls_leave_from_every_phone_with_the_places_caller_id() {
            let mut k = Kit::new();
            let carol = k.ext("207", "Carol");
            k.ext_mut(carol).toll_allow = String::new();
            k.ext_mut(carol).dnd = true;
            let hot = k.hotdesk("Hot desk", "d-hot");
            let room = k.location("Room 4.12", RingStrategy::Simultaneous);
            k.place(hot, room, 1, None);
            if let Some(l) = k.b.locations.get_mut(&room) {
                l.emergency_caller_id.number = Some("+4930412".into());
                l.emergency_address = Some("Main St 1, 4th floor".into());
            }
            let rows = acme(&mut k);
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            // Logged out, no toll class at all: still through the emergency route (its first
            // gateway is disabled, so the second), as the place.
            match plan.place(&CallerRef::Device(hot), "112", 0) {
                Decision::Outbound(call) => {
                    assert_eq!(call.number, "112");
                    assert_eq!(call.route.name, "emergency");
                    assert_eq!(call.route.gateways.len(), 1);
                    assert_eq!(call.caller_id.number.as_deref(), Some("+4930412"));
                    assert_eq!(call.caller_id.source, CallerIdSource::Emergency);
                    let Some(EmergencyCall {
                        caller: Some(who), ..
                    }) = call.emergency
                    else {
                        panic!("an emergency call is reported with its phone");
                    };
                    assert_eq!(who.device_id, Some(hot));
                    assert_eq!(
                        who.location.and_then(|l| l.emergency_address).as_deref(),
                        Some("Main St 1, 4th floor")
                    );
                }
                other => panic!("{}", show(&other)),
            }
            assert_eq!(
                show(&plan.place(&CallerRef::Device(hot), "030123456", 0)),
                "refused OUTGOING_CALL_BARRED (LoggedOut)"
            );
            k.login(
                hot,
                carol,
                "2025-03-28T08:00:00Z",
                SessionOrigin::FeatureCode,
            );
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            assert!(
                matches!(
                    plan.place(&CallerRef::Device(hot), "112", 0),
                    Decision::Outbound(OutboundCall {
                        emergency: Some(_),
                        ..
                    })
                ),
                "logged in with DND and no toll class: still out"
            );
        }

        #[test]
        fn a_phone_logged_out_to_a_placeholder_dials_what_the_placeholder_may() {
            let mut k = Kit::new();
            let reception = k.ext("100", "Reception");
            let alice = k.ext("201", "Alice");
            k.fixed("Reception desk", "d-100", reception);
            k.fixed("Alice desk", "d-201", alice);
            let lobby = k.ext("299", "Lobby");
            k.ext_mut(lobby).placeholder = true;
            k.ext_mut(lobby).toll_allow = String::new();
            k.ext_mut(lobby).internal_allow = InternalAllow::parse(&["100".to_owned()]).ok();
            k.b.settings.logged_out_mode = crate::telephony::policy::LoggedOutMode::Placeholder;
            k.b.settings.placeholder_extension_id = Some(lobby);
            let hot = k.hotdesk("Hot desk", "d-hot");
            let rows = acme(&mut k);
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            let from = CallerRef::Device(hot);
            assert_eq!(show(&plan.place(&from, "100", 0)), "ring 100");
            assert_eq!(
                show(&plan.place(&from, "201", 0)),
                "refused OUTGOING_CALL_BARRED (InternalNotAllowed)"
            );
            assert!(
                matches!(
                    plan.place(&from, "030123456", 0),
                    Decision::Refused {
                        reason: Refusal::TollClass,
                        ..
                    }
                ),
                "outside numbers follow the placeholder's (empty) toll classes"
            );
            assert!(matches!(
                plan.place(&from, "112", 0),
                Decision::Outbound(OutboundCall {
                    emergency: Some(_),
                    ..
                })
            ));
            // A carrier's call for a Number is not the placeholder's call.
            assert_eq!(
                show(&plan.place(&CallerRef::InboundNumber("+4930100".into()), "201", 0)),
                "ring 201"
            );
            // Logged in, the phone dials as the person again.
            k.login(hot, alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            assert_eq!(show(&plan.place(&from, "201", 0)), "ring 201");
        }

        #[test]
        fn numbers_from_carriers_find_their_destination_in_any_usual_form() {
            let mut k = Kit::new();
            let alice = k.ext("201", "Alice");
            let mut rows = acme(&mut k);
            let id = Uuid::now_v7();
            rows.numbers.push(NumberFacts {
                id,
                number: "+4930101".into(),
                destination: Some(Destination::Extension {
                    extension_id: alice,
                }),
            });
            let plan = DialPlan::compile(&k.b, &rows, at(NOW), |_, _| ());
            for called in ["+4930101", "4930101", "030101"] {
                assert_eq!(plan.inbound(called).map(|n| n.id), Some(id), "{called}");
            }
            assert!(plan.inbound("+4930199").is_none());
            // A Number forwarded outside leaves as the Number, whatever the toll class.
            assert_eq!(
                show(&plan.place(
                    &CallerRef::InboundNumber("+4930101".into()),
                    "0044201234",
                    1
                )),
                "out +44201234 via first as +4930101"
            );
        }
    }
}
