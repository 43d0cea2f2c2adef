//! The audit log: every mutation, written in the same transaction as the change.

use sea_orm::entity::prelude::*;

/// An audit entry row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Id (time-ordered).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// When.
    pub at: DateTimeUtc,
    /// The Domain concerned; none for platform-level actions.
    pub domain_id: Option<Uuid>,
    /// `user`, `api_key` or `system`.
    pub actor_kind: String,
    /// The user or key id.
    pub actor_id: Option<Uuid>,
    /// Email, key name or `system`.
    pub actor_label: String,
    /// e.g. `user.create`.
    pub action: String,
    /// e.g. `user`.
    pub target_kind: String,
    /// The target's id.
    pub target_id: Option<String>,
    /// State before, secrets removed.
    pub before: Option<Json>,
    /// State after, secrets removed.
    pub after: Option<Json>,
    /// The HTTP request id, when there was one.
    pub request_id: Option<String>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
