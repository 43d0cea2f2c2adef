//! `switchboard import FILE --domain SIP_DOMAIN [--dry-run] [--format json|csv]`: the bulk
//! import of `POST …/import`, straight on the database (no HTTP, no login), as the system
//! actor labelled `cli` in the audit log, with a progress bar on standard error.
//!
//! It reads the same JSON and CSV ([`parse_file`]) and runs the same use case
//! ([`import::import`]), so the rules and the report are the same. The change event goes to
//! this process's own bus only: running servers learn of the new rows the next time they read
//! them, not through their event stream.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sea_orm_migration::MigratorTrait;
use switchboard_domain::events::EventBus;
use switchboard_domain::services::Context;
use switchboard_domain::services::extensions::Deps;
use switchboard_domain::services::import::{self, Progress, Stage};
use switchboard_domain::services::settings;
use switchboard_migration::Migrator;

use crate::config::Config;
use crate::routes::import::{ImportFormat, ImportReportDto, parse_file};
use crate::startup::{connect_database, load_cipher};

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file: JSON (`{"extensions": [...], "devices": [...]}`) or CSV with a `kind` column,
    /// as for `POST /api/v1/domains/{id}/import`; `-` reads standard input.
    pub file: PathBuf,
    /// The SIP domain of the Domain to import into, e.g. acme.pbx.example.net.
    #[arg(long, value_name = "SIP_DOMAIN")]
    pub domain: String,
    /// Only check every row and print the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The file's format (default: from its extension, `.csv` or `.json`).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
}

/// The progress bar: one bar per stage, on standard error, hidden when that is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>13} [{bar:40.cyan/blue}] {pos}/{len} rows, {elapsed} (about {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self(bar)
    }
}

impl Progress for Bar {
    fn start(&self, stage: Stage, total: u64) {
        self.0.set_message(stage.label());
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.reset_eta();
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
}

fn format_of(args: &ImportArgs) -> anyhow::Result<ImportFormat> {
    if let Some(format) = args.format {
        return Ok(format);
    }
    match args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Ok(ImportFormat::Csv),
        Some("json") => Ok(ImportFormat::Json),
        _ => anyhow::bail!(
            "cannot tell the format of {}; pass --format json or --format csv",
            args.file.display()
        ),
    }
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs `switchboard import`: prints the report as JSON on standard output, and fails (exit
/// status 1) when any row is invalid.
pub async fn run(config: Config, args: ImportArgs) -> anyhow::Result<()> {
    let format = format_of(&args)?;
    let bytes = read_file(&args.file)?;
    let parsed =
        parse_file(format, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    drop(bytes);

    let db = connect_database(&config).await?;
    if config.database.auto_migrate {
        Migrator::up(&db, None)
            .await
            .context("applying database migrations")?;
    } else if !Migrator::get_pending_migrations(&db).await?.is_empty() {
        anyhow::bail!(
            "the database has pending migrations and database.auto_migrate is off: run `switchboard migrate up`"
        );
    }
    let (cipher, _) = load_cipher(&config)?;
    settings::verify_cipher(&db, &cipher)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let domain = import::domain_by_sip_domain(&db, &args.domain)
        .await
        .map_err(|_| anyhow::anyhow!("there is no Domain with the SIP domain {}", args.domain))?;

    let bus = EventBus::default();
    let deps = Deps {
        db: &db,
        cipher: &cipher,
        bus: &bus,
    };
    let ctx = Context::system("cli");
    let bar = Bar::new();
    let result = import::import(
        deps,
        &ctx,
        domain.id,
        parsed.file,
        args.dry_run || parsed.dry_run,
        &bar,
    )
    .await;
    bar.0.finish_and_clear();
    let report = result.map_err(|e| match e {
        switchboard_domain::DomainError::Conflict { message, .. } => anyhow::anyhow!(
            "{message} (a concurrent change since the checks); nothing was imported, run it again"
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    let (valid, imported, rows, errors) = (
        report.valid,
        report.imported,
        report.rows,
        report.errors.len(),
    );
    let (extensions, devices) = (report.extensions, report.devices);
    println!(
        "{}",
        serde_json::to_string_pretty(&ImportReportDto::from(report))?
    );
    if !valid {
        anyhow::bail!("{errors} error(s) in {rows} row(s); nothing was imported");
    }
    if imported {
        eprintln!(
            "imported {rows} row(s) into {}: {extensions} Extension(s), {devices} Device(s)",
            domain.sip_domain
        );
    } else {
        eprintln!("dry run: all {rows} row(s) are valid; nothing was written");
    }
    Ok(())
}
