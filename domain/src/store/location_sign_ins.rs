//! Location sign-ins: an Extension signed in to a Location (at most one each: the key).

use sea_orm::entity::prelude::*;

/// A sign-in row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "location_sign_ins")]
pub struct Model {
    /// Owning Domain.
    pub domain_id: Uuid,
    /// The Extension (the primary key: one Location at a time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub extension_id: Uuid,
    /// The Location.
    pub location_id: Uuid,
    /// Since when.
    pub since: DateTimeUtc,
    /// Who signed it in (the actor's label).
    pub signed_in_by: String,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
