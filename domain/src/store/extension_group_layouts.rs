//! Which layouts the members of an Extension group may choose.

use sea_orm::entity::prelude::*;

/// A grant row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "extension_group_layouts")]
pub struct Model {
    /// The group.
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: Uuid,
    /// The layout.
    #[sea_orm(primary_key, auto_increment = false)]
    pub layout_id: Uuid,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
