//! Email addresses of dashboard users.

use std::fmt;

use crate::error::FieldError;

/// A syntactically valid, lower-cased email address.
///
/// Stored lower-cased so that the database's unique constraint is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses and normalises (trim, lower-case) an email address.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim().to_lowercase();
        let invalid = |message: &str| FieldError::new("email", "invalid_email", message);
        if value.is_empty() {
            return Err(invalid("an email address is required"));
        }
        if value.len() > 254 {
            return Err(invalid("an email address has at most 254 characters"));
        }
        let Some((local, host)) = value.rsplit_once('@') else {
            return Err(invalid("an email address needs an @"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(invalid(
                "the part before @ must be 1 to 64 characters without @",
            ));
        }
        if value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(invalid(
                "an email address cannot contain spaces, control characters or angle brackets",
            ));
        }
        let labels: Vec<&str> = host.split('.').collect();
        let host_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !host_ok {
            return Err(invalid(
                "the part after @ must be a domain name such as example.com",
            ));
        }
        Ok(Self(value))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_are_lower_cased_and_trimmed() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0).ok(),
            Some("ada@example.com".to_owned())
        );
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@-x.com",
            "ada@ex..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
