//! Platform gateways granted to Domains.

use sea_orm::entity::prelude::*;

/// A grant row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gateway_grants")]
pub struct Model {
    /// The platform gateway.
    #[sea_orm(primary_key, auto_increment = false)]
    pub gateway_id: Uuid,
    /// The Domain that may route calls through it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: Uuid,
    /// Granted.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
