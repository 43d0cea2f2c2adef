//! The closed sets of choices in the calling model, with their stored names.

use crate::error::FieldError;

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every choice.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored and API name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses the stored and API name.
            pub fn parse(s: &str) -> Result<Self, FieldError> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(FieldError::new(
                        "",
                        "invalid_choice",
                        format!("must be one of: {}", [$($text),*].join(", ")),
                    )),
                }
            }
        }
    };
}

choice!(
    /// When a call is recorded.
    RecordingPolicy {
        /// Every call.
        Always => "always",
        /// Never.
        Never => "never",
        /// When the user asks (feature code).
        OnDemand => "on_demand",
    }
);

choice!(
    /// How a device is bound.
    DeviceMode {
        /// Permanently bound to an owner Extension.
        Fixed => "fixed",
        /// Bound to whoever is logged in.
        Hotdesk => "hotdesk",
    }
);

choice!(
    /// What a logged-out hot-desk phone may do (per device).
    LoggedOutMode {
        /// Follow the Domain's setting.
        Inherit => "inherit",
        /// Only the login codes and emergency numbers.
        Full => "full",
        /// Act as a designated placeholder Extension.
        Placeholder => "placeholder",
    }
);

choice!(
    /// When hot-desk sessions end by themselves (per device).
    AutoLogout {
        /// Follow the Domain's setting.
        Inherit => "inherit",
        /// Never.
        Never => "never",
        /// After a number of hours.
        AfterHours => "after_hours",
        /// Every day at a time of day in the Domain's time zone.
        DailyAt => "daily_at",
    }
);

choice!(
    /// How a Location's devices ring.
    RingStrategy {
        /// All at once.
        Simultaneous => "simultaneous",
        /// One after another, in device order.
        Sequential => "sequential",
    }
);

choice!(
    /// Who may sign in to a Location.
    SignInPolicy {
        /// Every Extension of the Domain.
        Everyone => "everyone",
        /// Only listed Extensions and holders of listed roles.
        Listed => "listed",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for c in AutoLogout::ALL {
            assert_eq!(AutoLogout::parse(c.as_str()).ok(), Some(*c));
        }
        let err = DeviceMode::parse("shared").err();
        assert_eq!(
            err.map(|e| e.message),
            Some("must be one of: fixed, hotdesk".to_owned())
        );
    }
}
