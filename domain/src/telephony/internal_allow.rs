//! Which internal numbers an Extension may dial.
//!
//! An Extension without a list may dial every internal number (the default). With a list, it
//! may dial only the numbers the list names: single numbers (`"100"`) and inclusive ranges of
//! numbers of the same length (`"200-299"`). An empty list allows no internal number at all;
//! the Domain's emergency numbers are never refused, and outside numbers follow the toll
//! classes as before. This is how a placeholder is limited to, say, reception.

use serde::Serialize;

use super::values::ExtensionNumber;
use crate::error::FieldError;

/// The most entries a list may hold.
pub const MAX_ENTRIES: usize = 100;

/// One entry: a number, or an inclusive range of numbers of one length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
enum Entry {
    Number(String),
    Range(String, String),
}

impl Entry {
    fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let number = |n: &str| {
            ExtensionNumber::parse(n).map(ExtensionNumber::into_string).map_err(|_| {
                FieldError::new(
                    "",
                    "invalid_entry",
                    format!(
                        "{s:?} is neither an extension number (2 to 10 digits, not starting with 0) nor a range like 200-299"
                    ),
                )
            })
        };
        match s.split_once('-') {
            None => number(s).map(Self::Number),
            Some((low, high)) => {
                let (low, high) = (number(low)?, number(high)?);
                if low.len() != high.len() || low > high {
                    return Err(FieldError::new(
                        "",
                        "invalid_range",
                        format!(
                            "{s:?}: a range runs from a lower to a higher number of the same length"
                        ),
                    ));
                }
                Ok(Self::Range(low, high))
            }
        }
    }

    fn permits(&self, number: &str) -> bool {
        match self {
            Self::Number(n) => n == number,
            Self::Range(low, high) => {
                number.len() == low.len() && low.as_str() <= number && number <= high.as_str()
            }
        }
    }

    fn text(&self) -> String {
        match self {
            Self::Number(n) => n.clone(),
            Self::Range(low, high) => format!("{low}-{high}"),
        }
    }
}

/// The internal numbers an Extension may dial (see the module).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InternalAllow {
    entries: Vec<Entry>,
}

impl InternalAllow {
    /// Parses a list as the API gives it; duplicates are kept once, order is kept.
    pub fn parse(list: &[String]) -> Result<Self, FieldError> {
        if list.len() > MAX_ENTRIES {
            return Err(FieldError::new(
                "",
                "too_many",
                format!("at most {MAX_ENTRIES} numbers or ranges"),
            ));
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(list.len());
        for s in list {
            let entry = Entry::parse(s)?;
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        Ok(Self { entries })
    }

    /// Reads the stored JSON list; `None` for no list (every number) or a value that does not
    /// read as one (which then restricts nothing it did not before: the services only ever
    /// store what [`InternalAllow::parse`] accepted).
    pub fn from_stored(stored: Option<&str>) -> Option<Self> {
        let list: Vec<String> = serde_json::from_str(stored?).ok()?;
        Self::parse(&list).ok()
    }

    /// The list as stored: a JSON array of strings.
    pub fn to_stored(&self) -> String {
        serde_json::Value::from(self.texts()).to_string()
    }

    /// The entries as the API shows them.
    pub fn texts(&self) -> Vec<String> {
        self.entries.iter().map(Entry::text).collect()
    }

    /// True when `number` is on the list.
    pub fn permits(&self, number: &str) -> bool {
        self.entries.iter().any(|e| e.permits(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn numbers_and_ranges_permit_exactly_what_they_name() {
        let allow = InternalAllow::parse(&list(&["100", "200-299", "100"])).unwrap_or_default();
        assert_eq!(allow.texts(), list(&["100", "200-299"]));
        for (number, want) in [
            ("100", true),
            ("101", false),
            ("200", true),
            ("250", true),
            ("299", true),
            ("300", false),
            ("2000", false),
            ("20", false),
        ] {
            assert_eq!(allow.permits(number), want, "{number}");
        }
        assert!(
            !InternalAllow::default().permits("100"),
            "an empty list allows nothing"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_their_code() {
        for (bad, code) in [
            ("1", "invalid_entry"),
            ("0100", "invalid_entry"),
            ("abc", "invalid_entry"),
            ("299-200", "invalid_range"),
            ("200-2999", "invalid_range"),
            ("200-", "invalid_entry"),
        ] {
            let err = InternalAllow::parse(&list(&[bad])).err();
            assert_eq!(err.map(|e| e.code), Some(code.to_owned()), "{bad}");
        }
        let many: Vec<String> = (100..=200).map(|n| n.to_string()).collect();
        assert_eq!(
            InternalAllow::parse(&many).err().map(|e| e.code),
            Some("too_many".to_owned())
        );
    }

    #[test]
    fn the_stored_form_reads_back() {
        let allow = InternalAllow::parse(&list(&["100", "200-299"])).unwrap_or_default();
        assert_eq!(allow.to_stored(), r#"["100","200-299"]"#);
        assert_eq!(
            InternalAllow::from_stored(Some(&allow.to_stored())),
            Some(allow)
        );
        assert_eq!(InternalAllow::from_stored(None), None);
    }
}
