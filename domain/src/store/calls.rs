//! The call history: one row per call (see `history::record`).

use sea_orm::entity::prelude::*;

/// A call.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "calls")]
pub struct Model {
    /// UUIDv7 of the start time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// FreeSWITCH's id of the call's first leg (unique).
    pub root_uuid: Uuid,
    /// The Domain.
    pub domain_id: Option<Uuid>,
    /// `internal`, `inbound`, `outbound`.
    pub direction: String,
    /// Caller number as presented.
    pub caller_number: Option<String>,
    /// Caller name as presented.
    pub caller_name: Option<String>,
    /// What was dialled (the Number, inbound).
    pub callee_number: Option<String>,
    /// Callee name.
    pub callee_name: Option<String>,
    /// The person who called.
    pub caller_extension_id: Option<Uuid>,
    /// Their number then.
    pub caller_extension_number: Option<String>,
    /// The calling Device.
    pub caller_device_id: Option<Uuid>,
    /// Its Location.
    pub caller_location_id: Option<Uuid>,
    /// The Extension rung.
    pub callee_extension_id: Option<Uuid>,
    /// Its number then.
    pub callee_extension_number: Option<String>,
    /// The Device that answered.
    pub callee_device_id: Option<Uuid>,
    /// Its Location.
    pub callee_location_id: Option<Uuid>,
    /// The Outbound Route.
    pub route_id: Option<Uuid>,
    /// The gateway.
    pub gateway_id: Option<Uuid>,
    /// Start.
    pub started_at: DateTimeUtc,
    /// Answer.
    pub answered_at: Option<DateTimeUtc>,
    /// End.
    pub ended_at: DateTimeUtc,
    /// Seconds from answer to end.
    pub billed_secs: i64,
    /// FreeSWITCH's hangup cause.
    pub hangup_cause: String,
    /// The recording's path on the FreeSWITCH node.
    pub recording_path: Option<String>,
    /// Its length.
    pub recording_ms: Option<i64>,
    /// An emergency call.
    pub emergency: bool,
    /// The FreeSWITCH node.
    pub node: Option<String>,
    /// Legs known.
    pub legs: i32,
    /// Last summarised.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
