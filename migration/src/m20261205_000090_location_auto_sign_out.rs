//! Location sign-ins end by themselves, as hot-desk sessions do: each Location says when
//! (`auto_sign_out`: `never`, `after_hours` with `auto_sign_out_hours`, or `daily_at` with
//! `auto_sign_out_at` as HH:MM in the Domain's time zone). Existing Locations keep `never`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Locations::Table)
                    .add_column(string(Locations::AutoSignOut).default("never"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Locations::Table)
                    .add_column(integer_null(Locations::AutoSignOutHours))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Locations::Table)
                    .add_column(string_null(Locations::AutoSignOutAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Locations::AutoSignOutAt,
            Locations::AutoSignOutHours,
            Locations::AutoSignOut,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Locations::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    AutoSignOut,
    AutoSignOutHours,
    AutoSignOutAt,
}
