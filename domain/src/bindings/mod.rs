//! The runtime bindings between people (Extensions) and phones (Devices), as pure rules.
//!
//! Everything here is a plain function over a [`Bindings`] snapshot of one Domain, with `now`
//! (and the Domain's time zone) as parameters: no database, no clock, no FreeSWITCH. The
//! services load the snapshot, call these rules, and persist what they decide.
//!
//! - [`ring_plan`](ring_plan::ring_plan): who rings when an Extension is dialled, and its dial
//!   string;
//! - [`calling_identity`](identity::calling_identity): which identity a Device calls with;
//! - [`hotdesk`]: the login/logout decision and auto-logout;
//! - [`signin`]: the Location sign-in decision;
//! - [`lockout`]: the PIN lockout limits over the shared throttle arithmetic;
//! - [`presence`]: user and telephone status, over the same endpoints as the ring plan.

pub mod hotdesk;
pub mod identity;
pub mod lockout;
pub mod presence;
pub mod ring_plan;
pub mod signin;
pub mod snapshot;

/// Snapshot builders for tests (also for other crates' tests, with the `testkit` feature).
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use snapshot::Bindings;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// "09:02" when `at` is on the same local day as `now`, else "28 Mar 09:02".
pub(crate) fn clock_time(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%-d %b %H:%M").to_string()
    }
}

/// "2025-03-28 09:02" in the Domain's time zone.
pub(crate) fn local_date_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// "1st", "2nd", "3rd", "4th", "11th", "21st", ….
pub(crate) fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }
}
