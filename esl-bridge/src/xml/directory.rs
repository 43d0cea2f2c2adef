//! Directory answers, compiled once per Domain from its bindings and served as they are.
//!
//! Every SIP user FreeSWITCH may ask about is compiled into its complete `<user>` element —
//! credentials, `dial-string`, `mwi-account`, variables — because FreeSWITCH caches a user under
//! `id+user+domain` whatever the action that fetched it (`shared/FREESWITCH.md` §2): a cached
//! `sip_auth` answer is what the next `user/201@domain` call sees, and vice versa.
//!
//! The elements are kept packed ([`super::packed`]: the repeated names, the Domain's name and
//! id, ids and a1-hashes as bytes), all users of a Domain in one allocation: a few hundred bytes
//! per SIP user instead of the 1–2 KiB of the text, so that a node holds a large provider. A
//! lookup unpacks one element, byte for byte what was compiled.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use switchboard_domain::bindings::identity::{
    CallingIdentity, caller_ids, calling_identity, extension_identity,
};
use switchboard_domain::bindings::ring_plan::{
    Disposition, Fallback, RingIndex, RingPlan, render_dial_string, render_dial_string_for_switch,
    ring_plan_indexed,
};
use switchboard_domain::bindings::snapshot::{DeviceFacts, ExtensionFacts};
use switchboard_domain::routing::callers::CallerRef;
use switchboard_domain::routing::dialplan::DialPlan;
use switchboard_domain::services::directory::{DirectorySource, DomainContext};
use switchboard_domain::telephony::policy::DeviceMode;
use uuid::Uuid;

use super::escape_into;
use super::packed::{self, Shared};

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

/// What a ring group needs of an Extension that can ring, kept small: its phones (the SIP user,
/// the Device and Location ids) in one allocation, from which [`Members::get`] writes the legs.
///
/// The bytes: a flags byte ([`CALLEE_IS_KEY`] or [`CALLEE_STORED`] and then the callee's 16
/// bytes), then per phone its SIP user (2-byte little-endian length, lower-case bytes), a flags
/// byte ([`LEG_DEVICE`], [`LEG_LOCATION`]) and those ids' 16 bytes each.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackedLegs(Box<[u8]>);

/// The callee is the Extension the legs are kept under.
const CALLEE_IS_KEY: u8 = 1;
/// The callee's id follows.
const CALLEE_STORED: u8 = 2;
/// The leg's Device id follows.
const LEG_DEVICE: u8 = 1;
/// The leg's Location id follows (after the Device's).
const LEG_LOCATION: u8 = 2;

impl PackedLegs {
    /// The phones of a plan that rings (none when it does not: Do-Not-Disturb, forwarded,
    /// nothing bound), to be kept under Extension `key`.
    fn of(key: Uuid, plan: &RingPlan, sip_domain: &str) -> Option<Self> {
        if !plan.rings() {
            return None;
        }
        let safe = |s: &str| {
            !s.is_empty()
                && s.len() <= usize::from(u16::MAX)
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
        };
        let mut out = Vec::with_capacity(64);
        match plan.extension.as_ref().map(|e| e.id) {
            None => out.push(0),
            Some(id) if id == key => out.push(CALLEE_IS_KEY),
            Some(id) => {
                out.push(CALLEE_STORED);
                out.extend_from_slice(id.as_bytes());
            }
        }
        let mut seen: Vec<String> = Vec::new();
        for t in plan.targets() {
            let user = t.sip_user.to_ascii_lowercase();
            if !safe(&user) || !safe(sip_domain) || seen.contains(&user) {
                continue;
            }
            let len = u16::try_from(user.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(user.as_bytes());
            let flags = if t.device_id.is_some() { LEG_DEVICE } else { 0 }
                | if t.location_id.is_some() {
                    LEG_LOCATION
                } else {
                    0
                };
            out.push(flags);
            for id in [t.device_id, t.location_id].into_iter().flatten() {
                out.extend_from_slice(id.as_bytes());
            }
            seen.push(user);
        }
        (!seen.is_empty()).then(|| Self(out.into_boxed_slice()))
    }

    /// Whether one of its legs is one of these Devices (sorted).
    fn names_any(&self, devices: &[Uuid]) -> bool {
        let mut r = Bytes(&self.0);
        if r.byte() == Some(CALLEE_STORED) {
            r.uuid();
        }
        while r.user().is_some() {
            let flags = r.byte().unwrap_or(0);
            if flags & LEG_DEVICE != 0
                && r.uuid()
                    .is_some_and(|id| devices.binary_search(&id).is_ok())
            {
                return true;
            }
            if flags & LEG_LOCATION != 0 {
                r.uuid();
            }
        }
        false
    }

    fn legs(&self, key: Uuid, sip_domain: &str) -> MemberLegs {
        let mut out = MemberLegs::default();
        let mut r = Bytes(&self.0);
        let callee = match r.byte() {
            Some(CALLEE_IS_KEY) => Some(key),
            Some(CALLEE_STORED) => r.uuid(),
            _ => None,
        };
        while let Some(user) = r.user() {
            let flags = r.byte().unwrap_or(0);
            let device_id = if flags & LEG_DEVICE != 0 {
                r.uuid()
            } else {
                None
            };
            let location_id = if flags & LEG_LOCATION != 0 {
                r.uuid()
            } else {
                None
            };
            let mut vars = Vec::new();
            if let Some(id) = device_id {
                vars.push(format!("switchboard_device_id={id}"));
            }
            if let Some(id) = location_id {
                vars.push(format!("switchboard_location_id={id}"));
            }
            if let Some(id) = callee {
                vars.push(format!("switchboard_callee_extension_id={id}"));
            }
            out.legs
                .push((vars, format!("${{sofia_contact(*/{user}@{sip_domain})}}")));
            out.sip_users.push(user.to_owned());
        }
        out
    }
}

/// Reads back what [`PackedLegs::of`] wrote.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn uuid(&mut self) -> Option<Uuid> {
        let (id, rest) = self.0.split_first_chunk::<16>()?;
        self.0 = rest;
        Some(Uuid::from_bytes(*id))
    }

    /// A SIP user: ASCII, checked when written.
    fn user(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len));
        let user = rest.get(..len)?;
        self.0 = &rest[len..];
        std::str::from_utf8(user).ok()
    }
}

/// What a ring group rings for each Extension of a Domain that can ring.
#[derive(Debug, Clone, Default)]
pub struct Members {
    sip_domain: Box<str>,
    /// By Extension id.
    by_extension: Box<[(Uuid, PackedLegs)]>,
}

impl Members {
    /// The legs of an Extension's phones (none: it cannot ring).
    pub fn get(&self, extension_id: &Uuid) -> Option<MemberLegs> {
        let i = self
            .by_extension
            .binary_search_by(|(id, _)| id.cmp(extension_id))
            .ok()?;
        Some(self.by_extension[i].1.legs(*extension_id, &self.sip_domain))
    }
}

impl Members {
    /// These with the legs of `extensions` replaced by `changed` (an Extension that cannot ring
    /// any more has none).
    fn with_changes(&self, changed: Vec<(Uuid, Option<PackedLegs>)>) -> Self {
        let mut ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let mut changed = changed;
        changed.sort_unstable_by_key(|(id, _)| *id);
        let mut fresh = changed
            .into_iter()
            .filter_map(|(id, legs)| legs.map(|l| (id, l)))
            .peekable();
        // Both in id order: merged.
        let mut by_extension = Vec::with_capacity(self.by_extension.len() + ids.len());
        for (id, legs) in self
            .by_extension
            .iter()
            .filter(|(id, _)| ids.binary_search(id).is_err())
        {
            by_extension.extend(std::iter::from_fn(|| fresh.next_if(|(f, _)| f < id)));
            by_extension.push((*id, legs.clone()));
        }
        by_extension.extend(fresh);
        Self {
            sip_domain: self.sip_domain.clone(),
            by_extension: by_extension.into_boxed_slice(),
        }
    }
}

/// The numbers of a Domain's voicemail boxes.
#[derive(Debug, Clone, Default)]
pub struct Mailboxes(Box<[Box<str>]>);

impl Mailboxes {
    /// Whether `number` has a box.
    pub fn contains(&self, number: &str) -> bool {
        self.0.binary_search_by(|m| (**m).cmp(number)).is_ok()
    }
}

/// The `<user>` elements of a Domain, packed ([`packed`]) back to back in one allocation and
/// found by binary search: no allocation, hash slot or pointer per user.
#[derive(Debug, Clone, Default)]
struct UserTable {
    /// Per user, in key order: the key's length (2 bytes), the key (the lower-case id), the
    /// packed element.
    bytes: Box<[u8]>,
    /// Where each user starts; it ends where the next starts.
    starts: Box<[usize]>,
}

impl UserTable {
    /// A table of these users (keys of at most 65 535 bytes; longer ones are left out, no SIP
    /// user is that long).
    fn of(users: BTreeMap<String, Box<[u8]>>) -> Self {
        let size = users.iter().map(|(k, v)| 2 + k.len() + v.len()).sum();
        let mut bytes = Vec::with_capacity(size);
        let mut starts = Vec::with_capacity(users.len());
        for (key, packed) in users {
            let Ok(len) = u16::try_from(key.len()) else {
                continue;
            };
            starts.push(bytes.len());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(key.as_bytes());
            bytes.extend_from_slice(&packed);
        }
        Self {
            bytes: bytes.into_boxed_slice(),
            starts: starts.into_boxed_slice(),
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// The table with the users of `changes` replaced (`None`: left out), the others as they
    /// are: one pass, no user unpacked.
    fn with_changes(&self, changes: &BTreeMap<String, Option<Box<[u8]>>>) -> Self {
        let added: usize = changes
            .iter()
            .map(|(k, v)| 2 + k.len() + v.as_ref().map_or(0, |v| v.len()))
            .sum();
        let mut bytes = Vec::with_capacity(self.bytes.len() + added);
        let mut starts = Vec::with_capacity(self.len() + changes.len());
        let mut push = |key: &[u8], packed: &[u8]| {
            let Ok(len) = u16::try_from(key.len()) else {
                return;
            };
            starts.push(bytes.len());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(key);
            bytes.extend_from_slice(packed);
        };
        let mut pending = changes.iter().peekable();
        for n in 0..self.len() {
            let (key, packed) = self.entry(n);
            let mut replaced = false;
            while let Some((k, v)) = pending.next_if(|(k, _)| k.as_bytes() <= key) {
                replaced |= k.as_bytes() == key;
                if let Some(v) = v {
                    push(k.as_bytes(), v);
                }
            }
            if !replaced {
                push(key, packed);
            }
        }
        for (k, v) in pending {
            if let Some(v) = v {
                push(k.as_bytes(), v);
            }
        }
        Self {
            bytes: bytes.into_boxed_slice(),
            starts: starts.into_boxed_slice(),
        }
    }

    /// The key and packed element of the `n`th user.
    fn entry(&self, n: usize) -> (&[u8], &[u8]) {
        let start = self.starts[n];
        let end = self.starts.get(n + 1).copied().unwrap_or(self.bytes.len());
        let record = &self.bytes[start..end];
        let len = usize::from(u16::from_le_bytes([record[0], record[1]]));
        record[2..].split_at(len)
    }

    /// The packed element of a user by its lower-case id.
    fn get(&self, key: &str) -> Option<&[u8]> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (k, packed) = self.entry(mid);
            match k.cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(packed),
            }
        }
        None
    }
}

/// An Extension's rendered dial string, packed ([`CompiledDomain::dial_string`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialString(Box<[u8]>);

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
    /// The SIP domain as the users' XML writes it (escaped) and the id: what packed users
    /// refer to instead of repeating them.
    xml_domain: Box<str>,
    id_text: Box<str>,
    /// Complete `<user>` elements (without indentation), packed, by lower-case id.
    users: UserTable,
    /// Call groups (lower-case name → the user ids of its Extensions, in number order).
    groups: HashMap<String, (String, Vec<String>)>,
    /// Numbers dialable from a logged-out phone.
    pub emergency_numbers: Vec<String>,
    /// Extension numbers with voicemail on.
    pub mailboxes: Mailboxes,
    /// The Domain's own dialplan context; each ringing route carries its rendered dial string.
    pub dialplan: DialPlan<Option<DialString>>,
    /// What a ring group rings for each Extension that can ring: its phones' legs.
    pub members: Members,
    /// The rows it was compiled from that a change to its phones leaves alone: set when it was
    /// compiled from rows read whole ([`set_context`](Self::set_context)), the ground of
    /// [`with_phones_changed`](Self::with_phones_changed).
    context: Option<Arc<DomainContext>>,
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
    out.push_str("\"/>");
    if !indent.is_empty() {
        out.push('\n');
    }
}

fn variable(out: &mut String, indent: &str, name: &str, value: &str) {
    out.push_str(indent);
    out.push_str("<variable name=\"");
    escape_into(out, name);
    out.push_str("\" value=\"");
    escape_into(out, value);
    out.push_str("\"/>");
    if !indent.is_empty() {
        out.push('\n');
    }
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
    out.push_str("<user id=\"");
    escape_into(out, id);
    out.push('"');
    if settings.cacheable_ms > 0 {
        let _ = write!(out, " cacheable=\"{}\"", settings.cacheable_ms);
    }
    out.push_str("><params>");
}

/// Users are rendered without indentation or line breaks (the view packs one per SIP user,
/// hundreds of thousands, and FreeSWITCH does not need them pretty; values carry no raw line
/// breaks, they are escaped as `&#10;`): `param` and `variable` with no indent write neither.
const P: &str = "";

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
    out.push_str("</variables></user>");
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
    out.push_str("</params><variables>");
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
    out.push_str("</params><variables>");
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

/// The call group (lower-case) an enabled Extension's user is listed in.
fn group_key(ext: &ExtensionFacts) -> Option<String> {
    ext.call_group
        .as_deref()
        .filter(|g| !g.trim().is_empty())
        .map(str::to_lowercase)
}

impl CompiledDomain {
    /// Compiles a Domain's answers (`now` only shapes human-readable reasons, never answers).
    pub fn compile(src: &DirectorySource, settings: &CompileSettings, now: DateTime<Utc>) -> Self {
        Self::compile_keeping_routing(src, settings, now, None)
    }

    /// [`compile`](Self::compile), taking the Outbound Routes, gateways, Numbers and call flows
    /// from `routing_of` (this Domain compiled before) instead of `src.routing` when given: the
    /// recompile after a change that cannot touch them reads the bindings alone.
    pub fn compile_keeping_routing(
        src: &DirectorySource,
        settings: &CompileSettings,
        now: DateTime<Utc>,
        routing_of: Option<&CompiledDomain>,
    ) -> Self {
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

        let xml_domain = super::escape(&b.domain.sip_domain);
        let id_text = b.domain.id.to_string();
        let shared = Shared {
            domain: &xml_domain,
            domain_id: &id_text,
        };
        // Dial strings are packed as they are (not escaped), against the lower-case name.
        let raw = Shared {
            domain: &sip_domain,
            domain_id: &id_text,
        };
        // Later users replace earlier ones of the same id (an Extension wins over a device).
        let mut users: BTreeMap<String, Box<[u8]>> = BTreeMap::new();
        let mut groups: HashMap<String, (String, Vec<String>)> = HashMap::new();
        let mut mailboxes: Vec<Box<str>> = Vec::new();
        let mut members = Vec::new();
        let mut dialplan = match routing_of {
            Some(before) => DialPlan::empty(b).with_routing_from(&before.dialplan),
            None => DialPlan::empty(b).with_routing(&src.routing),
        };
        if src.enabled {
            for device in b.devices.values() {
                if let Some(xml) = device_user(src, device, settings) {
                    users.insert(
                        device.sip_username.to_ascii_lowercase(),
                        packed::pack(&xml, &shared),
                    );
                }
            }
            let mut extensions: Vec<&ExtensionFacts> = b.extensions.values().collect();
            extensions.sort_by(|a, b| a.number.cmp(&b.number));
            let index = RingIndex::of(b);
            for ext in extensions {
                // One ring plan per Extension feeds both its directory user and its route.
                let plan = ring_plan_indexed(b, Some(&index), ext.id, now);
                let ring = render_dial_string(&plan, &sip_domain).map(|_| {
                    DialString(packed::pack(
                        &extension_dial_string(&plan, ext, &sip_domain),
                        &raw,
                    ))
                });
                dialplan.insert(b, ext, &plan, ring);
                if let Some(legs) = PackedLegs::of(ext.id, &plan, &sip_domain) {
                    members.push((ext.id, legs));
                }
                let Some(xml) = extension_user(src, ext, &plan, settings) else {
                    continue;
                };
                let key = ext.number.to_ascii_lowercase();
                if ext.voicemail_enabled {
                    mailboxes.push(ext.number.clone().into_boxed_str());
                }
                if let (Some(lower), Some(group)) = (group_key(ext), ext.call_group.as_deref()) {
                    groups
                        .entry(lower)
                        .or_insert_with(|| (group.to_owned(), Vec::new()))
                        .1
                        .push(key.clone());
                }
                users.insert(key, packed::pack(&xml, &shared));
            }
        }
        dialplan.finish();
        mailboxes.sort_unstable();
        mailboxes.dedup();
        members.sort_unstable_by_key(|(id, _)| *id);
        Self {
            id: b.domain.id,
            enabled: src.enabled,
            head,
            xml_domain: xml_domain.into_boxed_str(),
            id_text: id_text.into_boxed_str(),
            users: UserTable::of(users),
            groups,
            emergency_numbers: b.settings.emergency_numbers.clone(),
            mailboxes: Mailboxes(mailboxes.into_boxed_slice()),
            dialplan,
            members: Members {
                sip_domain: sip_domain.clone().into_boxed_str(),
                by_extension: members.into_boxed_slice(),
            },
            sip_domain,
            context: None,
            stale: AtomicBool::new(false),
        }
    }

    /// A copy of it in fresh allocations of exactly the size each part needs. The cold start
    /// compiles on threads whose garbage (rows, bindings, rendered text) is interleaved with what
    /// the compiled Domain keeps; copied once that garbage is freed, what stays lands together
    /// and the pages the garbage held can go back to the system.
    pub fn compacted(&self) -> Self {
        self.with_parts(
            self.users.clone(),
            self.dialplan.clone(),
            self.members.clone(),
            self.is_stale(),
        )
    }

    /// A copy of its small parts with these users, dialplan and ring-group legs.
    fn with_parts(
        &self,
        users: UserTable,
        dialplan: DialPlan<Option<DialString>>,
        members: Members,
        stale: bool,
    ) -> Self {
        Self {
            id: self.id,
            sip_domain: self.sip_domain.clone(),
            enabled: self.enabled,
            head: self.head.clone(),
            xml_domain: self.xml_domain.clone(),
            id_text: self.id_text.clone(),
            users,
            groups: self.groups.clone(),
            emergency_numbers: self.emergency_numbers.clone(),
            mailboxes: self.mailboxes.clone(),
            dialplan,
            members,
            context: self.context.clone(),
            stale: AtomicBool::new(stale),
        }
    }

    /// Keeps the rows a change to its phones leaves alone (see [`DomainContext`]).
    pub fn set_context(&mut self, context: DomainContext) {
        self.context = Some(Arc::new(context));
    }

    /// The rows kept by [`set_context`](Self::set_context).
    pub fn context(&self) -> Option<&Arc<DomainContext>> {
        self.context.as_ref()
    }

    /// The Extensions whose answers name one of these Devices as compiled: the Extension each
    /// calls as, and those whose ring plan rings it. `None` when one of them is in a Location
    /// (whoever signs in there rings it, which this does not track: the Domain is read whole).
    pub fn phone_dependents(&self, devices: &[Uuid]) -> Option<Vec<Uuid>> {
        let mut out = BTreeSet::new();
        let mut sorted = devices.to_vec();
        sorted.sort_unstable();
        let devices = &sorted[..];
        for id in devices {
            if let Some(caller) = self.dialplan.caller(&CallerRef::Device(*id)) {
                if caller.location.is_some() {
                    return None;
                }
                out.extend(caller.extension.map(|e| e.id));
            }
        }
        for (ext, legs) in self.members.by_extension.iter() {
            if legs.names_any(devices) {
                out.insert(*ext);
            }
        }
        Some(out.into_iter().collect())
    }

    /// This Domain with a change to some Devices applied in place: the answers for `devices`
    /// and for `extensions` (those that named them before: [`phone_dependents`](Self::phone_dependents))
    /// and their new owners recomputed from `src`, every other answer kept as compiled. `src`
    /// holds only the rows those answers come from
    /// (`switchboard_domain::services::directory::load_phones_at_once`); the answers are the
    /// same as a full compile's (a unit test compares them).
    ///
    /// `None` when the change reaches further than those rows, and the Domain must be read
    /// whole: a changed Device that is gone, hot-desk (its session, its logged-out mode) or in a
    /// Location; an Extension involved that rings logged-out phones, is signed in to a Location,
    /// or whose number, state, mailbox or call group is not what was compiled (a change of its
    /// own, whose event follows); a Device user named like an Extension.
    pub fn with_phones_changed(
        &self,
        src: &DirectorySource,
        devices: &[Uuid],
        extensions: &[Uuid],
        settings: &CompileSettings,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let b = &src.bindings;
        if !src.enabled || !self.enabled || b.domain.id != self.id {
            return None;
        }
        let mut involved: BTreeSet<Uuid> = extensions.iter().copied().collect();
        for id in devices {
            let d = b.devices.get(id)?;
            if d.location_id.is_some() {
                return None;
            }
            if d.enabled {
                match d.mode {
                    DeviceMode::Fixed => involved.extend(d.owner_extension_id),
                    DeviceMode::Hotdesk => return None,
                }
            }
        }
        let mut exts: Vec<&ExtensionFacts> = Vec::with_capacity(involved.len());
        for id in &involved {
            let Some(e) = b.extensions.get(id) else {
                // Never there, or deleted since (its own event reads the Domain whole).
                if self.dialplan.extension_number(*id).is_some() {
                    return None;
                }
                continue;
            };
            if e.placeholder_rings || b.sign_ins.contains_key(id) {
                return None;
            }
            if self.dialplan.extension_number(*id) != e.enabled.then_some(e.number.as_str())
                || self.dialplan.has_mailbox(*id) != e.voicemail_enabled
                || (e.enabled
                    && self.group_of(&e.number.to_ascii_lowercase()) != group_key(e).as_deref())
            {
                return None;
            }
            exts.push(e);
        }
        let shared = self.shared();
        let raw = Shared {
            domain: &self.sip_domain,
            domain_id: &self.id_text,
        };
        // Later entries replace earlier ones of the same id (an Extension wins over a device),
        // and a device named like an Extension outside the change is not this one's to answer.
        let mut users: BTreeMap<String, Option<Box<[u8]>>> = BTreeMap::new();
        for id in devices {
            let d = b.devices.get(id)?;
            let user = device_user(src, d, settings).map(|xml| packed::pack(&xml, &shared));
            users.insert(d.sip_username.to_ascii_lowercase(), user);
        }
        if self
            .dialplan
            .extension_numbers()
            .chain(exts.iter().map(|e| e.number.as_str()))
            .any(|n| {
                if n.bytes().any(|b| b.is_ascii_uppercase()) {
                    users.contains_key(&n.to_ascii_lowercase())
                } else {
                    users.contains_key(n)
                }
            })
        {
            return None;
        }
        let index = RingIndex::of(b);
        let plans: Vec<RingPlan> = exts
            .iter()
            .map(|e| ring_plan_indexed(b, Some(&index), e.id, now))
            .collect();
        let mut routes = Vec::with_capacity(exts.len());
        let mut members = Vec::with_capacity(exts.len());
        for (ext, plan) in exts.iter().copied().zip(&plans) {
            let ring = render_dial_string(plan, &self.sip_domain).map(|_| {
                DialString(packed::pack(
                    &extension_dial_string(plan, ext, &self.sip_domain),
                    &raw,
                ))
            });
            routes.push((ext, plan, ring));
            members.push((ext.id, PackedLegs::of(ext.id, plan, &self.sip_domain)));
            let user =
                extension_user(src, ext, plan, settings).map(|xml| packed::pack(&xml, &shared));
            users.insert(ext.number.to_ascii_lowercase(), user);
        }
        let involved: Vec<Uuid> = involved.into_iter().collect();
        Some(self.with_parts(
            self.users.with_changes(&users),
            self.dialplan.with_changes(b, routes, &involved, devices),
            self.members.with_changes(members),
            false,
        ))
    }

    /// The call group (lower-case) that lists user `key`.
    fn group_of(&self, key: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, (_, keys))| keys.iter().any(|k| k == key))
            .map(|(name, _)| name.as_str())
    }

    fn shared(&self) -> Shared<'_> {
        Shared {
            domain: &self.xml_domain,
            domain_id: &self.id_text,
        }
    }

    /// The dial string a ringing route carries.
    pub fn dial_string(&self, packed: &DialString) -> String {
        packed::unpack(
            &packed.0,
            &Shared {
                domain: &self.sip_domain,
                domain_id: &self.id_text,
            },
        )
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

    /// The bytes its users' packed elements take (with their keys and index).
    pub fn packed_user_bytes(&self) -> usize {
        self.users.bytes.len() + std::mem::size_of_val(&*self.users.starts)
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
        let mut out =
            String::with_capacity(DOC_OPEN.len() + self.head.len() + 4 * user.len() + 200);
        out.push_str(DOC_OPEN);
        out.push_str(&self.head);
        out.push_str("      <groups>\n        <group name=\"default\">\n          <users>\n");
        packed::unpack_into(&mut out, user, &self.shared());
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
                packed::unpack_into(&mut out, user, &self.shared());
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::bindings::ring_plan::ring_plan;
    use switchboard_domain::bindings::testkit::Kit;
    use switchboard_domain::routing::destination::Destination;
    use switchboard_domain::routing::dialplan::Target;
    use switchboard_domain::routing::facts::RoutingRows;
    use switchboard_domain::routing::flows::FlowConfig;

    /// A Domain whose names and ids exercise the packing: escaped characters, a name that
    /// repeats the Domain, a call group, a device and an Extension sharing an id.
    fn source() -> DirectorySource {
        let mut k = Kit::new();
        let mut a1_hashes = HashMap::new();
        for i in 0..20 {
            let name = match i {
                0 => "Zoë & <Co> \"acme.example.net\"".to_owned(),
                1 => "Tab\there".to_owned(),
                _ => format!("Person {i}"),
            };
            let ext = k.ext(&format!("{}", 200 + i), &name);
            k.ext_mut(ext).sip_registration_enabled = i % 2 == 0;
            k.ext_mut(ext).call_group = (i < 5).then(|| "Sales".to_owned());
            a1_hashes.insert(ext, format!("{:032x}", 0xfbae_u128 + i as u128));
            let dev = k.fixed(&format!("Desk {i}"), &format!("D-{i:04}"), ext);
            a1_hashes.insert(dev, format!("{:032x}", 0x244f_u128 + i as u128));
        }
        // A device named like an Extension: the Extension is the user of that id.
        let ext = *k.b.extensions.keys().next().unwrap_or(&Uuid::nil());
        let clash = k.fixed("Clash", "200", ext);
        a1_hashes.insert(clash, "0".repeat(32));
        DirectorySource {
            bindings: k.b,
            name: "Acme".into(),
            enabled: true,
            a1_hashes,
            routing: Default::default(),
        }
    }

    fn whole(xml: &str) -> String {
        xml.lines().map(str::trim_start).collect()
    }

    #[test]
    fn every_user_is_answered_byte_for_byte_as_rendered() {
        let src = source();
        let settings = CompileSettings {
            cacheable_ms: 300_000,
        };
        let now = Utc::now();
        let domain = CompiledDomain::compile(&src, &settings, now);
        let b = &src.bindings;
        let mut checked = 0;
        for device in b.devices.values().filter(|d| d.sip_username != "200") {
            let expected = device_user(&src, device, &settings).map(|x| whole(&x));
            let doc = domain.user_document(&device.sip_username.to_ascii_uppercase());
            let doc = doc.unwrap_or_default();
            assert!(
                expected.as_deref().is_some_and(|e| doc.contains(e)),
                "{doc}"
            );
            assert!(roxmltree::Document::parse(&doc).is_ok(), "{doc}");
            checked += 1;
        }
        for ext in b.extensions.values() {
            let plan = ring_plan(b, ext.id, now);
            let expected = extension_user(&src, ext, &plan, &settings).map(|x| whole(&x));
            let doc = domain.user_document(&ext.number).unwrap_or_default();
            assert!(
                expected.as_deref().is_some_and(|e| doc.contains(e)),
                "{doc}"
            );
            // The dialplan's dial string is the directory's.
            let route = domain.dialplan.route(&ext.number);
            let dial = route
                .and_then(|r| r.payload.as_ref())
                .map(|d| domain.dial_string(d));
            assert_eq!(
                dial.as_deref(),
                Some(extension_dial_string(&plan, ext, &domain.sip_domain).as_str())
            );
            checked += 1;
        }
        assert_eq!(checked, domain.user_count());
        assert!(domain.user_document("nobody").is_none());
    }

    #[test]
    fn a_call_group_lists_its_extensions_and_members_ring_their_phones() {
        let src = source();
        let domain =
            CompiledDomain::compile(&src, &CompileSettings { cacheable_ms: 0 }, Utc::now());
        let doc = domain.group_document("sales").unwrap_or_default();
        for number in 200..205 {
            assert!(doc.contains(&format!("<user id=\"{number}\">")), "{doc}");
        }
        assert!(!doc.contains("<user id=\"205\">"), "{doc}");
        assert!(roxmltree::Document::parse(&doc).is_ok(), "{doc}");

        let b = &src.bindings;
        let ext = b.extensions.values().find(|e| e.number == "203");
        let legs = ext
            .and_then(|e| domain.members.get(&e.id))
            .unwrap_or_default();
        assert_eq!(legs.sip_users, vec!["d-0003".to_owned()]);
        assert_eq!(legs.legs.len(), 1);
        assert_eq!(
            legs.legs[0].1,
            "${sofia_contact(*/d-0003@acme.example.net)}"
        );
        assert!(
            legs.legs[0]
                .0
                .iter()
                .any(|v| v.starts_with("switchboard_callee_extension_id=")),
            "{legs:?}"
        );
        assert!(domain.mailboxes.contains("203"));
        assert!(!domain.mailboxes.contains("999"));
    }

    /// The legs as the ring plan names them, written out directly.
    fn expected_legs(plan: &RingPlan, callee: Option<Uuid>, sip_domain: &str) -> MemberLegs {
        let mut out = MemberLegs::default();
        for t in plan.targets() {
            let user = t.sip_user.to_ascii_lowercase();
            if out.sip_users.contains(&user) {
                continue;
            }
            let mut vars = Vec::new();
            if let Some(id) = t.device_id {
                vars.push(format!("switchboard_device_id={id}"));
            }
            if let Some(id) = t.location_id {
                vars.push(format!("switchboard_location_id={id}"));
            }
            if let Some(id) = callee {
                vars.push(format!("switchboard_callee_extension_id={id}"));
            }
            out.legs
                .push((vars, format!("${{sofia_contact(*/{user}@{sip_domain})}}")));
            out.sip_users.push(user);
        }
        out
    }

    #[test]
    fn packed_legs_come_back_as_the_ring_plan_names_them() {
        use switchboard_domain::telephony::policy::RingStrategy;
        let mut k = Kit::new();
        let ext = k.ext("300", "Zoë");
        k.fixed("Desk", "Desk-300", ext);
        k.fixed("Softphone", "soft.300_x", ext);
        let location = k.location("Front desk", RingStrategy::Simultaneous);
        for i in 0..3 {
            let phone = k.hotdesk(&format!("Front {i}"), &format!("front{i}"));
            k.place(phone, location, i, None);
        }
        k.sign_in(ext, location, "2025-03-28T09:00:00Z");
        let now = Utc::now();
        let plan = ring_plan(&k.b, ext, now);
        let sip_domain = "acme.example.net";
        let callee = plan.extension.as_ref().map(|e| e.id);
        assert_eq!(callee, Some(ext));
        let expected = expected_legs(&plan, callee, sip_domain);
        // Two fixed phones and the three of the Location, the Location's with its id.
        assert_eq!(expected.legs.len(), 5, "{expected:?}");
        assert!(
            expected.legs.iter().any(|(vars, _)| vars
                .iter()
                .any(|v| v.starts_with("switchboard_location_id="))),
            "{expected:?}"
        );
        // Kept under its own Extension (the callee not stored) and under another key.
        let own = PackedLegs::of(ext, &plan, sip_domain);
        assert_eq!(
            own.as_ref().map(|p| p.legs(ext, sip_domain)),
            Some(expected.clone())
        );
        let other = Uuid::from_u128(42);
        let stored = PackedLegs::of(other, &plan, sip_domain);
        assert!(stored.as_ref().map(|p| p.0.len()) > own.as_ref().map(|p| p.0.len()));
        assert_eq!(stored.map(|p| p.legs(other, sip_domain)), Some(expected));
        // A plan that does not ring keeps nothing.
        k.ext_mut(ext).dnd = true;
        let quiet = ring_plan(&k.b, ext, now);
        assert!(PackedLegs::of(ext, &quiet, sip_domain).is_none());
    }

    /// A ring group and three Numbers (to an Extension, to its box, to the group) over
    /// [`source`]'s people.
    fn with_routing(mut src: DirectorySource) -> DirectorySource {
        use switchboard_domain::routing::destination::HangUpWith;
        use switchboard_domain::routing::facts::NumberFacts;
        use switchboard_domain::routing::flows::{GroupMember, GroupStrategy, RingGroupConfig};
        let mut exts: Vec<&ExtensionFacts> = src.bindings.extensions.values().collect();
        exts.sort_by(|a, b| a.number.cmp(&b.number));
        let (first, second) = (exts[0].id, exts[2].id);
        let group = Uuid::from_u128(0x9009);
        let config = FlowConfig::RingGroup(RingGroupConfig {
            strategy: GroupStrategy::Simultaneous,
            ring_secs: 30,
            members: [first, second]
                .map(|id| GroupMember {
                    extension_id: Some(id),
                    number: None,
                    ring_secs: 20,
                })
                .to_vec(),
            skip_busy: false,
            caller_id_prefix: String::new(),
            when_unanswered: Destination::HangUp {
                cause: HangUpWith::Busy,
            },
        });
        let now = Utc::now();
        src.routing
            .flows
            .push(switchboard_domain::store::call_flows::Model {
                id: group,
                domain_id: src.bindings.domain.id,
                kind: config.kind().as_str().into(),
                name: "Front desk".into(),
                number: Some("600".into()),
                config: config.to_json().to_string(),
                override_mode: "auto".into(),
                last_member: -1,
                created_at: now,
                updated_at: now,
            });
        for (n, destination) in [
            (
                1,
                Destination::Extension {
                    extension_id: first,
                },
            ),
            (
                2,
                Destination::Voicemail {
                    extension_id: second,
                },
            ),
            (
                3,
                Destination::RingGroup {
                    ring_group_id: group,
                },
            ),
        ] {
            src.routing.numbers.push(NumberFacts {
                id: Uuid::from_u128(n),
                number: format!("+1555000000{n}"),
                destination: Some(destination),
            });
        }
        src
    }

    /// Everything a Domain answers, as text: every user, every number dialled, every Number's
    /// call, the ring group's legs.
    fn answers(d: &CompiledDomain, src: &DirectorySource) -> Vec<String> {
        let b = &src.bindings;
        let mut out = Vec::new();
        let mut ids: Vec<String> = b.devices.values().map(|x| x.sip_username.clone()).collect();
        ids.extend(b.extensions.values().map(|e| e.number.clone()));
        ids.sort();
        for id in &ids {
            out.push(format!("user {id}: {:?}", d.user_document(id)));
        }
        for dialled in ids.iter().map(String::as_str).chain(["600", "999"]) {
            out.push(format!("dial {dialled}: {:?}", d.dialplan.dial(dialled, 0)));
        }
        let mut numbers: Vec<&str> = d.dialplan.inbound_numbers().collect();
        numbers.sort_unstable();
        for n in numbers {
            let facts = d.dialplan.inbound(n);
            let target = facts
                .and_then(|f| f.destination.as_ref())
                .map(|t| format!("{:?}", d.dialplan.target(t)));
            out.push(format!("number {n}: {facts:?} -> {target:?}"));
        }
        for ext in b.extensions.values() {
            out.push(format!("legs {}: {:?}", ext.number, d.members.get(&ext.id)));
        }
        for id in b.devices.keys() {
            let caller = d.dialplan.caller(&CallerRef::Device(*id));
            out.push(format!("caller device {id}: {caller:?}"));
        }
        for id in b.extensions.keys() {
            let caller = d.dialplan.caller(&CallerRef::Extension(*id));
            out.push(format!("caller extension {id}: {caller:?}"));
        }
        for group in ["sales", "support"] {
            out.push(format!("group {group}: {:?}", d.group_document(group)));
        }
        out
    }

    /// What `load_phones_at_once` reads for a change to `devices` whose answers named
    /// `extensions`: those Devices, those Extensions and the changed Devices' owners, the
    /// Extensions' fixed Devices, their sessions and those sessions' Devices, the sessions on
    /// the changed Devices, the Extensions' sign-ins, over the Domain's settings, groups and
    /// Locations.
    fn phones_source(
        full: &DirectorySource,
        devices: &[Uuid],
        extensions: &[Uuid],
    ) -> DirectorySource {
        let b = &full.bindings;
        let mut exts: BTreeSet<Uuid> = extensions.iter().copied().collect();
        exts.extend(
            devices
                .iter()
                .filter_map(|id| b.devices.get(id))
                .filter_map(|d| d.owner_extension_id),
        );
        let sessions: BTreeMap<Uuid, _> = b
            .sessions
            .iter()
            .filter(|(device, s)| exts.contains(&s.extension_id) || devices.contains(device))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let bindings = switchboard_domain::bindings::Bindings {
            domain: b.domain.clone(),
            settings: b.settings.clone(),
            extensions: b
                .extensions
                .iter()
                .filter(|(id, _)| exts.contains(id))
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            devices: b
                .devices
                .iter()
                .filter(|(id, d)| {
                    devices.contains(id)
                        || sessions.contains_key(id)
                        || d.owner_extension_id.is_some_and(|o| exts.contains(&o))
                })
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            locations: b.locations.clone(),
            groups: b.groups.clone(),
            sessions,
            sign_ins: b
                .sign_ins
                .iter()
                .filter(|(id, _)| exts.contains(id))
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            registered: Default::default(),
        };
        let a1_hashes = full
            .a1_hashes
            .iter()
            .filter(|(id, _)| {
                bindings.devices.contains_key(id) || bindings.extensions.contains_key(id)
            })
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        DirectorySource {
            bindings,
            name: full.name.clone(),
            enabled: full.enabled,
            a1_hashes,
            routing: RoutingRows::default(),
        }
    }

    /// A small xorshift: the same scenarios on every run.
    struct Dice(u64);

    impl Dice {
        fn roll(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.roll(100) < percent
        }
    }

    /// A Domain with every kind of binding, shaped by the dice: fixed phones (some without an
    /// owner, some disabled), hot-desk phones with and without sessions, a Location someone is
    /// signed in to, an Extension that rings logged-out phones, DND, forwards, call groups.
    fn scenario(dice: &mut Dice) -> DirectorySource {
        use switchboard_domain::bindings::snapshot::{Forward, SessionOrigin};
        use switchboard_domain::telephony::policy::{LoggedOutMode, RingStrategy};
        let mut k = Kit::new();
        let mut a1_hashes = HashMap::new();
        let mut exts = Vec::new();
        for i in 0..8 {
            let ext = k.ext(&format!("{}", 200 + i), &format!("Person {i}"));
            let e = k.ext_mut(ext);
            e.sip_registration_enabled = dice.chance(30);
            e.voicemail_enabled = dice.chance(60);
            e.dnd = dice.chance(10);
            if dice.chance(10) {
                e.forward_always = Forward {
                    enabled: true,
                    destination: Some("0301234567".into()),
                };
            }
            e.call_group = match dice.roll(4) {
                0 => Some("Sales".into()),
                1 => Some("support".into()),
                _ => None,
            };
            e.enabled = !dice.chance(10);
            a1_hashes.insert(ext, format!("{:032x}", 0xe000 + i));
            exts.push(ext);
        }
        if dice.chance(50) {
            let placeholder = exts[7];
            k.ext_mut(placeholder).placeholder = true;
            k.ext_mut(placeholder).placeholder_rings = dice.chance(50);
            k.group("Visitors", LoggedOutMode::Placeholder, Some(placeholder));
            k.b.settings.logged_out_mode = LoggedOutMode::Placeholder;
            k.b.settings.placeholder_extension_id = Some(placeholder);
        }
        let mut n = 0;
        let mut phone = |k: &mut Kit, hotdesk: bool, owner: Uuid| {
            n += 1;
            let (label, sip) = (format!("Desk {n}"), format!("d-{n:04}"));
            let id = if hotdesk {
                k.hotdesk(&label, &sip)
            } else {
                k.fixed(&label, &sip, owner)
            };
            a1_hashes.insert(id, format!("{:032x}", 0xd000 + n));
            id
        };
        for _ in 0..12 {
            let owner = exts[dice.roll(exts.len())];
            let d = phone(&mut k, false, owner);
            k.device_mut(d).enabled = !dice.chance(15);
            if dice.chance(10) {
                k.device_mut(d).owner_extension_id = None;
            }
        }
        for _ in 0..3 {
            let d = phone(&mut k, true, Uuid::nil());
            if dice.chance(60) {
                let ext = exts[dice.roll(exts.len())];
                k.login(d, ext, "2025-03-28T09:00:00Z", SessionOrigin::FeatureCode);
            }
        }
        let strategy = if dice.chance(50) {
            RingStrategy::Simultaneous
        } else {
            RingStrategy::Sequential
        };
        let location = k.location("Room 1", strategy);
        for position in 0..2 {
            let d = phone(&mut k, dice.chance(50), exts[0]);
            k.device_mut(d).owner_extension_id = None;
            k.place(d, location, position, None);
        }
        if dice.chance(70) {
            k.sign_in(
                exts[dice.roll(exts.len())],
                location,
                "2025-03-28T08:00:00Z",
            );
        }
        DirectorySource {
            bindings: k.b,
            name: "Acme".into(),
            enabled: true,
            a1_hashes,
            routing: RoutingRows::default(),
        }
    }

    /// One to three of the Domain's phones changed (enabled, owner, label, mode), or one added.
    fn change_phones(dice: &mut Dice, src: &mut DirectorySource) -> Vec<Uuid> {
        let b = &mut src.bindings;
        let exts: Vec<Uuid> = b.extensions.keys().copied().collect();
        let ids: Vec<Uuid> = b.devices.keys().copied().collect();
        let mut changed = Vec::new();
        if dice.chance(15) {
            let id = Uuid::from_u128(0xabc0 + dice.roll(1000) as u128);
            let mut d = b.devices[&ids[0]].clone();
            d.id = id;
            d.sip_username = format!("new-{id}");
            d.label = "New phone".into();
            d.mode = DeviceMode::Fixed;
            d.location_id = None;
            d.owner_extension_id = Some(exts[dice.roll(exts.len())]);
            d.enabled = true;
            b.devices.insert(id, d);
            src.a1_hashes.insert(id, "f".repeat(32));
            changed.push(id);
            return changed;
        }
        for _ in 0..=dice.roll(3) {
            let id = ids[dice.roll(ids.len())];
            let d = b.devices.get_mut(&id).unwrap_or_else(|| unreachable!());
            match dice.roll(5) {
                0 | 1 => d.enabled = !d.enabled,
                2 => d.owner_extension_id = Some(exts[dice.roll(exts.len())]),
                3 => d.label = format!("Renamed {}", dice.roll(100)),
                _ => {
                    d.mode = match d.mode {
                        DeviceMode::Fixed => DeviceMode::Hotdesk,
                        DeviceMode::Hotdesk => DeviceMode::Fixed,
                    }
                }
            }
            if !changed.contains(&id) {
                changed.push(id);
            }
        }
        changed
    }

    #[test]
    fn a_change_to_phones_applied_in_place_answers_as_a_full_compile() {
        let settings = CompileSettings {
            cacheable_ms: 300_000,
        };
        let now = Utc::now();
        let mut dice = Dice(0x5eed_1234_abcd_0001);
        let (mut applied, mut read_whole, mut showed) = (0, 0, 0);
        for round in 0..400 {
            let before_src = scenario(&mut dice);
            let before = CompiledDomain::compile(&before_src, &settings, now);
            let mut after_src = before_src.clone();
            let changed = change_phones(&mut dice, &mut after_src);
            let Some(dependents) = before.phone_dependents(&changed) else {
                read_whole += 1;
                continue;
            };
            let partial = phones_source(&after_src, &changed, &dependents);
            let Some(in_place) =
                before.with_phones_changed(&partial, &changed, &dependents, &settings, now)
            else {
                read_whole += 1;
                continue;
            };
            applied += 1;
            let full = CompiledDomain::compile(&after_src, &settings, now);
            let (full, in_place) = (answers(&full, &after_src), answers(&in_place, &after_src));
            if full != in_place {
                let diff: Vec<_> = full.iter().zip(&in_place).filter(|(a, b)| a != b).collect();
                panic!("round {round}, {changed:?} changed: {diff:#?}");
            }
            // Most changes show in the answers (a label or a disabled owner's phone may not).
            if answers(&before, &after_src) != full {
                showed += 1;
            }
        }
        // Both ways are exercised: about half the changes apply in place, the far-reaching
        // ones (hot-desk phones, Locations, placeholders) read the Domain whole.
        assert!(
            applied > 150 && read_whole > 50 && showed > applied / 2,
            "applied {applied}, read whole {read_whole}, changed answers {showed}"
        );
    }

    #[test]
    fn a_recompile_that_keeps_the_routing_answers_as_a_full_compile() {
        let settings = CompileSettings {
            cacheable_ms: 300_000,
        };
        let now = Utc::now();
        let before_src = with_routing(source());
        let before = CompiledDomain::compile(&before_src, &settings, now);
        assert!(
            before.dialplan.inbound_numbers().count() == 3
                && matches!(
                    before.dialplan.target(&Destination::RingGroup {
                        ring_group_id: Uuid::from_u128(0x9009)
                    }),
                    Target::Flow(_)
                ),
            "the routing under test compiled"
        );

        // People and phones change: a phone disabled, an Extension on DND, another renumbered.
        let mut after_src = before_src.clone();
        let b = &mut after_src.bindings;
        let device = *b.devices.keys().next().unwrap_or(&Uuid::nil());
        if let Some(d) = b.devices.get_mut(&device) {
            d.enabled = false;
        }
        let mut exts: Vec<Uuid> = b.extensions.keys().copied().collect();
        exts.sort();
        if let Some(e) = b.extensions.get_mut(&exts[0]) {
            e.dnd = true;
        }
        if let Some(e) = b.extensions.get_mut(&exts[1]) {
            e.number = "299".into();
        }
        let full = CompiledDomain::compile(&after_src, &settings, now);
        // What the recompile reads: the bindings, no routing rows.
        let mut bindings_only = after_src.clone();
        bindings_only.routing = RoutingRows {
            settings: after_src.routing.settings.clone(),
            ..RoutingRows::default()
        };
        let kept =
            CompiledDomain::compile_keeping_routing(&bindings_only, &settings, now, Some(&before));
        let (full, kept) = (answers(&full, &after_src), answers(&kept, &after_src));
        assert_eq!(full, kept);
        // And the change shows: the renumbered Extension answers at its new number.
        assert!(
            full.iter().any(|a| a.starts_with("user 299: Some(")),
            "{full:#?}"
        );
        // Without the routing kept, the Numbers and the ring group would be gone.
        let bare = CompiledDomain::compile(&bindings_only, &settings, now);
        assert_ne!(answers(&bare, &after_src), full);
    }
}
