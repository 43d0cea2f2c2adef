//! Call flows: ring groups, IVR menus and time conditions of a Domain, in one table.
//!
//! - `kind`: `ring_group`, `ivr` or `time_condition`; `name` is unique per kind in the Domain.
//! - `number`: the internal number that dials it from the Domain's phones (optional), unique
//!   in the Domain (the services also keep it apart from the Extensions' numbers).
//! - `config`: the kind's settings as JSON (members and strategy, greeting and options,
//!   schedule and destinations), checked by the services on every save.
//! - `override_mode`: a time condition's manual override (`auto`, `open`, `closed`), its own
//!   column so a feature code flips it without rewriting the settings.
//! - `last_member`: the member a round-robin ring group rang last (-1: none yet).
//!
//! The destinations inside `config` are checked by the services (same Domain, no loop
//! without a caller's input), as SQLite cannot check references inside JSON.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CallFlows::Table)
                    .col(pk_uuid(CallFlows::Id))
                    .col(uuid(CallFlows::DomainId))
                    .col(
                        string(CallFlows::Kind).check(Expr::col(CallFlows::Kind).is_in([
                            "ring_group",
                            "ivr",
                            "time_condition",
                        ])),
                    )
                    .col(string(CallFlows::Name))
                    .col(string_null(CallFlows::Number))
                    .col(text(CallFlows::Config))
                    .col(string(CallFlows::OverrideMode).default("auto").check(
                        Expr::col(CallFlows::OverrideMode).is_in(["auto", "open", "closed"]),
                    ))
                    .col(integer(CallFlows::LastMember).default(-1))
                    .col(timestamp_with_time_zone(CallFlows::CreatedAt))
                    .col(timestamp_with_time_zone(CallFlows::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_call_flows_domain")
                            .from(CallFlows::Table, CallFlows::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_call_flows_domain_kind_name")
                    .table(CallFlows::Table)
                    .col(CallFlows::DomainId)
                    .col(CallFlows::Kind)
                    .col(CallFlows::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_call_flows_domain_number \
                 ON call_flows (domain_id, number) WHERE number IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CallFlows::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CallFlows {
    Table,
    Id,
    DomainId,
    Kind,
    Name,
    Number,
    Config,
    OverrideMode,
    LastMember,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}
