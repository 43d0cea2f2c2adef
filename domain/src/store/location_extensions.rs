//! Extensions listed as allowed to sign in to a Location.

use sea_orm::entity::prelude::*;

/// A listing row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "location_extensions")]
pub struct Model {
    /// The Domain of both.
    pub domain_id: Uuid,
    /// The Location.
    #[sea_orm(primary_key, auto_increment = false)]
    pub location_id: Uuid,
    /// The Extension.
    #[sea_orm(primary_key, auto_increment = false)]
    pub extension_id: Uuid,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
