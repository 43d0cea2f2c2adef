//! Domains (tenants).

use sea_orm::entity::prelude::*;

/// A Domain row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "domains")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The FreeSWITCH SIP domain, unique platform-wide.
    #[sea_orm(unique)]
    pub sip_domain: String,
    /// Whether the Domain is in service.
    pub enabled: bool,
    /// IANA time zone name.
    pub timezone: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
