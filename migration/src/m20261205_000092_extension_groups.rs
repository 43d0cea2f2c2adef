//! Hot-desk groups and the desk's own person.
//!
//! - `extension_groups`: a group of Extensions of one Domain that carries the logout action of
//!   its members (`logged_out_mode`, `placeholder_extension_id`), unique by name in the Domain.
//! - `extensions.group_id`: the group an Extension belongs to (at most one).
//! - `extensions.internal_allow`: the internal numbers an Extension may dial (a JSON list of
//!   numbers and ranges; none: every one), so a placeholder can be limited to reception.
//! - `extensions.placeholder_rings`: a placeholder whose logged-out phones ring when it is
//!   called.
//! - `devices.home_extension_id`: the person who normally sits at a hot-desk phone; a visitor's
//!   logout returns the phone to them.
//! - `devices.last_extension_id`: who logged out of the phone last (whose group's logout
//!   action applies while nobody is logged in).
//!
//! The new references are kept by the services (cleared when a group or an Extension is
//! deleted, as `placeholder_extension_id` is), since SQLite cannot add a foreign key to an
//! existing table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ExtensionGroups::Table)
                    .col(pk_uuid(ExtensionGroups::Id))
                    .col(uuid(ExtensionGroups::DomainId))
                    .col(string(ExtensionGroups::Name))
                    .col(string(ExtensionGroups::Description).default(""))
                    .col(
                        string(ExtensionGroups::LoggedOutMode)
                            .default("inherit")
                            .check(Expr::col(ExtensionGroups::LoggedOutMode).is_in([
                                "inherit",
                                "full",
                                "placeholder",
                            ])),
                    )
                    .col(uuid_null(ExtensionGroups::PlaceholderExtensionId))
                    .col(timestamp_with_time_zone(ExtensionGroups::CreatedAt))
                    .col(timestamp_with_time_zone(ExtensionGroups::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_extension_groups_domain")
                            .from(ExtensionGroups::Table, ExtensionGroups::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_extension_groups_placeholder")
                            .from(
                                ExtensionGroups::Table,
                                ExtensionGroups::PlaceholderExtensionId,
                            )
                            .to(Extensions::Table, Extensions::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_extension_groups_domain_name")
                    .table(ExtensionGroups::Table)
                    .col(ExtensionGroups::DomainId)
                    .col(ExtensionGroups::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            uuid_null(Extensions::GroupId),
            text_null(Extensions::InternalAllow),
            boolean(Extensions::PlaceholderRings).default(false).take(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Extensions::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_extensions_group")
                    .table(Extensions::Table)
                    .col(Extensions::GroupId)
                    .to_owned(),
            )
            .await?;
        allow_home_sessions(manager).await?;
        for column in [
            uuid_null(Devices::HomeExtensionId),
            uuid_null(Devices::LastExtensionId),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Devices::HomeExtensionId, Devices::LastExtensionId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_extensions_group")
                    .table(Extensions::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Extensions::GroupId,
            Extensions::InternalAllow,
            Extensions::PlaceholderRings,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Extensions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ExtensionGroups::Table).to_owned())
            .await
    }
}

/// Lets a hot-desk session start `home` (the phone returned to its home Extension): the
/// CHECK on `hotdesk_sessions.started_via` gains the value. PostgreSQL swaps the constraint;
/// SQLite, which cannot alter one, rebuilds the table from its own definition (same columns,
/// keys and indexes) with the wider CHECK.
async fn allow_home_sessions(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            db.execute_unprepared(
                "DO $$ DECLARE c text; BEGIN \
                   FOR c IN SELECT conname FROM pg_constraint \
                     WHERE conrelid = 'hotdesk_sessions'::regclass AND contype = 'c' \
                       AND pg_get_constraintdef(oid) LIKE '%started_via%' LOOP \
                     EXECUTE format('ALTER TABLE hotdesk_sessions DROP CONSTRAINT %I', c); \
                   END LOOP; END $$",
            )
            .await?;
            db.execute_unprepared(
                "ALTER TABLE hotdesk_sessions ADD CONSTRAINT ck_hotdesk_sessions_started_via \
                 CHECK (started_via IN ('feature_code', 'api', 'admin', 'home'))",
            )
            .await?;
        }
        _ => {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    manager.get_database_backend(),
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'hotdesk_sessions'",
                ))
                .await?
                .ok_or_else(|| DbErr::Custom("hotdesk_sessions is missing".into()))?;
            let sql: String = row.try_get("", "sql")?;
            let old_check = "'admin')";
            if !sql.contains(old_check) || !sql.contains("\"hotdesk_sessions\"") {
                return Err(DbErr::Custom(format!(
                    "unexpected definition of hotdesk_sessions: {sql}"
                )));
            }
            let rebuilt = sql
                .replacen("\"hotdesk_sessions\"", "\"hotdesk_sessions_rebuilt\"", 1)
                .replacen(old_check, "'admin', 'home')", 1);
            let indexes: Vec<String> = db
                .query_all_raw(sea_orm::Statement::from_string(
                    manager.get_database_backend(),
                    "SELECT sql FROM sqlite_master WHERE type = 'index' \
                     AND tbl_name = 'hotdesk_sessions' AND sql IS NOT NULL",
                ))
                .await?
                .iter()
                .map(|r| r.try_get::<String>("", "sql"))
                .collect::<Result<_, _>>()?;
            // One batch on one connection: the pool must not see the table half-rebuilt.
            let mut batch = format!(
                "{rebuilt}; \
                 INSERT INTO hotdesk_sessions_rebuilt SELECT * FROM hotdesk_sessions; \
                 DROP TABLE hotdesk_sessions; \
                 ALTER TABLE hotdesk_sessions_rebuilt RENAME TO hotdesk_sessions;"
            );
            for index in indexes {
                batch.push_str(&index);
                batch.push(';');
            }
            db.execute_unprepared(&batch).await?;
        }
    }
    Ok(())
}

#[derive(DeriveIden)]
enum ExtensionGroups {
    Table,
    Id,
    DomainId,
    Name,
    Description,
    LoggedOutMode,
    PlaceholderExtensionId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Extensions {
    Table,
    Id,
    GroupId,
    InternalAllow,
    PlaceholderRings,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    HomeExtensionId,
    LastExtensionId,
}
