//! A Location may have a short code (digits) that people dial to sign in to it from a phone:
//! `*14<short code>`. Unique in the Domain when set.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Locations::Table)
                    .add_column(string_null(Locations::ShortCode))
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in a unique index on both databases: Locations without a code
        // never collide.
        manager
            .create_index(
                Index::create()
                    .name("uq_locations_domain_short_code")
                    .table(Locations::Table)
                    .col(Locations::DomainId)
                    .col(Locations::ShortCode)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("uq_locations_domain_short_code")
                    .table(Locations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Locations::Table)
                    .drop_column(Locations::ShortCode)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    DomainId,
    ShortCode,
}
