//! The e-mails owed for new voicemail messages: an outbox, one row per message.

use sea_orm::entity::prelude::*;

/// One e-mail.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "voicemail_emails")]
pub struct Model {
    /// UUIDv7 of when it was queued.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// The Extension whose box got the message.
    pub extension_id: Uuid,
    /// The box (its number then).
    pub mailbox: String,
    /// mod_voicemail's id of the message (unique per box: e-mailed once).
    pub message_id: String,
    /// The recipient.
    pub to_address: String,
    /// The caller's name.
    pub caller_name: String,
    /// The caller's number.
    pub caller_number: String,
    /// Length in seconds.
    pub duration_secs: i32,
    /// When the message was left.
    pub left_at: DateTimeUtc,
    /// The audio as the FreeSWITCH node wrote it.
    pub audio_path: String,
    /// Attach the audio.
    pub attach_audio: bool,
    /// Delete the message from the box once sent.
    pub delete_after: bool,
    /// `pending`, `sent` or `failed` (given up after the last attempt).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (a claim pushes it forward while one node sends).
    pub next_attempt_at: DateTimeUtc,
    /// Why the last attempt failed (or what failed after sending).
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTimeUtc>,
    /// When it was queued.
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
