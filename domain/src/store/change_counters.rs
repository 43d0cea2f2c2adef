//! The last live-stream event id given out per Domain.

use sea_orm::entity::prelude::*;

/// A Domain's counter.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_counters")]
pub struct Model {
    /// The Domain (nil: the platform).
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: Uuid,
    /// The last number given out.
    pub last_seq: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
