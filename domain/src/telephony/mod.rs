//! Telephony: Extensions, Devices, Locations, calling settings, SIP secrets.
//!
//! The value types here parse untrusted input into values that are valid by construction;
//! the services persist them.

pub mod internal_allow;
pub mod policy;
pub mod secrets;
pub mod values;
