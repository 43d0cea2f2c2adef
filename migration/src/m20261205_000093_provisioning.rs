//! Phone provisioning.
//!
//! - `provisioning_templates`: a tenant's own template for one vendor family, usually extending
//!   the built-in one (`{% extends "yealink.cfg" %}`), unique by name in the Domain.
//! - `model_layouts`: the line keys of one phone model (a JSON list), unique by name in the
//!   Domain; at most one per model is the Domain's logged-out layout (a partial unique index).
//! - `extension_group_layouts` / `extension_group_templates`: which layouts and templates the
//!   members of a group may choose (none listed: every one of the Domain).
//! - `provisioning_settings`: per Domain, the first-boot credential (user name and encrypted
//!   password) with the source networks it is accepted from, the phones' language and NTP.
//! - `devices`: the template chosen for the phone, its own provisioning password (encrypted)
//!   and its last fetch (when, from where, which user agent).
//! - `hotdesk_sessions`: the layout and template chosen at login.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProvisioningTemplates::Table)
                    .col(pk_uuid(ProvisioningTemplates::Id))
                    .col(uuid(ProvisioningTemplates::DomainId))
                    .col(string(ProvisioningTemplates::Name))
                    .col(string(ProvisioningTemplates::Vendor))
                    .col(text(ProvisioningTemplates::Body))
                    .col(timestamp_with_time_zone(ProvisioningTemplates::CreatedAt))
                    .col(timestamp_with_time_zone(ProvisioningTemplates::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_provisioning_templates_domain")
                            .from(
                                ProvisioningTemplates::Table,
                                ProvisioningTemplates::DomainId,
                            )
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_provisioning_templates_domain_name")
                    .table(ProvisioningTemplates::Table)
                    .col(ProvisioningTemplates::DomainId)
                    .col(ProvisioningTemplates::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ModelLayouts::Table)
                    .col(pk_uuid(ModelLayouts::Id))
                    .col(uuid(ModelLayouts::DomainId))
                    .col(string(ModelLayouts::Name))
                    .col(string(ModelLayouts::Model))
                    .col(text(ModelLayouts::Keys))
                    .col(boolean(ModelLayouts::LoggedOut).default(false))
                    .col(timestamp_with_time_zone(ModelLayouts::CreatedAt))
                    .col(timestamp_with_time_zone(ModelLayouts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_model_layouts_domain")
                            .from(ModelLayouts::Table, ModelLayouts::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_model_layouts_domain_name")
                    .table(ModelLayouts::Table)
                    .col(ModelLayouts::DomainId)
                    .col(ModelLayouts::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // At most one logged-out layout per model and Domain, even under concurrent saves.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_model_layouts_logged_out \
                 ON model_layouts (domain_id, model) WHERE logged_out",
            )
            .await?;
        for (table, column, target, target_id, name) in [
            (
                ExtensionGroupLayouts::Table.into_iden(),
                ExtensionGroupLayouts::LayoutId.into_iden(),
                ModelLayouts::Table.into_iden(),
                ModelLayouts::Id.into_iden(),
                "extension_group_layouts",
            ),
            (
                ExtensionGroupTemplates::Table.into_iden(),
                ExtensionGroupTemplates::TemplateId.into_iden(),
                ProvisioningTemplates::Table.into_iden(),
                ProvisioningTemplates::Id.into_iden(),
                "extension_group_templates",
            ),
        ] {
            manager
                .create_table(
                    Table::create()
                        .table(table.clone())
                        .col(uuid(ExtensionGroupLayouts::GroupId))
                        .col(uuid(column.clone()))
                        .primary_key(
                            Index::create()
                                .col(ExtensionGroupLayouts::GroupId)
                                .col(column.clone()),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name(format!("fk_{name}_group"))
                                .from(table.clone(), ExtensionGroupLayouts::GroupId)
                                .to(ExtensionGroups::Table, ExtensionGroups::Id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .foreign_key(
                            ForeignKey::create()
                                .name(format!("fk_{name}_item"))
                                .from(table.clone(), column)
                                .to(target, target_id)
                                .on_delete(ForeignKeyAction::Cascade),
                        )
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ProvisioningSettings::Table)
                    .col(uuid(ProvisioningSettings::DomainId).primary_key())
                    .col(string_null(ProvisioningSettings::Username))
                    .col(text_null(ProvisioningSettings::PasswordEncrypted))
                    .col(text(ProvisioningSettings::AllowedNetworks).default("[]"))
                    .col(string(ProvisioningSettings::Language).default("en"))
                    .col(string_null(ProvisioningSettings::NtpServer))
                    .col(timestamp_with_time_zone(ProvisioningSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_provisioning_settings_domain")
                            .from(ProvisioningSettings::Table, ProvisioningSettings::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            uuid_null(Devices::TemplateId),
            text_null(Devices::ProvisioningPasswordEncrypted),
            timestamp_with_time_zone_null(Devices::LastProvisionedAt),
            string_null(Devices::LastProvisionedFrom),
            string_null(Devices::LastProvisionedAgent),
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
        for column in [
            uuid_null(HotdeskSessions::LayoutId),
            uuid_null(HotdeskSessions::TemplateId),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(HotdeskSessions::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [HotdeskSessions::LayoutId, HotdeskSessions::TemplateId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(HotdeskSessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Devices::TemplateId,
            Devices::ProvisioningPasswordEncrypted,
            Devices::LastProvisionedAt,
            Devices::LastProvisionedFrom,
            Devices::LastProvisionedAgent,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Devices::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            ProvisioningSettings::Table.into_iden(),
            ExtensionGroupTemplates::Table.into_iden(),
            ExtensionGroupLayouts::Table.into_iden(),
            ModelLayouts::Table.into_iden(),
            ProvisioningTemplates::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ProvisioningTemplates {
    Table,
    Id,
    DomainId,
    Name,
    Vendor,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ModelLayouts {
    Table,
    Id,
    DomainId,
    Name,
    Model,
    Keys,
    LoggedOut,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ExtensionGroupLayouts {
    Table,
    GroupId,
    LayoutId,
}

#[derive(DeriveIden)]
enum ExtensionGroupTemplates {
    Table,
    TemplateId,
}

#[derive(DeriveIden)]
enum ProvisioningSettings {
    Table,
    DomainId,
    Username,
    PasswordEncrypted,
    AllowedNetworks,
    Language,
    NtpServer,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ExtensionGroups {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Domains {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    TemplateId,
    ProvisioningPasswordEncrypted,
    LastProvisionedAt,
    LastProvisionedFrom,
    LastProvisionedAgent,
}

#[derive(DeriveIden)]
enum HotdeskSessions {
    Table,
    LayoutId,
    TemplateId,
}
