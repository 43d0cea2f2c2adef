//! What a person set as their presence (DND is the Extension's own flag).

use sea_orm::entity::prelude::*;

/// A presence note row, one per Extension at most.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "presence_notes")]
pub struct Model {
    /// The Extension.
    #[sea_orm(primary_key, auto_increment = false)]
    pub extension_id: Uuid,
    /// Its Domain.
    pub domain_id: Uuid,
    /// `available` or `away`.
    pub status: String,
    /// A message ("back at 2pm").
    pub message: Option<String>,
    /// Last set.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
