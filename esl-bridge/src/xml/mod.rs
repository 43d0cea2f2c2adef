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
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
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
