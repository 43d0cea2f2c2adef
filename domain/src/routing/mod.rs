//! How calls are routed, as pure rules over a Domain's rows.
//!
//! - [`dialplan`]: the compiled dialplan of one Domain — what a number dialled in the Domain's
//!   own context does (ring an Extension, apply its busy / no-answer / not-registered outcome,
//!   or end with a cause), with a bound on forwarding hops.
//!
//! - [`destination`]: where a call can be sent (Numbers today; ring groups, IVRs and time
//!   conditions later), one type with one stored form.
//!
//! Numbers (DIDs), Gateways, Outbound Routes and the call explanation will live here too
//! (DESIGN §6); FreeSWITCH's XML rendering of these decisions stays in `esl-bridge`.

pub mod callers;
pub mod destination;
pub mod dialplan;
pub mod facts;
pub mod outbound;
