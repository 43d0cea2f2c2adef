//! PIN lockout for hot-desk logins: the limits, over the sliding-window arithmetic of
//! [`throttle::retry_after`](crate::services::throttle::retry_after) (not rewritten here).
//!
//! Failures are counted per Extension (the Domain's `pin_max_failures` in `pin_window_secs`,
//! default 5 in 15 minutes), per device and per client address. The device and address limits
//! are looser multiples of the Extension's — one phone or one office NAT is shared by several
//! people — but stop one place from guessing through many Extensions. While any of the three is
//! reached, attempts answer 423 with the longest wait, even with the right PIN
//! ([`throttle::reserve`](crate::services::throttle::reserve) counts an attempt before the PIN
//! is checked). A success clears the Extension's counter only, so guessing elsewhere is not
//! forgiven.

use chrono::Duration;

use super::snapshot::positive_u32;
use crate::services::throttle::Limit;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::calling_settings::defaults;
    use uuid::Uuid;

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
}
