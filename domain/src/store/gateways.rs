//! Gateways: SIP trunks to carriers, owned by a Domain or by the platform.

use sea_orm::entity::prelude::*;

/// A gateway row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "gateways")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owning Domain; none for a platform gateway.
    pub domain_id: Option<Uuid>,
    /// The owning Domain's id as text, or `platform` (names are unique per owner).
    pub owner_key: String,
    /// Name, unique per owner.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `host` or `host:port` of the carrier.
    pub proxy: String,
    /// Authentication realm (default: the proxy's host).
    pub realm: Option<String>,
    /// User name at the carrier.
    pub username: Option<String>,
    /// Password, encrypted with the secrets key.
    pub password_encrypted: Option<String>,
    /// Register with the carrier.
    pub register: bool,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// Put the caller ID in the From header (else the account's user name).
    pub caller_id_in_from: bool,
    /// OPTIONS ping interval in seconds (none: no ping).
    pub ping_secs: Option<i32>,
    /// Registration expiry in seconds.
    pub expire_secs: i32,
    /// Domain in the From header (default: the realm).
    pub from_domain: Option<String>,
    /// Other addresses or networks the carrier sends calls from, comma-separated, canonical
    /// (`203.0.113.7/32,198.51.100.0/24`); empty: only its proxy's.
    pub inbound_addresses: String,
    /// In service.
    pub enabled: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
