//! Outbound Routes: per Domain, ordered; which dialled numbers leave through which gateways.

use sea_orm::entity::prelude::*;

/// A route row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbound_routes")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    pub name: String,
    /// Order (lower first).
    pub position: i32,
    /// Dial patterns, one per line.
    pub patterns: String,
    /// Leading digits removed before `prepend`.
    pub strip_digits: i32,
    /// Prepended after stripping.
    pub prepend: String,
    /// The toll class of the numbers it reaches.
    pub toll_class: String,
    /// In service.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
