//! Hot-desk sessions and Location sign-ins: the runtime bindings between Extensions and Devices.
//!
//! The invariants live here, not only in code:
//! - one active session per device: a partial unique index on `device_id` over the rows whose
//!   `ended_at` is NULL;
//! - with one-phone-at-a-time, one active session per Extension: a partial unique index on
//!   `extension_id` over the active rows started while the Domain said so (`exclusive_session`,
//!   set from the setting at login, so the setting can change without rewriting old rows);
//! - at most one Location per Extension: `extension_id` is the primary key of `location_sign_ins`.
//!
//! Same-Domain references are composite foreign keys on `(domain_id, id)`, as in the calling
//! model; deleting a Device, Extension or Location removes its sessions and sign-ins.
//! Partial indexes are plain SQL: PostgreSQL and SQLite (3.8+) both accept the same statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn same_domain_fk(
    name: &str,
    from: impl IntoIden + Clone,
    col: impl IntoIden,
    to: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from_tbl(from.clone())
        .from_col(Alias::new("domain_id"))
        .from_col(col)
        .to_tbl(to)
        .to_col(Alias::new("domain_id"))
        .to_col(Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(HotdeskSessions::Table)
                    .col(pk_uuid(HotdeskSessions::Id))
                    .col(uuid(HotdeskSessions::DomainId))
                    .col(uuid(HotdeskSessions::DeviceId))
                    .col(uuid(HotdeskSessions::ExtensionId))
                    .col(timestamp_with_time_zone(HotdeskSessions::StartedAt))
                    .col(string(HotdeskSessions::StartedVia).check(
                        Expr::col(HotdeskSessions::StartedVia).is_in([
                            "feature_code",
                            "api",
                            "admin",
                        ]),
                    ))
                    .col(string(HotdeskSessions::StartedBy))
                    .col(boolean(HotdeskSessions::ExclusiveSession))
                    .col(timestamp_with_time_zone_null(HotdeskSessions::EndedAt))
                    .col(string_null(HotdeskSessions::EndedReason))
                    .col(string_null(HotdeskSessions::EndedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_hotdesk_sessions_domain")
                            .from(HotdeskSessions::Table, HotdeskSessions::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut same_domain_fk(
                        "fk_hotdesk_sessions_device",
                        HotdeskSessions::Table,
                        HotdeskSessions::DeviceId,
                        Devices::Table,
                    ))
                    .foreign_key(&mut same_domain_fk(
                        "fk_hotdesk_sessions_extension",
                        HotdeskSessions::Table,
                        HotdeskSessions::ExtensionId,
                        Extensions::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_hotdesk_sessions_domain_ended")
                    .table(HotdeskSessions::Table)
                    .col(HotdeskSessions::DomainId)
                    .col(HotdeskSessions::EndedAt)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_hotdesk_sessions_active_device \
             ON hotdesk_sessions (device_id) WHERE ended_at IS NULL",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX uq_hotdesk_sessions_active_extension \
             ON hotdesk_sessions (extension_id) WHERE ended_at IS NULL AND exclusive_session",
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LocationSignIns::Table)
                    .col(uuid(LocationSignIns::DomainId))
                    .col(uuid(LocationSignIns::ExtensionId).primary_key())
                    .col(uuid(LocationSignIns::LocationId))
                    .col(timestamp_with_time_zone(LocationSignIns::Since))
                    .col(string(LocationSignIns::SignedInBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_location_sign_ins_domain")
                            .from(LocationSignIns::Table, LocationSignIns::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut same_domain_fk(
                        "fk_location_sign_ins_extension",
                        LocationSignIns::Table,
                        LocationSignIns::ExtensionId,
                        Extensions::Table,
                    ))
                    .foreign_key(&mut same_domain_fk(
                        "fk_location_sign_ins_location",
                        LocationSignIns::Table,
                        LocationSignIns::LocationId,
                        Locations::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LocationSignIns::Table.into_iden(),
            HotdeskSessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
}

#[derive(DeriveIden)]
enum Extensions {
    Table,
}

#[derive(DeriveIden)]
enum Locations {
    Table,
}

#[derive(DeriveIden, Clone)]
enum HotdeskSessions {
    Table,
    Id,
    DomainId,
    DeviceId,
    ExtensionId,
    StartedAt,
    StartedVia,
    StartedBy,
    ExclusiveSession,
    EndedAt,
    EndedReason,
    EndedBy,
}

#[derive(DeriveIden, Clone)]
enum LocationSignIns {
    Table,
    DomainId,
    ExtensionId,
    LocationId,
    Since,
    SignedInBy,
}
