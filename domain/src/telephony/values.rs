//! Validated values of the calling model (parse, don't validate).

use std::fmt;

use crate::error::FieldError;

fn invalid(code: &str, message: impl Into<String>) -> FieldError {
    // The caller sets the field name (FieldErrors::check).
    FieldError::new("", code, message)
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated value, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// An extension number: 2 to 10 digits, not starting with 0 (0 is the usual trunk prefix).
    ExtensionNumber
);

impl ExtensionNumber {
    /// Parses an extension number.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.len() < 2 || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "invalid_number",
                "an extension number is 2 to 10 digits",
            ));
        }
        if s.starts_with('0') {
            return Err(invalid(
                "invalid_number",
                "an extension number cannot start with 0",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A caller ID name: 1 to 50 printable characters.
    CallerIdName
);

impl CallerIdName {
    /// Parses a caller ID name (trimmed).
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.is_empty() || s.chars().count() > 50 {
            return Err(invalid(
                "invalid_caller_id_name",
                "a caller ID name is 1 to 50 characters",
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid(
                "invalid_caller_id_name",
                "a caller ID name cannot contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A caller ID number: E.164 (`+` and 2–15 digits) or, for internal use, 2–15 digits.
    CallerIdNumber
);

impl CallerIdNumber {
    /// Parses an E.164 number, the form required for outbound and emergency caller IDs.
    pub fn parse_e164(input: &str) -> Result<Self, FieldError> {
        let s: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = s.strip_prefix('+').unwrap_or("");
        if digits.len() < 2
            || digits.len() > 15
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(invalid(
                "invalid_e164",
                "use E.164: + then country code and number, e.g. +4930123456",
            ));
        }
        Ok(Self(s))
    }

    /// Parses an internal caller ID number: 2–15 digits.
    pub fn parse_internal(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.len() < 2 || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "invalid_caller_id_number",
                "an internal caller ID number is 2 to 15 digits",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A MAC address, normalised to 12 lower-case hex digits.
    MacAddress
);

impl MacAddress {
    /// Accepts `AA:BB:CC:DD:EE:FF`, `aa-bb-…`, `aabb.ccdd.eeff` or `aabbccddeeff`; refuses
    /// all-zero, broadcast and multicast addresses, which no phone has.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .collect::<String>()
            .to_ascii_lowercase();
        let separators_ok = s
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
        if hex.len() != 12 || !separators_ok || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "invalid_mac",
                "a MAC address is 12 hex digits, e.g. 00:15:65:ab:cd:ef",
            ));
        }
        if hex == "000000000000" || hex == "ffffffffffff" {
            return Err(invalid("invalid_mac", "this is not the address of a phone"));
        }
        let first = u8::from_str_radix(&hex[0..2], 16).unwrap_or(1);
        if first & 1 == 1 {
            return Err(invalid(
                "invalid_mac",
                "a multicast address is not the address of a phone",
            ));
        }
        Ok(Self(hex))
    }

    /// `aa:bb:cc:dd:ee:ff`, for display.
    pub fn colon_separated(&self) -> String {
        self.0
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A PIN for voicemail and hot-desk login, checked but never stored in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(String);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

impl Pin {
    /// 4–12 digits; refuses one repeated digit, ascending or descending runs (1234, 8765),
    /// and the extension's own number.
    pub fn parse(input: &str, extension_number: Option<&str>) -> Result<Self, FieldError> {
        let s = input.trim();
        if s.len() < 4 || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("invalid_pin", "a PIN is 4 to 12 digits"));
        }
        let bytes = s.as_bytes();
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(invalid("trivial_pin", "a PIN cannot be one repeated digit"));
        }
        let steps: Vec<i16> = bytes
            .windows(2)
            .map(|w| i16::from(w[1]) - i16::from(w[0]))
            .collect();
        if steps.iter().all(|d| *d == 1) || steps.iter().all(|d| *d == -1) {
            return Err(invalid(
                "trivial_pin",
                "a PIN cannot be an ascending or descending run",
            ));
        }
        if extension_number.is_some_and(|n| n == s) {
            return Err(invalid(
                "trivial_pin",
                "a PIN cannot be the extension number",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The digits, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

string_newtype!(
    /// A call-forwarding destination: a number (digits, optional leading `+`, `*` and `#`).
    Destination
);

impl Destination {
    /// Parses a destination of up to 32 dialable characters.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim();
        let body = s.strip_prefix('+').unwrap_or(s);
        if body.is_empty()
            || s.len() > 32
            || !body
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(invalid(
                "invalid_destination",
                "a destination is a number: digits, * and #, optionally starting with +",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A token of letters, digits, `_`, `-` and `.` (dialplan contexts, account codes, call groups,
/// toll-allow classes), 1 to `max` characters.
fn token(input: &str, max: usize, what: &str) -> Result<String, FieldError> {
    let s = input.trim();
    if s.is_empty()
        || s.len() > max
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(invalid(
            "invalid_token",
            format!("{what} is 1 to {max} letters, digits, _, - or ."),
        ));
    }
    Ok(s.to_owned())
}

string_newtype!(
    /// A FreeSWITCH dialplan context name.
    DialplanContext
);

impl DialplanContext {
    /// Parses a context name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        token(input, 64, "a dialplan context").map(Self)
    }
}

string_newtype!(
    /// An account code for CDRs.
    AccountCode
);

impl AccountCode {
    /// Parses an account code.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        token(input, 32, "an account code").map(Self)
    }
}

string_newtype!(
    /// A call group name (FreeSWITCH `callgroup`).
    CallGroup
);

impl CallGroup {
    /// Parses a call group name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        token(input, 32, "a call group").map(|s| Self(s.to_ascii_lowercase()))
    }
}

/// Parses a toll-allow list (e.g. `["local", "domestic"]`) into FreeSWITCH's comma form.
pub fn parse_toll_allow(classes: &[String]) -> Result<String, FieldError> {
    let mut out: Vec<String> = Vec::new();
    for class in classes {
        let class = token(class, 32, "a toll-allow class")?.to_ascii_lowercase();
        if !out.contains(&class) {
            out.push(class);
        }
    }
    Ok(out.join(","))
}

/// A list of emergency numbers (e.g. `911,112,999`): 2–6 digits each, at least one.
pub fn parse_emergency_numbers(numbers: &[String]) -> Result<String, FieldError> {
    if numbers.is_empty() {
        return Err(invalid(
            "required",
            "at least one emergency number is needed",
        ));
    }
    let mut out: Vec<&str> = Vec::new();
    for n in numbers {
        let n = n.trim();
        if n.len() < 2 || n.len() > 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "invalid_number",
                format!("{n:?} is not an emergency number (2 to 6 digits)"),
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out.join(","))
}

/// A time of day `HH:MM` (24-hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    /// Hour 0–23.
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
}

impl TimeOfDay {
    /// Parses `HH:MM`.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let bad = || invalid("invalid_time", "use HH:MM, 24-hour, e.g. 02:30");
        let (h, m) = input.trim().split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let (hour, minute) = (
            h.parse::<u32>().map_err(|_| bad())?,
            m.parse::<u32>().map_err(|_| bad())?,
        );
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        Ok(Self { hour, minute })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_numbers() {
        for ok in ["10", "201", "9999999999"] {
            assert!(ExtensionNumber::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1", "020", "12345678901", "20a", "*11", "+201"] {
            assert!(ExtensionNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn caller_ids() {
        assert_eq!(
            CallerIdNumber::parse_e164("+49 30 1234-56")
                .map(|n| n.0)
                .ok(),
            Some("+4930123456".into())
        );
        for bad in ["4930123456", "+0301", "+1", "+1234567890123456", "+49x"] {
            assert!(CallerIdNumber::parse_e164(bad).is_err(), "{bad}");
        }
        assert!(CallerIdName::parse("Reception").is_ok());
        assert!(CallerIdName::parse("").is_err());
        assert!(CallerIdName::parse("a\u{0}b").is_err());
        assert!(CallerIdName::parse(&"x".repeat(51)).is_err());
    }

    #[test]
    fn mac_addresses_are_normalised() {
        for ok in [
            "00:15:65:AB:CD:EF",
            "00-15-65-ab-cd-ef",
            "0015.65ab.cdef",
            "001565abcdef",
        ] {
            assert_eq!(
                MacAddress::parse(ok).map(|m| m.0).ok(),
                Some("001565abcdef".into()),
                "{ok}"
            );
        }
        for bad in [
            "",
            "00:15:65:ab:cd",
            "00:15:65:ab:cd:eg",
            "00:00:00:00:00:00",
            "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01",
            "00;15;65;ab;cd;ef",
        ] {
            assert!(MacAddress::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            MacAddress::parse("001565abcdef")
                .map(|m| m.colon_separated())
                .ok(),
            Some("00:15:65:ab:cd:ef".into())
        );
    }

    #[test]
    fn pins_refuse_trivial_values() {
        for ok in ["2580", "139742", "1357", "0712"] {
            assert!(Pin::parse(ok, Some("201")).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("123", "invalid_pin"),
            ("1234567890123", "invalid_pin"),
            ("12a4", "invalid_pin"),
            ("0000", "trivial_pin"),
            ("1234", "trivial_pin"),
            ("6789", "trivial_pin"),
            ("4321", "trivial_pin"),
            ("2010", "trivial_pin"),
        ] {
            let err = Pin::parse(bad, Some("2010")).err();
            assert_eq!(err.map(|e| e.code), Some(code.to_owned()), "{bad}");
        }
        assert_eq!(
            format!("{:?}", Pin::parse("2580", None).ok()),
            "Some(Pin([redacted]))"
        );
    }

    #[test]
    fn destinations_tokens_lists_and_times() {
        assert!(Destination::parse("+4930123456").is_ok());
        assert!(Destination::parse("*98").is_ok());
        assert!(Destination::parse("sip:x@y").is_err());
        assert!(Destination::parse("+").is_err());
        assert!(DialplanContext::parse("acme.pbx.example.net").is_ok());
        assert!(DialplanContext::parse("a b").is_err());
        assert_eq!(
            parse_toll_allow(&["Local".into(), "domestic".into(), "local".into()]).ok(),
            Some("local,domestic".into())
        );
        assert!(parse_toll_allow(&["in ternational".into()]).is_err());
        assert_eq!(
            parse_emergency_numbers(&["911".into(), "112".into()]).ok(),
            Some("911,112".into())
        );
        assert!(parse_emergency_numbers(&[]).is_err());
        assert!(parse_emergency_numbers(&["9".into()]).is_err());
        assert_eq!(
            TimeOfDay::parse("02:30").ok(),
            Some(TimeOfDay {
                hour: 2,
                minute: 30
            })
        );
        for bad in ["2:30", "24:00", "12:60", "noon"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }
}
