//! What FreeSWITCH reads from mod_xml_curl: the request it posts ([`request`]), the directory
//! answers compiled per Domain ([`directory`]) and the feature-code dialplan ([`dialplan`]).
//!
//! Documents are written by hand into `String`s rather than through an XML writer: they have a
//! fixed, small shape, they sit on the hot path (every REGISTER and every call to a user), and
//! every value goes through [`escape_into`]. Tests parse every document with a real XML parser.

pub mod carriers;
pub mod dialplan;
pub mod directory;
pub mod flows;
pub mod packed;
pub mod request;

/// FreeSWITCH's "not found": it then tries the next binding (and finally its static files).
pub const NOT_FOUND: &str = "<document type=\"freeswitch/xml\">\n  <section name=\"result\">\n    <result status=\"not found\"/>\n  </section>\n</document>\n";

/// Appends `text` to `out`, XML-escaped for both attribute values and text. Characters that
/// XML 1.0 cannot carry at all (control characters other than tab, newline and carriage
/// return) are dropped.
pub fn escape_into(out: &mut String, text: &str) {
    // Byte by byte, copying runs of plain text whole: a Domain's recompile escapes every
    // user's values, and most of that text needs nothing.
    let bytes = text.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (replacement, width) = match bytes[i] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            b'\t' => ("&#9;", 1),
            b'\n' => ("&#10;", 1),
            b'\r' => ("&#13;", 1),
            // The other control characters: C0, DEL and C1 (U+0080–U+009F, 0xC2 0x80–0x9F).
            0x00..=0x1f | 0x7f => ("", 1),
            0xc2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => ("", 2),
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&text[run..i]);
        out.push_str(replacement);
        i += width;
        run = i;
    }
    out.push_str(&text[run..]);
}

/// [`escape_into`] a new string.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_special_character_is_escaped_and_controls_are_dropped() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &apos;Jerry&apos;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\td"), "abc&#9;d");
        assert_eq!(escape("Zoë 日本"), "Zoë 日本");
        assert_eq!(escape("a\u{85}b\u{9f}\u{a0}c\u{7f}"), "ab\u{a0}c");
    }

    proptest::proptest! {
        /// The same as escaping character by character, whatever the text.
        #[test]
        fn escaping_runs_equals_escaping_characters(text in "(?s).{0,64}") {
            let mut expected = String::new();
            for c in text.chars() {
                match c {
                    '&' => expected.push_str("&amp;"),
                    '<' => expected.push_str("&lt;"),
                    '>' => expected.push_str("&gt;"),
                    '"' => expected.push_str("&quot;"),
                    '\'' => expected.push_str("&apos;"),
                    '\t' => expected.push_str("&#9;"),
                    '\n' => expected.push_str("&#10;"),
                    '\r' => expected.push_str("&#13;"),
                    c if c.is_control() => {}
                    c => expected.push(c),
                }
            }
            proptest::prop_assert_eq!(escape(&text), expected);
        }
    }

    #[test]
    fn the_not_found_document_parses() {
        let doc = roxmltree::Document::parse(NOT_FOUND).ok();
        let status = doc.as_ref().and_then(|d| {
            d.descendants()
                .find(|n| n.has_tag_name("result") && n.attribute("status").is_some())
                .and_then(|n| n.attribute("status"))
        });
        assert_eq!(status, Some("not found"));
    }
}
