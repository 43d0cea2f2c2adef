//! Numbers (DIDs): E.164 numbers unique platform-wide, in the platform's stock (no Domain) or
//! assigned to one Domain, optionally pointed at a destination (three columns, see
//! `routing::destination`).
//!
//! When a Domain is deleted its Numbers go back to the stock: the service clears their Domain
//! and destination in the deleting transaction; `ON DELETE SET NULL` is the schema's backstop,
//! and the check below refuses a Number in the stock that still points somewhere, so a
//! destination can never outlive the Domain whose Extension it names.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Numbers::Table)
                    .col(pk_uuid(Numbers::Id))
                    .col(string(Numbers::Number))
                    .col(uuid_null(Numbers::DomainId))
                    .col(text(Numbers::Description))
                    .col(string_null(Numbers::DestinationType))
                    .col(uuid_null(Numbers::DestinationId))
                    .col(string_null(Numbers::DestinationValue))
                    .col(timestamp_with_time_zone(Numbers::CreatedAt))
                    .col(timestamp_with_time_zone(Numbers::UpdatedAt))
                    // A Number in the stock points nowhere.
                    .check(
                        Expr::col(Numbers::DomainId)
                            .is_not_null()
                            .or(Expr::col(Numbers::DestinationType).is_null()),
                    )
                    // No half-stored destination without its kind.
                    .check(
                        Expr::col(Numbers::DestinationType)
                            .is_not_null()
                            .or(Expr::col(Numbers::DestinationId)
                                .is_null()
                                .and(Expr::col(Numbers::DestinationValue).is_null())),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_numbers_domain")
                            .from(Numbers::Table, Numbers::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_numbers_number")
                    .table(Numbers::Table)
                    .col(Numbers::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_numbers_domain")
                    .table(Numbers::Table)
                    .col(Numbers::DomainId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_numbers_destination")
                    .table(Numbers::Table)
                    .col(Numbers::DomainId)
                    .col(Numbers::DestinationId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Numbers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Numbers {
    Table,
    Id,
    Number,
    DomainId,
    Description,
    DestinationType,
    DestinationId,
    DestinationValue,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}
