//! SIP registrations as FreeSWITCH reports them: one row per node, Domain, SIP user and
//! Call-ID.

use sea_orm::entity::prelude::*;

/// A registration row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "registrations")]
pub struct Model {
    /// Id (UUIDv7, kept when the registration is refreshed).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// The FreeSWITCH node (its configured name).
    pub node: String,
    /// The sofia profile.
    pub profile: String,
    /// The SIP user (lower-case).
    pub sip_user: String,
    /// The SIP Call-ID of the REGISTER dialog.
    pub call_id: String,
    /// The Contact header.
    pub contact: String,
    /// The address the REGISTER came from.
    pub network_ip: String,
    /// Its port.
    pub network_port: i32,
    /// The phone's User-Agent.
    pub user_agent: Option<String>,
    /// First seen.
    pub registered_at: DateTimeUtc,
    /// When it lapses unless refreshed.
    pub expires_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
