//! Voicemail boxes' settings, one row per Extension that has any (none: the defaults).

use sea_orm::entity::prelude::*;

/// A box's settings.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "voicemail_boxes")]
pub struct Model {
    /// The Extension whose box it is.
    #[sea_orm(primary_key, auto_increment = false)]
    pub extension_id: Uuid,
    /// Its Domain.
    pub domain_id: Uuid,
    /// Where new messages are e-mailed (none: not e-mailed).
    pub email: Option<String>,
    /// The e-mail carries the audio.
    pub attach_audio: bool,
    /// The message is deleted from the box once e-mailed.
    pub delete_after_email: bool,
    /// The most messages the box keeps (none: no limit); past it the oldest go.
    pub max_messages: Option<i32>,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
