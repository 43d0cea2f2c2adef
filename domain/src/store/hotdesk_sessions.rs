//! Hot-desk sessions: an Extension logged in to a hot-desk Device, active while `ended_at` is
//! NULL. Ended rows stay as history.

use sea_orm::entity::prelude::*;

/// A session row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "hotdesk_sessions")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// The hot-desk Device (one active session each, by a partial unique index).
    pub device_id: Uuid,
    /// The Extension logged in.
    pub extension_id: Uuid,
    /// When it started.
    pub started_at: DateTimeUtc,
    /// `feature_code`, `api` or `admin`.
    pub started_via: String,
    /// Who started it (the actor's label).
    pub started_by: String,
    /// Started under one-phone-at-a-time: at most one such active session per Extension.
    pub exclusive_session: bool,
    /// The Model Layout chosen at login (none: the person's default).
    pub layout_id: Option<Uuid>,
    /// The template chosen at login (none: the person's default).
    pub template_id: Option<Uuid>,
    /// When it ended; NULL while active.
    pub ended_at: Option<DateTimeUtc>,
    /// Why it ended (an `EndReason` code).
    pub ended_reason: Option<String>,
    /// Who ended it (the actor's label).
    pub ended_by: Option<String>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
