//! Registrations are keyed as sofia keys them with `multiple-registrations=contact`: node,
//! Domain, SIP user and Contact. Keyed by Call-ID, a phone that rebooted and registered with a
//! new Call-ID left its old row behind, although FreeSWITCH had replaced the registration.
//!
//! The rows are a copy of what FreeSWITCH holds, refilled by the bridge's resync after every
//! (re)connect, so the migration empties the table rather than guessing which duplicates to keep.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(Query::delete().from_table(Registrations::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_registrations_node_user_call")
                    .table(Registrations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_registrations_node_user_contact")
                    .table(Registrations::Table)
                    .col(Registrations::Node)
                    .col(Registrations::DomainId)
                    .col(Registrations::SipUser)
                    .col(Registrations::Contact)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(Query::delete().from_table(Registrations::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_registrations_node_user_contact")
                    .table(Registrations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_registrations_node_user_call")
                    .table(Registrations::Table)
                    .col(Registrations::Node)
                    .col(Registrations::DomainId)
                    .col(Registrations::SipUser)
                    .col(Registrations::CallId)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    Node,
    DomainId,
    SipUser,
    CallId,
    Contact,
}
