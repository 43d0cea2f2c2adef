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
//! Choices where the issue is silent:
//! - The Domain's emergency numbers are not answered here ([`Decision::NotOurs`]): until
//!   emergency routes exist, the operator's own dialplan routes them, and an emergency call must
//!   never be refused because switchboard does not know the number.
//! - A forward to a number that is not an Extension in service of the Domain is refused with
//!   `NO_ROUTE_DESTINATION` (SIP 404): there are no outbound routes yet to reach an external
//!   number. A forward into another context (an Extension with a context of its own) is
//!   handed to that context as it is; its hop is counted all the same.
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

use crate::bindings::Bindings;
use crate::bindings::ring_plan::{
    Disposition, ExtensionRef, Fallback, RingPlan, busy_fallback, ring_plan,
};
use crate::bindings::snapshot::ExtensionFacts;

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
        destination: String,
        /// The context to dial it in.
        context: String,
    },
    /// The Extension's voicemail box.
    Voicemail {
        /// The mailbox (the Extension's number).
        mailbox: String,
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

/// The answer to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<'a, X> {
    /// Not for this plan to answer (the Domain's emergency numbers; see the module notes).
    NotOurs,
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
}

/// A Domain's compiled dialplan.
#[derive(Debug, Clone)]
pub struct DialPlan<X> {
    domain_id: Uuid,
    context: String,
    emergency_numbers: Vec<String>,
    routes: HashMap<String, Route<X>>,
}

impl<X> DialPlan<X> {
    /// An empty plan for the Domain; fill it with [`insert`](Self::insert) (or use
    /// [`compile`](Self::compile)).
    pub fn empty(bindings: &Bindings) -> Self {
        Self {
            domain_id: bindings.domain.id,
            context: bindings.domain.sip_domain.to_ascii_lowercase(),
            emergency_numbers: bindings.settings.emergency_numbers.clone(),
            routes: HashMap::new(),
        }
    }

    /// Compiles the plan of every Extension in service; `payload` renders what the answer needs
    /// per Extension (it sees the ring plan, computed once).
    pub fn compile(
        bindings: &Bindings,
        now: DateTime<Utc>,
        mut payload: impl FnMut(&ExtensionFacts, &RingPlan) -> X,
    ) -> Self {
        let mut plan = Self::empty(bindings);
        for ext in bindings.extensions.values() {
            let ring = ring_plan(bindings, ext.id, now);
            let x = payload(ext, &ring);
            plan.insert(bindings, ext, &ring, x);
        }
        plan
    }

    /// Adds an Extension with its ring plan (a disabled one is left out: its number is
    /// unallocated).
    pub fn insert(
        &mut self,
        bindings: &Bindings,
        ext: &ExtensionFacts,
        plan: &RingPlan,
        payload: X,
    ) {
        if let Some(treatment) = treatment(bindings, ext, plan) {
            self.routes.insert(
                ext.number.clone(),
                Route {
                    extension: ExtensionRef::from(ext),
                    treatment,
                    payload,
                },
            );
        }
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
        self.routes.get(number)
    }

    /// How many numbers it routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when it routes no number.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// `destination` dialled in the Domain's context by a call that has taken `hops` forwards.
    pub fn dial(&self, destination: &str, hops: u32) -> Decision<'_, X> {
        if self.emergency_numbers.iter().any(|n| n == destination) {
            return Decision::NotOurs;
        }
        let Some(route) = self.routes.get(destination) else {
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

    /// Ringing `extension` failed with `cause`: its outcome for that cause.
    pub fn after_ring(&self, extension: &str, cause: &str, hops: u32) -> Decision<'_, X> {
        let Some(route) = self.routes.get(extension) else {
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
            mailbox: mailbox.clone(),
        },
        Fallback::Busy => Outcome::HangUp {
            cause: HangupCause::UserBusy,
        },
        Fallback::Unavailable => Outcome::HangUp { cause: unavailable },
    }
}

/// A forward: to an Extension in service of the Domain, or into another context as it is;
/// anything else has no route yet.
fn forward(bindings: &Bindings, destination: &str, context: &str) -> Outcome {
    let destination = destination.trim();
    let own_context = context.eq_ignore_ascii_case(&bindings.domain.sip_domain);
    let reachable = !own_context
        || bindings
            .extension_by_number(destination)
            .is_some_and(|e| e.enabled);
    if reachable && !destination.is_empty() {
        Outcome::Forward {
            destination: destination.to_owned(),
            context: if own_context {
                bindings.domain.sip_domain.to_ascii_lowercase()
            } else {
                context.to_owned()
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
        DialPlan::compile(&k.b, at(NOW), |_, _| ())
    }

    /// A decision as text, for tables.
    fn show<X>(d: &Decision<'_, X>) -> String {
        match d {
            Decision::NotOurs => "not ours".into(),
            Decision::Unallocated => "hangup UNALLOCATED_NUMBER".into(),
            Decision::End => "end".into(),
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
        assert_eq!(show(&plan.dial("112", 0)), "not ours");
        assert_eq!(plan.context(), SIP_DOMAIN);
        assert_eq!(plan.len(), 0);
    }

    #[test]
    fn forwards_to_numbers_that_are_not_extensions_in_service_have_no_route_yet() {
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
            "201: hangup NO_ROUTE_DESTINATION"
        );
        assert_eq!(
            show(&plan.dial("202", 0)),
            "202: hangup NO_ROUTE_DESTINATION"
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
        let plan = DialPlan::compile(&k.b, at(NOW), |ext, ring| {
            seen.push(ext.number.clone());
            ring.sip_users().join(",")
        });
        seen.sort();
        assert_eq!(seen, ["201", "202"]);
        assert_eq!(plan.route("201").map(|r| r.payload.as_str()), Some("d-201"));
        assert_eq!(plan.route("202").map(|r| r.payload.as_str()), Some(""));
    }
}
