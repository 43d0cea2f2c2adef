//! Location sign-in: an Extension is signed in to at most one Location at a time.
//!
//! Signing in elsewhere replaces the previous sign-in; signing in again where one already is
//! changes nothing (PUT is idempotent, `since` stays). The Location's sign-in policy decides who
//! may: `everyone`, or `listed` — the Extensions listed on it and the holders (through the
//! Extension's User) of its listed roles. Devices bound directly to the Extension are not
//! affected: they are not part of the sign-in.
//!
//! Status choices: the Location is named in the body, so an unknown Location or one the policy
//! closes is a 422 on `location_id`; a disabled or placeholder Extension is a 409.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::snapshot::{Bindings, LocationSignIn};
use crate::error::DomainError;
use crate::telephony::policy::SignInPolicy;

/// A sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRequest {
    /// The Extension.
    pub extension_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
    /// The role keys the Extension's User holds in the Domain (empty without a User).
    pub roles: BTreeSet<String>,
    /// The time of the sign-in.
    pub now: DateTime<Utc>,
}

/// What a sign-in does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SignInDecision {
    /// Already signed in there: nothing changes.
    AlreadySignedIn {
        /// The existing sign-in.
        sign_in: LocationSignIn,
    },
    /// Sign in, replacing the previous sign-in if any.
    SignIn {
        /// The new sign-in.
        sign_in: LocationSignIn,
        /// The sign-in it replaces.
        replaces: Option<LocationSignIn>,
    },
}

/// Why a sign-in is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignInRefusal {
    /// No such Extension in the Domain (404).
    #[error("Extension not found")]
    ExtensionNotFound,
    /// The Extension is disabled (409).
    #[error("the Extension is disabled")]
    ExtensionDisabled,
    /// Placeholders stand in for phones; they do not sign in (409).
    #[error("a placeholder Extension cannot sign in to a Location")]
    ExtensionIsPlaceholder,
    /// No such Location in the Domain (422 on `location_id`).
    #[error("no such Location in this Domain")]
    LocationNotFound,
    /// The Location's sign-in policy does not list the Extension or its roles (422).
    #[error("this Location only allows listed Extensions and roles")]
    NotListed,
}

impl SignInRefusal {
    /// The HTTP status the edge answers with.
    pub const fn status(&self) -> u16 {
        match self {
            Self::ExtensionNotFound => 404,
            Self::ExtensionDisabled | Self::ExtensionIsPlaceholder => 409,
            Self::LocationNotFound | Self::NotListed => 422,
        }
    }

    /// A stable code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::ExtensionNotFound | Self::LocationNotFound => "not_found",
            Self::ExtensionDisabled => "extension_disabled",
            Self::ExtensionIsPlaceholder => "extension_is_placeholder",
            Self::NotListed => "sign_in_not_allowed",
        }
    }
}

impl From<SignInRefusal> for DomainError {
    fn from(r: SignInRefusal) -> Self {
        match r {
            SignInRefusal::ExtensionNotFound => DomainError::NotFound("extension"),
            SignInRefusal::LocationNotFound | SignInRefusal::NotListed => {
                DomainError::invalid("location_id", r.code(), r.to_string())
            }
            _ => DomainError::conflict(r.code(), r.to_string()),
        }
    }
}

/// Decides a Location sign-in.
pub fn decide_sign_in(b: &Bindings, req: &SignInRequest) -> Result<SignInDecision, SignInRefusal> {
    let ext = b
        .extensions
        .get(&req.extension_id)
        .ok_or(SignInRefusal::ExtensionNotFound)?;
    if !ext.enabled {
        return Err(SignInRefusal::ExtensionDisabled);
    }
    if ext.placeholder {
        return Err(SignInRefusal::ExtensionIsPlaceholder);
    }
    let location = b
        .locations
        .get(&req.location_id)
        .ok_or(SignInRefusal::LocationNotFound)?;
    if location.sign_in_policy == SignInPolicy::Listed
        && !location.allowed_extension_ids.contains(&ext.id)
        && location.allowed_roles.is_disjoint(&req.roles)
    {
        return Err(SignInRefusal::NotListed);
    }
    let current = b.sign_ins.get(&ext.id);
    if let Some(c) = current.filter(|c| c.location_id == location.id) {
        return Ok(SignInDecision::AlreadySignedIn { sign_in: c.clone() });
    }
    Ok(SignInDecision::SignIn {
        sign_in: LocationSignIn {
            extension_id: ext.id,
            location_id: location.id,
            since: req.now,
        },
        replaces: current.cloned(),
    })
}

/// The sign-in a sign-out ends, or `None` when the Extension is not signed in (idempotent).
pub fn decide_sign_out(b: &Bindings, extension_id: Uuid) -> Option<LocationSignIn> {
    b.sign_ins.get(&extension_id).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::{Kit, at};
    use crate::telephony::policy::RingStrategy;

    const NOW: &str = "2025-03-28T14:00:00Z";

    fn request(ext: Uuid, location: Uuid, roles: &[&str]) -> SignInRequest {
        SignInRequest {
            extension_id: ext,
            location_id: location,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            now: at(NOW),
        }
    }

    #[test]
    fn sign_in_decisions() {
        let mut k = Kit::new();
        let alice = k.ext("201", "Alice");
        let bob = k.ext("202", "Bob");
        let lobby = k.ext("299", "Lobby");
        k.ext_mut(lobby).placeholder = true;
        let gone = k.ext("203", "Gone");
        k.ext_mut(gone).enabled = false;
        let open = k.location("Office 3", RingStrategy::Simultaneous);
        let closed = k.location("Board room", RingStrategy::Simultaneous);
        if let Some(l) = k.b.locations.get_mut(&closed) {
            l.sign_in_policy = SignInPolicy::Listed;
            l.allowed_extension_ids.insert(bob);
            l.allowed_roles.insert("receptionist".into());
        }
        k.sign_in(bob, open, "2025-03-28T07:00:00Z");

        let describe = |r: Result<SignInDecision, SignInRefusal>| match r {
            Err(e) => format!("refused {} {}", e.status(), e.code()),
            Ok(SignInDecision::AlreadySignedIn { sign_in }) => {
                format!("already since {}", sign_in.since)
            }
            Ok(SignInDecision::SignIn { sign_in, replaces }) => format!(
                "sign in since {}{}",
                sign_in.since,
                replaces.map_or(String::new(), |r| format!(", replacing {}", r.since))
            ),
        };
        let cases = [
            (
                "first sign-in",
                request(alice, open, &[]),
                "sign in since 2025-03-28 14:00:00 UTC",
            ),
            (
                "again: unchanged",
                request(bob, open, &[]),
                "already since 2025-03-28 07:00:00 UTC",
            ),
            (
                "elsewhere: replaces",
                request(bob, closed, &[]),
                "sign in since 2025-03-28 14:00:00 UTC, replacing 2025-03-28 07:00:00 UTC",
            ),
            (
                "listed: not listed",
                request(alice, closed, &["member"]),
                "refused 422 sign_in_not_allowed",
            ),
            (
                "listed: by role",
                request(alice, closed, &["member", "receptionist"]),
                "sign in since 2025-03-28 14:00:00 UTC",
            ),
            (
                "placeholder",
                request(lobby, open, &[]),
                "refused 409 extension_is_placeholder",
            ),
            (
                "disabled",
                request(gone, open, &[]),
                "refused 409 extension_disabled",
            ),
            (
                "unknown Extension",
                request(Uuid::from_u128(99), open, &[]),
                "refused 404 not_found",
            ),
            (
                "unknown Location",
                request(alice, Uuid::from_u128(99), &[]),
                "refused 422 not_found",
            ),
        ];
        for (name, req, want) in cases {
            assert_eq!(describe(decide_sign_in(&k.b, &req)), want, "{name}");
        }
        assert_eq!(
            decide_sign_out(&k.b, bob).map(|s| s.location_id),
            Some(open)
        );
        assert_eq!(decide_sign_out(&k.b, alice), None);
        assert!(matches!(
            DomainError::from(SignInRefusal::NotListed),
            DomainError::Validation(e) if e[0].field == "location_id"
        ));
    }
}
