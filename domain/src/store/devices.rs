//! Devices: phones with their own SIP identity.

use sea_orm::entity::prelude::*;

/// A Device row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// Label, e.g. "Reception 2F".
    pub label: String,
    /// Normalised MAC (12 hex digits), unique platform-wide; none for softphones.
    pub mac_address: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// SIP user name, unique in the Domain.
    pub sip_username: String,
    /// SIP secret, encrypted.
    pub sip_secret_encrypted: String,
    /// `fixed` or `hotdesk`.
    pub mode: String,
    /// Owner Extension of a fixed device.
    pub owner_extension_id: Option<Uuid>,
    /// Location it belongs to.
    pub location_id: Option<Uuid>,
    /// Order within the Location's sequential ring.
    pub location_position: i32,
    /// Seconds it rings in a sequential Location ring.
    pub location_ring_timeout_secs: Option<i32>,
    /// Emergency caller ID name of the phone's physical place.
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number of the phone's physical place.
    pub emergency_caller_id_number: Option<String>,
    /// `inherit`, `full` or `placeholder`.
    pub logged_out_mode: String,
    /// Placeholder Extension when logged out in placeholder mode.
    pub placeholder_extension_id: Option<Uuid>,
    /// `inherit`, `never`, `after_hours` or `daily_at`.
    pub auto_logout: String,
    /// Hours for `after_hours`.
    pub auto_logout_hours: Option<i32>,
    /// `HH:MM` for `daily_at`.
    pub auto_logout_at: Option<String>,
    /// The desk's own person: a visitor's logout returns the phone to this Extension.
    pub home_extension_id: Option<Uuid>,
    /// Who logged out of the phone last (their group's logout action applies).
    pub last_extension_id: Option<Uuid>,
    /// The tenant template its vendor's main file is rendered with (none: the built-in one).
    pub template_id: Option<Uuid>,
    /// Its own provisioning password, encrypted (none: only the first-boot credential works).
    pub provisioning_password_encrypted: Option<String>,
    /// When it last fetched its configuration.
    pub last_provisioned_at: Option<DateTimeUtc>,
    /// The address it last fetched from.
    pub last_provisioned_from: Option<String>,
    /// The user agent of its last fetch.
    pub last_provisioned_agent: Option<String>,
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
