//! The body mod_xml_curl posts: `hostname=…&section=…&tag_name=…&key_name=…&key_value=…`
//! (not URL-encoded), then every header of the request event as `name=urlencoded(value)`.
//!
//! Parsing never fails: garbage yields a request without the fields an answer needs, which is
//! answered "not found". `+` is kept as a plus sign (FreeSWITCH encodes spaces as `%20`, and the
//! unencoded prefix may carry a literal `+`, e.g. in an E.164 number).

use std::borrow::Cow;
use std::collections::HashMap;

use percent_encoding::percent_decode;

/// One mod_xml_curl request, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlCurlRequest {
    fields: HashMap<String, String>,
}

fn decode(raw: &[u8]) -> String {
    match percent_decode(raw).decode_utf8_lossy() {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    }
}

impl XmlCurlRequest {
    /// Decodes a body. A field that appears twice keeps its first value (the fixed prefix comes
    /// first, so an event header can never override `section` or `key_value`).
    pub fn parse(body: &[u8]) -> Self {
        let mut fields = HashMap::with_capacity(64);
        for pair in body.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name);
            if name.is_empty() {
                continue;
            }
            fields.entry(name).or_insert_with(|| decode(value));
        }
        Self { fields }
    }

    /// A field's value, if present and not empty (FreeSWITCH sends empty key fields).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// How many fields the request carried.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when nothing could be decoded.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_and_encoded_headers_decode() {
        let r = XmlCurlRequest::parse(
            b"hostname=localhost&section=directory&tag_name=domain&key_name=name&key_value=acme.example.net&Event-Date-Local=2026-11-23%2020%3A06%3A53&sip_auth_uri=sip%3A127.0.0.1%3A5060&key=id&user=201&x=a+b",
        );
        assert_eq!(r.get("section"), Some("directory"));
        assert_eq!(r.get("key_value"), Some("acme.example.net"));
        assert_eq!(r.get("Event-Date-Local"), Some("2026-11-23 20:06:53"));
        assert_eq!(r.get("sip_auth_uri"), Some("sip:127.0.0.1:5060"));
        assert_eq!(r.get("user"), Some("201"));
        assert_eq!(r.get("x"), Some("a+b"));
    }

    #[test]
    fn empty_fields_read_as_absent_and_the_first_value_wins() {
        let r =
            XmlCurlRequest::parse(b"section=dialplan&tag_name=&key_value&section=directory&=x&&");
        assert_eq!(r.get("section"), Some("dialplan"));
        assert_eq!(r.get("tag_name"), None);
        assert_eq!(r.get("key_value"), None);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn garbage_and_invalid_utf8_never_panic() {
        let r = XmlCurlRequest::parse(b"%ff%fe=%zz&\xff\xfe=\x00&%=%%");
        assert!(!r.is_empty());
        assert!(XmlCurlRequest::parse(b"").is_empty());
    }
}
