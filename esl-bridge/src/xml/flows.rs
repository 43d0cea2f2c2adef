//! The dialplan documents of call flows: a ring group's bridge, an IVR menu, a time
//! condition's branch, and the step after each (nobody answered, a key pressed).
//!
//! IVR menus are served as dialplan (`play_and_get_digits`, then a transfer to
//! `switchboard-flow-<id>-key-<digits>` that switchboard answers), not as mod_ivr menus: the
//! menu's keys then reach every destination the same way any other call does (hop counting,
//! the caller's rights, the call history), the menu is compiled with the rest of the Domain
//! (no second configuration section to keep in step), and "explain a call" follows the same
//! code FreeSWITCH's lookups do.
//!
//! The lookups a flow makes in the Domain's context:
//! - `switchboard-flow-<id>`: enter the flow;
//! - `switchboard-flow-<id>-unanswered-<cause>`: the ring group's bridge ended without an
//!   answer (`<cause>` is `originate_disposition`; a caller who hung up just ends);
//! - `switchboard-flow-<id>-key-<digits>`: the caller pressed `<digits>` in the menu (none:
//!   nothing valid after the last try).

use switchboard_domain::routing::dialplan::{HangupCause, Target};
use switchboard_domain::routing::flows::CompiledFlow;
use uuid::Uuid;

use super::dialplan::{Greeting, action, close, open, voicemail_actions};

/// The prefix of every flow lookup.
pub const FLOW_PREFIX: &str = "switchboard-flow-";
/// The channel variable counting the ring groups and time conditions a call has entered.
pub const FLOW_STEPS_VARIABLE: &str = "switchboard_flow_steps";
/// Ring groups and time conditions one call may pass through before it is ended with
/// `EXCHANGE_ROUTING_ERROR`. Saved graphs have no loop without a caller's key press; this
/// stops the loops that pass through Extensions' own forwards (which are numbers, not part
/// of the graph), after more steps than any real chain takes.
pub const MAX_FLOW_STEPS: u32 = 10;
/// The channel variable the menu's keys are read into.
pub const IVR_CHOICE_VARIABLE: &str = "switchboard_ivr_choice";

/// A flow lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowLookup<'a> {
    /// Enter the flow.
    Enter(Uuid),
    /// The group's bridge ended with this cause.
    Unanswered(Uuid, &'a str),
    /// The caller pressed these keys (empty: no valid choice).
    Key(Uuid, &'a str),
}

/// Reads a flow lookup from a destination number.
pub fn parse_flow_lookup(destination: &str) -> Option<FlowLookup<'_>> {
    let rest = destination.strip_prefix(FLOW_PREFIX)?;
    // `get` rather than `split_at`: a phone may dial anything, a multi-byte character included.
    let (id, tail) = (rest.get(..36)?, rest.get(36..)?);
    let id = Uuid::parse_str(id).ok()?;
    if tail.is_empty() {
        return Some(FlowLookup::Enter(id));
    }
    if let Some(cause) = tail.strip_prefix("-unanswered-") {
        return Some(FlowLookup::Unanswered(id, cause));
    }
    if let Some(keys) = tail.strip_prefix("-key-") {
        return Some(FlowLookup::Key(id, keys));
    }
    None
}

/// The lookup that enters a flow.
pub fn enter(id: Uuid) -> String {
    format!("{FLOW_PREFIX}{id}")
}

/// Appends what a target does: transfer, voicemail or hang up.
pub fn target_actions(out: &mut String, context: &str, sip_domain: &str, target: &Target<'_>) {
    match target {
        Target::Dial(number) => action(out, "transfer", Some(&format!("{number} XML {context}"))),
        Target::Flow(flow) => action(
            out,
            "transfer",
            Some(&format!("{} XML {context}", enter(flow.id))),
        ),
        Target::Voicemail(mailbox) => {
            voicemail_actions(out, sip_domain, mailbox, Greeting::Standard);
        }
        Target::HangUp(cause) => {
            action(out, "set", Some("sip_ignore_remote_cause=true"));
            action(out, "hangup", Some(cause.as_str()));
        }
    }
}

/// A flow's step that only sends the call on: a time condition's branch, a menu's key, a
/// group nobody answered. `vars` are set first (what was decided, for the call history).
pub fn target_document(
    context: &str,
    destination: &str,
    sip_domain: &str,
    flow: &CompiledFlow,
    vars: &[(&str, String)],
    target: &Target<'_>,
) -> String {
    let mut out = String::with_capacity(900);
    open(
        &mut out,
        context,
        &format!("switchboard-{}-{}", flow.kind.as_str(), flow.id),
        destination,
    );
    for (name, value) in vars {
        action(&mut out, "set", Some(&format!("{name}={value}")));
    }
    target_actions(&mut out, context, sip_domain, target);
    close(&mut out);
    out
}

/// A flow entered once too often: the call ends with `EXCHANGE_ROUTING_ERROR`.
pub fn too_many_steps_document(context: &str, destination: &str, steps: u32) -> String {
    let mut out = String::with_capacity(700);
    open(&mut out, context, "switchboard-flow-steps", destination);
    action(&mut out, "set", Some("sip_ignore_remote_cause=true"));
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_refused=flow_steps_{steps}")),
    );
    action(
        &mut out,
        "hangup",
        Some(HangupCause::ExchangeRoutingError.as_str()),
    );
    close(&mut out);
    out
}

/// A ring group ringing `dial` (its members' legs, each with its `leg_timeout`).
pub fn ring_group_document(
    context: &str,
    destination: &str,
    flow: &CompiledFlow,
    steps: u32,
    caller_id_prefix: &str,
    dial: &str,
) -> String {
    let mut out = String::with_capacity(1200 + dial.len());
    open(
        &mut out,
        context,
        &format!("switchboard-ring_group-{}", flow.id),
        destination,
    );
    action(
        &mut out,
        "set",
        Some(&format!("{FLOW_STEPS_VARIABLE}={steps}")),
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_ring_group_id={}", flow.id)),
    );
    if !caller_id_prefix.is_empty() {
        let prefix: String = caller_id_prefix
            .chars()
            .filter(|c| !matches!(c, '$' | '{' | '}' | '\'' | '"'))
            .collect();
        action(
            &mut out,
            "set",
            Some(&format!(
                "effective_caller_id_name={prefix}${{caller_id_name}}"
            )),
        );
    }
    action(&mut out, "set", Some("continue_on_fail=true"));
    action(&mut out, "set", Some("hangup_after_bridge=true"));
    action(&mut out, "bridge", Some(dial));
    action(
        &mut out,
        "transfer",
        Some(&format!(
            "{FLOW_PREFIX}{}-unanswered-${{originate_disposition}} XML {context}",
            flow.id
        )),
    );
    close(&mut out);
    out
}

/// How a menu collects keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuPlay<'a> {
    /// What is played (a file, or a `tone_stream://`).
    pub greeting: &'a str,
    /// The most keys a choice has.
    pub max_digits: usize,
    /// Times the greeting is played.
    pub tries: u32,
    /// Seconds to wait for a first key.
    pub timeout_secs: u32,
    /// The keys accepted (a regular expression without spaces).
    pub regex: String,
    /// Whether `#` is a key (then nothing ends the input early).
    pub hash_is_a_key: bool,
}

/// The tone played after an invalid choice.
pub const INVALID_TONE: &str = "tone_stream://%(500,0,300)";

/// An IVR menu: answer, play and collect, then look the keys up.
pub fn ivr_document(
    context: &str,
    destination: &str,
    flow: &CompiledFlow,
    play: &MenuPlay<'_>,
) -> String {
    let mut out = String::with_capacity(1200);
    open(
        &mut out,
        context,
        &format!("switchboard-ivr-{}", flow.id),
        destination,
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_ivr_id={}", flow.id)),
    );
    action(&mut out, "answer", None);
    action(&mut out, "sleep", Some("500"));
    let terminators = if play.hash_is_a_key { "none" } else { "#" };
    action(
        &mut out,
        "play_and_get_digits",
        Some(&format!(
            "1 {} {} {} {terminators} {} {INVALID_TONE} {IVR_CHOICE_VARIABLE} {} 2000",
            play.max_digits.max(1),
            play.tries.max(1),
            play.timeout_secs.max(1) * 1000,
            play.greeting,
            play.regex,
        )),
    );
    action(
        &mut out,
        "transfer",
        Some(&format!(
            "{FLOW_PREFIX}{}-key-${{{IVR_CHOICE_VARIABLE}}} XML {context}",
            flow.id
        )),
    );
    close(&mut out);
    out
}

/// The regular expression of a menu's keys: its options, and any number of `extension_digits`
/// lengths when callers may dial Extensions directly.
pub fn keys_regex<'a>(
    options: impl IntoIterator<Item = &'a str>,
    extension_lengths: Option<(usize, usize)>,
) -> String {
    let mut parts: Vec<String> = options
        .into_iter()
        .map(|o| {
            o.chars()
                .map(|c| match c {
                    '*' => "\\*".to_owned(),
                    '#' => "\\#".to_owned(),
                    c => c.to_string(),
                })
                .collect()
        })
        .collect();
    if let Some((lo, hi)) = extension_lengths {
        parts.push(format!("\\d{{{lo},{hi}}}"));
    }
    if parts.is_empty() {
        // Nothing can be chosen: every try times out, then the final destination.
        return "^$".into();
    }
    format!("^({})$", parts.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_round_trip_and_strangers_are_not_lookups() {
        let id = Uuid::from_u128(42);
        assert_eq!(parse_flow_lookup(&enter(id)), Some(FlowLookup::Enter(id)));
        assert_eq!(
            parse_flow_lookup(&format!("{}-unanswered-NO_ANSWER", enter(id))),
            Some(FlowLookup::Unanswered(id, "NO_ANSWER"))
        );
        assert_eq!(
            parse_flow_lookup(&format!("{}-key-*1", enter(id))),
            Some(FlowLookup::Key(id, "*1"))
        );
        assert_eq!(
            parse_flow_lookup(&format!("{}-key-", enter(id))),
            Some(FlowLookup::Key(id, ""))
        );
        assert_eq!(parse_flow_lookup("switchboard-flow-nope"), None);
        assert_eq!(parse_flow_lookup(&format!("{}-other", enter(id))), None);
        assert_eq!(parse_flow_lookup("201"), None);
        let odd = format!("{FLOW_PREFIX}{}é", "a".repeat(35));
        assert_eq!(parse_flow_lookup(&odd), None);
    }

    #[test]
    fn the_keys_regex_escapes_star_and_hash_and_adds_extension_lengths() {
        assert_eq!(keys_regex(["1", "2"], None), "^(1|2)$");
        assert_eq!(
            keys_regex(["*9", "#"], Some((3, 4))),
            "^(\\*9|\\#|\\d{3,4})$"
        );
        assert_eq!(keys_regex([], None), "^$");
    }
}
