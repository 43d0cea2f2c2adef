//! The gateways of an Outbound Route, in failover order.

use sea_orm::entity::prelude::*;

/// A row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbound_route_gateways")]
pub struct Model {
    /// The route.
    #[sea_orm(primary_key, auto_increment = false)]
    pub route_id: Uuid,
    /// The gateway.
    #[sea_orm(primary_key, auto_increment = false)]
    pub gateway_id: Uuid,
    /// Order (lower tried first).
    pub position: i32,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
