//! A tenant's own phone templates, one vendor family each.

use sea_orm::entity::prelude::*;

/// A template row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "provisioning_templates")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    pub name: String,
    /// Vendor family (`yealink`, `poly`, `grandstream`, `snom`, `cisco`).
    pub vendor: String,
    /// The minijinja source (usually extends the built-in template of the vendor).
    pub body: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
