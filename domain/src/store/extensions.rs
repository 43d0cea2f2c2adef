//! Extensions: calling identities.

use sea_orm::entity::prelude::*;

/// An Extension row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "extensions")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Owning Domain.
    pub domain_id: Uuid,
    /// The number, unique in the Domain.
    pub number: String,
    /// Display name.
    pub display_name: String,
    /// Caller ID name for internal calls (defaults to the display name).
    pub internal_caller_id_name: Option<String>,
    /// Caller ID number for internal calls (defaults to the number).
    pub internal_caller_id_number: Option<String>,
    /// Caller ID name for outside calls.
    pub outbound_caller_id_name: Option<String>,
    /// Caller ID number (E.164) for outside calls.
    pub outbound_caller_id_number: Option<String>,
    /// Emergency caller ID name fallback.
    pub emergency_caller_id_name: Option<String>,
    /// Emergency caller ID number fallback (E.164).
    pub emergency_caller_id_number: Option<String>,
    /// Voicemail box enabled.
    pub voicemail_enabled: bool,
    /// argon2id of the PIN (voicemail and hot-desk login).
    pub pin_hash: Option<String>,
    /// Seconds to ring before the no-answer outcome (none: the Domain default).
    pub ring_timeout_secs: Option<i32>,
    /// Do-Not-Disturb.
    pub dnd: bool,
    /// Forward every call.
    pub forward_always_enabled: bool,
    /// Where to.
    pub forward_always_destination: Option<String>,
    /// Forward when busy.
    pub forward_busy_enabled: bool,
    /// Where to.
    pub forward_busy_destination: Option<String>,
    /// Forward when not answered.
    pub forward_no_answer_enabled: bool,
    /// Where to.
    pub forward_no_answer_destination: Option<String>,
    /// Forward when nothing is registered.
    pub forward_not_registered_enabled: bool,
    /// Where to.
    pub forward_not_registered_destination: Option<String>,
    /// Recording of inbound calls: always, never, on_demand.
    pub record_inbound: String,
    /// Recording of outbound calls: always, never, on_demand.
    pub record_outbound: String,
    /// Dialplan context (none: the Domain's SIP domain).
    pub context: Option<String>,
    /// Toll-allow classes, comma-separated.
    pub toll_allow: String,
    /// Account code for CDRs.
    pub account_code: Option<String>,
    /// Call group.
    pub call_group: Option<String>,
    /// May log in to hot-desk phones.
    pub hotdesk_allowed: bool,
    /// Stands in for logged-out phones.
    pub placeholder: bool,
    /// A placeholder whose logged-out phones ring when it is called.
    pub placeholder_rings: bool,
    /// The internal numbers it may dial: a JSON list of numbers and ranges (`"200-299"`);
    /// none means every one.
    pub internal_allow: Option<String>,
    /// Its hot-desk group, if any.
    pub group_id: Option<Uuid>,
    /// May register directly with its own SIP credentials.
    pub sip_registration_enabled: bool,
    /// Its SIP secret, encrypted.
    pub sip_secret_encrypted: Option<String>,
    /// Cap on simultaneous direct registrations.
    pub max_registrations: i32,
    /// The dashboard User it belongs to, if any.
    pub user_id: Option<Uuid>,
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
