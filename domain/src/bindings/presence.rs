//! Presence: what a person says (available, away, DND) and what their phones do.
//!
//! The telephone status of an Extension is aggregated over exactly the SIP users of its ring
//! plan ([`RingPlan::sip_users`]) — the bound endpoints, also while DND or forward-always keeps
//! them from ringing — so presence and "who rings" can never disagree (the owner-vs-hot-desk
//! mismatch of other systems). A hot-desk phone counts for whoever is logged in, not for anyone
//! else; a Location's phones count for whoever is signed in there.
//!
//! Facts come from FreeSWITCH later: registrations ([`Bindings::registered`]) and line states
//! ([`LineStates`]), both keyed by lower-case SIP user. A line with a call counts even if its
//! registration has not been seen yet (events can arrive out of order).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::ring_plan::{ExtensionRef, RingPlan, ring_plan};
use super::snapshot::{Bindings, ExtensionFacts};

/// The call state of one SIP user, as FreeSWITCH reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// No call.
    Idle,
    /// A call is ringing (or in early media).
    Ringing,
    /// A call is answered.
    InCall,
}

/// Line states by lower-case SIP user.
pub type LineStates = BTreeMap<String, LineState>;

/// The telephone status of an endpoint or an Extension; the busiest state wins
/// (`in_call` > `ringing` > `available` > `offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TelephoneStatus {
    /// Nothing registered.
    Offline,
    /// Registered and idle.
    Available,
    /// Ringing.
    Ringing,
    /// In a call.
    InCall,
}

/// The status of one endpoint from its facts.
pub fn endpoint_status(registered: bool, line: Option<LineState>) -> TelephoneStatus {
    match line {
        Some(LineState::InCall) => TelephoneStatus::InCall,
        Some(LineState::Ringing) => TelephoneStatus::Ringing,
        _ if registered => TelephoneStatus::Available,
        _ => TelephoneStatus::Offline,
    }
}

/// One endpoint's contribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointPresence {
    /// The SIP user.
    pub sip_user: String,
    /// Its status.
    pub status: TelephoneStatus,
}

/// The telephone status over the plan's SIP users, with each endpoint's status.
pub fn telephone_status(
    b: &Bindings,
    plan: &RingPlan,
    lines: &LineStates,
) -> (TelephoneStatus, Vec<EndpointPresence>) {
    let endpoints: Vec<EndpointPresence> = plan
        .sip_users()
        .into_iter()
        .map(|user| {
            let key = user.to_ascii_lowercase();
            EndpointPresence {
                sip_user: user.to_owned(),
                status: endpoint_status(b.registered.contains(&key), lines.get(&key).copied()),
            }
        })
        .collect();
    let overall = endpoints
        .iter()
        .map(|e| e.status)
        .max()
        .unwrap_or(TelephoneStatus::Offline);
    (overall, endpoints)
}

/// What a person set (stored with the Extension later; DND itself is the Extension's flag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PresenceNote {
    /// Away.
    pub away: bool,
    /// A message ("back at 2pm").
    pub message: Option<String>,
}

/// The user-set status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UserStatus {
    /// Available.
    Available {
        /// A message, if any.
        message: Option<String>,
    },
    /// Away (calls still ring).
    Away {
        /// A message, if any.
        message: Option<String>,
    },
    /// Do-Not-Disturb (calls get busy): the Extension's `dnd` flag.
    Dnd {
        /// A message, if any.
        message: Option<String>,
    },
}

/// The user status of an Extension: DND from its flag, away and the message from the note.
pub fn user_status(ext: &ExtensionFacts, note: Option<&PresenceNote>) -> UserStatus {
    let message = note.and_then(|n| n.message.clone());
    if ext.dnd {
        UserStatus::Dnd { message }
    } else if note.is_some_and(|n| n.away) {
        UserStatus::Away { message }
    } else {
        UserStatus::Available { message }
    }
}

/// What to store for a user status: the Extension's `dnd` flag and the note.
pub fn store_user_status(status: &UserStatus) -> (bool, PresenceNote) {
    match status {
        UserStatus::Available { message } => (
            false,
            PresenceNote {
                away: false,
                message: message.clone(),
            },
        ),
        UserStatus::Away { message } => (
            false,
            PresenceNote {
                away: true,
                message: message.clone(),
            },
        ),
        UserStatus::Dnd { message } => (
            true,
            PresenceNote {
                away: false,
                message: message.clone(),
            },
        ),
    }
}

/// The presence of one Extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionPresence {
    /// The Extension.
    pub extension: ExtensionRef,
    /// What the person set.
    pub user: UserStatus,
    /// What the phones do.
    pub telephone: TelephoneStatus,
    /// Each bound endpoint.
    pub endpoints: Vec<EndpointPresence>,
}

/// The presence of an enabled Extension (`None` if unknown or disabled).
pub fn presence(
    b: &Bindings,
    extension_id: Uuid,
    lines: &LineStates,
    note: Option<&PresenceNote>,
    now: DateTime<Utc>,
) -> Option<ExtensionPresence> {
    let plan = ring_plan(b, extension_id, now);
    let extension = plan.extension.clone()?;
    let ext = b.extensions.get(&extension_id)?;
    let (telephone, endpoints) = telephone_status(b, &plan, lines);
    Some(ExtensionPresence {
        extension,
        user: user_status(ext, note),
        telephone,
        endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::snapshot::SessionOrigin;
    use crate::bindings::testkit::{Kit, at};
    use crate::telephony::policy::RingStrategy;

    const NOW: &str = "2025-03-28T14:00:00Z";

    #[test]
    fn endpoint_status_from_facts() {
        use LineState::{Idle, InCall, Ringing};
        use TelephoneStatus as T;
        let cases = [
            (false, None, T::Offline),
            (true, None, T::Available),
            (true, Some(Idle), T::Available),
            (false, Some(Idle), T::Offline),
            (true, Some(Ringing), T::Ringing),
            (true, Some(InCall), T::InCall),
            // The call event came before the registration event.
            (false, Some(InCall), T::InCall),
        ];
        for (registered, line, want) in cases {
            assert_eq!(
                endpoint_status(registered, line),
                want,
                "{registered} {line:?}"
            );
        }
        assert!(T::InCall > T::Ringing && T::Ringing > T::Available && T::Available > T::Offline);
    }

    struct Domain {
        kit: Kit,
        alice: Uuid,
        bob: Uuid,
    }

    /// Alice: fixed `dfix1`, hot-desk `dhot4`, signed in to Office 3 (`dloc1`, `dloc2`).
    /// Bob: direct registration, logged in to `dhot5`, which is also in Office 3.
    fn domain() -> Domain {
        let mut kit = Kit::new();
        let alice = kit.ext("201", "Alice");
        let bob = kit.ext("202", "Bob");
        kit.ext_mut(bob).sip_registration_enabled = true;
        kit.fixed("Office", "dfix1", alice);
        let d4 = kit.hotdesk("Desk 4", "dhot4");
        kit.login(d4, alice, "2025-03-28T08:00:00Z", SessionOrigin::Api);
        let l = kit.location("Office 3", RingStrategy::Sequential);
        for (i, sip) in ["dloc1", "dloc2"].into_iter().enumerate() {
            let d = kit.hotdesk(sip, sip);
            kit.place(d, l, i32::try_from(i).unwrap_or(0), None);
        }
        let d5 = kit.hotdesk("Desk 5", "dhot5");
        kit.place(d5, l, 9, None);
        kit.login(d5, bob, "2025-03-28T08:00:00Z", SessionOrigin::Api);
        kit.sign_in(alice, l, "2025-03-28T07:00:00Z");
        Domain { kit, alice, bob }
    }

    fn lines(states: &[(&str, LineState)]) -> LineStates {
        states.iter().map(|(u, s)| ((*u).to_owned(), *s)).collect()
    }

    #[test]
    fn telephone_status_aggregates_over_the_ring_plan() {
        use LineState::{InCall, Ringing};
        use TelephoneStatus as T;
        // (name, registered, lines, Alice, Bob)
        let cases: Vec<(&str, &[&str], LineStates, T, T)> = vec![
            (
                "nothing registered",
                &[],
                lines(&[]),
                T::Offline,
                T::Offline,
            ),
            (
                "Alice's fixed phone",
                &["dfix1"],
                lines(&[]),
                T::Available,
                T::Offline,
            ),
            (
                "a Location phone counts for Alice",
                &["dloc2"],
                lines(&[]),
                T::Available,
                T::Offline,
            ),
            (
                "ringing beats available",
                &["dfix1", "dhot4"],
                lines(&[("dhot4", Ringing)]),
                T::Ringing,
                T::Offline,
            ),
            (
                "in call beats ringing",
                &["dfix1", "dhot4"],
                lines(&[("dhot4", Ringing), ("dfix1", InCall)]),
                T::InCall,
                T::Offline,
            ),
            (
                "Bob's session phone in the Location counts for Bob only",
                &["dhot5"],
                lines(&[("dhot5", InCall)]),
                T::Offline,
                T::InCall,
            ),
            (
                "Bob's direct registration",
                &["202"],
                lines(&[]),
                T::Offline,
                T::Available,
            ),
            (
                "an unbound phone counts for nobody",
                &["dother"],
                lines(&[("dother", InCall)]),
                T::Offline,
                T::Offline,
            ),
        ];
        for (name, registered, lines, alice, bob) in cases {
            let mut d = domain();
            d.kit.b.registered = registered.iter().map(|u| (*u).to_owned()).collect();
            let status = |ext| presence(&d.kit.b, ext, &lines, None, at(NOW)).map(|p| p.telephone);
            assert_eq!(
                (status(d.alice), status(d.bob)),
                (Some(alice), Some(bob)),
                "{name}"
            );
        }
    }

    #[test]
    fn presence_and_ring_plan_list_the_same_endpoints() {
        let d = domain();
        for ext in [d.alice, d.bob] {
            let plan = ring_plan(&d.kit.b, ext, at(NOW));
            let p = presence(&d.kit.b, ext, &LineStates::new(), None, at(NOW));
            let endpoints: Vec<String> = p
                .map(|p| p.endpoints.into_iter().map(|e| e.sip_user).collect())
                .unwrap_or_default();
            assert_eq!(endpoints, plan.sip_users(), "{ext}");
        }
        let plan = ring_plan(&d.kit.b, d.alice, at(NOW));
        assert_eq!(plan.sip_users(), ["dfix1", "dhot4", "dloc1", "dloc2"]);
    }

    #[test]
    fn dnd_keeps_the_telephone_status_of_the_bound_phones() {
        let mut d = domain();
        d.kit.ext_mut(d.alice).dnd = true;
        d.kit.b.registered = ["dfix1".to_owned()].into();
        let note = PresenceNote {
            away: true,
            message: Some("in a meeting".into()),
        };
        let p = presence(
            &d.kit.b,
            d.alice,
            &lines(&[("dfix1", LineState::InCall)]),
            Some(&note),
            at(NOW),
        );
        assert_eq!(
            p.map(|p| (p.user, p.telephone)),
            Some((
                UserStatus::Dnd {
                    message: Some("in a meeting".into())
                },
                TelephoneStatus::InCall
            ))
        );
    }

    #[test]
    fn disabled_or_unknown_extensions_have_no_presence() {
        let mut d = domain();
        d.kit.ext_mut(d.alice).enabled = false;
        assert_eq!(
            presence(&d.kit.b, d.alice, &LineStates::new(), None, at(NOW)),
            None
        );
        assert_eq!(
            presence(
                &d.kit.b,
                Uuid::from_u128(99),
                &LineStates::new(),
                None,
                at(NOW)
            ),
            None
        );
    }

    #[test]
    fn user_status_round_trips_through_the_dnd_flag_and_the_note() {
        let mut kit = Kit::new();
        let a = kit.ext("201", "Alice");
        let msg = Some("back at 2pm".to_owned());
        for status in [
            UserStatus::Available { message: None },
            UserStatus::Away {
                message: msg.clone(),
            },
            UserStatus::Dnd {
                message: msg.clone(),
            },
        ] {
            let (dnd, note) = store_user_status(&status);
            kit.ext_mut(a).dnd = dnd;
            let ext = kit.b.extensions.get(&a).cloned();
            assert_eq!(ext.map(|e| user_status(&e, Some(&note))), Some(status));
        }
        // DND set elsewhere (the Extension's own switch) shows as DND.
        kit.ext_mut(a).dnd = true;
        let ext = kit.b.extensions.get(&a).cloned();
        assert_eq!(
            ext.map(|e| user_status(&e, None)),
            Some(UserStatus::Dnd { message: None })
        );
    }
}
