//! A Domain may ask for longer PINs than the 4 digits every PIN has at least: a 4-digit PIN's
//! argon2id hash falls to an offline guess in minutes for anyone who can read the database, so
//! a Domain that worries about that raises `pin_min_length` (4–12). Existing Domains keep 4.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CallingSettings::Table)
                    .add_column(integer(CallingSettings::PinMinLength).default(4))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CallingSettings::Table)
                    .drop_column(CallingSettings::PinMinLength)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum CallingSettings {
    Table,
    PinMinLength,
}
