//! The calling model: Extensions, Devices, Locations and each Domain's calling settings.
//!
//! Same-Domain references are enforced by composite foreign keys on `(domain_id, id)`, so a
//! Device can never point at another Domain's Extension or Location, whatever the code does.

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
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Extensions::Table)
                    .col(pk_uuid(Extensions::Id))
                    .col(uuid(Extensions::DomainId))
                    .col(string(Extensions::Number))
                    .col(string(Extensions::DisplayName))
                    .col(string_null(Extensions::InternalCallerIdName))
                    .col(string_null(Extensions::InternalCallerIdNumber))
                    .col(string_null(Extensions::OutboundCallerIdName))
                    .col(string_null(Extensions::OutboundCallerIdNumber))
                    .col(string_null(Extensions::EmergencyCallerIdName))
                    .col(string_null(Extensions::EmergencyCallerIdNumber))
                    .col(boolean(Extensions::VoicemailEnabled))
                    .col(text_null(Extensions::PinHash))
                    .col(integer_null(Extensions::RingTimeoutSecs))
                    .col(boolean(Extensions::Dnd))
                    .col(boolean(Extensions::ForwardAlwaysEnabled))
                    .col(string_null(Extensions::ForwardAlwaysDestination))
                    .col(boolean(Extensions::ForwardBusyEnabled))
                    .col(string_null(Extensions::ForwardBusyDestination))
                    .col(boolean(Extensions::ForwardNoAnswerEnabled))
                    .col(string_null(Extensions::ForwardNoAnswerDestination))
                    .col(boolean(Extensions::ForwardNotRegisteredEnabled))
                    .col(string_null(Extensions::ForwardNotRegisteredDestination))
                    .col(string(Extensions::RecordInbound).check(
                        Expr::col(Extensions::RecordInbound).is_in([
                            "always",
                            "never",
                            "on_demand",
                        ]),
                    ))
                    .col(string(Extensions::RecordOutbound).check(
                        Expr::col(Extensions::RecordOutbound).is_in([
                            "always",
                            "never",
                            "on_demand",
                        ]),
                    ))
                    .col(string_null(Extensions::Context))
                    .col(string(Extensions::TollAllow))
                    .col(string_null(Extensions::AccountCode))
                    .col(string_null(Extensions::CallGroup))
                    .col(boolean(Extensions::HotdeskAllowed))
                    .col(boolean(Extensions::Placeholder))
                    .col(boolean(Extensions::SipRegistrationEnabled))
                    .col(text_null(Extensions::SipSecretEncrypted))
                    .col(integer(Extensions::MaxRegistrations))
                    .col(uuid_null(Extensions::UserId))
                    .col(boolean(Extensions::Enabled))
                    .col(timestamp_with_time_zone(Extensions::CreatedAt))
                    .col(timestamp_with_time_zone(Extensions::UpdatedAt))
                    // A placeholder stands in for nobody: it cannot belong to a person.
                    .check(
                        Expr::col(Extensions::Placeholder)
                            .eq(false)
                            .or(Expr::col(Extensions::UserId).is_null()),
                    )
                    .check(
                        Expr::col(Extensions::SipRegistrationEnabled)
                            .eq(false)
                            .or(Expr::col(Extensions::SipSecretEncrypted).is_not_null()),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_extensions_domain")
                            .from(Extensions::Table, Extensions::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_extensions_user")
                            .from(Extensions::Table, Extensions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "uq_extensions_domain_number",
                vec![Extensions::DomainId, Extensions::Number],
            ),
            (
                "uq_extensions_domain_id",
                vec![Extensions::DomainId, Extensions::Id],
            ),
            (
                "uq_extensions_domain_user",
                vec![Extensions::DomainId, Extensions::UserId],
            ),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(Extensions::Table)
                .unique()
                .to_owned();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Locations::Table)
                    .col(pk_uuid(Locations::Id))
                    .col(uuid(Locations::DomainId))
                    .col(string(Locations::Name))
                    .col(text(Locations::Description))
                    .col(string_null(Locations::EmergencyCallerIdName))
                    .col(string_null(Locations::EmergencyCallerIdNumber))
                    .col(text_null(Locations::EmergencyAddress))
                    .col(string(Locations::RingStrategy).check(
                        Expr::col(Locations::RingStrategy).is_in(["simultaneous", "sequential"]),
                    ))
                    .col(
                        string(Locations::SignInPolicy).check(
                            Expr::col(Locations::SignInPolicy).is_in(["everyone", "listed"]),
                        ),
                    )
                    .col(json(Locations::AllowedRoles))
                    .col(timestamp_with_time_zone(Locations::CreatedAt))
                    .col(timestamp_with_time_zone(Locations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_locations_domain")
                            .from(Locations::Table, Locations::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "uq_locations_domain_name",
                vec![Locations::DomainId, Locations::Name],
            ),
            (
                "uq_locations_domain_id",
                vec![Locations::DomainId, Locations::Id],
            ),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(Locations::Table)
                .unique()
                .to_owned();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(LocationExtensions::Table)
                    .col(uuid(LocationExtensions::DomainId))
                    .col(uuid(LocationExtensions::LocationId))
                    .col(uuid(LocationExtensions::ExtensionId))
                    .primary_key(
                        Index::create()
                            .col(LocationExtensions::LocationId)
                            .col(LocationExtensions::ExtensionId),
                    )
                    .foreign_key(
                        &mut same_domain_fk(
                            "fk_location_extensions_location",
                            LocationExtensions::Table,
                            LocationExtensions::LocationId,
                            Locations::Table,
                        )
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                    )
                    .foreign_key(
                        &mut same_domain_fk(
                            "fk_location_extensions_extension",
                            LocationExtensions::Table,
                            LocationExtensions::ExtensionId,
                            Extensions::Table,
                        )
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(pk_uuid(Devices::Id))
                    .col(uuid(Devices::DomainId))
                    .col(string(Devices::Label))
                    // Normalised (12 lower-case hex digits); NULLs (softphones) do not collide.
                    .col(string_null(Devices::MacAddress).unique_key())
                    .col(string_null(Devices::Vendor))
                    .col(string_null(Devices::Model))
                    .col(string(Devices::SipUsername))
                    .col(text(Devices::SipSecretEncrypted))
                    .col(
                        string(Devices::Mode)
                            .check(Expr::col(Devices::Mode).is_in(["fixed", "hotdesk"])),
                    )
                    .col(uuid_null(Devices::OwnerExtensionId))
                    .col(uuid_null(Devices::LocationId))
                    .col(integer(Devices::LocationPosition))
                    .col(integer_null(Devices::LocationRingTimeoutSecs))
                    .col(string_null(Devices::EmergencyCallerIdName))
                    .col(string_null(Devices::EmergencyCallerIdNumber))
                    .col(string(Devices::LoggedOutMode).check(
                        Expr::col(Devices::LoggedOutMode).is_in(["inherit", "full", "placeholder"]),
                    ))
                    .col(uuid_null(Devices::PlaceholderExtensionId))
                    .col(
                        string(Devices::AutoLogout).check(Expr::col(Devices::AutoLogout).is_in([
                            "inherit",
                            "never",
                            "after_hours",
                            "daily_at",
                        ])),
                    )
                    .col(integer_null(Devices::AutoLogoutHours))
                    .col(string_null(Devices::AutoLogoutAt))
                    .col(boolean(Devices::Enabled))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    // A fixed device always has its owner; only fixed devices have one.
                    .check(
                        Expr::col(Devices::Mode)
                            .eq("fixed")
                            .and(Expr::col(Devices::OwnerExtensionId).is_not_null())
                            .or(Expr::col(Devices::Mode)
                                .eq("hotdesk")
                                .and(Expr::col(Devices::OwnerExtensionId).is_null())),
                    )
                    .check(
                        Expr::col(Devices::LoggedOutMode)
                            .ne("placeholder")
                            .or(Expr::col(Devices::PlaceholderExtensionId).is_not_null()),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_devices_domain")
                            .from(Devices::Table, Devices::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut same_domain_fk(
                        "fk_devices_owner",
                        Devices::Table,
                        Devices::OwnerExtensionId,
                        Extensions::Table,
                    ))
                    .foreign_key(&mut same_domain_fk(
                        "fk_devices_location",
                        Devices::Table,
                        Devices::LocationId,
                        Locations::Table,
                    ))
                    .foreign_key(&mut same_domain_fk(
                        "fk_devices_placeholder",
                        Devices::Table,
                        Devices::PlaceholderExtensionId,
                        Extensions::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_devices_domain_sip_username")
                    .table(Devices::Table)
                    .col(Devices::DomainId)
                    .col(Devices::SipUsername)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_devices_domain_id")
                    .table(Devices::Table)
                    .col(Devices::DomainId)
                    .col(Devices::Id)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CallingSettings::Table)
                    .col(uuid(CallingSettings::DomainId).primary_key())
                    .col(string(CallingSettings::LoggedOutMode).check(
                        Expr::col(CallingSettings::LoggedOutMode).is_in(["full", "placeholder"]),
                    ))
                    .col(uuid_null(CallingSettings::PlaceholderExtensionId))
                    .col(boolean(CallingSettings::OnePhoneAtATime))
                    .col(string(CallingSettings::AutoLogout).check(
                        Expr::col(CallingSettings::AutoLogout).is_in([
                            "never",
                            "after_hours",
                            "daily_at",
                        ]),
                    ))
                    .col(integer_null(CallingSettings::AutoLogoutHours))
                    .col(string_null(CallingSettings::AutoLogoutAt))
                    .col(string(CallingSettings::EmergencyNumbers))
                    .col(string_null(CallingSettings::EmergencyCallerIdName))
                    .col(string_null(CallingSettings::EmergencyCallerIdNumber))
                    .col(integer(CallingSettings::DefaultRingTimeoutSecs))
                    .col(integer(CallingSettings::PinMaxFailures))
                    .col(integer(CallingSettings::PinWindowSecs))
                    .col(timestamp_with_time_zone(CallingSettings::UpdatedAt))
                    .check(
                        Expr::col(CallingSettings::LoggedOutMode)
                            .ne("placeholder")
                            .or(Expr::col(CallingSettings::PlaceholderExtensionId).is_not_null()),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_calling_settings_domain")
                            .from(CallingSettings::Table, CallingSettings::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut same_domain_fk(
                        "fk_calling_settings_placeholder",
                        CallingSettings::Table,
                        CallingSettings::PlaceholderExtensionId,
                        Extensions::Table,
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CallingSettings::Table.into_iden(),
            Devices::Table.into_iden(),
            LocationExtensions::Table.into_iden(),
            Locations::Table.into_iden(),
            Extensions::Table.into_iden(),
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
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone)]
enum Extensions {
    Table,
    Id,
    DomainId,
    Number,
    DisplayName,
    InternalCallerIdName,
    InternalCallerIdNumber,
    OutboundCallerIdName,
    OutboundCallerIdNumber,
    EmergencyCallerIdName,
    EmergencyCallerIdNumber,
    VoicemailEnabled,
    PinHash,
    RingTimeoutSecs,
    Dnd,
    ForwardAlwaysEnabled,
    ForwardAlwaysDestination,
    ForwardBusyEnabled,
    ForwardBusyDestination,
    ForwardNoAnswerEnabled,
    ForwardNoAnswerDestination,
    ForwardNotRegisteredEnabled,
    ForwardNotRegisteredDestination,
    RecordInbound,
    RecordOutbound,
    Context,
    TollAllow,
    AccountCode,
    CallGroup,
    HotdeskAllowed,
    Placeholder,
    SipRegistrationEnabled,
    SipSecretEncrypted,
    MaxRegistrations,
    UserId,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum Locations {
    Table,
    Id,
    DomainId,
    Name,
    Description,
    EmergencyCallerIdName,
    EmergencyCallerIdNumber,
    EmergencyAddress,
    RingStrategy,
    SignInPolicy,
    AllowedRoles,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum LocationExtensions {
    Table,
    DomainId,
    LocationId,
    ExtensionId,
}

#[derive(DeriveIden, Clone)]
enum Devices {
    Table,
    Id,
    DomainId,
    Label,
    MacAddress,
    Vendor,
    Model,
    SipUsername,
    SipSecretEncrypted,
    Mode,
    OwnerExtensionId,
    LocationId,
    LocationPosition,
    LocationRingTimeoutSecs,
    EmergencyCallerIdName,
    EmergencyCallerIdNumber,
    LoggedOutMode,
    PlaceholderExtensionId,
    AutoLogout,
    AutoLogoutHours,
    AutoLogoutAt,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum CallingSettings {
    Table,
    DomainId,
    LoggedOutMode,
    PlaceholderExtensionId,
    OnePhoneAtATime,
    AutoLogout,
    AutoLogoutHours,
    AutoLogoutAt,
    EmergencyNumbers,
    EmergencyCallerIdName,
    EmergencyCallerIdNumber,
    DefaultRingTimeoutSecs,
    PinMaxFailures,
    PinWindowSecs,
    UpdatedAt,
}
