//! How calls are routed, as pure rules over a Domain's rows.
//!
//! - [`dialplan`]: the compiled dialplan of one Domain — what a number dialled in the Domain's
//!   own context does (ring an Extension, apply its busy / no-answer / not-registered outcome,
//!   or end with a cause), with a bound on forwarding hops.
//!
//! - [`destination`]: where a call can be sent (an Extension, its voicemail, an external
//!   number, a hang-up, a ring group, an IVR menu, a time condition), one type with one
//!   stored form;
//! - [`flows`]: ring groups, IVR menus and time conditions: their rules, the destination
//!   graph's rules, and the decisions made when a call arrives.
//!
//! Numbers (DIDs), Gateways, Outbound Routes and the call explanation will live here too
//! (DESIGN §6); FreeSWITCH's XML rendering of these decisions stays in `esl-bridge`.

pub mod callers;
pub mod destination;
pub mod dialplan;
pub mod facts;
pub mod flows;
pub mod outbound;
