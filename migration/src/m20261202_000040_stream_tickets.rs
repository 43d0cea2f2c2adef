//! Stream tickets: short-lived, single-use credentials that open one Domain's live event
//! stream, for browsers, whose `EventSource` cannot send an `Authorization` header.
//!
//! A ticket is minted by an authenticated caller and remembers who that was (a login session
//! or an API key) and when the credential it was minted with expires; only its SHA-256 is
//! stored. Redeeming it sets `used_at` atomically, so it opens one stream at most. Rows go with
//! their Domain.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StreamTickets::Table)
                    .col(pk_uuid(StreamTickets::Id))
                    .col(string_uniq(StreamTickets::TokenHash))
                    .col(uuid(StreamTickets::DomainId))
                    .col(uuid_null(StreamTickets::UserId))
                    .col(uuid_null(StreamTickets::SessionId))
                    .col(uuid_null(StreamTickets::ApiKeyId))
                    .col(timestamp_with_time_zone_null(
                        StreamTickets::CredentialExpiresAt,
                    ))
                    .col(timestamp_with_time_zone(StreamTickets::CreatedAt))
                    .col(timestamp_with_time_zone(StreamTickets::ExpiresAt))
                    .col(timestamp_with_time_zone_null(StreamTickets::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_stream_tickets_domain")
                            .from(StreamTickets::Table, StreamTickets::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(
                        Expr::col(StreamTickets::SessionId)
                            .is_not_null()
                            .or(Expr::col(StreamTickets::ApiKeyId).is_not_null()),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stream_tickets_expires")
                    .table(StreamTickets::Table)
                    .col(StreamTickets::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StreamTickets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum StreamTickets {
    Table,
    Id,
    TokenHash,
    DomainId,
    UserId,
    SessionId,
    ApiKeyId,
    CredentialExpiresAt,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}
