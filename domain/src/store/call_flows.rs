//! Call flows: ring groups, IVR menus and time conditions (one table, `kind` tells which).

use sea_orm::entity::prelude::*;

/// A call flow row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "call_flows")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// `ring_group`, `ivr` or `time_condition`.
    pub kind: String,
    /// Name, unique per kind in the Domain.
    pub name: String,
    /// The internal number that dials it, unique in the Domain.
    pub number: Option<String>,
    /// The kind's settings, JSON.
    pub config: String,
    /// A time condition's override: `auto`, `open`, `closed`.
    pub override_mode: String,
    /// The member a round-robin group rang last (-1: none).
    pub last_member: i32,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
