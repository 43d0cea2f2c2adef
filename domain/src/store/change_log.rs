//! The change log: every committed change in commit order (see [`crate::cluster::journal`]).

use sea_orm::entity::prelude::*;

/// One committed change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_log")]
pub struct Model {
    /// Its place in the commit order of every node's changes.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The Domain it happened in (nil: the platform).
    pub domain_id: Uuid,
    /// Its place in its Domain's own numbering (the live stream's event id).
    pub domain_seq: i64,
    /// The switchboard node that made it.
    pub node: String,
    /// The change event as JSON.
    pub payload: String,
    /// When it was written.
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
