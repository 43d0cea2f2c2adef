//! The live suite: switchboard against a real FreeSWITCH 1.10 (the configuration we ship,
//! `freeswitch/conf/`) with sipp as the phones, on PostgreSQL. Every scenario is seen from the
//! phone's side (what sipp received) and from the API's.
//!
//! Not part of `cargo test --workspace` (it needs FreeSWITCH and sipp); run it with
//!
//! ```text
//! SWITCHBOARD_FREESWITCH_DIR=/path/to/freeswitch cargo test -p switchboard-tests --test live
//! ```
//!
//! `SWITCHBOARD_FREESWITCH_DIR` defaults to `../shared/freeswitch` beside the repository (the
//! packaged FreeSWITCH CI uses). Without FreeSWITCH or sipp every test fails and says how to get
//! them; nothing is skipped. Everything binds to 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod call_flows;
mod calls;
mod changes;
mod cluster;
mod crash;
mod desks;
mod dtmf;
mod feature_codes;
mod harness;
mod history;
mod locations;
mod park;
mod provisioning;
mod recording;
mod refusals;
mod registrations;
mod sipp_calls;
mod startup;
mod trunks;
mod voicemail;
