//! Several switchboard nodes on one database.
//!
//! - `change_log`: every committed change, in commit order (`seq`), with its place in its
//!   Domain's own numbering (`domain_seq`, the live stream's event ids) and the node that made
//!   it. Nodes tell each other "read after seq N" (PostgreSQL `NOTIFY`) and read the rows; a
//!   node that missed notifications reads from its last seq. Old rows are purged.
//! - `change_counters`: the last `domain_seq` given out per Domain (the nil Domain holds the
//!   platform's changes).
//! - `freeswitch_links`: per FreeSWITCH node, which switchboard node drives it, the state of
//!   that link as its owner last wrote it, and the last change whose commands reached it
//!   (`pushed_seq`): a node taking the link over sends what came after.
//! - `freeswitch_nodes`: FreeSWITCH nodes registered through the API (beside the static
//!   configuration list): the Event Socket address, its password encrypted with the secrets
//!   key, the sofia profile, and `all_domains` or the Domains in `freeswitch_node_domains`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeLog::Table)
                    .col(big_pk_auto(ChangeLog::Seq))
                    .col(uuid(ChangeLog::DomainId))
                    .col(big_integer(ChangeLog::DomainSeq))
                    .col(string(ChangeLog::Node))
                    .col(text(ChangeLog::Payload))
                    .col(timestamp_with_time_zone(ChangeLog::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_change_log_domain_seq")
                    .table(ChangeLog::Table)
                    .col(ChangeLog::DomainId)
                    .col(ChangeLog::DomainSeq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_change_log_created_at")
                    .table(ChangeLog::Table)
                    .col(ChangeLog::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChangeCounters::Table)
                    .col(pk_uuid(ChangeCounters::DomainId))
                    .col(big_integer(ChangeCounters::LastSeq))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FreeswitchLinks::Table)
                    .col(string(FreeswitchLinks::Name).primary_key())
                    .col(string_null(FreeswitchLinks::Owner))
                    .col(timestamp_with_time_zone_null(FreeswitchLinks::OwnerSince))
                    .col(string(FreeswitchLinks::State).default("disconnected"))
                    .col(timestamp_with_time_zone(FreeswitchLinks::StateSince))
                    .col(text_null(FreeswitchLinks::LastError))
                    .col(big_integer(FreeswitchLinks::PushedSeq).default(0))
                    .col(timestamp_with_time_zone(FreeswitchLinks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FreeswitchNodes::Table)
                    .col(pk_uuid(FreeswitchNodes::Id))
                    .col(string(FreeswitchNodes::Name).unique_key())
                    .col(string(FreeswitchNodes::Host))
                    .col(integer(FreeswitchNodes::Port))
                    .col(text(FreeswitchNodes::PasswordEncrypted))
                    .col(string(FreeswitchNodes::Profile))
                    .col(boolean(FreeswitchNodes::AllDomains).default(true))
                    .col(timestamp_with_time_zone(FreeswitchNodes::CreatedAt))
                    .col(timestamp_with_time_zone(FreeswitchNodes::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FreeswitchNodeDomains::Table)
                    .col(uuid(FreeswitchNodeDomains::NodeId))
                    .col(uuid(FreeswitchNodeDomains::DomainId))
                    .primary_key(
                        Index::create()
                            .col(FreeswitchNodeDomains::NodeId)
                            .col(FreeswitchNodeDomains::DomainId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_freeswitch_node_domains_node")
                            .from(FreeswitchNodeDomains::Table, FreeswitchNodeDomains::NodeId)
                            .to(FreeswitchNodes::Table, FreeswitchNodes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_freeswitch_node_domains_domain")
                            .from(
                                FreeswitchNodeDomains::Table,
                                FreeswitchNodeDomains::DomainId,
                            )
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FreeswitchNodeDomains::Table.into_iden(),
            FreeswitchNodes::Table.into_iden(),
            FreeswitchLinks::Table.into_iden(),
            ChangeCounters::Table.into_iden(),
            ChangeLog::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ChangeLog {
    Table,
    Seq,
    DomainId,
    DomainSeq,
    Node,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ChangeCounters {
    Table,
    DomainId,
    LastSeq,
}

#[derive(DeriveIden)]
enum FreeswitchLinks {
    Table,
    Name,
    Owner,
    OwnerSince,
    State,
    StateSince,
    LastError,
    PushedSeq,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FreeswitchNodes {
    Table,
    Id,
    Name,
    Host,
    Port,
    PasswordEncrypted,
    Profile,
    AllDomains,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FreeswitchNodeDomains {
    Table,
    NodeId,
    DomainId,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}
