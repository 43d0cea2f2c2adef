//! Voicemail boxes' settings (`voicemail_boxes`: where a new message is e-mailed, with or without
//! its audio, whether it is deleted once e-mailed, how many messages the box keeps) and the e-mails owed for new messages
//! (`voicemail_emails`: an outbox, one row per message, retried until sent or given up, kept to
//! show in the API).
//!
//! A message is e-mailed once however many switchboard nodes saw FreeSWITCH announce it: the
//! outbox is unique on the box and mod_voicemail's message id (a call that leaves messages in
//! several boxes gives them all its own id).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(VoicemailBoxes::Table)
                    .col(pk_uuid(VoicemailBoxes::ExtensionId))
                    .col(uuid(VoicemailBoxes::DomainId))
                    .col(string_null(VoicemailBoxes::Email))
                    .col(boolean(VoicemailBoxes::AttachAudio).default(true))
                    .col(boolean(VoicemailBoxes::DeleteAfterEmail).default(false))
                    .col(integer_null(VoicemailBoxes::MaxMessages))
                    .col(timestamp_with_time_zone(VoicemailBoxes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voicemail_boxes_extension")
                            .from(VoicemailBoxes::Table, VoicemailBoxes::ExtensionId)
                            .to(Extensions::Table, Extensions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voicemail_boxes_domain")
                            .from(VoicemailBoxes::Table, VoicemailBoxes::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VoicemailEmails::Table)
                    .col(pk_uuid(VoicemailEmails::Id))
                    .col(uuid(VoicemailEmails::DomainId))
                    .col(uuid(VoicemailEmails::ExtensionId))
                    .col(string(VoicemailEmails::Mailbox))
                    .col(string(VoicemailEmails::MessageId))
                    .col(string(VoicemailEmails::ToAddress))
                    .col(string(VoicemailEmails::CallerName))
                    .col(string(VoicemailEmails::CallerNumber))
                    .col(integer(VoicemailEmails::DurationSecs))
                    .col(timestamp_with_time_zone(VoicemailEmails::LeftAt))
                    .col(text(VoicemailEmails::AudioPath))
                    .col(boolean(VoicemailEmails::AttachAudio))
                    .col(boolean(VoicemailEmails::DeleteAfter))
                    .col(string(VoicemailEmails::Status))
                    .col(integer(VoicemailEmails::Attempts))
                    .col(timestamp_with_time_zone(VoicemailEmails::NextAttemptAt))
                    .col(text_null(VoicemailEmails::LastError))
                    .col(timestamp_with_time_zone_null(VoicemailEmails::SentAt))
                    .col(timestamp_with_time_zone(VoicemailEmails::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voicemail_emails_extension")
                            .from(VoicemailEmails::Table, VoicemailEmails::ExtensionId)
                            .to(Extensions::Table, Extensions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voicemail_emails_domain")
                            .from(VoicemailEmails::Table, VoicemailEmails::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_voicemail_emails_message")
                    .table(VoicemailEmails::Table)
                    .col(VoicemailEmails::ExtensionId)
                    .col(VoicemailEmails::MessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_voicemail_emails_due")
                    .table(VoicemailEmails::Table)
                    .col(VoicemailEmails::Status)
                    .col(VoicemailEmails::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_voicemail_emails_extension")
                    .table(VoicemailEmails::Table)
                    .col(VoicemailEmails::ExtensionId)
                    .col(VoicemailEmails::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(VoicemailEmails::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(VoicemailBoxes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Extensions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum VoicemailBoxes {
    Table,
    ExtensionId,
    DomainId,
    Email,
    AttachAudio,
    DeleteAfterEmail,
    MaxMessages,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VoicemailEmails {
    Table,
    Id,
    DomainId,
    ExtensionId,
    Mailbox,
    MessageId,
    ToAddress,
    CallerName,
    CallerNumber,
    DurationSecs,
    LeftAt,
    AudioPath,
    AttachAudio,
    DeleteAfter,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    SentAt,
    CreatedAt,
}
