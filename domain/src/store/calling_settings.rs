//! A Domain's calling settings (one row per Domain; defaults when absent).

use sea_orm::entity::prelude::*;

/// A settings row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "calling_settings")]
pub struct Model {
    /// The Domain.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain_id: Uuid,
    /// Logged-out mode of hot-desk phones: `full` or `placeholder`.
    pub logged_out_mode: String,
    /// The placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// Logging in on a second phone ends the first session.
    pub one_phone_at_a_time: bool,
    /// `never`, `after_hours` or `daily_at`.
    pub auto_logout: String,
    /// Hours for `after_hours`.
    pub auto_logout_hours: Option<i32>,
    /// `HH:MM` for `daily_at`, in the Domain's time zone.
    pub auto_logout_at: Option<String>,
    /// Emergency numbers dialable from any phone, comma-separated.
    pub emergency_numbers: String,
    /// The Domain's emergency caller ID name (last fallback).
    pub emergency_caller_id_name: Option<String>,
    /// The Domain's emergency caller ID number (last fallback).
    pub emergency_caller_id_number: Option<String>,
    /// Default ring timeout in seconds.
    pub default_ring_timeout_secs: i32,
    /// PIN failures per Extension before lockout.
    pub pin_max_failures: i32,
    /// PIN lockout window in seconds.
    pub pin_window_secs: i32,
    /// The fewest digits a new PIN may have (4–12).
    pub pin_min_length: i32,
    /// Country calling code without `+` (e.g. `49`), to normalise national numbers to E.164.
    pub country_code: Option<String>,
    /// The national trunk prefix (`0` in most of Europe, `1` in NANP; empty for none).
    pub national_prefix: String,
    /// The international access prefix (`00`, `011`).
    pub international_prefix: String,
    /// The Domain's default outbound caller ID name.
    pub outbound_caller_id_name: Option<String>,
    /// The Domain's default outbound caller ID number (E.164).
    pub outbound_caller_id_number: Option<String>,
    /// May present caller IDs that are not its own Numbers (set by the platform).
    pub present_any_caller_id: bool,
    /// Days the call history (and its recordings' records) is kept before the purge.
    pub call_history_days: i32,
    /// Last updated.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
