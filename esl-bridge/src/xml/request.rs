//! The body mod_xml_curl posts: `hostname=…&section=…&tag_name=…&key_name=…&key_value=…`
//! (not URL-encoded), then every header of the request event as `name=urlencoded(value)`.
//!
//! Parsing never fails: garbage yields a request without the fields an answer needs, which is
//! answered "not found". `+` is kept as a plus sign (FreeSWITCH encodes spaces as `%20`, and the
//! unencoded prefix may carry a literal `+`, e.g. in an E.164 number).
//!
//! Only the fields an answer reads ([`FIELDS`]) are decoded and kept: a dialplan request carries
//! ~200 channel variables (6 KiB), and decoding them all cost ten times more than answering.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// The fields switchboard reads; every other field is skipped without being decoded.
pub const FIELDS: &[&str] = &[
    "hostname",
    "section",
    "tag_name",
    "key_name",
    "key_value",
    "purpose",
    "profile",
    "action",
    "key",
    "user",
    "domain",
    "group",
    "group_name",
    "sip_auth_method",
    "Event-Calling-Function",
    "Caller-Context",
    "Hunt-Context",
    "Caller-Destination-Number",
    "Hunt-Destination-Number",
    "variable_switchboard_domain",
    "variable_domain_name",
    "variable_emergency_caller_id_name",
    "variable_emergency_caller_id_number",
];

/// One mod_xml_curl request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlCurlRequest {
    values: [Option<String>; FIELDS.len()],
    seen: usize,
}

impl Default for XmlCurlRequest {
    fn default() -> Self {
        Self {
            values: std::array::from_fn(|_| None),
            seen: 0,
        }
    }
}

fn decode(raw: &[u8]) -> Cow<'_, str> {
    percent_decode(raw).decode_utf8_lossy()
}

impl XmlCurlRequest {
    /// Decodes a body. A field that appears twice keeps its first value (the fixed prefix comes
    /// first, so an event header can never override `section` or `key_value`).
    pub fn parse(body: &[u8]) -> Self {
        let mut request = Self::default();
        for pair in body.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            if name.is_empty() {
                continue;
            }
            request.seen += 1;
            let name = if name.contains(&b'%') {
                decode(name)
            } else {
                // Names are ASCII header names; anything else matches no field.
                Cow::Borrowed(std::str::from_utf8(name).unwrap_or_default())
            };
            if let Some(i) = FIELDS.iter().position(|f| *f == name)
                && request.values[i].is_none()
            {
                request.values[i] = Some(decode(value).into_owned());
            }
        }
        request
    }

    /// A field's value, if present and not empty (FreeSWITCH sends empty key fields). Only the
    /// names in [`FIELDS`] are kept.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = FIELDS.iter().position(|f| *f == name)?;
        self.values[i].as_deref().filter(|v| !v.is_empty())
    }

    /// How many fields the request carried (kept or not).
    pub fn len(&self) -> usize {
        self.seen
    }

    /// True when nothing could be decoded.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_and_encoded_headers_decode() {
        let r = XmlCurlRequest::parse(
            b"hostname=localhost&section=directory&tag_name=domain&key_name=name&key_value=acme.example.net&Event-Date-Local=2026-11-23%2020%3A06%3A53&variable_emergency_caller_id_name=Acme%20HQ%3A%202F&key=id&user=201&domain=a+b",
        );
        assert_eq!(r.get("section"), Some("directory"));
        assert_eq!(r.get("key_value"), Some("acme.example.net"));
        assert_eq!(
            r.get("variable_emergency_caller_id_name"),
            Some("Acme HQ: 2F")
        );
        assert_eq!(r.get("user"), Some("201"));
        assert_eq!(r.get("domain"), Some("a+b"));
        assert_eq!(r.get("Event-Date-Local"), None, "not a field we read");
        assert_eq!(r.len(), 10);
    }

    #[test]
    fn empty_fields_read_as_absent_and_the_first_value_wins() {
        let r = XmlCurlRequest::parse(
            b"section=dialplan&tag_name=&key_value&section=directory&=x&&sec%74ion=x",
        );
        assert_eq!(r.get("section"), Some("dialplan"));
        assert_eq!(r.get("tag_name"), None);
        assert_eq!(r.get("key_value"), None);
        assert_eq!(r.len(), 5);
    }

    #[test]
    fn garbage_and_invalid_utf8_never_panic() {
        let r = XmlCurlRequest::parse(b"%ff%fe=%zz&\xff\xfe=\x00&%=%%&user=\xff\xfe");
        assert!(!r.is_empty());
        assert_eq!(r.get("user"), Some("\u{fffd}\u{fffd}"));
        assert!(XmlCurlRequest::parse(b"").is_empty());
    }
}
