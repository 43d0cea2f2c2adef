//! Single-use tickets that open one Domain's live event stream.

use sea_orm::entity::prelude::*;

/// A stream ticket row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stream_tickets")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of the ticket.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The Domain whose stream it opens.
    pub domain_id: Uuid,
    /// The user who minted it (with `session_id`).
    pub user_id: Option<Uuid>,
    /// The login session it was minted in.
    pub session_id: Option<Uuid>,
    /// The API key it was minted with.
    pub api_key_id: Option<Uuid>,
    /// When the credential it was minted with expires: the stream ends then.
    pub credential_expires_at: Option<DateTimeUtc>,
    /// Minted.
    pub created_at: DateTimeUtc,
    /// Redeemable until.
    pub expires_at: DateTimeUtc,
    /// When it was redeemed.
    pub used_at: Option<DateTimeUtc>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
