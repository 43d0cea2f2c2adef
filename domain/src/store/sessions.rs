//! Login sessions.

use sea_orm::entity::prelude::*;

/// A session row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Id (also in the access token).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last refresh.
    pub last_seen_at: DateTimeUtc,
    /// Absolute end of the session.
    pub expires_at: DateTimeUtc,
    /// When revoked (logout, reuse detection, admin).
    pub revoked_at: Option<DateTimeUtc>,
    /// Why revoked.
    pub revoked_reason: Option<String>,
    /// Client's user agent at login.
    pub user_agent: Option<String>,
    /// Client's address at login.
    pub ip_address: Option<String>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
