//! The call history, as pure rules over FreeSWITCH's CDRs (DESIGN §6).
//!
//! - [`cdr`]: what one leg's CDR says, read from `mod_json_cdr`'s JSON.
//! - [`record`]: one call summarised from its legs, attributed to the person, the Device and
//!   the Location; its time-ordered id.
//!
//! Storing, attributing and serving them is `services::history`.

pub mod cdr;
pub mod record;
