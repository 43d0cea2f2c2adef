//! Role assignments: (user, role, Domain) or (user, platform role).

use sea_orm::entity::prelude::*;

/// The scope key of platform-wide assignments.
pub const PLATFORM_SCOPE: &str = "platform";

/// An assignment row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "role_assignments")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The user holding the role.
    pub user_id: Uuid,
    /// The Domain, or none for a platform role.
    pub domain_id: Option<Uuid>,
    /// `platform` or the Domain id as text.
    pub scope_key: String,
    /// A built-in role name or a custom role's id as text.
    pub role_key: String,
    /// The custom role, when it is one.
    pub custom_role_id: Option<Uuid>,
    /// Created.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
