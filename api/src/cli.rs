//! The `switchboard` command line.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use sea_orm_migration::MigratorTrait;
use secrecy::{ExposeSecret, SecretString};
use switchboard_domain::services::Context;
use switchboard_domain::services::bootstrap::{self, CreatedAdmin};
use switchboard_migration::Migrator;

use crate::config::Config;
use crate::single_node::{Holder, claim_sqlite};
use crate::startup::{Application, connect_database};
use crate::{openapi, telemetry};

/// switchboard: a multi-tenant PBX backend that drives FreeSWITCH.
///
/// Configuration comes from built-in defaults, then an optional TOML file (--config or
/// SWITCHBOARD_CONFIG), then SWITCHBOARD_* environment variables (nested fields joined with
/// `__`, e.g. SWITCHBOARD_HTTP__PORT=8080). See switchboard.example.toml for every field.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, propagate_version = true)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first unless database.auto_migrate is off;
    /// on an empty database creates a platform administrator and prints its password once).
    Serve,
    /// Inspect or change the database schema.
    Migrate {
        /// What to do with migrations.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage platform administrators.
    Admin {
        /// What to do with administrators.
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Print the OpenAPI 3.1 document as JSON.
    Openapi,
    /// Import Users, Locations, groups, Extensions and Devices from a JSON or CSV file into a Domain, all
    /// or nothing, through a running server's API (POST /api/v1/domains/{id}/import, with the API
    /// key in SWITCHBOARD_API_KEY), so that the server and FreeSWITCH learn of every change.
    /// Prints the report as JSON; exits 1 when any row is invalid or the server refuses. With
    /// --offline, straight on the database as the audit actor `cli` (only while no server runs).
    Import(crate::import_cli::ImportArgs),
    /// Copy every row of a switchboard database into another, empty one, all or nothing: the
    /// way from SQLite to PostgreSQL (README "Moving to PostgreSQL"). Stop the server first.
    /// The source must be at this version's schema; the target is migrated to it, must hold no
    /// row, and is written in one transaction, table by table. Prints the rows copied per
    /// table. Reads no configuration: the two databases are given here.
    CopyData {
        /// The database to copy from, e.g. sqlite://switchboard.db.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into, e.g. postgres://switchboard@db.example.net/switchboard
        /// (the password may come from PGPASSWORD instead of the URL).
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

/// `migrate` actions.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migrations.
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

/// `admin` actions.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create a platform administrator (every permission in every Domain).
    Create(AdminCreate),
}

/// Arguments of `admin create`.
#[derive(Debug, Args)]
pub struct AdminCreate {
    /// The administrator's email (their login).
    #[arg(long)]
    pub email: String,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Openapi => {
            print!("{}", openapi::document_json()?);
            return Ok(());
        }
        // A client of a running server: its configuration is the server's business.
        Command::Import(args) if !args.offline => return crate::import_cli::run(args).await,
        // Both databases are given on the command line; the configuration has no say.
        Command::CopyData { from, to } => return crate::copy_data::run(&from, &to).await,
        _ => {}
    }
    let config = Config::load(cli.config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    telemetry::init(&config.log);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate { action } => migrate(config, action).await,
        Command::Admin {
            action: AdminAction::Create(args),
        } => admin_create(config, args).await,
        Command::Import(args) => crate::import_cli::run_offline(config, args).await,
        Command::Openapi | Command::CopyData { .. } => Ok(()),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let host = config.http.host.clone();
    // Before anything touches the database: one server per SQLite file. Held until the server
    // has stopped (the end of this function), released by the operating system however the
    // process ends.
    let claim = claim_sqlite(&config.database_url, Holder::Serve)?;
    tracing::info!(database = %config.database_url_for_logs(), "starting switchboard");
    let mut app = Application::build(config).await?;
    if let Some(admin) = app.take_bootstrap_admin() {
        print_admin(
            &admin,
            "The database was empty, so a platform administrator was created",
        );
    }
    if let Some(path) = app.generated_key_file() {
        println!(
            "  Generated the SIP secret encryption key in {} (mode 0600).",
            path.display()
        );
        println!("  Keep it with the database: without it the SIP secrets cannot be read.");
        println!(
            "  In production, set secrets.encryption_key (SWITCHBOARD_SECRETS__ENCRYPTION_KEY) instead."
        );
        println!();
    }
    let port = app.port();
    tracing::info!(%host, port, "listening; API docs at http://{host}:{port}/api/docs/");
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    drop(claim);
    Ok(())
}

fn print_admin(admin: &CreatedAdmin, headline: &str) {
    println!();
    println!("  {headline}:");
    println!("    email:    {}", admin.email);
    match &admin.generated_password {
        Some(password) => {
            println!("    password: {}", password.expose_secret());
            println!("  This password is shown once and is not stored anywhere in clear text;");
            println!("  log in with it and change it (POST /api/v1/me/password).");
        }
        None => println!("    password: the one you supplied"),
    }
    println!();
}

async fn migrate(config: Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = connect_database(&config).await?;
    match action {
        MigrateAction::Up => {
            Migrator::up(&db, None)
                .await
                .context("applying migrations")?;
            println!("database is up to date");
        }
        MigrateAction::Down { steps } => {
            Migrator::down(&db, Some(steps))
                .await
                .context("rolling back migrations")?;
            println!("rolled back {steps} migration(s)");
        }
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!(
                    "{:<10} {}",
                    format!("{:?}", migration.status()).to_lowercase(),
                    migration.name()
                );
            }
        }
    }
    Ok(())
}

async fn admin_create(config: Config, args: AdminCreate) -> anyhow::Result<()> {
    let db = connect_database(&config).await?;
    Migrator::up(&db, None)
        .await
        .context("applying migrations")?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Some(SecretString::from(
            line.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    } else {
        None
    };
    let ctx = Context::system("cli");
    let admin = bootstrap::create_platform_admin(&db, &ctx, &args.email, password)
        .await
        .map_err(|e| match e {
            switchboard_domain::DomainError::Validation(errors) => anyhow::anyhow!(
                "{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    print_admin(&admin, "Platform administrator created");
    Ok(())
}
