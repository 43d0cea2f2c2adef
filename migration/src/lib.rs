//! Database migrations for switchboard.
//!
//! One file per migration, named by date and purpose. They run from the `switchboard migrate`
//! command, automatically on `switchboard serve` (unless turned off), and from the tests.
//! Every schema invariant the product relies on (uniqueness, references, allowed values) is
//! declared here as a constraint, not only checked in code.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_identity;
mod m20261125_000010_calling_model;
mod m20261125_000020_hotdesk;
mod m20261125_000021_presence;
mod m20261201_000030_registrations;
mod m20261202_000040_stream_tickets;
mod m20261202_000041_pin_min_length;
mod m20261202_000050_registrations_by_contact;
mod m20261203_000060_trunks;
mod m20261203_000061_numbers;
mod m20261203_000062_gateway_inbound_addresses;
mod m20261204_000070_call_history;
mod m20261204_000080_voicemail_mail;
mod m20261205_000090_location_auto_sign_out;
mod m20261205_000091_location_short_code;
mod m20261205_000092_extension_groups;
mod m20261205_000093_provisioning;
mod m20261206_000100_call_flows;
mod m20261206_000110_cluster;

/// The ordered list of switchboard's migrations.
#[derive(Debug)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_identity::Migration),
            Box::new(m20261125_000010_calling_model::Migration),
            Box::new(m20261125_000020_hotdesk::Migration),
            Box::new(m20261125_000021_presence::Migration),
            Box::new(m20261201_000030_registrations::Migration),
            Box::new(m20261202_000040_stream_tickets::Migration),
            Box::new(m20261202_000041_pin_min_length::Migration),
            Box::new(m20261202_000050_registrations_by_contact::Migration),
            Box::new(m20261203_000060_trunks::Migration),
            Box::new(m20261203_000061_numbers::Migration),
            Box::new(m20261203_000062_gateway_inbound_addresses::Migration),
            Box::new(m20261204_000070_call_history::Migration),
            Box::new(m20261204_000080_voicemail_mail::Migration),
            Box::new(m20261205_000090_location_auto_sign_out::Migration),
            Box::new(m20261205_000091_location_short_code::Migration),
            Box::new(m20261205_000092_extension_groups::Migration),
            Box::new(m20261205_000093_provisioning::Migration),
            Box::new(m20261206_000100_call_flows::Migration),
            Box::new(m20261206_000110_cluster::Migration),
        ]
    }
}
