//! Everything FreeSWITCH-facing that is not an HTTP route.
//!
//! - [`xml`]: the mod_xml_curl request and the directory/dialplan documents;
//! - [`directory`]: the precompiled in-memory directory that answers mod_xml_curl, kept
//!   current by the change events;
//! - the Event Socket side: links to the nodes, event ingestion, pushing changes, and the
//!   outbound-socket server for the feature codes.
//!
//! Depends on `switchboard-domain` only; the HTTP edge (`switchboard-api`) wires it in.
#![forbid(unsafe_code)]

pub mod directory;
pub mod explain;
pub mod flows;
pub mod frames;
pub mod gateways;
pub mod ingest;
pub mod link;
pub mod metrics;
pub mod outbound;
pub mod push;
pub mod voicemail;
pub mod xml;
