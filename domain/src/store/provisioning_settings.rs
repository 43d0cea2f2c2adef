//! A Domain's provisioning settings: the first-boot credential, language and NTP.

use sea_orm::entity::prelude::*;

/// A settings row (absent: the defaults, no first-boot credential).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "provisioning_settings")]
pub struct Model {
    /// The Domain.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: Uuid,
    /// First-boot user name.
    pub username: Option<String>,
    /// First-boot password, encrypted.
    pub password_encrypted: Option<String>,
    /// Source networks the first-boot credential is accepted from (a JSON list of CIDRs).
    pub allowed_networks: String,
    /// Language of the phones' menus (ISO 639-1).
    pub language: String,
    /// NTP server (none: the server's default).
    pub ntp_server: Option<String>,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
