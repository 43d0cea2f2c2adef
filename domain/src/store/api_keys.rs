//! API keys for machine clients.

use sea_orm::entity::prelude::*;

/// An API key row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Id (part of the presented key).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// A name for people.
    pub name: String,
    /// The Domain it is scoped to; none for platform scope.
    pub domain_id: Option<Uuid>,
    /// Built-in role name or custom role id as text.
    pub role_key: String,
    /// The custom role, when it is one.
    pub custom_role_id: Option<Uuid>,
    /// argon2id of the secret part.
    pub secret_hash: String,
    /// Who created it.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Optional expiry.
    pub expires_at: Option<DateTimeUtc>,
    /// Last successful use.
    pub last_used_at: Option<DateTimeUtc>,
    /// When revoked.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
