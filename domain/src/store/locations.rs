//! Locations (desks, offices, home offices) that people sign in to.

use sea_orm::entity::prelude::*;

/// A Location row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "locations")]
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
    /// Emergency caller ID name of the place.
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number of the place.
    pub emergency_caller_id_number: Option<String>,
    /// Street address for emergency services.
    pub emergency_address: Option<String>,
    /// `simultaneous` or `sequential`.
    pub ring_strategy: String,
    /// `everyone` or `listed`.
    pub sign_in_policy: String,
    /// Role keys allowed to sign in when `listed` (JSON array).
    pub allowed_roles: Json,
    /// When sign-ins end by themselves: `never`, `after_hours` or `daily_at`.
    pub auto_sign_out: String,
    /// Hours, for `after_hours`.
    pub auto_sign_out_hours: Option<i32>,
    /// HH:MM in the Domain's time zone, for `daily_at`.
    pub auto_sign_out_at: Option<String>,
    /// Digits people dial after `*14` to sign in here from a phone (unique in the Domain).
    pub short_code: Option<String>,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
