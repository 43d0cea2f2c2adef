//! Presence: what a person says about themselves (available or away, and a message).
//!
//! Do-Not-Disturb is not stored here: it is the Extension's `dnd` flag, the same switch that
//! makes calls busy, so the two can never disagree. One row per Extension at most, removed with
//! it; the composite key keeps the row in the Extension's Domain.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PresenceNotes::Table)
                    .col(pk_uuid(PresenceNotes::ExtensionId))
                    .col(uuid(PresenceNotes::DomainId))
                    .col(
                        string(PresenceNotes::Status)
                            .check(Expr::col(PresenceNotes::Status).is_in(["available", "away"])),
                    )
                    .col(string_null(PresenceNotes::Message))
                    .col(timestamp_with_time_zone(PresenceNotes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_presence_notes_extension")
                            .from_tbl(PresenceNotes::Table)
                            .from_col(PresenceNotes::DomainId)
                            .from_col(PresenceNotes::ExtensionId)
                            .to_tbl(Extensions::Table)
                            .to_col(Extensions::DomainId)
                            .to_col(Extensions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_presence_notes_domain")
                    .table(PresenceNotes::Table)
                    .col(PresenceNotes::DomainId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PresenceNotes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PresenceNotes {
    Table,
    ExtensionId,
    DomainId,
    Status,
    Message,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Extensions {
    Table,
    Id,
    DomainId,
}
