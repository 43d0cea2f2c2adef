//! Calls that leave and enter the platform: Gateways (trunks to carriers), their grants to
//! Domains, Outbound Routes with their ordered gateways, and the numbering a Domain dials in.
//!
//! - `gateways`: owned by a Domain (`domain_id`) or by the platform (`domain_id` null, granted to
//!   Domains through `gateway_grants`). `owner_key` is the owning Domain's id or `platform`, so
//!   one unique index keeps names unique per owner on both databases (a NULL never collides in
//!   a unique index). The password is encrypted like SIP secrets.
//! - `outbound_routes`: per Domain, ordered by `position`; `patterns` holds dial patterns one per
//!   line; `toll_class` is the class of what it reaches.
//! - `outbound_route_gateways`: the route's gateways in failover order. Deleting a gateway that
//!   a route uses is refused by the service (409 naming the routes); the foreign key is the
//!   last line of defence.
//! - `calling_settings`: the Domain's country code and dialling prefixes (to normalise to
//!   E.164), its default outbound caller ID, and whether it may present numbers it does not own
//!   (set by the platform).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Gateways::Table)
                    .col(pk_uuid(Gateways::Id))
                    .col(uuid_null(Gateways::DomainId))
                    .col(string(Gateways::OwnerKey))
                    .col(string(Gateways::Name))
                    .col(string(Gateways::Description).default(""))
                    .col(string(Gateways::Proxy))
                    .col(string_null(Gateways::Realm))
                    .col(string_null(Gateways::Username))
                    .col(text_null(Gateways::PasswordEncrypted))
                    .col(boolean(Gateways::Register).default(false))
                    .col(string(Gateways::Transport).default("udp"))
                    .col(boolean(Gateways::CallerIdInFrom).default(true))
                    .col(integer_null(Gateways::PingSecs))
                    .col(integer(Gateways::ExpireSecs).default(600))
                    .col(string_null(Gateways::FromDomain))
                    .col(boolean(Gateways::Enabled).default(true))
                    .col(timestamp_with_time_zone(Gateways::CreatedAt))
                    .col(timestamp_with_time_zone(Gateways::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_gateways_domain")
                            .from(Gateways::Table, Gateways::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Expr::col(Gateways::Transport).is_in(["udp", "tcp", "tls"]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_gateways_owner_name")
                    .table(Gateways::Table)
                    .col(Gateways::OwnerKey)
                    .col(Gateways::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GatewayGrants::Table)
                    .col(uuid(GatewayGrants::GatewayId))
                    .col(uuid(GatewayGrants::DomainId))
                    .col(timestamp_with_time_zone(GatewayGrants::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(GatewayGrants::GatewayId)
                            .col(GatewayGrants::DomainId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_gateway_grants_gateway")
                            .from(GatewayGrants::Table, GatewayGrants::GatewayId)
                            .to(Gateways::Table, Gateways::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_gateway_grants_domain")
                            .from(GatewayGrants::Table, GatewayGrants::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OutboundRoutes::Table)
                    .col(pk_uuid(OutboundRoutes::Id))
                    .col(uuid(OutboundRoutes::DomainId))
                    .col(string(OutboundRoutes::Name))
                    .col(integer(OutboundRoutes::Position))
                    .col(text(OutboundRoutes::Patterns))
                    .col(integer(OutboundRoutes::StripDigits).default(0))
                    .col(string(OutboundRoutes::Prepend).default(""))
                    .col(string(OutboundRoutes::TollClass))
                    .col(boolean(OutboundRoutes::Enabled).default(true))
                    .col(timestamp_with_time_zone(OutboundRoutes::CreatedAt))
                    .col(timestamp_with_time_zone(OutboundRoutes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbound_routes_domain")
                            .from(OutboundRoutes::Table, OutboundRoutes::DomainId)
                            .to(Domains::Table, Domains::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Expr::col(OutboundRoutes::TollClass).is_in([
                        "emergency",
                        "local",
                        "national",
                        "mobile",
                        "international",
                        "premium",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_outbound_routes_domain_name")
                    .table(OutboundRoutes::Table)
                    .col(OutboundRoutes::DomainId)
                    .col(OutboundRoutes::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OutboundRouteGateways::Table)
                    .col(uuid(OutboundRouteGateways::RouteId))
                    .col(uuid(OutboundRouteGateways::GatewayId))
                    .col(integer(OutboundRouteGateways::Position))
                    .primary_key(
                        Index::create()
                            .col(OutboundRouteGateways::RouteId)
                            .col(OutboundRouteGateways::GatewayId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_route_gateways_route")
                            .from(OutboundRouteGateways::Table, OutboundRouteGateways::RouteId)
                            .to(OutboundRoutes::Table, OutboundRoutes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_route_gateways_gateway")
                            .from(
                                OutboundRouteGateways::Table,
                                OutboundRouteGateways::GatewayId,
                            )
                            .to(Gateways::Table, Gateways::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for column in [
            string_null(CallingSettings::CountryCode),
            string(CallingSettings::NationalPrefix)
                .default("0")
                .to_owned(),
            string(CallingSettings::InternationalPrefix)
                .default("00")
                .to_owned(),
            string_null(CallingSettings::OutboundCallerIdName),
            string_null(CallingSettings::OutboundCallerIdNumber),
            boolean(CallingSettings::PresentAnyCallerId)
                .default(false)
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(CallingSettings::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            CallingSettings::CountryCode,
            CallingSettings::NationalPrefix,
            CallingSettings::InternationalPrefix,
            CallingSettings::OutboundCallerIdName,
            CallingSettings::OutboundCallerIdNumber,
            CallingSettings::PresentAnyCallerId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CallingSettings::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            OutboundRouteGateways::Table.into_iden(),
            OutboundRoutes::Table.into_iden(),
            GatewayGrants::Table.into_iden(),
            Gateways::Table.into_iden(),
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
enum Gateways {
    Table,
    Id,
    DomainId,
    OwnerKey,
    Name,
    Description,
    Proxy,
    Realm,
    Username,
    PasswordEncrypted,
    Register,
    Transport,
    CallerIdInFrom,
    PingSecs,
    ExpireSecs,
    FromDomain,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GatewayGrants {
    Table,
    GatewayId,
    DomainId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OutboundRoutes {
    Table,
    Id,
    DomainId,
    Name,
    Position,
    Patterns,
    StripDigits,
    Prepend,
    TollClass,
    Enabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OutboundRouteGateways {
    Table,
    RouteId,
    GatewayId,
    Position,
}

#[derive(DeriveIden)]
enum CallingSettings {
    Table,
    CountryCode,
    NationalPrefix,
    InternationalPrefix,
    OutboundCallerIdName,
    OutboundCallerIdNumber,
    PresentAnyCallerId,
}
