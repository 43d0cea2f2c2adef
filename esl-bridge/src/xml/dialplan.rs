//! Dialplan answers: the hot-desk feature codes, each Domain's own context (its compiled
//! [`DialPlan`](switchboard_domain::routing::dialplan::DialPlan)), the restricted context of
//! logged-out phones and the voicemail extension of our dial strings. Other contexts (`public`,
//! an Extension's own context) are "not found", so the operator's dialplan keeps them.
//!
//! - `*11`, `*11<extension>`, `*12`, `*13`, `*97`, `*98[<box>]`, `*14<short code>`, `*15` in
//!   any context of a known Domain: set `switchboard_feature` (see [`Feature::as_str`]) and
//!   `switchboard_feature_extension` (the digits after the code),
//!   answer, and hand the call to the outbound socket (`socket <address> async full`), where
//!   the ESL bridge runs the dialogue. The calling device is identified there from the
//!   channel's `switchboard_device_id`/`switchboard_domain_id` (set by our directory), never
//!   from digits.
//! - `*70`, `*71` … `*79` in a Domain's own context only (a logged-out phone's context refuses
//!   them like any other number): call park in the Domain's own lot of mod_valet_parking
//!   ([`park_document`]).
//! - In [`LOGGED_OUT_CONTEXT`]: the Domain's emergency numbers are allowed, with the caller ID
//!   set to the phone's emergency caller ID, and transferred to the Domain's own context where
//!   the operator's emergency route lives; anything else is refused with
//!   `OUTGOING_CALL_BARRED` (SIP 403), before any media.
//! - In [`VOICEMAIL_CONTEXT`]: `<mailbox>@<domain>` answers and runs `voicemail`.
//! - In a Domain's context (named after its SIP domain): an Extension that rings bridges to its
//!   ring plan's dial string ([`ring_document`]); when the bridge fails, our `transfer` asks
//!   again for `switchboard-outcome-${originate_disposition}` in the same context, and the
//!   answer is the Extension's outcome for that cause ([`step_document`]): a forward (a
//!   `transfer`, counting hops in [`FORWARD_HOPS_VARIABLE`]), voicemail, or a hang-up cause.
//!   A number nothing answers to is `UNALLOCATED_NUMBER` (SIP 404, [`unallocated_document`]);
//!   the Domain's emergency numbers are "not found", left to the operator's dialplan.

use super::directory::VOICEMAIL_CONTEXT;
use super::escape_into;
pub use switchboard_domain::bindings::identity::LOGGED_OUT_CONTEXT;
use switchboard_domain::routing::dialplan::{HangupCause, OutboundCall, Recording, Refusal, Step};
use switchboard_domain::routing::outbound::FAILOVER_CAUSES;
use switchboard_domain::telephony::policy::RecordingPolicy;

/// What a feature code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `*11`: log in (extension and PIN).
    Login,
    /// `*12`: log out.
    Logout,
    /// `*13`: log in if logged out, else log out.
    Toggle,
    /// `*97`: my own voicemail box (the box of whoever the phone calls as), after the PIN.
    Voicemail,
    /// `*98`: any voicemail box of the Domain (asks for the box, then its PIN).
    VoicemailAny,
    /// `*14<short code>`: sign the Extension the phone calls as in to that Location.
    LocationSignIn,
    /// `*15`: sign the Extension the phone calls as out of its Location.
    LocationSignOut,
    /// `*36<code>`: switch the override of the Domain's time condition with that code.
    TimeConditionOverride,
}

impl Feature {
    /// The value of `switchboard_feature`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Toggle => "toggle",
            Self::Voicemail => "voicemail",
            Self::VoicemailAny => "voicemail_any",
            Self::LocationSignIn => "location_sign_in",
            Self::LocationSignOut => "location_sign_out",
            Self::TimeConditionOverride => "time_condition_override",
        }
    }

    /// The feature named by a `switchboard_feature` value (what the outbound socket reads).
    pub fn from_variable(value: &str) -> Option<Self> {
        [
            Self::Login,
            Self::Logout,
            Self::Toggle,
            Self::Voicemail,
            Self::VoicemailAny,
            Self::LocationSignIn,
            Self::LocationSignOut,
            Self::TimeConditionOverride,
        ]
        .into_iter()
        .find(|f| f.as_str() == value)
    }

    /// The code a caller dials for it.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Login => "*11",
            Self::Logout => "*12",
            Self::Toggle => "*13",
            Self::Voicemail => "*97",
            Self::VoicemailAny => "*98",
            Self::LocationSignIn => "*14",
            Self::LocationSignOut => "*15",
            Self::TimeConditionOverride => "*36",
        }
    }
}

/// Longest extension accepted after `*11`.
const MAX_EXTENSION_DIGITS: usize = 16;

/// Longest Location short code accepted after `*14`.
const MAX_SHORT_CODE_DIGITS: usize = switchboard_domain::services::locations::MAX_SHORT_CODE_DIGITS;

/// `*11` → login; `*11201` → login as 201; `*12` → logout; `*13` → toggle; `*97` → my
/// voicemail; `*98` → any box; `*98201` → box 201; `*14412` → sign in to the Location with
/// short code 412 (`*14` alone is nothing); `*15` → sign out of my Location; `*361` → switch
/// the override of the time condition with code 1.
pub fn parse_feature_code(destination: &str) -> Option<(Feature, Option<&str>)> {
    let rest = destination.strip_prefix('*')?;
    let digits_after = |prefix: &str, feature: Feature, max: usize| {
        let digits = rest.strip_prefix(prefix)?;
        (!digits.is_empty() && digits.len() <= max && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some((feature, Some(digits)))
    };
    match rest {
        "11" => Some((Feature::Login, None)),
        "12" => Some((Feature::Logout, None)),
        "13" => Some((Feature::Toggle, None)),
        "97" => Some((Feature::Voicemail, None)),
        "98" => Some((Feature::VoicemailAny, None)),
        "15" => Some((Feature::LocationSignOut, None)),
        _ => digits_after("11", Feature::Login, MAX_EXTENSION_DIGITS)
            .or_else(|| digits_after("98", Feature::VoicemailAny, MAX_EXTENSION_DIGITS))
            .or_else(|| digits_after("14", Feature::LocationSignIn, MAX_SHORT_CODE_DIGITS))
            .or_else(|| digits_after("36", Feature::TimeConditionOverride, 3)),
    }
}

/// `*70`: park the call in the first free slot of the Domain's lot.
pub const PARK_ANY_CODE: &str = "*70";

/// A slot of a Domain's park lot, `71` … `79` (dialled `*71` … `*79`). mod_valet_parking
/// names slots by these digits: its presence for slot 71 comes from `71@<sip domain>` with
/// proto `park`, which lights a BLF subscribed to `park+71@<sip domain>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkSlot(u8);

impl ParkSlot {
    /// The first slot (`*71`).
    pub const FIRST: Self = Self(71);
    /// The last slot (`*79`).
    pub const LAST: Self = Self(79);

    /// The slot numbered `number`, if it is one of the lot's.
    pub const fn new(number: u8) -> Option<Self> {
        if number >= Self::FIRST.0 && number <= Self::LAST.0 {
            Some(Self(number))
        } else {
            None
        }
    }

    /// Its number (`71` … `79`).
    pub const fn number(self) -> u8 {
        self.0
    }
}

/// What a park code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// `*70`: park in the first free slot, and hear its number.
    AnyFreeSlot,
    /// `*71` … `*79`: park in that slot when it is free, else pick up the call parked there.
    Slot(ParkSlot),
}

/// `*70` → any free slot; `*71` … `*79` → that slot; nothing else (`*7`, `*80`, `*710`).
pub fn parse_park_code(destination: &str) -> Option<Park> {
    if destination == PARK_ANY_CODE {
        return Some(Park::AnyFreeSlot);
    }
    let digits = destination.strip_prefix('*')?;
    if digits.len() != 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ParkSlot::new(digits.parse().ok()?).map(Park::Slot)
}

/// A Domain's park lot in mod_valet_parking: `park@<sip domain>`. Lots are global to the
/// switch, so the name carries the Domain (two tenants never share one), and the part after
/// `@` is the domain mod_valet_parking sends the slots' presence from.
pub fn park_lot(sip_domain: &str) -> String {
    format!("park@{sip_domain}")
}

/// A park code in the Domain's own context: answer, then `valet_park`. The parked caller hears
/// the channel's `hold_music` (silence when none is set) until someone dials its slot; a
/// slot's code picks the call up (mod_valet_parking bridges the two), or parks the caller
/// there when the slot is free.
pub fn park_document(context: &str, destination: &str, sip_domain: &str, park: Park) -> String {
    let mut out = String::with_capacity(700);
    open(&mut out, context, "switchboard-park", destination);
    let lot = park_lot(sip_domain);
    let data = match park {
        Park::AnyFreeSlot => format!(
            "{lot} auto in {} {}",
            ParkSlot::FIRST.number(),
            ParkSlot::LAST.number()
        ),
        Park::Slot(slot) => format!("{lot} {}", slot.number()),
    };
    action(&mut out, "answer", None);
    action(&mut out, "valet_park", Some(&data));
    close(&mut out);
    out
}

/// `^<destination>$` with every character that is not a letter, digit or `_` escaped.
fn exact(destination: &str) -> String {
    let mut out = String::with_capacity(destination.len() * 2 + 2);
    out.push('^');
    for c in destination.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

pub(crate) fn open(out: &mut String, context: &str, extension: &str, destination: &str) {
    out.push_str("<document type=\"freeswitch/xml\">\n  <section name=\"dialplan\" description=\"switchboard\">\n    <context name=\"");
    escape_into(out, context);
    out.push_str("\">\n      <extension name=\"");
    escape_into(out, extension);
    out.push_str("\">\n        <condition field=\"destination_number\" expression=\"");
    escape_into(out, &exact(destination));
    out.push_str("\">\n");
}

pub(crate) fn action(out: &mut String, application: &str, data: Option<&str>) {
    out.push_str("          <action application=\"");
    escape_into(out, application);
    out.push('"');
    if let Some(data) = data {
        out.push_str(" data=\"");
        escape_into(out, data);
        out.push('"');
    }
    out.push_str("/>\n");
}

pub(crate) fn close(out: &mut String) {
    out.push_str(
        "        </condition>\n      </extension>\n    </context>\n  </section>\n</document>\n",
    );
}

/// Which greeting of a box a caller hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    /// The box's own choice (mod_voicemail's preference: the standard greeting, else the
    /// recorded name, else a phrase).
    Standard,
    /// The Extension did not answer or is not reachable: greeting 2 when the box has one.
    Unavailable,
    /// The Extension is busy: greeting 3 when the box has one.
    Busy,
}

impl Greeting {
    /// mod_voicemail's greeting slot, for the two that depend on why the call went there.
    pub const fn slot(self) -> Option<u8> {
        match self {
            Self::Standard => None,
            Self::Unavailable => Some(2),
            Self::Busy => Some(3),
        }
    }

    /// The greeting for a failed ring's cause (`USER_BUSY` and the like are busy).
    pub fn for_cause(cause: &str) -> Self {
        if cause.contains("BUSY") {
            Self::Busy
        } else {
            Self::Unavailable
        }
    }
}

/// `answer` and `voicemail default <domain> <box>`; for a busy or unavailable greeting, the
/// box's `greeting_<slot>.wav` when it exists (checked when the call gets there, inline,
/// with FreeSWITCH's `file_exists`), else the standard one. Leaves the last condition open.
pub(crate) fn voicemail_actions(
    out: &mut String,
    sip_domain: &str,
    mailbox: &str,
    greeting: Greeting,
) {
    if let Some(slot) = greeting.slot() {
        out.push_str("          <action application=\"set\" data=\"");
        escape_into(
            out,
            &format!(
                "switchboard_greeting=${{file_exists(${{storage_dir}}/voicemail/default/{sip_domain}/{mailbox}/greeting_{slot}.wav)}}"
            ),
        );
        out.push_str("\" inline=\"true\"/>\n        </condition>\n");
        out.push_str("        <condition field=\"${switchboard_greeting}\" expression=\"^true$\" break=\"never\">\n");
        action(
            out,
            "set",
            Some(&format!("voicemail_greeting_number={slot}")),
        );
        out.push_str("        </condition>\n        <condition>\n");
    }
    action(out, "answer", None);
    action(
        out,
        "voicemail",
        Some(&format!("default {sip_domain} {mailbox}")),
    );
}

/// A feature code: set what was asked, answer, hand the call to the outbound socket.
pub fn feature_document(
    context: &str,
    destination: &str,
    feature: Feature,
    extension: Option<&str>,
    outbound_socket: &str,
) -> String {
    let mut out = String::with_capacity(900);
    open(
        &mut out,
        context,
        &match feature {
            Feature::Voicemail
            | Feature::VoicemailAny
            | Feature::LocationSignIn
            | Feature::LocationSignOut => {
                format!("switchboard-{}", feature.as_str())
            }
            _ => format!("switchboard-hotdesk-{}", feature.as_str()),
        },
        destination,
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_feature={}", feature.as_str())),
    );
    action(
        &mut out,
        "set",
        Some(&format!(
            "switchboard_feature_extension={}",
            extension.unwrap_or_default()
        )),
    );
    action(&mut out, "answer", None);
    action(
        &mut out,
        "socket",
        Some(&format!("{outbound_socket} async full")),
    );
    close(&mut out);
    out
}

/// Keeps the characters a caller-ID value may carry into a `set` action.
fn caller_id_value(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !matches!(c, '$' | '{' | '}'))
        .collect()
}

/// An emergency number dialled from a logged-out phone: caller ID from the place, then the
/// Domain's own context routes it.
pub fn emergency_document(
    destination: &str,
    sip_domain: &str,
    caller_id_name: Option<&str>,
    caller_id_number: Option<&str>,
) -> String {
    let mut out = String::with_capacity(1200);
    open(
        &mut out,
        LOGGED_OUT_CONTEXT,
        "switchboard-emergency",
        destination,
    );
    if let Some(name) = caller_id_name {
        let name = caller_id_value(name);
        action(
            &mut out,
            "set",
            Some(&format!("effective_caller_id_name={name}")),
        );
        action(
            &mut out,
            "set",
            Some(&format!("outbound_caller_id_name={name}")),
        );
    }
    if let Some(number) = caller_id_number {
        let number = caller_id_value(number);
        action(
            &mut out,
            "set",
            Some(&format!("effective_caller_id_number={number}")),
        );
        action(
            &mut out,
            "set",
            Some(&format!("outbound_caller_id_number={number}")),
        );
    }
    action(&mut out, "set", Some("switchboard_emergency=true"));
    action(
        &mut out,
        "transfer",
        Some(&format!("{destination} XML {sip_domain}")),
    );
    close(&mut out);
    out
}

/// Anything else dialled from a logged-out phone: refused before answer.
pub fn barred_document(destination: &str) -> String {
    let mut out = String::with_capacity(700);
    open(
        &mut out,
        LOGGED_OUT_CONTEXT,
        "switchboard-logged-out-barred",
        destination,
    );
    action(&mut out, "set", Some("switchboard_barred=logged_out"));
    action(&mut out, "hangup", Some("OUTGOING_CALL_BARRED"));
    close(&mut out);
    out
}

/// The voicemail box of a dial string's voicemail outcome.
pub fn voicemail_document(destination: &str, sip_domain: &str, mailbox: &str) -> String {
    let mut out = String::with_capacity(700);
    open(
        &mut out,
        VOICEMAIL_CONTEXT,
        "switchboard-voicemail",
        destination,
    );
    // Reached from a dial string: nothing was registered to ring.
    voicemail_actions(&mut out, sip_domain, mailbox, Greeting::Unavailable);
    close(&mut out);
    out
}

/// The destination prefix of the lookup after a failed ring: `switchboard-outcome-<cause>`,
/// dialled by our own `transfer` in the Domain's context.
pub const OUTCOME_PREFIX: &str = "switchboard-outcome-";
/// The channel variable naming the Extension whose ring failed (set before the bridge; a phone
/// cannot set channel variables, so an outcome lookup without it is not ours).
pub const CALLED_EXTENSION_VARIABLE: &str = "switchboard_called_extension";
/// The channel variable naming (by id) the Extension a call was for, for the call history.
pub const CALLEE_EXTENSION_ID_VARIABLE: &str = "switchboard_callee_extension_id";
/// The channel variable counting the forwards a call has taken.
pub const FORWARD_HOPS_VARIABLE: &str = "switchboard_forward_hops";

/// An Extension that rings: bridge to its ring plan's dial string (the ring timeout is its
/// `originate_timeout`), and when the bridge fails, look up the outcome of the cause in the
/// same context. Conditions are evaluated when the extension is hunted, before the bridge, so
/// the branch on the cause is a second lookup (`transfer`), not a condition here.
pub fn ring_document(
    context: &str,
    destination: &str,
    extension: &str,
    extension_id: &str,
    dial: &str,
    recording: &RecordingPlace<'_>,
) -> String {
    let mut out = String::with_capacity(1200 + dial.len());
    open(
        &mut out,
        context,
        &format!("switchboard-extension-{extension}"),
        destination,
    );
    recording_actions(&mut out, recording);
    action(
        &mut out,
        "set",
        Some(&format!("{CALLED_EXTENSION_VARIABLE}={extension}")),
    );
    // The call history's callee (the last Extension rung on this channel).
    action(
        &mut out,
        "set",
        Some(&format!("{CALLEE_EXTENSION_ID_VARIABLE}={extension_id}")),
    );
    action(&mut out, "set", Some("continue_on_fail=true"));
    action(&mut out, "set", Some("hangup_after_bridge=true"));
    action(&mut out, "bridge", Some(dial));
    action(
        &mut out,
        "transfer",
        Some(&format!(
            "{OUTCOME_PREFIX}${{originate_disposition}} XML {context}"
        )),
    );
    close(&mut out);
    out
}

/// The DTMF code (after the meta key `*`) that starts and stops an `on_demand` recording.
pub const RECORD_ON_DEMAND_KEY: char = '2';

/// The channel variable holding where the call is (or would be) recorded, kept in the CDR.
pub const RECORDING_VARIABLE: &str = "switchboard_recording";

/// A recording decision and where the Domain's recordings go.
#[derive(Debug, Clone, Copy)]
pub struct RecordingPlace<'a> {
    /// The decision.
    pub recording: &'a Recording,
    /// The configured directory on the FreeSWITCH host (may name FreeSWITCH variables).
    pub dir: &'a str,
    /// The Domain's SIP domain: its own directory under `dir`.
    pub sip_domain: &'a str,
}

impl RecordingPlace<'_> {
    /// `<dir>/<sip domain>/<yyyy-mm-dd>/<call uuid>.wav`, expanded by FreeSWITCH.
    pub fn path(&self) -> String {
        format!(
            "{}/{}/${{strftime(%Y-%m-%d)}}/${{uuid}}.wav",
            self.dir.trim_end_matches('/'),
            self.sip_domain
        )
    }
}

/// `always`: `record_session` when the call is answered (not while it rings); `on_demand`:
/// `*2` on either leg starts it and `*2` again stops it (`RECORD_TOGGLE_ON_REPEAT`), always
/// on the caller's leg so that both keys name the same recording. The path is kept in
/// [`RECORDING_VARIABLE`] for the call history.
fn recording_actions(out: &mut String, place: &RecordingPlace<'_>) {
    let policy = place.recording.policy;
    if policy == RecordingPolicy::Never {
        return;
    }
    action(
        out,
        "set",
        Some(&format!("{RECORDING_VARIABLE}={}", place.path())),
    );
    action(
        out,
        "set",
        Some(&format!("switchboard_recording_policy={}", policy.as_str())),
    );
    if policy == RecordingPolicy::Always {
        action(
            out,
            "set",
            Some(&format!(
                "execute_on_answer=record_session ${{{RECORDING_VARIABLE}}}"
            )),
        );
    } else {
        action(out, "set", Some("RECORD_TOGGLE_ON_REPEAT=true"));
        action(
            out,
            "bind_meta_app",
            Some(&format!(
                "{RECORD_ON_DEMAND_KEY} ab a record_session::${{{RECORDING_VARIABLE}}}"
            )),
        );
    }
}

/// One step of a call in the Domain's context: forward, voicemail or hang up.
pub fn step_document(
    context: &str,
    destination: &str,
    sip_domain: &str,
    extension: &str,
    extension_id: &str,
    step: &Step<'_>,
) -> String {
    let mut out = String::with_capacity(900);
    open(
        &mut out,
        context,
        &format!("switchboard-outcome-{extension}"),
        destination,
    );
    match step {
        Step::Forward {
            destination,
            context,
            hops,
        } => {
            action(
                &mut out,
                "set",
                Some(&format!("{FORWARD_HOPS_VARIABLE}={hops}")),
            );
            action(
                &mut out,
                "set",
                Some(&format!("{FORWARDED_BY_VARIABLE}={extension_id}")),
            );
            action(
                &mut out,
                "transfer",
                Some(&format!("{destination} XML {context}")),
            );
        }
        Step::Voicemail { mailbox } => {
            let cause = destination.strip_prefix(OUTCOME_PREFIX).unwrap_or_default();
            voicemail_actions(&mut out, sip_domain, mailbox, Greeting::for_cause(cause));
        }
        Step::HangUp { cause } => {
            // After a failed ring, sofia would answer the caller with the callee's SIP status
            // (`last_bridge_proto_specific_hangup_cause`) instead of the cause chosen here.
            action(&mut out, "set", Some("sip_ignore_remote_cause=true"));
            action(&mut out, "hangup", Some(cause.as_str()));
        }
        Step::TooManyHops { hops } => {
            action(&mut out, "set", Some("sip_ignore_remote_cause=true"));
            action(
                &mut out,
                "set",
                Some(&format!("switchboard_refused=forward_hops_{hops}")),
            );
            action(&mut out, "hangup", Some(Step::TOO_MANY_HOPS_CAUSE.as_str()));
        }
    }
    close(&mut out);
    out
}

/// A number nothing in the Domain's context answers to.
pub fn unallocated_document(context: &str, destination: &str) -> String {
    let mut out = String::with_capacity(600);
    open(&mut out, context, "switchboard-unallocated", destination);
    action(
        &mut out,
        "hangup",
        Some(HangupCause::UnallocatedNumber.as_str()),
    );
    close(&mut out);
    out
}

/// A lookup that just ends the call (the caller is gone, or a stray outcome lookup).
pub fn end_document(context: &str, destination: &str) -> String {
    let mut out = String::with_capacity(600);
    open(&mut out, context, "switchboard-end", destination);
    action(&mut out, "hangup", None);
    close(&mut out);
    out
}

/// The channel variable naming the Extension whose forward sent the call on (its toll class
/// and caller ID apply to a forward to an external number).
pub const FORWARDED_BY_VARIABLE: &str = "switchboard_forwarded_by";
/// The channel variable naming the Number a carrier's call came in on.
pub const INBOUND_NUMBER_VARIABLE: &str = "switchboard_inbound_number";

/// A call leaving through an Outbound Route: the caller ID, then each gateway in turn; a
/// gateway that cannot take the call (a cause of [`FAILOVER_CAUSES`]) passes it to the next,
/// any other answer (busy, no answer, no such number) ends the call with that cause.
pub fn outbound_document(
    context: &str,
    destination: &str,
    call: &OutboundCall<'_>,
    recording: &RecordingPlace<'_>,
) -> String {
    let mut out = String::with_capacity(1500);
    open(&mut out, context, "switchboard-outbound", destination);
    recording_actions(&mut out, recording);
    action(
        &mut out,
        "set",
        Some(&format!(
            "switchboard_outbound_route={}",
            caller_id_value(&call.route.name)
        )),
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_outbound_route_id={}", call.route.id)),
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_toll_class={}", call.route.toll_class)),
    );
    if let Some(name) = &call.caller_id.name {
        let name = caller_id_value(name);
        action(
            &mut out,
            "set",
            Some(&format!("effective_caller_id_name={name}")),
        );
    }
    if let Some(number) = &call.caller_id.number {
        let number = caller_id_value(number);
        action(
            &mut out,
            "set",
            Some(&format!("effective_caller_id_number={number}")),
        );
    }
    if call.emergency.is_some() {
        action(&mut out, "set", Some("switchboard_emergency=true"));
    }
    action(
        &mut out,
        "set",
        Some(&format!("continue_on_fail={}", FAILOVER_CAUSES.join(","))),
    );
    action(&mut out, "set", Some("hangup_after_bridge=true"));
    let number = caller_id_value(&call.number);
    for g in &call.route.gateways {
        action(
            &mut out,
            "bridge",
            Some(&format!("sofia/gateway/{}/{number}", g.freeswitch_name)),
        );
    }
    action(&mut out, "hangup", Some("${originate_disposition}"));
    close(&mut out);
    out
}

/// A call refused before it leaves (toll class, no usable gateway, nobody we know).
pub fn refused_document(
    context: &str,
    destination: &str,
    cause: HangupCause,
    reason: Refusal,
) -> String {
    let mut out = String::with_capacity(700);
    open(&mut out, context, "switchboard-refused", destination);
    let reason = match reason {
        Refusal::TollClass => "toll_class",
        Refusal::NoGateway => "no_gateway",
        Refusal::UnknownCaller => "unknown_caller",
        Refusal::LoggedOut => "logged_out",
        Refusal::InternalNotAllowed => "internal_not_allowed",
    };
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_refused={reason}")),
    );
    action(&mut out, "hangup", Some(cause.as_str()));
    close(&mut out);
    out
}

/// What a Number's call from a carrier does in the `public` context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Dial `number` in the Domain's context (an Extension, or an external number through the
    /// Outbound Routes), as a call on the Number `did`.
    Transfer {
        /// The Number.
        did: &'a str,
        /// What to dial.
        number: &'a str,
    },
    /// Straight to a voicemail box.
    Voicemail {
        /// The mailbox.
        mailbox: &'a str,
    },
    /// End the call.
    HangUp(HangupCause),
}

/// A carrier's call in the `public` context.
pub fn inbound_document(
    destination: &str,
    sip_domain: &str,
    domain_id: &str,
    gateway: &str,
    what: &Inbound<'_>,
) -> String {
    let mut out = String::with_capacity(900);
    open(&mut out, PUBLIC_CONTEXT, "switchboard-inbound", destination);
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_gateway={gateway}")),
    );
    action(&mut out, "set", Some(&format!("domain_name={sip_domain}")));
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_domain={sip_domain}")),
    );
    action(
        &mut out,
        "set",
        Some(&format!("switchboard_domain_id={domain_id}")),
    );
    action(
        &mut out,
        "set",
        Some(&format!(
            "switchboard_called_number={}",
            caller_id_value(destination)
        )),
    );
    match what {
        Inbound::Transfer { did, number } => {
            action(
                &mut out,
                "set",
                Some(&format!("{INBOUND_NUMBER_VARIABLE}={did}")),
            );
            action(
                &mut out,
                "transfer",
                Some(&format!("{number} XML {sip_domain}")),
            );
        }
        Inbound::Voicemail { mailbox } => {
            voicemail_actions(&mut out, sip_domain, mailbox, Greeting::Standard);
        }
        Inbound::HangUp(cause) => action(&mut out, "hangup", Some(cause.as_str())),
    }
    close(&mut out);
    out
}

/// A call in the `public` context that did not come from a gateway (or for no Number).
pub fn public_refused_document(destination: &str, cause: HangupCause) -> String {
    let mut out = String::with_capacity(600);
    open(
        &mut out,
        PUBLIC_CONTEXT,
        "switchboard-public-refused",
        destination,
    );
    action(&mut out, "hangup", Some(cause.as_str()));
    close(&mut out);
    out
}

/// The context calls from carriers arrive in (the SIP profile's `context`).
pub const PUBLIC_CONTEXT: &str = "public";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes_parse_and_nothing_else_does() {
        let cases = [
            ("*11", Some((Feature::Login, None))),
            ("*11201", Some((Feature::Login, Some("201")))),
            ("*12", Some((Feature::Logout, None))),
            ("*13", Some((Feature::Toggle, None))),
            ("*97", Some((Feature::Voicemail, None))),
            ("*98", Some((Feature::VoicemailAny, None))),
            ("*98201", Some((Feature::VoicemailAny, Some("201")))),
            ("*97201", None),
            ("*98x", None),
            ("*121", None),
            ("*11abc", None),
            ("*1112345678901234567", None),
            ("11", None),
            ("*14", None),
            ("*14412", Some((Feature::LocationSignIn, Some("412")))),
            ("*141234567", None),
            ("*14x", None),
            ("*15", Some((Feature::LocationSignOut, None))),
            ("*151", None),
            ("", None),
        ];
        for (dialled, want) in cases {
            assert_eq!(parse_feature_code(dialled), want, "{dialled:?}");
        }
    }

    #[test]
    fn the_feature_variable_round_trips() {
        for f in [
            Feature::Login,
            Feature::Logout,
            Feature::Toggle,
            Feature::LocationSignOut,
        ] {
            assert_eq!(Feature::from_variable(f.as_str()), Some(f));
            assert_eq!(parse_feature_code(f.code()), Some((f, None)));
        }
        assert_eq!(Feature::from_variable("reboot"), None);
    }

    #[test]
    fn park_codes_are_star70_and_the_nine_slots_and_nothing_else() {
        let slot = |n| Some(Park::Slot(ParkSlot(n)));
        let cases = [
            ("*70", Some(Park::AnyFreeSlot)),
            ("*71", slot(71)),
            ("*75", slot(75)),
            ("*79", slot(79)),
            ("*7", None),
            ("*80", None),
            ("*69", None),
            ("*710", None),
            ("*7a", None),
            ("*+7", None),
            ("71", None),
            ("**71", None),
            ("", None),
        ];
        for (dialled, want) in cases {
            assert_eq!(parse_park_code(dialled), want, "{dialled:?}");
        }
        assert_eq!(ParkSlot::new(71), Some(ParkSlot::FIRST));
        assert_eq!(ParkSlot::new(79), Some(ParkSlot::LAST));
        assert_eq!(ParkSlot::new(70), None);
        assert_eq!(ParkSlot::new(80), None);
        // No park code is a hot-desk or voicemail code, and the other way round.
        for code in ["*70", "*71", "*79"] {
            assert_eq!(parse_feature_code(code), None, "{code}");
        }
        for code in ["*11", "*12", "*13", "*14412", "*15", "*97", "*98"] {
            assert_eq!(parse_park_code(code), None, "{code}");
        }
    }

    #[test]
    fn star70_parks_in_the_first_free_slot_of_the_domains_own_lot() {
        assert_eq!(
            park_document("acme.test", "*70", "acme.test", Park::AnyFreeSlot),
            "<document type=\"freeswitch/xml\">
  <section name=\"dialplan\" description=\"switchboard\">
    <context name=\"acme.test\">
      <extension name=\"switchboard-park\">
        <condition field=\"destination_number\" expression=\"^\\*70$\">
          <action application=\"answer\"/>
          <action application=\"valet_park\" data=\"park@acme.test auto in 71 79\"/>
        </condition>
      </extension>
    </context>
  </section>
</document>
"
        );
    }

    #[test]
    fn a_slot_code_parks_in_or_picks_up_from_that_slot_of_the_domains_own_lot() {
        let slot = ParkSlot(73);
        assert_eq!(
            park_document("acme.test", "*73", "acme.test", Park::Slot(slot)),
            "<document type=\"freeswitch/xml\">
  <section name=\"dialplan\" description=\"switchboard\">
    <context name=\"acme.test\">
      <extension name=\"switchboard-park\">
        <condition field=\"destination_number\" expression=\"^\\*73$\">
          <action application=\"answer\"/>
          <action application=\"valet_park\" data=\"park@acme.test 73\"/>
        </condition>
      </extension>
    </context>
  </section>
</document>
"
        );
        assert_eq!(park_lot("other.test"), "park@other.test");
    }

    #[test]
    fn the_condition_matches_exactly_what_was_dialled() {
        assert_eq!(exact("*11201"), "^\\*11201$");
        assert_eq!(exact("+1.5"), "^\\+1\\.5$");
        assert_eq!(
            exact("switchboard-outcome-USER_BUSY"),
            "^switchboard\\-outcome\\-USER_BUSY$"
        );
    }
}
