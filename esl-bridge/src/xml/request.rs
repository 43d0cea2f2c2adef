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
    "sip_auth_realm",
    "sip_to_host",
    "sip_from_host",
    "variable_switchboard_called_extension",
    "variable_switchboard_forward_hops",
    "variable_switchboard_device_id",
    "variable_switchboard_extension_id",
    "variable_switchboard_forwarded_by",
    "variable_switchboard_inbound_number",
    "variable_sip_acl_authed_by",
    "variable_sip_acl_token",
    "variable_sip_network_ip",
    "Caller-Network-Addr",
    "Unique-ID",
    "variable_switchboard_flow_steps",
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

/// The position of a field name in [`FIELDS`], compared as bytes (a `match` compiles to a
/// length switch and a few word compares: ~200 names per body are skipped this way).
fn index(name: &[u8]) -> Option<usize> {
    match name {
        b"hostname" => Some(0),
        b"section" => Some(1),
        b"tag_name" => Some(2),
        b"key_name" => Some(3),
        b"key_value" => Some(4),
        b"purpose" => Some(5),
        b"profile" => Some(6),
        b"action" => Some(7),
        b"key" => Some(8),
        b"user" => Some(9),
        b"domain" => Some(10),
        b"group" => Some(11),
        b"group_name" => Some(12),
        b"sip_auth_method" => Some(13),
        b"Event-Calling-Function" => Some(14),
        b"Caller-Context" => Some(15),
        b"Hunt-Context" => Some(16),
        b"Caller-Destination-Number" => Some(17),
        b"Hunt-Destination-Number" => Some(18),
        b"variable_switchboard_domain" => Some(19),
        b"variable_domain_name" => Some(20),
        b"variable_emergency_caller_id_name" => Some(21),
        b"variable_emergency_caller_id_number" => Some(22),
        b"sip_auth_realm" => Some(23),
        b"sip_to_host" => Some(24),
        b"sip_from_host" => Some(25),
        b"variable_switchboard_called_extension" => Some(26),
        b"variable_switchboard_forward_hops" => Some(27),
        b"variable_switchboard_device_id" => Some(28),
        b"variable_switchboard_extension_id" => Some(29),
        b"variable_switchboard_forwarded_by" => Some(30),
        b"variable_switchboard_inbound_number" => Some(31),
        b"variable_sip_acl_authed_by" => Some(32),
        b"variable_sip_acl_token" => Some(33),
        b"variable_sip_network_ip" => Some(34),
        b"Caller-Network-Addr" => Some(35),
        b"Unique-ID" => Some(36),
        b"variable_switchboard_flow_steps" => Some(37),
        _ => None,
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
            let i = if name.contains(&b'%') {
                index(decode(name).as_bytes())
            } else {
                index(name)
            };
            if let Some(i) = i
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
        let i = index(name.as_bytes())?;
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
    fn every_field_has_its_own_index() {
        for (i, name) in FIELDS.iter().enumerate() {
            assert_eq!(index(name.as_bytes()), Some(i), "{name}");
        }
        assert_eq!(index(b"Section"), None, "names are case-sensitive");
        assert_eq!(index(b""), None);
    }

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
