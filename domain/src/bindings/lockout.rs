//! PIN lockout for hot-desk logins: the limits, over the sliding-window arithmetic of
//! [`throttle::retry_after`](crate::services::throttle::retry_after) (not rewritten here).
//!
//! Failures are counted per Extension (the Domain's `pin_max_failures` in `pin_window_secs`,
//! default 5 in 15 minutes), per device and per client address. The device and address limits
//! are looser multiples of the Extension's — one phone or one office NAT is shared by several
//! people — but stop one place from guessing through many Extensions. While any of the three is
//! reached, attempts answer 423 with the longest wait, even with the right PIN. A success
//! clears the Extension's counter only, so guessing elsewhere is not forgiven.

use chrono::{DateTime, Duration, Utc};

use super::snapshot::positive_u32;
use crate::services::throttle::{Limit, retry_after};
use crate::store::calling_settings;

/// Throttle scope of PIN failures per Extension (subject: the Extension id).
pub const SCOPE_PIN_EXTENSION: &str = "pin.extension";
/// Throttle scope of PIN failures per device (subject: the device id).
pub const SCOPE_PIN_DEVICE: &str = "pin.device";
/// Throttle scope of PIN failures per client address (subject: the address).
pub const SCOPE_PIN_ADDRESS: &str = "pin.address";

/// The device limit is this many times the Extension's.
pub const DEVICE_FACTOR: u32 = 2;
/// The address limit is this many times the Extension's.
pub const ADDRESS_FACTOR: u32 = 4;

/// The three PIN limits of a Domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinLimits {
    /// Per Extension.
    pub extension: Limit,
    /// Per device.
    pub device: Limit,
    /// Per client address.
    pub address: Limit,
}

/// The PIN limits from a Domain's calling settings (5 in 900 s when a value is unusable).
pub fn pin_limits(settings: &calling_settings::Model) -> PinLimits {
    let max = positive_u32(Some(settings.pin_max_failures)).unwrap_or(5);
    let window = Duration::seconds(i64::from(
        positive_u32(Some(settings.pin_window_secs)).unwrap_or(900),
    ));
    let limit = |factor: u32| Limit {
        max_failures: max.saturating_mul(factor),
        window,
    };
    PinLimits {
        extension: limit(1),
        device: limit(DEVICE_FACTOR),
        address: limit(ADDRESS_FACTOR),
    }
}

/// Recent failure times (oldest first) of the three subjects of one attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct PinFailures<'a> {
    /// Of the Extension.
    pub extension: &'a [DateTime<Utc>],
    /// Of the device (empty for API logins without one).
    pub device: &'a [DateTime<Utc>],
    /// Of the client address.
    pub address: &'a [DateTime<Utc>],
}

/// Seconds until a PIN attempt is accepted (the longest of the three), or `None` to go ahead.
pub fn pin_retry_after(
    failures: PinFailures<'_>,
    now: DateTime<Utc>,
    limits: PinLimits,
) -> Option<u64> {
    [
        retry_after(failures.extension, now, limits.extension),
        retry_after(failures.device, now, limits.device),
        retry_after(failures.address, now, limits.address),
    ]
    .into_iter()
    .flatten()
    .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::testkit::at;
    use crate::services::calling_settings::defaults;
    use uuid::Uuid;

    fn t(secs: i64) -> DateTime<Utc> {
        at("2025-03-28T12:00:00Z") + Duration::seconds(secs)
    }

    #[test]
    fn limits_come_from_the_domain_settings() {
        let mut s = defaults(Uuid::nil());
        let l = pin_limits(&s);
        assert_eq!(
            (
                l.extension.max_failures,
                l.device.max_failures,
                l.address.max_failures
            ),
            (5, 10, 20)
        );
        assert_eq!(l.extension.window, Duration::seconds(900));
        s.pin_max_failures = 3;
        s.pin_window_secs = 0;
        let l = pin_limits(&s);
        assert_eq!(
            (l.extension.max_failures, l.address.window),
            (3, Duration::seconds(900))
        );
    }

    #[test]
    fn the_longest_wait_of_the_three_wins_even_with_the_right_pin() {
        let limits = pin_limits(&defaults(Uuid::nil()));
        let five: Vec<DateTime<Utc>> = (0..5).map(|i| t(i * 60)).collect();
        let ten: Vec<DateTime<Utc>> = (0..10).map(|i| t(i * 30)).collect();
        let none = PinFailures::default();
        assert_eq!(pin_retry_after(none, t(600), limits), None);
        // 5 Extension failures from t=0: locked until t=900.
        let by_extension = PinFailures {
            extension: &five,
            ..none
        };
        assert_eq!(pin_retry_after(by_extension, t(600), limits), Some(300));
        assert_eq!(pin_retry_after(by_extension, t(900), limits), None);
        // 5 failures on one device is below its limit of 10; 10 reach it.
        let device_five = PinFailures {
            device: &five,
            ..none
        };
        assert_eq!(pin_retry_after(device_five, t(600), limits), None);
        let device_ten = PinFailures {
            device: &ten,
            ..none
        };
        // Device: 10 failures from t=0 every 30 s: the oldest leaves the window at t=900.
        assert_eq!(pin_retry_after(device_ten, t(300), limits), Some(600));
        // Extension: 5 failures from t=200: the oldest leaves the window at t=1100.
        let late: Vec<DateTime<Utc>> = (0..5).map(|i| t(200 + i * 10)).collect();
        let both = PinFailures {
            extension: &late,
            device: &ten,
            ..none
        };
        assert_eq!(pin_retry_after(both, t(300), limits), Some(800));
        let address_twenty: Vec<DateTime<Utc>> = (0..20).map(|i| t(i * 10)).collect();
        let by_address = PinFailures {
            address: &address_twenty,
            ..none
        };
        assert_eq!(pin_retry_after(by_address, t(300), limits), Some(600));
    }
}
