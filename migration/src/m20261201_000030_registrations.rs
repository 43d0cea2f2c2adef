//! Registrations: which SIP users are registered where, as FreeSWITCH reports them
//! (`sofia::register` / `unregister` / `expire`, and `show registrations` after every
//! (re)connect of the bridge).
//!
//! One row per registration as sofia keys it: the node, the Domain, the SIP user and the SIP
//! Call-ID, unique together, so a re-REGISTER refreshes its row and a replayed event is
//! idempotent. `expires_at` lets a sweep remove registrations whose events were lost. Rows go
//! with their Domain.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Registrations::Table)
                    .col(pk_uuid(Registrations::Id))
                    .col(uuid(Registrations::DomainId))
                    .col(string(Registrations::Node))
                    .col(string(Registrations::Profile))
                    .col(string(Registrations::SipUser))
                    .col(string(Registrations::CallId))
                    .col(string(Registrations::Contact))
                    .col(string(Registrations::NetworkIp))
                    .col(integer(Registrations::NetworkPort))
                    .col(string_null(Registrations::UserAgent))
                    .col(timestamp_with_time_zone(Registrations::RegisteredAt))
                    .col(timestamp_with_time_zone(Registrations::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_registrations_domain")
                            .from(Registrations::Table, Registrations::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
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
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_domain_user")
                    .table(Registrations::Table)
                    .col(Registrations::DomainId)
                    .col(Registrations::SipUser)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_registrations_expires")
                    .table(Registrations::Table)
                    .col(Registrations::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Registrations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Registrations {
    Table,
    Id,
    DomainId,
    Node,
    Profile,
    SipUser,
    CallId,
    Contact,
    NetworkIp,
    NetworkPort,
    UserAgent,
    RegisteredAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}
