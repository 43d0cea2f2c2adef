//! Failed authentication attempts, for throttling and lockouts that survive restarts and work
//! across several server nodes.

use sea_orm::entity::prelude::*;

/// A failure row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_failures")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What was attacked: `login_account`, `login_address`, …
    pub scope: String,
    /// The account or address.
    pub subject: String,
    /// When.
    pub at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
