//! Directory answers, compiled once per Domain from its bindings and served as they are.
//!
//! Every SIP user FreeSWITCH may ask about is compiled into its complete `<user>` element —
//! credentials, `dial-string`, `mwi-account`, variables — because FreeSWITCH caches a user under
//! `id+user+domain` whatever the action that fetched it (`shared/FREESWITCH.md` §2): a cached
//! `sip_auth` answer is what the next `user/201@domain` call sees, and vice versa.
//!
//! The users of a Domain:
//! - each enabled **Device** (`d…`), with its a1-hash and the calling identity of whoever it
//!   is bound to (fixed owner, hot-desk session, logged-out mode);
//! - each enabled **Extension** (its number): the dial-string of its ring plan, its mailbox,
//!   and, when it registers directly, its a1-hash. An Extension that does not register
//!   directly is sent with `sip-forbid-register` and no credential accepted
//!   (`allow-empty-password=false`): a user without a1-hash would otherwise register with any
//!   password.
//!
//! Choices where the issue is silent:
//! - Devices get `max-registrations-per-extension=2`: one phone, plus the registration it
//!   leaves behind when it reboots with a new Call-ID (with 1, sofia refuses the rebooted phone
//!   until the stale registration expires, up to an hour later).
//! - A device whose secret cannot be decrypted is left out (not found) rather than sent
//!   without a credential.
//! - When a call rings nothing, the outcome is the dial-string itself: `error/user_busy` (DND),
//!   `loopback/<destination>/<context>` (forwards), `loopback/<mailbox>@<domain>/`
//!   [`VOICEMAIL_CONTEXT`] (voicemail, answered by our dialplan), `error/user_not_registered`.
//!   What happens after a ring that nobody answers cannot live in a dial-string: in the
//!   Domain's own context our dialplan applies it (see `super::dialplan`). It is also
//!   published as the user variables `switchboard_on_no_answer` / `switchboard_on_busy` /
//!   `switchboard_on_not_registered` (dial strings) for an operator's own contexts to read with
//!   `${user_data(201@domain var switchboard_on_no_answer)}`.
//! - The Domain's [`DialPlan`] is compiled in the same pass, from the same ring plans: it lives
//!   and goes stale with the directory, so a change reaches both at once.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use switchboard_domain::bindings::identity::{
    CallingIdentity, caller_ids, calling_identity, extension_identity,
};
use switchboard_domain::bindings::ring_plan::{
    Disposition, Fallback, RingPlan, render_dial_string, render_dial_string_for_switch, ring_plan,
};
use switchboard_domain::bindings::snapshot::{DeviceFacts, ExtensionFacts};
use switchboard_domain::routing::dialplan::DialPlan;
use switchboard_domain::services::directory::DirectorySource;
use uuid::Uuid;

use super::escape_into;

/// The dialplan context our voicemail extension answers in (`<mailbox>@<domain>`).
pub const VOICEMAIL_CONTEXT: &str = "switchboard-voicemail";

/// Registrations a device may hold at once (see the module notes).
pub const DEVICE_MAX_REGISTRATIONS: u32 = 2;

/// The vanilla Domain-level dial-string, for users that carry none of their own (none of ours).
const DOMAIN_DIAL_STRING: &str = "{^^:sip_invite_domain=${dialed_domain}:presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(*/${dialed_user}@${dialed_domain})}";

/// How answers are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileSettings {
    /// `cacheable` on every user, in milliseconds; 0 leaves the attribute out.
    pub cacheable_ms: u64,
}

/// The phones an Extension rings as a ring group's member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberLegs {
    /// Its SIP users (lower-case), for the line state.
    pub sip_users: Vec<String>,
    /// One leg per phone: its channel variables (without `leg_timeout`) and its contact.
    pub legs: Vec<(Vec<String>, String)>,
}

impl MemberLegs {
    /// The legs of a plan that rings (none when it does not: Do-Not-Disturb, forwarded,
    /// nothing bound).
    fn of(plan: &RingPlan, sip_domain: &str) -> Option<Self> {
        if !plan.rings() {
            return None;
        }
        let safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
        };
        let mut out = Self::default();
        for t in plan.targets() {
            let user = t.sip_user.to_ascii_lowercase();
            if !safe(&user) || !safe(sip_domain) || out.sip_users.contains(&user) {
                continue;
            }
            let mut vars = Vec::new();
            if let Some(id) = t.device_id {
                vars.push(format!("switchboard_device_id={id}"));
            }
            if let Some(id) = t.location_id {
                vars.push(format!("switchboard_location_id={id}"));
            }
            if let Some(ext) = &plan.extension {
                vars.push(format!("switchboard_callee_extension_id={}", ext.id));
            }
            out.legs
                .push((vars, format!("${{sofia_contact(*/{user}@{sip_domain})}}")));
            out.sip_users.push(user);
        }
        (!out.legs.is_empty()).then_some(out)
    }
}

/// One Domain's directory, ready to answer.
#[derive(Debug)]
pub struct CompiledDomain {
    /// The Domain's id.
    pub id: Uuid,
    /// Its SIP domain, lower-case.
    pub sip_domain: String,
    /// A disabled Domain answers "not found" to everything.
    pub enabled: bool,
    /// `<domain name=…><params>…</params><variables>…</variables>` (left open).
    head: String,
    /// Complete `<user>` elements by lower-case id.
    users: HashMap<String, Arc<str>>,
    /// Call groups (lower-case name → the user ids of its Extensions, in number order).
    groups: HashMap<String, (String, Vec<String>)>,
    /// Numbers dialable from a logged-out phone.
    pub emergency_numbers: Vec<String>,
    /// Extension numbers with voicemail on.
    pub mailboxes: HashSet<String>,
    /// The Domain's own dialplan context; each ringing route carries its rendered dial string.
    pub dialplan: DialPlan<Option<Box<str>>>,
    /// What a ring group rings for each Extension that can ring: its phones' legs.
    pub members: HashMap<Uuid, MemberLegs>,
    /// Set when a change to the Domain was published after these answers were compiled.
    stale: AtomicBool,
}

const DOC_OPEN: &str = "<document type=\"freeswitch/xml\">\n  <section name=\"directory\">\n";
const DOC_CLOSE: &str = "  </section>\n</document>\n";

fn param(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push_str("<param name=\"");
    escape_into(out, name);
    out.push_str("\" value=\"");
    escape_into(out, value);
    out.push_str("\"/>\n");
}

fn variable(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push_str("<variable name=\"");
    escape_into(out, name);
    out.push_str("\" value=\"");
    escape_into(out, value);
    out.push_str("\"/>\n");
}

/// A value safe inside a `{^^:a=b:c=d}` block: the characters that end or split it are
/// dropped, and a value with spaces is single-quoted.
fn dial_value(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| {
            !matches!(
                c,
                ':' | '{' | '}' | '[' | ']' | '<' | '>' | '\'' | '^' | '|' | ','
            ) && !c.is_control()
        })
        .collect();
    let kept = kept.trim();
    if kept.contains(' ') {
        format!("'{kept}'")
    } else {
        kept.to_owned()
    }
}

/// A number, mailbox or destination as it may appear in a dial string (dialable characters).
fn dialable(text: &str) -> Option<&str> {
    (!text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'*' | b'#' | b'.' | b'-' | b'_')
        }))
    .then_some(text)
}

/// A context name as it may appear after `loopback/<dest>/`.
fn context_safe(text: &str) -> Option<&str> {
    (!text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b'@')))
    .then_some(text)
}

/// The dial string of an outcome that rings nothing.
fn fallback_dial_string(fallback: &Fallback, sip_domain: &str) -> String {
    match fallback {
        Fallback::Forward {
            destination,
            context,
            ..
        } => match (dialable(destination), context_safe(context)) {
            (Some(d), Some(c)) => format!("loopback/{d}/{c}"),
            _ => "error/unallocated_number".to_owned(),
        },
        Fallback::Voicemail { mailbox } => match dialable(mailbox) {
            Some(m) => format!("loopback/{m}@{sip_domain}/{VOICEMAIL_CONTEXT}"),
            None => "error/user_not_registered".to_owned(),
        },
        Fallback::Busy => "error/user_busy".to_owned(),
        Fallback::Unavailable => "error/user_not_registered".to_owned(),
    }
}

/// The `dial-string` of an Extension: what `user/<number>@<domain>` rings.
pub fn extension_dial_string(plan: &RingPlan, ext: &ExtensionFacts, sip_domain: &str) -> String {
    match &plan.disposition {
        Disposition::NotFound => "error/unallocated_number".to_owned(),
        Disposition::Busy => "error/user_busy".to_owned(),
        Disposition::Forward {
            destination,
            context,
        } => fallback_dial_string(
            &Fallback::Forward {
                destination: destination.clone(),
                context: context.clone(),
                rule: switchboard_domain::bindings::ring_plan::ForwardRule::Always,
            },
            sip_domain,
        ),
        Disposition::NothingToRing { then } => fallback_dial_string(then, sip_domain),
        Disposition::Ring {
            on_not_registered, ..
        } => match render_dial_string_for_switch(plan, sip_domain) {
            Some(hunts) => {
                let ids = caller_ids(ext);
                let vars = format!(
                    "{{^^:sip_invite_domain={sip_domain}:presence_id={}@{sip_domain}:originate_timeout={}:callee_id_name={}:callee_id_number={}:switchboard_extension={}}}",
                    ext.number,
                    plan.ring_timeout_secs,
                    dial_value(&ids.internal_name),
                    dial_value(&ids.internal_number),
                    ext.number,
                );
                // Each parallel hunt (`:_:`) is its own originate string and takes its own
                // variable block.
                hunts
                    .split(":_:")
                    .map(|hunt| format!("{vars}{hunt}"))
                    .collect::<Vec<_>>()
                    .join(":_:")
            }
            None => fallback_dial_string(on_not_registered, sip_domain),
        },
    }
}

fn open_user(out: &mut String, id: &str, settings: &CompileSettings) {
    out.push_str("            <user id=\"");
    escape_into(out, id);
    out.push('"');
    if settings.cacheable_ms > 0 {
        let _ = write!(out, " cacheable=\"{}\"", settings.cacheable_ms);
    }
    out.push_str(">\n              <params>\n");
}

const P: &str = "                ";

/// The variables of a calling identity (device or direct registration).
fn identity_variables(
    out: &mut String,
    identity: &CallingIdentity,
    src: &DirectorySource,
    device_id: Option<Uuid>,
    location_id: Option<Uuid>,
) {
    let b = &src.bindings;
    variable(out, P, "user_context", &identity.context);
    if let Some(ids) = &identity.caller_id {
        variable(out, P, "effective_caller_id_name", &ids.internal_name);
        variable(out, P, "effective_caller_id_number", &ids.internal_number);
        if let Some(name) = &ids.outbound_name {
            variable(out, P, "outbound_caller_id_name", name);
        }
        if let Some(number) = &ids.outbound_number {
            variable(out, P, "outbound_caller_id_number", number);
        }
    }
    variable(out, P, "toll_allow", &identity.toll_allow);
    if let Some(code) = &identity.account_code {
        variable(out, P, "accountcode", code);
    }
    if let Some(group) = &identity.call_group {
        variable(out, P, "callgroup", group);
    }
    if let Some(name) = &identity.emergency_caller_id.name {
        variable(out, P, "emergency_caller_id_name", name);
    }
    if let Some(number) = &identity.emergency_caller_id.number {
        variable(out, P, "emergency_caller_id_number", number);
    }
    if let Some(presence) = &identity.presence_id {
        variable(out, P, "presence_id", presence);
    }
    variable(
        out,
        P,
        "switchboard_record_inbound",
        identity.record_inbound.as_str(),
    );
    variable(
        out,
        P,
        "switchboard_record_outbound",
        identity.record_outbound.as_str(),
    );
    variable(
        out,
        P,
        "switchboard_restricted",
        if identity.restricted { "true" } else { "false" },
    );
    variable(out, P, "switchboard_domain", &b.domain.sip_domain);
    variable(out, P, "switchboard_domain_id", &b.domain.id.to_string());
    if let Some(id) = device_id {
        variable(out, P, "switchboard_device_id", &id.to_string());
    }
    if let Some(location) = location_id {
        variable(out, P, "switchboard_location_id", &location.to_string());
    }
    if let Some(ext) = &identity.effective_extension {
        variable(out, P, "switchboard_extension", &ext.number);
        variable(out, P, "switchboard_extension_id", &ext.id.to_string());
    }
}

fn close_user(out: &mut String) {
    out.push_str("              </variables>\n            </user>\n");
}

/// The complete user of a device; `None` for a disabled device or one without a credential.
fn device_user(
    src: &DirectorySource,
    device: &DeviceFacts,
    settings: &CompileSettings,
) -> Option<String> {
    let b = &src.bindings;
    let sip_domain = &b.domain.sip_domain;
    let identity = calling_identity(b, device.id)?;
    let a1 = src.a1_hashes.get(&device.id)?;
    let user = &device.sip_username;
    let mut out = String::with_capacity(1800);
    open_user(&mut out, user, settings);
    param(&mut out, P, "a1-hash", a1);
    param(
        &mut out,
        P,
        "max-registrations-per-extension",
        &DEVICE_MAX_REGISTRATIONS.to_string(),
    );
    param(&mut out, P, "allow-empty-password", "false");
    let presence = identity
        .presence_id
        .clone()
        .unwrap_or_else(|| format!("{user}@{sip_domain}"));
    param(
        &mut out,
        P,
        "dial-string",
        &format!(
            "{{^^:sip_invite_domain={sip_domain}:presence_id={}}}${{sofia_contact(*/{user}@{sip_domain})}}",
            dial_value(&presence)
        ),
    );
    if let Some(mailbox) = &identity.mailbox {
        param(
            &mut out,
            P,
            "mwi-account",
            &format!("{mailbox}@{sip_domain}"),
        );
    }
    out.push_str("              </params>\n              <variables>\n");
    identity_variables(
        &mut out,
        &identity,
        src,
        Some(device.id),
        device.location_id,
    );
    close_user(&mut out);
    Some(out)
}

/// The complete user of an Extension (its number) with its ring plan; `None` when disabled.
fn extension_user(
    src: &DirectorySource,
    ext: &ExtensionFacts,
    plan: &RingPlan,
    settings: &CompileSettings,
) -> Option<String> {
    if !ext.enabled {
        return None;
    }
    let b = &src.bindings;
    let sip_domain = &b.domain.sip_domain;
    let mut out = String::with_capacity(2000);
    open_user(&mut out, &ext.number, settings);
    let direct = extension_identity(b, ext.id);
    match (direct.is_some(), src.a1_hashes.get(&ext.id)) {
        (true, Some(a1)) => {
            param(&mut out, P, "a1-hash", a1);
            param(
                &mut out,
                P,
                "max-registrations-per-extension",
                &ext.max_registrations.max(1).to_string(),
            );
        }
        _ => param(&mut out, P, "sip-forbid-register", "true"),
    }
    param(&mut out, P, "allow-empty-password", "false");
    param(
        &mut out,
        P,
        "dial-string",
        &extension_dial_string(plan, ext, sip_domain),
    );
    if ext.voicemail_enabled {
        param(
            &mut out,
            P,
            "mwi-account",
            &format!("{}@{sip_domain}", ext.number),
        );
    }
    out.push_str("              </params>\n              <variables>\n");
    match &direct {
        Some(identity) => identity_variables(&mut out, identity, src, None, None),
        None => {
            let ids = caller_ids(ext);
            variable(&mut out, P, "user_context", &b.context_of(ext));
            variable(&mut out, P, "effective_caller_id_name", &ids.internal_name);
            variable(
                &mut out,
                P,
                "effective_caller_id_number",
                &ids.internal_number,
            );
            if let Some(code) = &ext.account_code {
                variable(&mut out, P, "accountcode", code);
            }
            if let Some(group) = &ext.call_group {
                variable(&mut out, P, "callgroup", group);
            }
            variable(
                &mut out,
                P,
                "presence_id",
                &format!("{}@{sip_domain}", ext.number),
            );
            variable(&mut out, P, "switchboard_domain", sip_domain);
            variable(
                &mut out,
                P,
                "switchboard_domain_id",
                &b.domain.id.to_string(),
            );
            variable(&mut out, P, "switchboard_extension", &ext.number);
            variable(&mut out, P, "switchboard_extension_id", &ext.id.to_string());
        }
    }
    if let Disposition::Ring {
        on_no_answer,
        on_busy,
        on_not_registered,
    } = &plan.disposition
    {
        for (name, fallback) in [
            ("switchboard_on_no_answer", on_no_answer),
            ("switchboard_on_busy", on_busy),
            ("switchboard_on_not_registered", on_not_registered),
        ] {
            variable(
                &mut out,
                P,
                name,
                &fallback_dial_string(fallback, sip_domain),
            );
        }
    }
    close_user(&mut out);
    Some(out)
}

/// A user element without its indentation and line breaks: the view holds one per SIP user
/// (hundreds of thousands), and FreeSWITCH does not need them pretty. Values carry no raw line
/// breaks (they are escaped as `&#10;`), so dropping leading whitespace per line is exact.
fn compact(xml: &str) -> Arc<str> {
    let mut out = String::with_capacity(xml.len());
    for line in xml.lines() {
        out.push_str(line.trim_start());
    }
    Arc::from(out)
}

impl CompiledDomain {
    /// Compiles a Domain's answers (`now` only shapes human-readable reasons, never answers).
    pub fn compile(src: &DirectorySource, settings: &CompileSettings, now: DateTime<Utc>) -> Self {
        let b = &src.bindings;
        let sip_domain = b.domain.sip_domain.to_ascii_lowercase();
        let mut head = String::with_capacity(400);
        head.push_str("    <domain name=\"");
        escape_into(&mut head, &sip_domain);
        head.push_str("\">\n      <params>\n");
        param(&mut head, "        ", "dial-string", DOMAIN_DIAL_STRING);
        head.push_str("      </params>\n      <variables>\n");
        variable(&mut head, "        ", "user_context", &sip_domain);
        head.push_str("      </variables>\n");

        let mut users: HashMap<String, Arc<str>> =
            HashMap::with_capacity(b.devices.len() + b.extensions.len());
        let mut groups: HashMap<String, (String, Vec<String>)> = HashMap::new();
        let mut mailboxes = HashSet::new();
        let mut members = HashMap::new();
        let mut dialplan = DialPlan::empty(b).with_routing(&src.routing);
        if src.enabled {
            for device in b.devices.values() {
                if let Some(xml) = device_user(src, device, settings) {
                    users.insert(device.sip_username.to_ascii_lowercase(), compact(&xml));
                }
            }
            let mut extensions: Vec<&ExtensionFacts> = b.extensions.values().collect();
            extensions.sort_by(|a, b| a.number.cmp(&b.number));
            for ext in extensions {
                // One ring plan per Extension feeds both its directory user and its route.
                let plan = ring_plan(b, ext.id, now);
                let ring = render_dial_string(&plan, &sip_domain)
                    .map(|_| Box::from(extension_dial_string(&plan, ext, &sip_domain)));
                dialplan.insert(b, ext, &plan, ring);
                if let Some(legs) = MemberLegs::of(&plan, &sip_domain) {
                    members.insert(ext.id, legs);
                }
                let Some(xml) = extension_user(src, ext, &plan, settings) else {
                    continue;
                };
                let key = ext.number.to_ascii_lowercase();
                if ext.voicemail_enabled {
                    mailboxes.insert(ext.number.clone());
                }
                if let Some(group) = ext.call_group.as_deref().filter(|g| !g.trim().is_empty()) {
                    groups
                        .entry(group.to_lowercase())
                        .or_insert_with(|| (group.to_owned(), Vec::new()))
                        .1
                        .push(key.clone());
                }
                users.insert(key, compact(&xml));
            }
        }
        Self {
            id: b.domain.id,
            sip_domain,
            enabled: src.enabled,
            head,
            users,
            groups,
            emergency_numbers: b.settings.emergency_numbers.clone(),
            mailboxes,
            dialplan,
            members,
            stale: AtomicBool::new(false),
        }
    }

    /// True when a change was published after it was compiled.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::SeqCst)
    }

    /// Marks it out of date (a change to the Domain was published).
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// How many users it answers for.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The Domain alone (bare domain lookups), without users.
    pub fn domain_document(&self) -> String {
        let mut out = String::with_capacity(DOC_OPEN.len() + self.head.len() + 64);
        out.push_str(DOC_OPEN);
        out.push_str(&self.head);
        out.push_str("    </domain>\n");
        out.push_str(DOC_CLOSE);
        out
    }

    /// One complete user, looked up case-insensitively as FreeSWITCH matches ids.
    pub fn user_document(&self, id: &str) -> Option<String> {
        let user = self.users.get(&id.to_ascii_lowercase())?;
        let mut out = String::with_capacity(DOC_OPEN.len() + self.head.len() + user.len() + 200);
        out.push_str(DOC_OPEN);
        out.push_str(&self.head);
        out.push_str("      <groups>\n        <group name=\"default\">\n          <users>\n");
        out.push_str(user);
        out.push_str("          </users>\n        </group>\n      </groups>\n    </domain>\n");
        out.push_str(DOC_CLOSE);
        Some(out)
    }

    /// A call group with the complete users of its Extensions (`group_call`).
    pub fn group_document(&self, name: &str) -> Option<String> {
        let (display, members) = self.groups.get(&name.to_lowercase())?;
        let mut out = String::with_capacity(4096);
        out.push_str(DOC_OPEN);
        out.push_str(&self.head);
        out.push_str("      <groups>\n        <group name=\"");
        escape_into(&mut out, display);
        out.push_str("\">\n          <users>\n");
        for key in members {
            if let Some(user) = self.users.get(key) {
                out.push_str(user);
            }
        }
        out.push_str("          </users>\n        </group>\n      </groups>\n    </domain>\n");
        out.push_str(DOC_CLOSE);
        Some(out)
    }
}

/// Every enabled Domain, without users (`purpose=gateways`: sofia's `<domain name="all"/>`).
pub fn gateways_document<'a>(
    domains: impl IntoIterator<Item = &'a CompiledDomain>,
    carriers: &str,
) -> String {
    let mut out = String::with_capacity(4096 + carriers.len());
    out.push_str(DOC_OPEN);
    for d in domains.into_iter().filter(|d| d.enabled) {
        out.push_str(&d.head);
        out.push_str("    </domain>\n");
    }
    out.push_str(carriers);
    out.push_str(DOC_CLOSE);
    out
}
