//! The call history: one row per call (`calls`, summarised and attributed to the person, the
//! Device and the Location) and one per leg FreeSWITCH reported (`call_legs`, its CDR's facts
//! as JSON), plus how long each Domain keeps its history (`calling_settings.call_history_days`).
//!
//! `calls.id` is a UUIDv7 of the call's start time, so the newest-first page of one Domain (or
//! one Extension, or one Device) is an index range scan; a time range is an id range. Rows name
//! Extensions, Devices, Locations, routes and gateways by id without foreign keys: the history
//! outlives what it names. Deleting a Domain deletes its history.

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
                    .add_column(integer(CallingSettings::CallHistoryDays).default(365))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Calls::Table)
                    .col(pk_uuid(Calls::Id))
                    .col(uuid(Calls::RootUuid))
                    .col(uuid_null(Calls::DomainId))
                    .col(string(Calls::Direction))
                    .col(string_null(Calls::CallerNumber))
                    .col(string_null(Calls::CallerName))
                    .col(string_null(Calls::CalleeNumber))
                    .col(string_null(Calls::CalleeName))
                    .col(uuid_null(Calls::CallerExtensionId))
                    .col(string_null(Calls::CallerExtensionNumber))
                    .col(uuid_null(Calls::CallerDeviceId))
                    .col(uuid_null(Calls::CallerLocationId))
                    .col(uuid_null(Calls::CalleeExtensionId))
                    .col(string_null(Calls::CalleeExtensionNumber))
                    .col(uuid_null(Calls::CalleeDeviceId))
                    .col(uuid_null(Calls::CalleeLocationId))
                    .col(uuid_null(Calls::RouteId))
                    .col(uuid_null(Calls::GatewayId))
                    .col(timestamp_with_time_zone(Calls::StartedAt))
                    .col(timestamp_with_time_zone_null(Calls::AnsweredAt))
                    .col(timestamp_with_time_zone(Calls::EndedAt))
                    .col(big_integer(Calls::BilledSecs))
                    .col(string(Calls::HangupCause))
                    .col(text_null(Calls::RecordingPath))
                    .col(big_integer_null(Calls::RecordingMs))
                    .col(boolean(Calls::Emergency))
                    .col(string_null(Calls::Node))
                    .col(integer(Calls::Legs))
                    .col(timestamp_with_time_zone(Calls::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_calls_domain")
                            .from(Calls::Table, Calls::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("ix_calls_domain", vec![Calls::DomainId, Calls::Id]),
            (
                "ix_calls_caller_extension",
                vec![Calls::DomainId, Calls::CallerExtensionId, Calls::Id],
            ),
            (
                "ix_calls_callee_extension",
                vec![Calls::DomainId, Calls::CalleeExtensionId, Calls::Id],
            ),
            (
                "ix_calls_caller_device",
                vec![Calls::DomainId, Calls::CallerDeviceId, Calls::Id],
            ),
            (
                "ix_calls_callee_device",
                vec![Calls::DomainId, Calls::CalleeDeviceId, Calls::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Calls::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("uq_calls_root")
                    .table(Calls::Table)
                    .col(Calls::RootUuid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CallLegs::Table)
                    .col(pk_uuid(CallLegs::Id))
                    .col(uuid(CallLegs::CallUuid))
                    .col(uuid_null(CallLegs::DomainId))
                    .col(timestamp_with_time_zone(CallLegs::StartedAt))
                    .col(text(CallLegs::Facts))
                    .col(timestamp_with_time_zone(CallLegs::ReceivedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_call_legs_domain")
                            .from(CallLegs::Table, CallLegs::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_call_legs_call")
                    .table(CallLegs::Table)
                    .col(CallLegs::CallUuid)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_call_legs_started")
                    .table(CallLegs::Table)
                    .col(CallLegs::StartedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CallLegs::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Calls::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CallingSettings::Table)
                    .drop_column(CallingSettings::CallHistoryDays)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum CallingSettings {
    Table,
    CallHistoryDays,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Calls {
    Table,
    Id,
    RootUuid,
    DomainId,
    Direction,
    CallerNumber,
    CallerName,
    CalleeNumber,
    CalleeName,
    CallerExtensionId,
    CallerExtensionNumber,
    CallerDeviceId,
    CallerLocationId,
    CalleeExtensionId,
    CalleeExtensionNumber,
    CalleeDeviceId,
    CalleeLocationId,
    RouteId,
    GatewayId,
    StartedAt,
    AnsweredAt,
    EndedAt,
    BilledSecs,
    HangupCause,
    RecordingPath,
    RecordingMs,
    Emergency,
    Node,
    Legs,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CallLegs {
    Table,
    Id,
    CallUuid,
    DomainId,
    StartedAt,
    Facts,
    ReceivedAt,
}
