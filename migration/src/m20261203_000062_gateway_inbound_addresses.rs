//! A carrier often sends its calls from more addresses than its proxy resolves to (a pool of
//! media gateways, a second site): each gateway may list them, as addresses or networks
//! (`203.0.113.7`, `198.51.100.0/24`, comma-separated, canonical). They are let in by the
//! carriers' ACL and accepted in the `public` context like the proxy's own addresses.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Gateways::Table)
                    .add_column(text(Gateways::InboundAddresses).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Gateways::Table)
                    .drop_column(Gateways::InboundAddresses)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Gateways {
    Table,
    InboundAddresses,
}
