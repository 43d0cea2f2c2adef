//! One leg FreeSWITCH reported (its CDR's facts, `history::cdr::LegFacts` as JSON).

use sea_orm::entity::prelude::*;

/// A leg.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "call_legs")]
pub struct Model {
    /// FreeSWITCH's id of the leg (a CDR posted twice is stored once).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The root leg of the call it belongs to.
    pub call_uuid: Uuid,
    /// The Domain, when the leg names one.
    pub domain_id: Option<Uuid>,
    /// Start.
    pub started_at: DateTimeUtc,
    /// `LegFacts` as JSON.
    pub facts: String,
    /// When switchboard received it.
    pub received_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
