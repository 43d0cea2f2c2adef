//! Single-use set-password tokens (invitations and admin resets).

use sea_orm::entity::prelude::*;

/// A password token row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_tokens")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user whose password it sets.
    pub user_id: Uuid,
    /// SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// `invitation` or `reset`.
    pub purpose: String,
    /// Issued.
    pub created_at: DateTimeUtc,
    /// End of validity.
    pub expires_at: DateTimeUtc,
    /// When used.
    pub used_at: Option<DateTimeUtc>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
