//! Where a call can be sent: one type used by Numbers today and by forwards, ring groups, IVR
//! menus and time conditions as they arrive (DESIGN §6 "Destinations").
//!
//! Stored in three columns (`destination_type`, `destination_id`, `destination_value`) so that a
//! new kind is a new `destination_type` value with an id (a ring group, an IVR) or a value (a
//! number, a cause), never a schema change; the API shows it as a tagged object:
//! `{"type":"extension","extension_id":"…"}`, `{"type":"external","number":"+4930…"}`,
//! `{"type":"hang_up","cause":"busy"}`, `{"type":"ring_group","ring_group_id":"…"}`,
//! `{"type":"ivr","ivr_id":"…"}`, `{"type":"time_condition","time_condition_id":"…"}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::FieldError;
use crate::routing::dialplan::HangupCause;

/// How a hang-up destination ends the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangUpWith {
    /// Busy tone (SIP 486).
    Busy,
    /// "Number not in service" (SIP 404).
    Unallocated,
    /// Refused (SIP 603).
    Rejected,
    /// Answered then ended normally.
    Normal,
}

impl HangUpWith {
    /// Every choice.
    pub const ALL: &'static [HangUpWith] = &[
        HangUpWith::Busy,
        HangUpWith::Unallocated,
        HangUpWith::Rejected,
        HangUpWith::Normal,
    ];

    /// The stored and API name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Busy => "busy",
            Self::Unallocated => "unallocated",
            Self::Rejected => "rejected",
            Self::Normal => "normal",
        }
    }

    /// Parses the stored and API name.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                FieldError::new(
                    "cause",
                    "invalid_choice",
                    "must be one of: busy, unallocated, rejected, normal",
                )
            })
    }

    /// The FreeSWITCH cause it ends with.
    pub const fn cause(self) -> HangupCause {
        match self {
            Self::Busy => HangupCause::UserBusy,
            Self::Unallocated => HangupCause::UnallocatedNumber,
            Self::Rejected => HangupCause::CallRejected,
            Self::Normal => HangupCause::NormalClearing,
        }
    }
}

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    /// Ring an Extension (its ring plan, with its busy / no-answer outcomes).
    Extension {
        /// The Extension.
        extension_id: Uuid,
    },
    /// Straight to an Extension's voicemail box.
    Voicemail {
        /// The Extension whose box it is.
        extension_id: Uuid,
    },
    /// An external number, dialled through the Domain's Outbound Routes.
    External {
        /// The number, as the Domain's phones would dial it (normalised by the route).
        number: String,
    },
    /// End the call.
    HangUp {
        /// How.
        cause: HangUpWith,
    },
    /// A ring group of the Domain.
    RingGroup {
        /// The ring group.
        ring_group_id: Uuid,
    },
    /// An IVR menu of the Domain.
    Ivr {
        /// The IVR menu.
        ivr_id: Uuid,
    },
    /// A time condition of the Domain.
    TimeCondition {
        /// The time condition.
        time_condition_id: Uuid,
    },
}

/// A destination as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoredDestination {
    /// `extension`, `voicemail`, `external`, `hang_up`.
    pub kind: String,
    /// The id of what it points at (Extension, later ring group, IVR…).
    pub id: Option<Uuid>,
    /// A value (a number, a cause).
    pub value: Option<String>,
}

impl Destination {
    /// The stored name of its kind.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Extension { .. } => "extension",
            Self::Voicemail { .. } => "voicemail",
            Self::External { .. } => "external",
            Self::HangUp { .. } => "hang_up",
            Self::RingGroup { .. } => "ring_group",
            Self::Ivr { .. } => "ivr",
            Self::TimeCondition { .. } => "time_condition",
        }
    }

    /// The call flow (ring group, IVR menu, time condition) it points at, if any.
    pub const fn flow_id(&self) -> Option<Uuid> {
        match self {
            Self::RingGroup { ring_group_id: id }
            | Self::Ivr { ivr_id: id }
            | Self::TimeCondition {
                time_condition_id: id,
            } => Some(*id),
            _ => None,
        }
    }

    /// The flow kind it points at (`ring_group`, `ivr`, `time_condition`), if any.
    pub const fn flow_kind(&self) -> Option<&'static str> {
        match self {
            Self::RingGroup { .. } | Self::Ivr { .. } | Self::TimeCondition { .. } => {
                Some(self.kind())
            }
            _ => None,
        }
    }

    /// The Extension it points at, if any (for checks that it exists in the same Domain, and
    /// for "in use" answers when an Extension is deleted).
    pub const fn extension_id(&self) -> Option<Uuid> {
        match self {
            Self::Extension { extension_id } | Self::Voicemail { extension_id } => {
                Some(*extension_id)
            }
            _ => None,
        }
    }

    /// Its stored form.
    pub fn to_stored(&self) -> StoredDestination {
        let kind = self.kind().to_owned();
        match self {
            Self::Extension { extension_id } | Self::Voicemail { extension_id } => {
                StoredDestination {
                    kind,
                    id: Some(*extension_id),
                    value: None,
                }
            }
            Self::External { number } => StoredDestination {
                kind,
                id: None,
                value: Some(number.clone()),
            },
            Self::HangUp { cause } => StoredDestination {
                kind,
                id: None,
                value: Some(cause.as_str().to_owned()),
            },
            Self::RingGroup { ring_group_id: id }
            | Self::Ivr { ivr_id: id }
            | Self::TimeCondition {
                time_condition_id: id,
            } => StoredDestination {
                kind,
                id: Some(*id),
                value: None,
            },
        }
    }

    /// Reads a stored destination; `None` for a row this version cannot read (written by a
    /// newer version, or damaged), which callers treat as "hang up, unallocated".
    pub fn from_stored(kind: &str, id: Option<Uuid>, value: Option<&str>) -> Option<Self> {
        Some(match kind {
            "extension" => Self::Extension { extension_id: id? },
            "voicemail" => Self::Voicemail { extension_id: id? },
            "external" => Self::External {
                number: value?.to_owned(),
            },
            "hang_up" => Self::HangUp {
                cause: HangUpWith::parse(value?).ok()?,
            },
            "ring_group" => Self::RingGroup { ring_group_id: id? },
            "ivr" => Self::Ivr { ivr_id: id? },
            "time_condition" => Self::TimeCondition {
                time_condition_id: id?,
            },
            _ => return None,
        })
    }

    /// Checks the parts that need no database: an external number is 2–20 dialable
    /// characters (`+`, digits, `*`, `#`). Whether an Extension exists in the Domain is the
    /// service's check.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Self::External { number } = self {
            let n = number.trim();
            let digits = n.strip_prefix('+').unwrap_or(n);
            if digits.len() < 2
                || n.len() > 20
                || !digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
            {
                return Err(FieldError::new(
                    "destination.number",
                    "invalid_number",
                    "an external number is + and digits, or the digits a phone would dial",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_destination_round_trips_through_its_stored_form() {
        let id = Uuid::from_u128(7);
        for d in [
            Destination::Extension { extension_id: id },
            Destination::Voicemail { extension_id: id },
            Destination::External {
                number: "+4930123456".into(),
            },
            Destination::HangUp {
                cause: HangUpWith::Busy,
            },
            Destination::RingGroup { ring_group_id: id },
            Destination::Ivr { ivr_id: id },
            Destination::TimeCondition {
                time_condition_id: id,
            },
        ] {
            let s = d.to_stored();
            assert_eq!(
                Destination::from_stored(&s.kind, s.id, s.value.as_deref()),
                Some(d)
            );
        }
        assert_eq!(Destination::from_stored("fax", Some(id), None), None);
        assert_eq!(Destination::from_stored("ivr", None, None), None);
        assert_eq!(Destination::from_stored("extension", None, None), None);
        assert_eq!(Destination::from_stored("hang_up", None, Some("x")), None);
    }

    #[test]
    fn the_api_form_is_a_tagged_object() {
        let Ok(d) =
            serde_json::from_str::<Destination>(r#"{"type":"hang_up","cause":"unallocated"}"#)
        else {
            panic!("a hang-up destination parses");
        };
        assert_eq!(
            d,
            Destination::HangUp {
                cause: HangUpWith::Unallocated
            }
        );
        assert_eq!(d.to_stored().value.as_deref(), Some("unallocated"));
        assert_eq!(d.kind(), "hang_up");
    }

    #[test]
    fn external_numbers_must_be_dialable() {
        let ext = |n: &str| Destination::External { number: n.into() };
        assert!(ext("+4930123456").validate().is_ok());
        assert!(ext("0049301234").validate().is_ok());
        assert!(ext("1").validate().is_err());
        assert!(ext("+49 30").validate().is_err());
        assert!(ext("sip:evil@example.com").validate().is_err());
        assert!(ext(&"1".repeat(21)).validate().is_err());
    }
}
