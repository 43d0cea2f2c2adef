//! Call flows: ring groups, IVR menus and time conditions — the destinations a Number, a
//! forward or another flow can send a call to before (or instead of) an Extension.
//!
//! Each flow's settings are one typed value ([`FlowConfig`]) stored as JSON; this module holds
//! their rules (what a valid one is), the destination graph's rules (nothing missing, nothing
//! of another Domain, no loop a caller cannot break), and the decisions a call needs at the
//! moment it arrives: is a time condition open, in which order does a group ring its members.
//!
//! Choices where the issue is silent:
//! - A loop is a cycle of flows whose every step happens without the caller: a ring group's
//!   "nobody answered", a time condition's either branch, an IVR's "no choice" destination. An
//!   IVR's digit options are the caller's input: a cycle through one of them is allowed (a
//!   "back to the main menu" key is ordinary).
//! - A ring group member rings the Extension's own phones (its ring plan's targets), never its
//!   forwards or voicemail: the group's own "nobody answered" destination decides what
//!   happens next. A member on Do-Not-Disturb, forwarded always or with nothing to ring is
//!   skipped; so is one in a call when the group skips busy members.
//! - A special day (a holiday, a one-off date) replaces the weekly hours on that date: without
//!   hours it is closed all day, with hours it is open only then.
//! - The override is `auto` (follow the schedule), `open` or `closed`; the feature code
//!   switches `auto` to the opposite of what the schedule says now, and any override back to
//!   `auto`, so one key press always changes what the next call does.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::destination::Destination;
use crate::error::{FieldError, FieldErrors};

/// The most members a ring group may have.
pub const MAX_MEMBERS: usize = 50;
/// The most digit options an IVR menu may have.
pub const MAX_OPTIONS: usize = 20;
/// The most weekly rules and special days a time condition may have.
pub const MAX_RULES: usize = 100;

/// What kind of call flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// A ring group.
    RingGroup,
    /// An IVR menu.
    Ivr,
    /// A time condition.
    TimeCondition,
}

impl FlowKind {
    /// The stored name (also the destination type).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RingGroup => "ring_group",
            Self::Ivr => "ivr",
            Self::TimeCondition => "time_condition",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ring_group" => Some(Self::RingGroup),
            "ivr" => Some(Self::Ivr),
            "time_condition" => Some(Self::TimeCondition),
            _ => None,
        }
    }

    /// The words for people ("ring group", "IVR menu", "time condition").
    pub const fn label(self) -> &'static str {
        match self {
            Self::RingGroup => "ring group",
            Self::Ivr => "IVR menu",
            Self::TimeCondition => "time condition",
        }
    }

    /// The destination that points at a flow of this kind.
    pub const fn destination(self, id: Uuid) -> Destination {
        match self {
            Self::RingGroup => Destination::RingGroup { ring_group_id: id },
            Self::Ivr => Destination::Ivr { ivr_id: id },
            Self::TimeCondition => Destination::TimeCondition {
                time_condition_id: id,
            },
        }
    }
}

/// How a ring group rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupStrategy {
    /// Every member at once.
    #[default]
    Simultaneous,
    /// One after the other, in list order, each for its ring time.
    Sequential,
    /// One after the other, starting with the member after the one that rang first last time.
    RoundRobin,
    /// One after the other, the member idle the longest first.
    LongestIdle,
}

/// A member of a ring group: an Extension of the Domain or an external number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMember {
    /// An Extension of the Domain (rings where its person is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_id: Option<Uuid>,
    /// An external number, dialled through the Domain's Outbound Routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Seconds this member rings (5–300).
    #[serde(default = "default_member_secs")]
    pub ring_secs: u32,
}

const fn default_member_secs() -> u32 {
    20
}

const fn default_group_secs() -> u32 {
    60
}

const fn default_true() -> bool {
    true
}

fn hang_up_unavailable() -> Destination {
    Destination::HangUp {
        cause: super::destination::HangUpWith::Unallocated,
    }
}

/// A ring group's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingGroupConfig {
    /// How members ring.
    #[serde(default)]
    pub strategy: GroupStrategy,
    /// Seconds the group rings in all before "nobody answered" (5–600).
    #[serde(default = "default_group_secs")]
    pub ring_secs: u32,
    /// The members, in order.
    #[serde(default)]
    pub members: Vec<GroupMember>,
    /// Skip members who are in a call.
    #[serde(default = "default_true")]
    pub skip_busy: bool,
    /// Put before the caller's name on the members' phones (e.g. `Sales: `).
    #[serde(default)]
    pub caller_id_prefix: String,
    /// Where the call goes when nobody answers.
    #[serde(default = "hang_up_unavailable")]
    pub when_unanswered: Destination,
}

/// A greeting: one of the built-in prompts (uploaded audio and recordings made from a phone
/// are later kinds of this tagged object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Greeting {
    /// A prompt shipped with switchboard (see [`BUILTIN_PROMPTS`]).
    Builtin {
        /// Its name.
        prompt: String,
    },
}

impl Default for Greeting {
    fn default() -> Self {
        Self::Builtin {
            prompt: "beep".into(),
        }
    }
}

/// The built-in prompts: name, and what FreeSWITCH plays (a file under the prompt folder, or
/// a tone when the folder does not have it).
pub const BUILTIN_PROMPTS: &[(&str, &str)] = &[
    ("beep", "tone_stream://%(300,200,800)"),
    ("welcome", "ivr/ivr-welcome.wav"),
    ("make_a_choice", "ivr/ivr-please_make_a_choice.wav"),
];

/// One digit option of an IVR menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrOption {
    /// One to three keys: `0`–`9`, `*`, `#`.
    pub digits: String,
    /// Where the caller goes.
    pub destination: Destination,
}

const fn default_ivr_timeout() -> u32 {
    5
}

const fn default_tries() -> u32 {
    3
}

/// An IVR menu's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// What is played.
    #[serde(default)]
    pub greeting: Greeting,
    /// The keys and where they lead.
    #[serde(default)]
    pub options: Vec<IvrOption>,
    /// Whether callers may dial the Domain's Extensions directly.
    #[serde(default)]
    pub direct_dial: bool,
    /// Seconds to wait for the first key after the greeting (1–60).
    #[serde(default = "default_ivr_timeout")]
    pub timeout_secs: u32,
    /// How many times the greeting is played when nothing (or something invalid) is pressed
    /// (1–10).
    #[serde(default = "default_tries")]
    pub max_tries: u32,
    /// Where the caller goes after the last try.
    #[serde(default = "hang_up_unavailable")]
    pub when_no_choice: Destination,
}

/// A span of a day, `from` inclusive, `to` exclusive; `24:00` is the end of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// `HH:MM`.
    pub from: String,
    /// `HH:MM` (or `24:00`), after `from`.
    pub to: String,
}

/// Weekly hours: the days and the span they are open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHours {
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`.
    pub from: String,
    /// `HH:MM` (or `24:00`), after `from`.
    pub to: String,
}

/// A holiday or one-off date: it replaces the weekly hours on its date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    /// What it is (e.g. `New Year`).
    #[serde(default)]
    pub name: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Every year on that month and day.
    #[serde(default)]
    pub every_year: bool,
    /// The spans it is open; none: closed all day.
    #[serde(default)]
    pub hours: Vec<Span>,
}

/// A time condition's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConditionConfig {
    /// An IANA time zone; none: the Domain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When it is open in an ordinary week.
    #[serde(default)]
    pub weekly: Vec<WeeklyHours>,
    /// Holidays and one-off dates.
    #[serde(default)]
    pub special_days: Vec<SpecialDay>,
    /// The feature code digits after `*36` that switch its override from a phone (1–3 digits,
    /// unique in the Domain); none: only through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_code: Option<String>,
    /// Where calls go while it is open.
    #[serde(default = "hang_up_unavailable")]
    pub when_open: Destination,
    /// Where calls go while it is closed.
    #[serde(default = "hang_up_unavailable")]
    pub when_closed: Destination,
}

/// A flow's settings, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowConfig {
    /// A ring group.
    RingGroup(RingGroupConfig),
    /// An IVR menu.
    Ivr(IvrConfig),
    /// A time condition.
    TimeCondition(TimeConditionConfig),
}

/// A time condition's manual override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OverrideMode {
    /// Follow the schedule.
    #[default]
    Auto,
    /// Open whatever the schedule says.
    Open,
    /// Closed whatever the schedule says.
    Closed,
}

impl OverrideMode {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// Parses the stored name (an unknown one reads as `auto`).
    pub fn parse(s: &str) -> Self {
        match s {
            "open" => Self::Open,
            "closed" => Self::Closed,
            _ => Self::Auto,
        }
    }
}

/// An edge of the destination graph: where it starts, which field, where it goes, and
/// whether the caller's input takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge<'a> {
    /// The field (`when_unanswered`, `options[2].destination`, `members[0].extension_id`…).
    pub field: String,
    /// Where it points.
    pub destination: &'a Destination,
    /// True when only a caller's key press takes it.
    pub by_input: bool,
}

impl FlowConfig {
    /// The kind.
    pub const fn kind(&self) -> FlowKind {
        match self {
            Self::RingGroup(_) => FlowKind::RingGroup,
            Self::Ivr(_) => FlowKind::Ivr,
            Self::TimeCondition(_) => FlowKind::TimeCondition,
        }
    }

    /// Reads the JSON settings of a `kind`; errors name the field.
    pub fn from_json(kind: FlowKind, value: serde_json::Value) -> Result<Self, FieldError> {
        /// The field's path (`members[0].ring_secs`); for an unknown or missing field, the
        /// field itself below its object.
        fn read<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, FieldError> {
            serde_path_to_error::deserialize(v).map_err(|e| {
                let path = e.path().to_string();
                let text = e.inner().to_string();
                let named = (text.starts_with("unknown field")
                    || text.starts_with("missing field"))
                .then(|| text.split('`').nth(1))
                .flatten();
                let field = match (path.as_str(), named) {
                    ("." | "", Some(name)) => name.to_owned(),
                    ("." | "", None) => "body".to_owned(),
                    (p, Some(name)) if !p.ends_with(name) => format!("{p}.{name}"),
                    (p, _) => p.to_owned(),
                };
                FieldError::new(field, "invalid", text)
            })
        }
        Ok(match kind {
            FlowKind::RingGroup => Self::RingGroup(read(value)?),
            FlowKind::Ivr => Self::Ivr(read(value)?),
            FlowKind::TimeCondition => Self::TimeCondition(read(value)?),
        })
    }

    /// The settings as JSON (what is stored, and the API's fields).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::RingGroup(c) => serde_json::to_value(c),
            Self::Ivr(c) => serde_json::to_value(c),
            Self::TimeCondition(c) => serde_json::to_value(c),
        }
        .unwrap_or(serde_json::Value::Null)
    }

    /// Every destination it holds, with its field, and every member Extension (as an
    /// Extension destination under `members[i].extension_id`).
    pub fn edges(&self) -> Vec<Edge<'_>> {
        let edge = |field: String, destination, by_input| Edge {
            field,
            destination,
            by_input,
        };
        match self {
            Self::RingGroup(c) => vec![edge("when_unanswered".into(), &c.when_unanswered, false)],
            Self::Ivr(c) => {
                let mut out: Vec<Edge<'_>> = c
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| edge(format!("options[{i}].destination"), &o.destination, true))
                    .collect();
                out.push(edge("when_no_choice".into(), &c.when_no_choice, false));
                out
            }
            Self::TimeCondition(c) => vec![
                edge("when_open".into(), &c.when_open, false),
                edge("when_closed".into(), &c.when_closed, false),
            ],
        }
    }

    /// The Extensions it names: destinations and ring group members, with their field.
    pub fn extensions(&self) -> Vec<(String, Uuid)> {
        let mut out: Vec<(String, Uuid)> = self
            .edges()
            .into_iter()
            .filter_map(|e| e.destination.extension_id().map(|id| (e.field, id)))
            .collect();
        if let Self::RingGroup(c) = self {
            out.extend(c.members.iter().enumerate().filter_map(|(i, m)| {
                m.extension_id
                    .map(|id| (format!("members[{i}].extension_id"), id))
            }));
        }
        out
    }

    /// The flows it points at, with their field.
    pub fn flows(&self) -> Vec<(String, Uuid)> {
        self.edges()
            .into_iter()
            .filter_map(|e| e.destination.flow_id().map(|id| (e.field, id)))
            .collect()
    }

    /// Checks every rule that needs no database, collecting errors by field.
    pub fn validate(&self, errors: &mut FieldErrors) {
        for e in self.edges() {
            if let Err(mut err) = e.destination.validate() {
                err.field = err.field.replacen("destination", &e.field, 1);
                if !err.field.starts_with(&e.field) {
                    err.field = format!("{}.{}", e.field, err.field);
                }
                errors.push(err);
            }
        }
        match self {
            Self::RingGroup(c) => validate_group(c, errors),
            Self::Ivr(c) => validate_ivr(c, errors),
            Self::TimeCondition(c) => validate_condition(c, errors),
        }
    }

    /// Trims what people type (external numbers, digits, names).
    pub fn normalise(&mut self) {
        match self {
            Self::RingGroup(c) => {
                for m in &mut c.members {
                    if let Some(n) = &mut m.number {
                        *n = n.trim().to_owned();
                    }
                }
            }
            Self::Ivr(c) => {
                for o in &mut c.options {
                    o.digits = o.digits.trim().to_owned();
                }
            }
            Self::TimeCondition(c) => {
                c.time_zone = c
                    .time_zone
                    .take()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty());
                c.override_code = c
                    .override_code
                    .take()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty());
                for d in &mut c.weekly {
                    for day in &mut d.days {
                        *day = day.trim().to_ascii_lowercase();
                    }
                }
            }
        }
    }
}

fn in_range(errors: &mut FieldErrors, field: &str, v: u32, lo: u32, hi: u32) {
    if !(lo..=hi).contains(&v) {
        errors.add(field, "out_of_range", format!("between {lo} and {hi}"));
    }
}

fn validate_group(c: &RingGroupConfig, errors: &mut FieldErrors) {
    in_range(errors, "ring_secs", c.ring_secs, 5, 600);
    if c.members.len() > MAX_MEMBERS {
        errors.add(
            "members",
            "too_many",
            format!("at most {MAX_MEMBERS} members"),
        );
    }
    let mut seen_ext = HashSet::new();
    let mut seen_num = HashSet::new();
    for (i, m) in c.members.iter().enumerate() {
        let field = format!("members[{i}]");
        in_range(errors, &format!("{field}.ring_secs"), m.ring_secs, 5, 300);
        match (&m.extension_id, &m.number) {
            (Some(id), None) => {
                if !seen_ext.insert(*id) {
                    errors.add(
                        format!("{field}.extension_id"),
                        "duplicate",
                        "this Extension is already a member",
                    );
                }
            }
            (None, Some(n)) => {
                let check = Destination::External { number: n.clone() };
                if check.validate().is_err() {
                    errors.add(
                        format!("{field}.number"),
                        "invalid_number",
                        "an external number is + and digits, or the digits a phone would dial",
                    );
                } else if !seen_num.insert(n.clone()) {
                    errors.add(
                        format!("{field}.number"),
                        "duplicate",
                        "this number is already a member",
                    );
                }
            }
            _ => errors.add(
                field,
                "invalid_member",
                "a member is either an extension_id or a number",
            ),
        }
    }
    if c.caller_id_prefix.chars().count() > 30 || c.caller_id_prefix.chars().any(char::is_control) {
        errors.add(
            "caller_id_prefix",
            "invalid_prefix",
            "up to 30 printable characters",
        );
    }
}

/// Whether `digits` are keys a caller can press (1–3 of `0-9*#`).
pub fn valid_keys(digits: &str) -> bool {
    (1..=3).contains(&digits.len())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

fn validate_ivr(c: &IvrConfig, errors: &mut FieldErrors) {
    in_range(errors, "timeout_secs", c.timeout_secs, 1, 60);
    in_range(errors, "max_tries", c.max_tries, 1, 10);
    let Greeting::Builtin { prompt } = &c.greeting;
    if !BUILTIN_PROMPTS.iter().any(|(n, _)| n == prompt) {
        let names: Vec<&str> = BUILTIN_PROMPTS.iter().map(|(n, _)| *n).collect();
        errors.add(
            "greeting.prompt",
            "invalid_choice",
            format!("must be one of: {}", names.join(", ")),
        );
    }
    if c.options.len() > MAX_OPTIONS {
        errors.add(
            "options",
            "too_many",
            format!("at most {MAX_OPTIONS} options"),
        );
    }
    let mut seen = HashSet::new();
    for (i, o) in c.options.iter().enumerate() {
        let field = format!("options[{i}].digits");
        if !valid_keys(&o.digits) {
            errors.add(field, "invalid_digits", "1 to 3 keys: 0-9, * and #");
        } else if !seen.insert(o.digits.as_str()) {
            errors.add(field, "duplicate", "another option has these keys");
        }
    }
    // One option's keys may not begin another's: the caller could never reach the longer one.
    for (i, o) in c.options.iter().enumerate() {
        if c.options
            .iter()
            .any(|p| p.digits != o.digits && o.digits.starts_with(&p.digits))
        {
            errors.add(
                format!("options[{i}].digits"),
                "unreachable",
                "another option's keys begin these: the caller would never get this far",
            );
        }
    }
}

/// Parses `HH:MM` (or `24:00`) into minutes of the day.
pub fn parse_minutes(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_day(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn validate_span(errors: &mut FieldErrors, field: &str, from: &str, to: &str) {
    match (parse_minutes(from), parse_minutes(to)) {
        (Some(f), Some(t)) if f < t && f < 24 * 60 => {}
        (Some(_), Some(_)) => errors.add(
            format!("{field}.to"),
            "invalid_span",
            "must be after from (use 24:00 for the end of the day)",
        ),
        (None, _) => errors.add(
            format!("{field}.from"),
            "invalid_time",
            "HH:MM, 00:00–23:59",
        ),
        (_, None) => errors.add(format!("{field}.to"), "invalid_time", "HH:MM, 00:01–24:00"),
    }
}

fn validate_condition(c: &TimeConditionConfig, errors: &mut FieldErrors) {
    if let Some(tz) = &c.time_zone
        && tz.parse::<Tz>().is_err()
    {
        errors.add(
            "time_zone",
            "invalid_time_zone",
            "an IANA time zone such as Europe/Berlin",
        );
    }
    if let Some(code) = &c.override_code
        && !(1..=3).contains(&code.len())
    {
        errors.add("override_code", "invalid_code", "1 to 3 digits");
    } else if let Some(code) = &c.override_code
        && !code.bytes().all(|b| b.is_ascii_digit())
    {
        errors.add("override_code", "invalid_code", "1 to 3 digits");
    }
    if c.weekly.len() > MAX_RULES || c.special_days.len() > MAX_RULES {
        errors.add(
            "weekly",
            "too_many",
            format!("at most {MAX_RULES} weekly rules and {MAX_RULES} special days"),
        );
    }
    for (i, w) in c.weekly.iter().enumerate() {
        let field = format!("weekly[{i}]");
        if w.days.is_empty() {
            errors.add(format!("{field}.days"), "required", "at least one day");
        }
        for (j, d) in w.days.iter().enumerate() {
            if parse_day(d).is_none() {
                errors.add(
                    format!("{field}.days[{j}]"),
                    "invalid_day",
                    "one of mon, tue, wed, thu, fri, sat, sun",
                );
            }
        }
        validate_span(errors, &field, &w.from, &w.to);
    }
    for (i, d) in c.special_days.iter().enumerate() {
        let field = format!("special_days[{i}]");
        if NaiveDate::parse_from_str(&d.date, "%Y-%m-%d").is_err() {
            errors.add(format!("{field}.date"), "invalid_date", "YYYY-MM-DD");
        }
        if d.name.chars().count() > 100 {
            errors.add(format!("{field}.name"), "too_long", "up to 100 characters");
        }
        for (j, s) in d.hours.iter().enumerate() {
            validate_span(errors, &format!("{field}.hours[{j}]"), &s.from, &s.to);
        }
    }
}

/// Whether a time condition is open at `now`, and why (in the words of its settings).
pub fn is_open(
    c: &TimeConditionConfig,
    domain_tz: Tz,
    override_mode: OverrideMode,
    now: DateTime<Utc>,
) -> (bool, String) {
    match override_mode {
        OverrideMode::Open => return (true, "the override says open".into()),
        OverrideMode::Closed => return (false, "the override says closed".into()),
        OverrideMode::Auto => {}
    }
    let tz = c
        .time_zone
        .as_deref()
        .and_then(|t| t.parse::<Tz>().ok())
        .unwrap_or(domain_tz);
    let local = now.with_timezone(&tz);
    let date = local.date_naive();
    let minute = local.hour() * 60 + local.minute();
    let at = format!("{} {:02}:{:02} {tz}", date, local.hour(), local.minute());
    let within = |from: &str, to: &str| matches!((parse_minutes(from), parse_minutes(to)), (Some(f), Some(t)) if f <= minute && minute < t);
    let special = c.special_days.iter().find(|d| {
        NaiveDate::parse_from_str(&d.date, "%Y-%m-%d").is_ok_and(|day| {
            day == date || (d.every_year && day.month() == date.month() && day.day() == date.day())
        })
    });
    if let Some(d) = special {
        let name = if d.name.is_empty() {
            d.date.clone()
        } else {
            d.name.clone()
        };
        let open = d.hours.iter().any(|s| within(&s.from, &s.to));
        return (
            open,
            format!(
                "{at} is the special day {name:?}: {}",
                if open {
                    "within its hours"
                } else if d.hours.is_empty() {
                    "closed all day"
                } else {
                    "outside its hours"
                }
            ),
        );
    }
    let weekday = date.weekday();
    let rule = c
        .weekly
        .iter()
        .find(|w| w.days.iter().any(|d| parse_day(d) == Some(weekday)) && within(&w.from, &w.to));
    match rule {
        Some(w) => (
            true,
            format!("{at} is within the weekly hours {}–{}", w.from, w.to),
        ),
        None => (false, format!("{at} is outside the weekly hours")),
    }
}

/// The override after a feature code press: `auto` goes to the opposite of what the
/// schedule says now, an override goes back to `auto`.
pub fn toggled(
    c: &TimeConditionConfig,
    domain_tz: Tz,
    current: OverrideMode,
    now: DateTime<Utc>,
) -> OverrideMode {
    match current {
        OverrideMode::Auto => {
            if is_open(c, domain_tz, OverrideMode::Auto, now).0 {
                OverrideMode::Closed
            } else {
                OverrideMode::Open
            }
        }
        _ => OverrideMode::Auto,
    }
}

/// The order a group tries its members (indexes into `members`), before skipping the ones
/// that cannot ring: list order, or starting after `last` (round-robin), or the longest idle
/// first (`idle_since`: when the member's last call ended; never in a call counts as idle
/// longest; a member in a call now is `None` and goes last).
pub fn ring_order(
    strategy: GroupStrategy,
    members: usize,
    last: i32,
    idle_since: impl Fn(usize) -> Option<Option<DateTime<Utc>>>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..members).collect();
    match strategy {
        GroupStrategy::Simultaneous | GroupStrategy::Sequential => {}
        GroupStrategy::RoundRobin => {
            if members > 0 {
                let start = usize::try_from(last + 1).unwrap_or(0) % members;
                order.rotate_left(start);
            }
        }
        GroupStrategy::LongestIdle => {
            // (busy, never-idle first, oldest idle first, list order)
            order.sort_by_key(|&i| match idle_since(i) {
                None => (1, 0, None, i),
                Some(None) => (0, 0, None, i),
                Some(Some(t)) => (0, 1, Some(t), i),
            });
        }
    }
    order
}

/// A flow as the graph sees it.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: FlowKind,
    /// Name.
    pub name: String,
    /// Settings.
    pub config: FlowConfig,
}

/// A cycle of flows none of whose steps needs the caller: the names along it.
pub fn find_loop(nodes: &[GraphNode]) -> Option<Vec<String>> {
    let by_id: HashMap<Uuid, &GraphNode> = nodes.iter().map(|n| (n.id, n)).collect();
    let next = |n: &GraphNode| -> Vec<Uuid> {
        n.config
            .edges()
            .into_iter()
            .filter(|e| !e.by_input)
            .filter_map(|e| e.destination.flow_id())
            .filter(|id| by_id.contains_key(id))
            .collect()
    };
    // Iterative depth-first search with colours: 0 unseen, 1 on the path, 2 done.
    let mut colour: HashMap<Uuid, u8> = HashMap::new();
    let mut ids: Vec<Uuid> = nodes.iter().map(|n| n.id).collect();
    ids.sort();
    for start in ids {
        if colour.get(&start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(Uuid, Vec<Uuid>)> = Vec::new();
        colour.insert(start, 1);
        path.push((start, next(by_id[&start])));
        while let Some((node, pending)) = path.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(to) => match colour.get(&to).copied().unwrap_or(0) {
                    0 => {
                        colour.insert(to, 1);
                        let more = next(by_id[&to]);
                        path.push((to, more));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let mut names: Vec<String> = path[from..]
                            .iter()
                            .map(|(n, _)| {
                                let f = by_id[n];
                                format!("{} {:?}", f.kind.label(), f.name)
                            })
                            .collect();
                        names.push(names[0].clone());
                        return Some(names);
                    }
                    _ => {}
                },
                None => {
                    colour.insert(node, 2);
                    path.pop();
                }
            }
        }
    }
    None
}

/// A flow ready to answer calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFlow {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: FlowKind,
    /// Name.
    pub name: String,
    /// The internal number that dials it.
    pub number: Option<String>,
    /// Settings.
    pub config: FlowConfig,
    /// A time condition's override.
    pub override_mode: OverrideMode,
    /// The member a round-robin group rang first last time, as stored (-1: none).
    pub last_member: i32,
}

/// A Domain's flows, by id, by internal number and by override code.
#[derive(Debug, Clone, Default)]
pub struct FlowPlan {
    by_id: HashMap<Uuid, CompiledFlow>,
    by_number: HashMap<String, Uuid>,
    by_code: HashMap<String, Uuid>,
}

impl FlowPlan {
    /// Compiles stored rows (a row whose settings cannot be read is left out and logged).
    pub fn compile(rows: &[crate::store::call_flows::Model]) -> Self {
        let mut plan = Self::default();
        for row in rows {
            let config = FlowKind::parse(&row.kind).and_then(|kind| {
                let value = serde_json::from_str(&row.config).ok()?;
                FlowConfig::from_json(kind, value).ok()
            });
            let Some(config) = config else {
                tracing::error!(flow_id = %row.id, "a call flow's settings cannot be read: left out");
                continue;
            };
            let flow = CompiledFlow {
                id: row.id,
                kind: config.kind(),
                name: row.name.clone(),
                number: row.number.clone(),
                override_mode: OverrideMode::parse(&row.override_mode),
                last_member: row.last_member,
                config,
            };
            if let Some(n) = &flow.number {
                plan.by_number.insert(n.clone(), flow.id);
            }
            if let FlowConfig::TimeCondition(c) = &flow.config
                && let Some(code) = &c.override_code
            {
                plan.by_code.insert(code.clone(), flow.id);
            }
            plan.by_id.insert(flow.id, flow);
        }
        plan
    }

    /// A flow by id.
    pub fn get(&self, id: Uuid) -> Option<&CompiledFlow> {
        self.by_id.get(&id)
    }

    /// The flow an internal number dials.
    pub fn by_number(&self, number: &str) -> Option<&CompiledFlow> {
        self.by_number.get(number).and_then(|id| self.by_id.get(id))
    }

    /// The time condition an override code switches.
    pub fn by_code(&self, code: &str) -> Option<&CompiledFlow> {
        self.by_code.get(code).and_then(|id| self.by_id.get(id))
    }

    /// Every flow.
    pub fn iter(&self) -> impl Iterator<Item = &CompiledFlow> {
        self.by_id.values()
    }

    /// How many flows.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::destination::HangUpWith;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn office() -> TimeConditionConfig {
        TimeConditionConfig {
            time_zone: None,
            weekly: vec![WeeklyHours {
                days: ["mon", "tue", "wed", "thu", "fri"]
                    .map(String::from)
                    .to_vec(),
                from: "09:00".into(),
                to: "17:00".into(),
            }],
            special_days: vec![
                SpecialDay {
                    name: "Christmas".into(),
                    date: "2020-12-25".into(),
                    every_year: true,
                    hours: vec![],
                },
                SpecialDay {
                    name: "Stocktaking".into(),
                    date: "2026-12-05".into(),
                    every_year: false,
                    hours: vec![Span {
                        from: "10:00".into(),
                        to: "12:00".into(),
                    }],
                },
            ],
            override_code: None,
            when_open: Destination::HangUp {
                cause: HangUpWith::Normal,
            },
            when_closed: Destination::HangUp {
                cause: HangUpWith::Busy,
            },
        }
    }

    #[test]
    fn business_hours_are_read_in_the_domains_time_zone_and_special_days_replace_them() {
        let c = office();
        let berlin = chrono_tz::Europe::Berlin;
        let auto = OverrideMode::Auto;
        // Wednesday 2026-12-02 08:30 UTC is 09:30 in Berlin: open.
        assert!(is_open(&c, berlin, auto, at("2026-12-02T08:30:00Z")).0);
        // 16:30 UTC is 17:30 in Berlin: closed, though 16:30 would be open in UTC.
        assert!(!is_open(&c, berlin, auto, at("2026-12-02T16:30:00Z")).0);
        assert!(is_open(&c, chrono_tz::UTC, auto, at("2026-12-02T16:30:00Z")).0);
        // Christmas (every year), a Friday in 2026: closed all day.
        let (open, why) = is_open(&c, berlin, auto, at("2026-12-25T10:00:00Z"));
        assert!(!open);
        assert!(
            why.contains("Christmas") && why.contains("closed all day"),
            "{why}"
        );
        // A Saturday that is a one-off working morning.
        assert!(is_open(&c, berlin, auto, at("2026-12-05T10:30:00Z")).0);
        assert!(!is_open(&c, berlin, auto, at("2026-12-05T12:30:00Z")).0);
        // The condition's own zone wins over the Domain's.
        let mut ny = office();
        ny.time_zone = Some("America/New_York".into());
        assert!(!is_open(&ny, berlin, auto, at("2026-12-02T08:30:00Z")).0);
        assert!(is_open(&ny, berlin, auto, at("2026-12-02T15:00:00Z")).0);
        // The override wins over everything.
        assert!(!is_open(&c, berlin, OverrideMode::Closed, at("2026-12-02T08:30:00Z")).0);
        assert!(is_open(&c, berlin, OverrideMode::Open, at("2026-12-25T08:30:00Z")).0);
    }

    #[test]
    fn the_feature_code_flips_to_the_opposite_of_now_then_back_to_the_schedule() {
        let c = office();
        let tz = chrono_tz::Europe::Berlin;
        let open_now = at("2026-12-02T08:30:00Z");
        let closed_now = at("2026-12-02T20:00:00Z");
        assert_eq!(
            toggled(&c, tz, OverrideMode::Auto, open_now),
            OverrideMode::Closed
        );
        assert_eq!(
            toggled(&c, tz, OverrideMode::Auto, closed_now),
            OverrideMode::Open
        );
        assert_eq!(
            toggled(&c, tz, OverrideMode::Open, closed_now),
            OverrideMode::Auto
        );
        assert_eq!(
            toggled(&c, tz, OverrideMode::Closed, open_now),
            OverrideMode::Auto
        );
    }

    #[test]
    fn round_robin_starts_after_the_last_and_longest_idle_puts_busy_members_last() {
        let none = |_| Some(None);
        assert_eq!(ring_order(GroupStrategy::Sequential, 3, 1, none), [0, 1, 2]);
        assert_eq!(
            ring_order(GroupStrategy::RoundRobin, 3, -1, none),
            [0, 1, 2]
        );
        assert_eq!(ring_order(GroupStrategy::RoundRobin, 3, 0, none), [1, 2, 0]);
        assert_eq!(ring_order(GroupStrategy::RoundRobin, 3, 2, none), [0, 1, 2]);
        // A pointer past the end (a member removed) wraps.
        assert_eq!(ring_order(GroupStrategy::RoundRobin, 2, 4, none), [1, 0]);
        assert!(ring_order(GroupStrategy::RoundRobin, 0, 4, none).is_empty());
        let t = |s: &str| Some(Some(at(s)));
        let idle = |i: usize| match i {
            0 => t("2026-12-02T10:00:00Z"),
            1 => None,
            2 => t("2026-12-02T09:00:00Z"),
            _ => Some(None),
        };
        assert_eq!(
            ring_order(GroupStrategy::LongestIdle, 4, -1, idle),
            [3, 2, 0, 1]
        );
    }

    fn node(name: &str, id: u128, config: FlowConfig) -> GraphNode {
        GraphNode {
            id: Uuid::from_u128(id),
            kind: config.kind(),
            name: name.into(),
            config,
        }
    }

    #[test]
    fn a_loop_without_the_callers_input_is_found_and_one_through_a_menu_key_is_not() {
        let to = |id: u128| Destination::RingGroup {
            ring_group_id: Uuid::from_u128(id),
        };
        let group = |next: Destination| {
            FlowConfig::RingGroup(RingGroupConfig {
                strategy: GroupStrategy::Simultaneous,
                ring_secs: 30,
                members: vec![],
                skip_busy: true,
                caller_id_prefix: String::new(),
                when_unanswered: next,
            })
        };
        let menu = |key: Destination, none: Destination| {
            FlowConfig::Ivr(IvrConfig {
                greeting: Greeting::default(),
                options: vec![IvrOption {
                    digits: "1".into(),
                    destination: key,
                }],
                direct_dial: false,
                timeout_secs: 5,
                max_tries: 3,
                when_no_choice: none,
            })
        };
        let hang = Destination::HangUp {
            cause: HangUpWith::Busy,
        };
        let ivr = |id: u128| Destination::Ivr {
            ivr_id: Uuid::from_u128(id),
        };
        // Sales → Support → Sales, all on "nobody answered".
        let nodes = [
            node("Sales", 1, group(to(2))),
            node("Support", 2, group(to(1))),
        ];
        let found = find_loop(&nodes).unwrap_or_default();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|n| n.contains("Sales")));
        // Sales → menu, whose key 1 goes back to Sales: the caller chooses.
        let nodes = [
            node("Sales", 1, group(ivr(3))),
            node("Main", 3, menu(to(1), hang.clone())),
        ];
        assert_eq!(find_loop(&nodes), None);
        // …but the menu's "no choice" going back to Sales loops by itself.
        let nodes = [
            node("Sales", 1, group(ivr(3))),
            node("Main", 3, menu(hang.clone(), to(1))),
        ];
        assert!(find_loop(&nodes).is_some());
        // A flow pointing at itself.
        assert!(find_loop(&[node("Self", 5, group(to(5)))]).is_some());
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        let mut errors = FieldErrors::new();
        let bad = FlowConfig::Ivr(IvrConfig {
            greeting: Greeting::Builtin {
                prompt: "nope".into(),
            },
            options: vec![
                IvrOption {
                    digits: "1".into(),
                    destination: Destination::HangUp {
                        cause: HangUpWith::Busy,
                    },
                },
                IvrOption {
                    digits: "12".into(),
                    destination: Destination::External { number: "x".into() },
                },
            ],
            direct_dial: false,
            timeout_secs: 0,
            max_tries: 3,
            when_no_choice: Destination::HangUp {
                cause: HangUpWith::Busy,
            },
        });
        bad.validate(&mut errors);
        let fields: Vec<String> = errors.into_vec().into_iter().map(|e| e.field).collect();
        for want in [
            "greeting.prompt",
            "timeout_secs",
            "options[1].digits",
            "options[1].destination.number",
        ] {
            assert!(fields.iter().any(|f| f == want), "{want} in {fields:?}");
        }
        let read = FlowConfig::from_json(
            FlowKind::RingGroup,
            serde_json::json!({"strategy": "sideways"}),
        );
        assert!(read.is_err());
        let read = FlowConfig::from_json(FlowKind::TimeCondition, serde_json::json!({"colour": 1}));
        assert_eq!(read.err().map(|e| e.field), Some("colour".to_owned()));
        let read = FlowConfig::from_json(
            FlowKind::RingGroup,
            serde_json::json!({"members": [{"ring_secs": 5, "colour": 1}]}),
        );
        assert_eq!(
            read.err().map(|e| e.field),
            Some("members[0].colour".to_owned())
        );
        let read = FlowConfig::from_json(
            FlowKind::RingGroup,
            serde_json::json!({"ring_secs": "sixty"}),
        );
        assert_eq!(read.err().map(|e| e.field), Some("ring_secs".to_owned()));
    }
}
