//! Calls that leave the platform: dial patterns, numbering (to E.164), toll classes, Outbound
//! Routes with their gateways, and the outbound caller ID. Pure: compiled once per Domain with
//! the dialplan, asked per call.
//!
//! - **Dial patterns** are the FreePBX / Asterisk kind, familiar to PBX admins: digits, `+`,
//!   `*` and `#` match themselves; `X` is any digit, `Z` 1–9, `N` 2–9, `[1-5]` a set; `.` at the
//!   end matches one or more characters, `!` zero or more. (Written here: no crate implements
//!   them, and they compile to a tiny matcher with no regex engine on the call path.)
//! - **Normalisation**: a route strips leading digits and prepends its own; the result is made
//!   E.164 with the Domain's numbering (`+…` as is; the international prefix becomes `+`; the
//!   national prefix becomes `+<country code>`); anything else (a short number, an emergency
//!   number) is sent as it is.
//! - **Toll classes**: a route says what class of number it reaches; the caller's `toll_allow`
//!   must name the class (`domestic` names `local`, `national` and `mobile`), except for
//!   `emergency`, which nobody can be refused. The first route whose pattern matches decides:
//!   a refused class is refused, not tried on a later route.
//! - **Gateways in order**: a route's usable gateways (enabled, the Domain's own or granted to
//!   it); the call fails over to the next one on the causes of [`FAILOVER_CAUSES`].
//! - **Outbound caller ID**: the caller's (the person's when hot-desking) if the Domain may
//!   present it → the Number that rings the caller's Extension → the Domain's default → none
//!   (the carrier's account number). A Domain presents only Numbers it owns unless the platform
//!   allows more. An emergency call always carries the emergency caller ID of the place.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;
use uuid::Uuid;

use crate::error::FieldError;

/// The causes after which a call is tried on the route's next gateway: the gateway (or the
/// carrier behind it) could not take the call, as opposed to an answer about the callee (busy,
/// no answer, rejected, no such number), which the caller hears as it is.
pub const FAILOVER_CAUSES: &[&str] = &[
    "NORMAL_TEMPORARY_FAILURE",
    "DESTINATION_OUT_OF_ORDER",
    "NETWORK_OUT_OF_ORDER",
    "SERVICE_UNAVAILABLE",
    "RECOVERY_ON_TIMER_EXPIRE",
    "GATEWAY_DOWN",
    "NORMAL_CIRCUIT_CONGESTION",
    "SWITCH_CONGESTION",
    "REQUESTED_CHAN_UNAVAIL",
    "NO_ROUTE_TRANSIT_NET",
    "EXCHANGE_ROUTING_ERROR",
    "INTERWORKING",
    "MANDATORY_IE_MISSING",
];

/// The class of number a route reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TollClass {
    /// Emergency services: never refused.
    Emergency,
    /// Local calls.
    Local,
    /// National fixed lines.
    National,
    /// Mobile networks.
    Mobile,
    /// Abroad.
    International,
    /// Premium-rate services.
    Premium,
}

impl TollClass {
    /// Every class.
    pub const ALL: &'static [TollClass] = &[
        TollClass::Emergency,
        TollClass::Local,
        TollClass::National,
        TollClass::Mobile,
        TollClass::International,
        TollClass::Premium,
    ];

    /// The stored and API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Emergency => "emergency",
            Self::Local => "local",
            Self::National => "national",
            Self::Mobile => "mobile",
            Self::International => "international",
            Self::Premium => "premium",
        }
    }

    /// Parses the stored and API name.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                FieldError::new(
                    "toll_class",
                    "invalid_choice",
                    "must be one of: emergency, local, national, mobile, international, premium",
                )
            })
    }

    /// Whether a caller whose `toll_allow` lists `allowed` may reach this class.
    pub fn allowed_by<S: AsRef<str>>(self, allowed: &[S]) -> bool {
        if self == Self::Emergency {
            return true;
        }
        allowed.iter().any(|a| {
            let a = a.as_ref().trim();
            a.eq_ignore_ascii_case(self.as_str())
                || (a.eq_ignore_ascii_case("domestic")
                    && matches!(self, Self::Local | Self::National | Self::Mobile))
        })
    }
}

impl fmt::Display for TollClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Char(u8),
    Set(Vec<(u8, u8)>),
    OneOrMore,
    ZeroOrMore,
}

/// A dial pattern (see the module notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPattern {
    text: String,
    parts: Vec<Part>,
}

impl DialPattern {
    /// Longest pattern accepted.
    pub const MAX_LEN: usize = 40;

    /// Parses a pattern; a leading `_` (Asterisk's marker) is allowed and ignored.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        let body = text.strip_prefix('_').unwrap_or(text);
        if body.is_empty() {
            return Err("a pattern cannot be empty".into());
        }
        if text.len() > Self::MAX_LEN {
            return Err(format!("a pattern is at most {} characters", Self::MAX_LEN));
        }
        let bytes = body.as_bytes();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let part = match b.to_ascii_uppercase() {
                b'0'..=b'9' | b'+' | b'*' | b'#' => Part::Char(b),
                b'X' => Part::Set(vec![(b'0', b'9')]),
                b'Z' => Part::Set(vec![(b'1', b'9')]),
                b'N' => Part::Set(vec![(b'2', b'9')]),
                b'.' | b'!' => {
                    if i + 1 != bytes.len() {
                        return Err(format!("{:?} may only end a pattern", char::from(b)));
                    }
                    if b == b'.' {
                        Part::OneOrMore
                    } else {
                        Part::ZeroOrMore
                    }
                }
                b'[' => {
                    let Some(end) = bytes[i..].iter().position(|c| *c == b']') else {
                        return Err("a [ is not closed".into());
                    };
                    let set = parse_set(&bytes[i + 1..i + end])?;
                    i += end;
                    Part::Set(set)
                }
                _ => {
                    return Err(format!(
                        "{:?} is not allowed: use digits, + * #, X Z N, [1-5], and . or ! at the end",
                        char::from(b)
                    ));
                }
            };
            parts.push(part);
            i += 1;
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `number` matches the whole pattern.
    pub fn matches(&self, number: &str) -> bool {
        let n = number.as_bytes();
        let mut i = 0;
        for part in &self.parts {
            match part {
                Part::Char(c) => {
                    if n.get(i) != Some(c) {
                        return false;
                    }
                    i += 1;
                }
                Part::Set(ranges) => {
                    let Some(b) = n.get(i) else { return false };
                    if !ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&b)) {
                        return false;
                    }
                    i += 1;
                }
                Part::OneOrMore => return n.len() > i,
                Part::ZeroOrMore => return true,
            }
        }
        i == n.len()
    }
}

fn parse_set(inner: &[u8]) -> Result<Vec<(u8, u8)>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < inner.len() {
        let lo = inner[i];
        if lo == b',' {
            i += 1;
            continue;
        }
        if !lo.is_ascii_digit() {
            return Err("a [set] holds digits and ranges like [1-5,7]".into());
        }
        if inner.get(i + 1) == Some(&b'-') {
            let Some(hi) = inner.get(i + 2).copied().filter(u8::is_ascii_digit) else {
                return Err("a range in a [set] is like 1-5".into());
            };
            if hi < lo {
                return Err("a range in a [set] goes upwards, like 1-5".into());
            }
            out.push((lo, hi));
            i += 3;
        } else {
            out.push((lo, lo));
            i += 1;
        }
    }
    if out.is_empty() {
        return Err("a [set] cannot be empty".into());
    }
    Ok(out)
}

/// How a Domain's phones dial: its country code and prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Numbering {
    /// Country calling code without `+`.
    pub country_code: Option<String>,
    /// National trunk prefix (may be empty).
    pub national_prefix: String,
    /// International access prefix.
    pub international_prefix: String,
}

impl Default for Numbering {
    fn default() -> Self {
        Self {
            country_code: None,
            national_prefix: "0".into(),
            international_prefix: "00".into(),
        }
    }
}

impl Numbering {
    /// `number` in E.164 if it can be read as one: `+…` as it is, the international prefix as
    /// `+`, the national prefix as `+<country code>`.
    pub fn to_e164(&self, number: &str) -> Option<String> {
        let plus = |digits: &str| {
            (digits.len() >= 2 && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| format!("+{digits}"))
        };
        if let Some(rest) = number.strip_prefix('+') {
            return plus(rest);
        }
        if !self.international_prefix.is_empty()
            && let Some(rest) = number.strip_prefix(self.international_prefix.as_str())
        {
            return plus(rest);
        }
        if let Some(cc) = &self.country_code
            && !self.national_prefix.is_empty()
            && let Some(rest) = number.strip_prefix(self.national_prefix.as_str())
            && !rest.is_empty()
        {
            return plus(&format!("{cc}{rest}"));
        }
        None
    }
}

/// A gateway a route may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayRef {
    /// Its id.
    pub id: Uuid,
    /// Its name in the API.
    pub name: String,
    /// Its name in FreeSWITCH (`sofia/gateway/<this>/…`).
    pub freeswitch_name: String,
}

/// The FreeSWITCH name of a gateway: stable across renames, valid for sofia (`[\w.-]+`).
pub fn freeswitch_gateway_name(id: Uuid) -> String {
    format!("sb_{}", id.simple())
}

/// An Outbound Route, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRoute {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Patterns (any one matches).
    pub patterns: Vec<DialPattern>,
    /// Leading digits removed.
    pub strip_digits: usize,
    /// Prepended after stripping.
    pub prepend: String,
    /// Class of what it reaches.
    pub toll_class: TollClass,
    /// Usable gateways in failover order (those not usable are left out, and listed in
    /// `unusable_gateways` for the explanation).
    pub gateways: Vec<GatewayRef>,
    /// Gateways listed on the route that the Domain cannot use now (disabled, grant revoked).
    pub unusable_gateways: Vec<GatewayRef>,
}

impl CompiledRoute {
    /// The pattern that matches `dialled`, if any.
    pub fn matching(&self, dialled: &str) -> Option<&DialPattern> {
        self.patterns.iter().find(|p| p.matches(dialled))
    }

    /// `dialled` after stripping and prepending.
    pub fn rewrite(&self, dialled: &str) -> String {
        let kept = dialled
            .get(self.strip_digits.min(dialled.len())..)
            .unwrap_or("");
        format!("{}{kept}", self.prepend)
    }
}

/// A caller ID with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChosenCallerId {
    /// Name, if any.
    pub name: Option<String>,
    /// Number, if any (none: the carrier's account number).
    pub number: Option<String>,
    /// Why this one.
    pub source: CallerIdSource,
}

/// Where an outbound caller ID came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdSource {
    /// The calling Extension's own outbound caller ID (the person's, when hot-desking).
    Caller,
    /// The Number that rings the caller's Extension.
    CallersNumber,
    /// The Number the call came in on (a Number forwarded to an external number).
    InboundNumber,
    /// The Domain's default.
    DomainDefault,
    /// The emergency caller ID of the place.
    Emergency,
    /// Nothing the Domain may present: the carrier's account number.
    None,
}

/// What the outbound side knows of a Domain: routes, numbering, Numbers, defaults.
#[derive(Debug, Clone, Default)]
pub struct OutboundPlan {
    /// Routes in order.
    pub routes: Vec<CompiledRoute>,
    /// Numbering.
    pub numbering: Numbering,
    /// The Numbers (E.164) the Domain owns.
    pub owned_numbers: HashSet<String>,
    /// The Domain's default outbound caller ID name.
    pub default_name: Option<String>,
    /// The Domain's default outbound caller ID number.
    pub default_number: Option<String>,
    /// May present numbers it does not own.
    pub present_any: bool,
}

/// The outbound route decision for a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<'a> {
    /// Leave through `route`.
    Route {
        /// The route.
        route: &'a CompiledRoute,
        /// The pattern that matched.
        pattern: &'a DialPattern,
        /// The number sent to the gateway.
        number: String,
    },
    /// The first matching route reaches a class the caller may not call.
    Barred {
        /// The route.
        route: &'a CompiledRoute,
    },
    /// The route that matched has no usable gateway.
    NoGateway {
        /// The route.
        route: &'a CompiledRoute,
    },
    /// No route matches.
    NoRoute,
}

impl OutboundPlan {
    /// May the Domain present `number`?
    pub fn may_present(&self, number: &str) -> bool {
        self.present_any || self.owned_numbers.contains(number)
    }

    /// The number sent to the carrier for `dialled` on `route`.
    pub fn normalise(&self, route: &CompiledRoute, dialled: &str) -> String {
        let rewritten = route.rewrite(dialled);
        self.numbering.to_e164(&rewritten).unwrap_or(rewritten)
    }

    /// Routes `dialled` for a caller allowed `toll_allow`; `emergency` restricts the choice to
    /// emergency routes first (then any matching route: an emergency call is never refused).
    pub fn route<S: AsRef<str>>(
        &self,
        dialled: &str,
        toll_allow: &[S],
        emergency: bool,
    ) -> RouteDecision<'_> {
        let first = |only_emergency: bool| {
            self.routes.iter().find_map(|r| {
                if only_emergency && r.toll_class != TollClass::Emergency {
                    return None;
                }
                r.matching(dialled).map(|p| (r, p))
            })
        };
        let found = if emergency {
            first(true).or_else(|| first(false))
        } else {
            first(false)
        };
        let Some((route, pattern)) = found else {
            return RouteDecision::NoRoute;
        };
        if !emergency && !route.toll_class.allowed_by(toll_allow) {
            return RouteDecision::Barred { route };
        }
        if route.gateways.is_empty() {
            return RouteDecision::NoGateway { route };
        }
        RouteDecision::Route {
            route,
            pattern,
            number: self.normalise(route, dialled),
        }
    }

    /// The outbound caller ID of a regular call (see the module notes).
    pub fn caller_id(
        &self,
        callers_name: Option<&str>,
        callers_number: Option<&str>,
        callers_did: Option<&str>,
    ) -> ChosenCallerId {
        if let Some(n) = callers_number.filter(|n| self.may_present(n)) {
            return ChosenCallerId {
                name: callers_name.map(str::to_owned),
                number: Some(n.to_owned()),
                source: CallerIdSource::Caller,
            };
        }
        if let Some(n) = callers_did {
            return ChosenCallerId {
                name: callers_name.map(str::to_owned),
                number: Some(n.to_owned()),
                source: CallerIdSource::CallersNumber,
            };
        }
        if let Some(n) = self
            .default_number
            .as_deref()
            .filter(|n| self.may_present(n))
        {
            return ChosenCallerId {
                name: self
                    .default_name
                    .clone()
                    .or_else(|| callers_name.map(str::to_owned)),
                number: Some(n.to_owned()),
                source: CallerIdSource::DomainDefault,
            };
        }
        ChosenCallerId {
            name: callers_name
                .map(str::to_owned)
                .or_else(|| self.default_name.clone()),
            number: None,
            source: CallerIdSource::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DialPattern {
        DialPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn patterns_match_like_a_pbx_admin_expects() {
        let cases = [
            ("NXXNXXXXXX", "2125551234", true),
            ("NXXNXXXXXX", "1125551234", false),
            ("NXXNXXXXXX", "212555123", false),
            ("1NXXNXXXXXX", "12125551234", true),
            ("011.", "01144201234", true),
            ("011.", "011", false),
            ("0.", "030123456", true),
            ("00.", "0044201234", true),
            ("+.", "+4930123456", true),
            ("+.", "4930123456", false),
            ("[1-3]XX", "299", true),
            ("[1-3]XX", "499", false),
            ("[1,5]X", "59", true),
            ("_9!", "9", true),
            ("_9!", "9123", true),
            ("112", "112", true),
            ("112", "1120", false),
            ("*98", "*98", true),
            ("X", "", false),
        ];
        for (pattern, number, want) in cases {
            assert_eq!(p(pattern).matches(number), want, "{pattern} vs {number}");
        }
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for bad in [
            "", "_", "1.2", "9!9", "[", "[a]", "[5-1]", "[]", "sip:x", "1 2",
        ] {
            assert!(DialPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(DialPattern::parse(&"1".repeat(41)).is_err());
    }

    #[test]
    fn numbers_become_e164_with_the_domains_numbering() {
        let de = Numbering {
            country_code: Some("49".into()),
            national_prefix: "0".into(),
            international_prefix: "00".into(),
        };
        assert_eq!(de.to_e164("030123456").as_deref(), Some("+4930123456"));
        assert_eq!(de.to_e164("0044201234").as_deref(), Some("+44201234"));
        assert_eq!(de.to_e164("+4930123456").as_deref(), Some("+4930123456"));
        assert_eq!(de.to_e164("112"), None);
        assert_eq!(de.to_e164("0"), None);
        let us = Numbering {
            country_code: Some("1".into()),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
        };
        assert_eq!(us.to_e164("12125551234").as_deref(), Some("+12125551234"));
        assert_eq!(us.to_e164("01144201234").as_deref(), Some("+44201234"));
        let none = Numbering::default();
        assert_eq!(
            none.to_e164("030123456"),
            None,
            "no country code: as dialled"
        );
    }

    #[test]
    fn toll_classes_follow_toll_allow_and_emergency_is_never_refused() {
        assert!(TollClass::National.allowed_by(&["domestic"]));
        assert!(TollClass::Mobile.allowed_by(&["local", "DOMESTIC"]));
        assert!(!TollClass::International.allowed_by(&["domestic"]));
        assert!(TollClass::International.allowed_by(&["international"]));
        assert!(!TollClass::Premium.allowed_by(&["domestic", "international"]));
        assert!(TollClass::Emergency.allowed_by::<&str>(&[]));
    }

    fn gw(n: u128) -> GatewayRef {
        let id = Uuid::from_u128(n);
        GatewayRef {
            id,
            name: format!("carrier-{n}"),
            freeswitch_name: freeswitch_gateway_name(id),
        }
    }

    fn route(
        name: &str,
        patterns: &[&str],
        class: TollClass,
        gws: Vec<GatewayRef>,
    ) -> CompiledRoute {
        CompiledRoute {
            id: Uuid::now_v7(),
            name: name.into(),
            patterns: patterns.iter().map(|s| p(s)).collect(),
            strip_digits: 0,
            prepend: String::new(),
            toll_class: class,
            gateways: gws,
            unusable_gateways: Vec::new(),
        }
    }

    fn plan() -> OutboundPlan {
        let mut national = route(
            "national",
            &["0Z."],
            TollClass::National,
            vec![gw(1), gw(2)],
        );
        national.strip_digits = 0;
        let mut intl = route(
            "international",
            &["00Z."],
            TollClass::International,
            vec![gw(1)],
        );
        intl.strip_digits = 0;
        OutboundPlan {
            routes: vec![
                route(
                    "emergency",
                    &["112", "110"],
                    TollClass::Emergency,
                    vec![gw(3)],
                ),
                intl,
                national,
                route("premium", &["0900."], TollClass::Premium, vec![]),
            ],
            numbering: Numbering {
                country_code: Some("49".into()),
                ..Numbering::default()
            },
            owned_numbers: ["+4930100".to_owned(), "+4930101".to_owned()]
                .into_iter()
                .collect(),
            default_name: Some("Acme".into()),
            default_number: Some("+4930100".into()),
            present_any: false,
        }
    }

    #[test]
    fn the_first_matching_route_decides_and_normalises() {
        let plan = plan();
        match plan.route("030123456", &["domestic"], false) {
            RouteDecision::Route {
                route,
                number,
                pattern,
            } => {
                assert_eq!(route.name, "national");
                assert_eq!(number, "+4930123456");
                assert_eq!(pattern.as_str(), "0Z.");
                assert_eq!(route.gateways.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan.route("0044201234", &["domestic"], false),
            RouteDecision::Barred { route } if route.name == "international"
        ));
        assert!(matches!(
            plan.route("555", &["domestic"], false),
            RouteDecision::NoRoute
        ));
        // "0900…" matches the national route first (0Z.): the order is the admin's.
        assert!(matches!(
            plan.route("0900123", &["domestic"], false),
            RouteDecision::Route { route, .. } if route.name == "national"
        ));
    }

    #[test]
    fn emergency_numbers_take_the_emergency_route_whatever_the_toll_allow() {
        let plan = plan();
        match plan.route("112", &[] as &[&str], true) {
            RouteDecision::Route { route, number, .. } => {
                assert_eq!(route.name, "emergency");
                assert_eq!(number, "112", "short numbers are sent as dialled");
            }
            other => panic!("{other:?}"),
        }
        // An emergency number no emergency route matches still leaves through any match.
        let mut p2 = plan.clone();
        p2.routes.retain(|r| r.toll_class != TollClass::Emergency);
        p2.routes[0].patterns.push(p("999"));
        assert!(matches!(
            p2.route("999", &[] as &[&str], true),
            RouteDecision::Route { route, .. } if route.name == "international"
        ));
    }

    #[test]
    fn a_route_without_usable_gateways_says_so() {
        let mut plan = plan();
        plan.routes.retain(|r| r.name == "premium");
        assert!(matches!(
            plan.route("0900123", &["premium"], false),
            RouteDecision::NoGateway { .. }
        ));
    }

    #[test]
    fn caller_id_falls_back_from_the_caller_to_their_number_to_the_domain() {
        let plan = plan();
        let c = plan.caller_id(Some("Alice"), Some("+4930101"), None);
        assert_eq!(
            (c.number.as_deref(), c.source),
            (Some("+4930101"), CallerIdSource::Caller)
        );
        let c = plan.caller_id(Some("Alice"), Some("+4999999"), Some("+4930101"));
        assert_eq!(
            (c.number.as_deref(), c.source),
            (Some("+4930101"), CallerIdSource::CallersNumber),
            "not owned: their own Number instead"
        );
        let c = plan.caller_id(Some("Alice"), Some("+4999999"), None);
        assert_eq!(
            (c.number.as_deref(), c.name.as_deref(), c.source),
            (
                Some("+4930100"),
                Some("Acme"),
                CallerIdSource::DomainDefault
            )
        );
        let mut any = plan.clone();
        any.present_any = true;
        let c = any.caller_id(None, Some("+4999999"), None);
        assert_eq!(c.source, CallerIdSource::Caller);
        let mut bare = plan.clone();
        bare.default_number = None;
        let c = bare.caller_id(Some("Alice"), None, None);
        assert_eq!((c.number, c.source), (None, CallerIdSource::None));
    }
}
