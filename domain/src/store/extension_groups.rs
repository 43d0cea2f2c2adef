//! Extension groups: who logs out how (and, for provisioning, what a member may choose).

use sea_orm::entity::prelude::*;

/// An Extension group row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "extension_groups")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    pub name: String,
    /// Description.
    pub description: String,
    /// `inherit`, `full` or `placeholder`: what a member's logout leaves the phone in.
    pub logged_out_mode: String,
    /// Placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
