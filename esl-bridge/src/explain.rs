//! "Explain a call": every step of what a call would do, from the same compiled plan that
//! answers FreeSWITCH. The explanation builds the very mod_xml_curl request FreeSWITCH would
//! send (context, destination, our channel variables), asks the live view for its answer, and
//! describes the decision behind it; the answer is returned with it (`freeswitch_xml`), so the
//! two cannot disagree.

use serde::Serialize;
use switchboard_domain::routing::callers::{CallerFacts, CallerRef};
use switchboard_domain::routing::destination::Destination;
use switchboard_domain::routing::dialplan::{Decision, Recording, Refusal, Step, Treatment};
use switchboard_domain::routing::outbound::{CallerIdSource, FAILOVER_CAUSES, GatewayRef};
use switchboard_domain::telephony::policy::RecordingPolicy;
use uuid::Uuid;

use chrono::{DateTime, Utc};
use switchboard_domain::routing::dialplan::Target;
use switchboard_domain::routing::flows::{CompiledFlow, FlowConfig, GroupStrategy};

use crate::directory::Directory;
use crate::flows::{condition_branch, menu_choice, plan_group};
use crate::xml::carriers::{CARRIERS_ACL, CARRIERS_DOMAIN, proxy_host};
use crate::xml::dialplan::PUBLIC_CONTEXT;
use crate::xml::directory::CompiledDomain;
use crate::xml::request::XmlCurlRequest;

/// Who places the call to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExplainCaller {
    /// A Device of the Domain.
    Device(Uuid),
    /// An Extension registered directly.
    Extension(Uuid),
    /// A carrier, through a gateway, to a Number.
    Gateway(Uuid),
}

/// One step.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExplainStep {
    /// What the step is about: `caller`, `context`, `emergency`, `extension`, `ring`,
    /// `route`, `number`, `toll_class`, `gateways`, `caller_id`, `number_destination`,
    /// `result`, `recording`.
    pub step: &'static str,
    /// In words.
    pub detail: String,
}

/// What the call does in the end.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExplainOutcome {
    /// `ring`, `outbound`, `refused`, `hang_up`, `voicemail`, `forward`, `transfer`,
    /// `not_ours`.
    pub action: &'static str,
    /// The hang-up cause, if it ends.
    pub cause: Option<String>,
    /// The number sent (outbound), forwarded to or transferred to.
    pub number: Option<String>,
    /// Gateways tried, in order (outbound).
    pub gateways: Vec<GatewayRef>,
    /// The caller ID sent (outbound).
    pub caller_id_name: Option<String>,
    /// The caller ID number sent (outbound).
    pub caller_id_number: Option<String>,
    /// What rings in the end, in order: a ring group's members (`Extension 201`, an external
    /// number), or the one Extension.
    pub ringing: Vec<String>,
}

/// The explanation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Explanation {
    /// The dialplan context FreeSWITCH looks the number up in.
    pub context: String,
    /// What was dialled.
    pub dialled: String,
    /// The caller as the plan knows it (none for a carrier).
    pub caller: Option<CallerFacts>,
    /// Every step.
    pub steps: Vec<ExplainStep>,
    /// The end.
    pub outcome: ExplainOutcome,
    /// Whether the call is recorded (`always`, `on_demand` with `*2`, `never`) and why.
    pub recording: Recording,
    /// The document FreeSWITCH gets for this lookup.
    pub freeswitch_xml: String,
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn step(steps: &mut Vec<ExplainStep>, step: &'static str, detail: impl Into<String>) {
    steps.push(ExplainStep {
        step,
        detail: detail.into(),
    });
}

fn outcome(action: &'static str) -> ExplainOutcome {
    ExplainOutcome {
        action,
        cause: None,
        number: None,
        gateways: Vec::new(),
        caller_id_name: None,
        caller_id_number: None,
        ringing: Vec::new(),
    }
}

/// What a call through flows meets: the time it arrives and the keys the caller presses at
/// each menu, in order.
#[derive(Debug, Clone, Default)]
pub struct ExplainOptions {
    /// When the call arrives (time conditions); none: now.
    pub at: Option<DateTime<Utc>>,
    /// The keys pressed at each menu met, in order; a menu met after the last one: nothing
    /// pressed.
    pub keys: Vec<String>,
}

/// The state of a walk through flows.
struct Walk {
    at: DateTime<Utc>,
    keys: std::collections::VecDeque<String>,
    depth: u32,
}

/// Flows one explanation follows before it stops (a menu that leads back to itself with
/// every key given).
const MAX_WALK: u32 = 30;

/// Why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainError {
    /// No such Domain in the view.
    Domain,
    /// No such caller in the Domain (or not usable: a disabled device).
    Caller,
}

impl Directory {
    /// Explains `digits` dialled by `caller` in the Domain `domain_id`.
    pub async fn explain(
        &self,
        domain_id: Uuid,
        caller: &ExplainCaller,
        digits: &str,
        options: &ExplainOptions,
    ) -> Result<Explanation, ExplainError> {
        let mut walk = Walk {
            at: options.at.unwrap_or_else(Utc::now),
            keys: options.keys.iter().cloned().collect(),
            depth: 0,
        };
        self.refresh().await;
        let domain = self.domain_by_id(domain_id).ok_or(ExplainError::Domain)?;
        let plan = &domain.dialplan;
        let mut steps = Vec::new();
        let digits = digits.trim();
        let (context, body, facts, caller_ref) = match caller {
            ExplainCaller::Gateway(gateway_id) => {
                let carriers = self.carriers();
                let carrier = carriers.by_id(*gateway_id).ok_or(ExplainError::Caller)?;
                let ip = carrier
                    .addresses
                    .first()
                    .map(|n| n.addr().to_string())
                    .unwrap_or_else(|| proxy_host(&carrier.gateway.proxy).to_owned());
                step(
                    &mut steps,
                    "caller",
                    format!(
                        "a call from the carrier of gateway {:?} ({}), let in by the {CARRIERS_ACL} ACL",
                        carrier.gateway.name, carrier.gateway.proxy
                    ),
                );
                let body = format!(
                    "section=dialplan&Caller-Context={PUBLIC_CONTEXT}&Caller-Destination-Number={}&variable_sip_acl_authed_by={CARRIERS_ACL}&variable_sip_acl_token={}&variable_sip_network_ip={}",
                    enc(digits),
                    enc(&format!(
                        "{}@{CARRIERS_DOMAIN}",
                        switchboard_domain::routing::outbound::freeswitch_gateway_name(*gateway_id)
                    )),
                    enc(&ip)
                );
                (PUBLIC_CONTEXT.to_owned(), body, None, None)
            }
            ExplainCaller::Device(id) | ExplainCaller::Extension(id) => {
                let r = match caller {
                    ExplainCaller::Device(_) => CallerRef::Device(*id),
                    _ => CallerRef::Extension(*id),
                };
                let facts = plan.caller(&r).ok_or(ExplainError::Caller)?;
                let context = if facts.restricted {
                    switchboard_domain::bindings::identity::LOGGED_OUT_CONTEXT.to_owned()
                } else {
                    domain.sip_domain.clone()
                };
                step(&mut steps, "caller", facts.reason.clone());
                let var = match caller {
                    ExplainCaller::Device(_) => "variable_switchboard_device_id",
                    _ => "variable_switchboard_extension_id",
                };
                let body = format!(
                    "section=dialplan&Caller-Context={}&Caller-Destination-Number={}&variable_switchboard_domain={}&{var}={id}",
                    enc(&context),
                    enc(digits),
                    enc(&domain.sip_domain)
                );
                (context, body, Some(facts), Some(r))
            }
        };
        step(
            &mut steps,
            "context",
            format!("looked up in the {context:?} context"),
        );
        let request = XmlCurlRequest::parse(body.as_bytes());
        let answer = self.answer_quietly(&request);
        let mut end = outcome("not_ours");
        let mut recording = Recording {
            policy: RecordingPolicy::Never,
            reason: "nothing is bridged".to_owned(),
        };

        match (&caller_ref, facts.as_ref()) {
            (None, _) => {
                // A carrier's call: the Number and its destination.
                match plan.inbound(digits) {
                    Some(n) => {
                        step(
                            &mut steps,
                            "number",
                            format!("{digits} is the Number {} of the Domain", n.number),
                        );
                        let what = match &n.destination {
                            None => {
                                end = outcome("hang_up");
                                end.cause = Some("UNALLOCATED_NUMBER".into());
                                "it points nowhere yet: unallocated".to_owned()
                            }
                            Some(d) if d.flow_id().is_some() => {
                                step(
                                    &mut steps,
                                    "number_destination",
                                    format!(
                                        "it points at {}",
                                        serde_json::to_string(d).unwrap_or_default()
                                    ),
                                );
                                let from = CallerRef::InboundNumber(n.number.clone());
                                let target = plan.target(d);
                                self.walk(&domain, &from, target, &mut walk, &mut steps, &mut end);
                                String::new()
                            }
                            Some(d) => {
                                end = outcome("transfer");
                                // The Domain's context rings the Extension for the Number.
                                if let Destination::Extension { extension_id } = d
                                    && let Some(ext) = plan.extension_number(*extension_id)
                                {
                                    let from = CallerRef::InboundNumber(n.number.clone());
                                    recording = plan.recording(&from, &plan.place(&from, ext, 0));
                                }
                                format!(
                                    "it points at {}",
                                    serde_json::to_string(d).unwrap_or_default()
                                )
                            }
                        };
                        if !what.is_empty() {
                            step(&mut steps, "number_destination", what);
                        }
                    }
                    None => {
                        end = outcome("hang_up");
                        end.cause = Some("UNALLOCATED_NUMBER".into());
                        step(
                            &mut steps,
                            "number",
                            format!("{digits} is no Number of this Domain"),
                        );
                    }
                }
            }
            (Some(r), Some(f)) if f.restricted => {
                if plan.is_emergency(digits) {
                    step(
                        &mut steps,
                        "emergency",
                        format!(
                            "{digits} is an emergency number: allowed from a logged-out phone, handed to the Domain's context"
                        ),
                    );
                    let decision = plan.place(r, digits, 0);
                    recording = plan.recording(r, &decision);
                    self.describe(&domain, r, decision, &mut walk, &mut steps, &mut end);
                } else {
                    step(
                        &mut steps,
                        "result",
                        "a logged-out phone may dial only the login codes and the emergency numbers",
                    );
                    end = outcome("refused");
                    end.cause = Some("OUTGOING_CALL_BARRED".into());
                }
            }
            (Some(r), _) => {
                if plan.is_emergency(digits) {
                    step(
                        &mut steps,
                        "emergency",
                        format!(
                            "{digits} is an emergency number: the emergency route, the emergency caller ID of the place, never refused by a toll class"
                        ),
                    );
                }
                let decision = plan.place(r, digits, 0);
                recording = plan.recording(r, &decision);
                self.describe(&domain, r, decision, &mut walk, &mut steps, &mut end);
            }
        }
        step(
            &mut steps,
            "recording",
            match recording.policy {
                RecordingPolicy::Never => format!("not recorded: {}", recording.reason),
                RecordingPolicy::Always => {
                    format!("recorded from the answer: {}", recording.reason)
                }
                RecordingPolicy::OnDemand => format!(
                    "recorded while either side toggles it with *{}: {}",
                    crate::xml::dialplan::RECORD_ON_DEMAND_KEY,
                    recording.reason
                ),
            },
        );
        Ok(Explanation {
            context,
            dialled: digits.to_owned(),
            caller: facts,
            steps,
            outcome: end,
            recording,
            freeswitch_xml: answer.body,
        })
    }

    /// Follows a destination: dial it, leave a message, end, or go through a flow.
    fn walk(
        &self,
        domain: &CompiledDomain,
        caller: &CallerRef,
        target: Target<'_>,
        walk: &mut Walk,
        steps: &mut Vec<ExplainStep>,
        end: &mut ExplainOutcome,
    ) {
        walk.depth += 1;
        if walk.depth > MAX_WALK {
            step(
                steps,
                "result",
                format!("stopped after {MAX_WALK} steps through call flows"),
            );
            return;
        }
        match target {
            Target::Dial(number) => {
                let decision = domain.dialplan.place(caller, number, 0);
                self.describe(domain, caller, decision, walk, steps, end);
            }
            Target::Voicemail(mailbox) => {
                step(steps, "voicemail", format!("the voicemail box {mailbox}"));
                *end = outcome("voicemail");
                end.number = Some(mailbox.to_owned());
            }
            Target::HangUp(cause) => {
                step(
                    steps,
                    "result",
                    format!("the call ends with {}", cause.as_str()),
                );
                *end = outcome("hang_up");
                end.cause = Some(cause.as_str().to_owned());
            }
            Target::Flow(flow) => self.flow(domain, caller, flow, walk, steps, end),
        }
    }

    fn flow(
        &self,
        domain: &CompiledDomain,
        caller: &CallerRef,
        flow: &CompiledFlow,
        walk: &mut Walk,
        steps: &mut Vec<ExplainStep>,
        end: &mut ExplainOutcome,
    ) {
        let plan = &domain.dialplan;
        match &flow.config {
            FlowConfig::TimeCondition(c) => {
                let (open, why, target) = condition_branch(domain, flow, c, walk.at);
                step(
                    steps,
                    "time_condition",
                    format!(
                        "time condition {:?}: {why} → {}",
                        flow.name,
                        if open {
                            "open (when_open)"
                        } else {
                            "closed (when_closed)"
                        }
                    ),
                );
                self.walk(domain, caller, target, walk, steps, end);
            }
            FlowConfig::Ivr(c) => {
                let keys = walk.keys.pop_front().unwrap_or_default();
                let (why, target) = menu_choice(domain, c, &keys);
                let options: Vec<String> = c
                    .options
                    .iter()
                    .map(|o| {
                        format!(
                            "{} → {}",
                            o.digits,
                            serde_json::to_string(&o.destination).unwrap_or_default()
                        )
                    })
                    .collect();
                step(
                    steps,
                    "ivr",
                    format!(
                        "IVR menu {:?} plays its greeting up to {} times, {} s for a key each; keys: {}{}",
                        flow.name,
                        c.max_tries,
                        c.timeout_secs,
                        if options.is_empty() {
                            "none".to_owned()
                        } else {
                            options.join(", ")
                        },
                        if c.direct_dial {
                            "; Extensions may be dialled directly"
                        } else {
                            ""
                        }
                    ),
                );
                step(steps, "ivr_keys", why);
                self.walk(domain, caller, target, walk, steps, end);
            }
            FlowConfig::RingGroup(c) => {
                let ring = plan_group(domain, flow, c, caller, self.flow_live(), false);
                let how = match c.strategy {
                    GroupStrategy::Simultaneous => "all at once",
                    GroupStrategy::Sequential => "one after the other, in list order",
                    GroupStrategy::RoundRobin => {
                        "one after the other, starting after the member who rang first last time"
                    }
                    GroupStrategy::LongestIdle => {
                        "one after the other, the member idle the longest first"
                    }
                };
                let members: Vec<String> = ring
                    .ringing
                    .iter()
                    .map(|m| format!("{} ({} s)", m.label, m.secs))
                    .collect();
                let mut detail = format!(
                    "ring group {:?} rings {how} for at most {} s: {}",
                    flow.name,
                    c.ring_secs,
                    if members.is_empty() {
                        "nobody can ring".to_owned()
                    } else {
                        members.join(", ")
                    }
                );
                if !ring.skipped.is_empty() {
                    let skipped: Vec<String> = ring
                        .skipped
                        .iter()
                        .map(|(who, why)| format!("{who} ({why})"))
                        .collect();
                    detail.push_str(&format!("; skipped: {}", skipped.join(", ")));
                }
                step(steps, "ring_group", detail);
                let after = plan.target(&c.when_unanswered);
                if ring.ringing.is_empty() {
                    self.walk(domain, caller, after, walk, steps, end);
                } else {
                    step(
                        steps,
                        "unanswered",
                        format!(
                            "if nobody answers: {}",
                            serde_json::to_string(&c.when_unanswered).unwrap_or_default()
                        ),
                    );
                    *end = outcome("ring");
                    end.ringing = ring.ringing.iter().map(|m| m.label.clone()).collect();
                }
            }
        }
    }

    fn describe<X>(
        &self,
        domain: &CompiledDomain,
        caller: &CallerRef,
        decision: Decision<'_, X>,
        walk: &mut Walk,
        steps: &mut Vec<ExplainStep>,
        end: &mut ExplainOutcome,
    ) {
        match decision {
            Decision::Flow { flow } => {
                let flow = domain.dialplan.flows().get(flow.id);
                if let Some(flow) = flow {
                    step(
                        steps,
                        "flow",
                        format!(
                            "{} is the number of the {} {:?}",
                            flow.number.as_deref().unwrap_or(""),
                            flow.kind.label(),
                            flow.name
                        ),
                    );
                    self.flow(domain, caller, flow, walk, steps, end);
                }
            }
            Decision::NotOurs => {
                step(
                    steps,
                    "result",
                    "not switchboard's: FreeSWITCH's static dialplan",
                );
            }
            Decision::EmergencyUnrouted(_) => {
                step(
                    steps,
                    "route",
                    "no Outbound Route reaches this emergency number: left to FreeSWITCH's static dialplan (configure an emergency route!)",
                );
                *end = outcome("not_ours");
            }
            Decision::Unallocated => {
                step(
                    steps,
                    "result",
                    "no Extension and no Outbound Route matches: UNALLOCATED_NUMBER",
                );
                *end = outcome("hang_up");
                end.cause = Some("UNALLOCATED_NUMBER".into());
            }
            Decision::End => {
                *end = outcome("hang_up");
            }
            Decision::Refused {
                cause,
                reason,
                route,
            } => {
                if let Some(route) = route {
                    step(
                        steps,
                        "route",
                        format!(
                            "Outbound Route {:?} matches ({})",
                            route.name, route.toll_class
                        ),
                    );
                }
                let why = match reason {
                    Refusal::TollClass => {
                        "the caller's toll_allow does not name the route's toll class"
                    }
                    Refusal::NoGateway => {
                        "the route has no gateway the Domain can use (disabled, or the grant was revoked)"
                    }
                    Refusal::UnknownCaller => {
                        "nobody known places the call: no toll class to check"
                    }
                    Refusal::LoggedOut => "a logged-out phone may dial only the emergency numbers",
                    Refusal::InternalNotAllowed => {
                        "the caller's Extension may not dial this internal number (internal_allow)"
                    }
                };
                step(steps, "toll_class", why);
                *end = outcome("refused");
                end.cause = Some(cause.as_str().to_owned());
            }
            Decision::Outbound(call) => {
                let r = call.route;
                step(
                    steps,
                    "route",
                    format!(
                        "Outbound Route {:?} matches with the pattern {:?}",
                        r.name,
                        call.pattern.as_str()
                    ),
                );
                step(
                    steps,
                    "number",
                    format!(
                        "{} → strip {}, prepend {:?} → {} (E.164 where the Domain's numbering allows)",
                        call.dialled, r.strip_digits, r.prepend, call.number
                    ),
                );
                step(
                    steps,
                    "toll_class",
                    if call.emergency.is_some() {
                        format!("{}: an emergency call is never refused", r.toll_class)
                    } else {
                        format!("{}: allowed for the caller", r.toll_class)
                    },
                );
                let names: Vec<&str> = r.gateways.iter().map(|g| g.name.as_str()).collect();
                let mut gw = format!(
                    "tried in order: {} (the next one on {})",
                    names.join(", "),
                    FAILOVER_CAUSES.join(", ")
                );
                if !r.unusable_gateways.is_empty() {
                    let skipped: Vec<&str> = r
                        .unusable_gateways
                        .iter()
                        .map(|g| g.name.as_str())
                        .collect();
                    gw.push_str(&format!(
                        "; skipped (disabled or not granted): {}",
                        skipped.join(", ")
                    ));
                }
                step(steps, "gateways", gw);
                let why = match call.caller_id.source {
                    CallerIdSource::Caller => "the caller's own outbound caller ID",
                    CallerIdSource::CallersNumber => {
                        "the caller's own is not a Number of the Domain: the Number that rings the caller"
                    }
                    CallerIdSource::InboundNumber => "the Number the call came in on",
                    CallerIdSource::DomainDefault => "the Domain's default outbound caller ID",
                    CallerIdSource::Emergency => {
                        "the emergency caller ID of the place (device → Location → Extension → Domain)"
                    }
                    CallerIdSource::None => {
                        "none the Domain may present: the carrier's account number"
                    }
                };
                step(
                    steps,
                    "caller_id",
                    format!(
                        "{} {} — {why}",
                        call.caller_id.name.as_deref().unwrap_or(""),
                        call.caller_id.number.as_deref().unwrap_or("(none)")
                    ),
                );
                *end = outcome("outbound");
                end.number = Some(call.number.clone());
                end.gateways = r.gateways.clone();
                end.caller_id_name = call.caller_id.name.clone();
                end.caller_id_number = call.caller_id.number.clone();
            }
            Decision::Ring { route } => {
                step(
                    steps,
                    "extension",
                    format!("{} is an Extension", route.extension.number),
                );
                if let Treatment::Ring {
                    ring_timeout_secs,
                    on_no_answer,
                    on_busy,
                    on_not_registered,
                } = &route.treatment
                {
                    step(
                        steps,
                        "ring",
                        format!(
                            "rings its ring plan (GET …/extensions/{{id}}/ring-plan) for {ring_timeout_secs} s; no answer → {}, busy → {}, not registered → {}",
                            serde_json::to_string(on_no_answer).unwrap_or_default(),
                            serde_json::to_string(on_busy).unwrap_or_default(),
                            serde_json::to_string(on_not_registered).unwrap_or_default()
                        ),
                    );
                }
                *end = outcome("ring");
                end.number = Some(route.extension.number.clone());
                end.ringing = vec![format!("Extension {}", route.extension.number)];
            }
            Decision::Apply { route, step: s } => {
                step(
                    steps,
                    "extension",
                    format!(
                        "{} is an Extension that does not ring now: {}",
                        route.extension.number,
                        serde_json::to_string(&route.treatment).unwrap_or_default()
                    ),
                );
                match s {
                    Step::Forward { destination, .. } => {
                        *end = outcome("forward");
                        end.number = Some(destination.to_owned());
                    }
                    Step::Voicemail { mailbox } => {
                        *end = outcome("voicemail");
                        end.number = Some(mailbox.to_owned());
                    }
                    Step::HangUp { cause } => {
                        *end = outcome("hang_up");
                        end.cause = Some(cause.as_str().to_owned());
                    }
                    Step::TooManyHops { .. } => {
                        *end = outcome("hang_up");
                        end.cause = Some(Step::TOO_MANY_HOPS_CAUSE.as_str().to_owned());
                    }
                }
            }
        }
    }
}
