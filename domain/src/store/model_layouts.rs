//! Model Layouts: the line keys of one phone model.

use sea_orm::entity::prelude::*;

/// A layout row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "model_layouts")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    pub name: String,
    /// Catalogue id of the phone model, e.g. `yealink-t54w`.
    pub model: String,
    /// The keys, a JSON list (see `provisioning::keys::KeySpec`).
    pub keys: String,
    /// The Domain's layout for logged-out phones of this model (at most one per model).
    pub logged_out: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
