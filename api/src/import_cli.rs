//! `switchboard import`: the bulk import of `POST /api/v1/domains/{id}/import` from the command
//! line.
//!
//! By default it goes through the API of a running server (`--url`, with the API key in
//! `SWITCHBOARD_API_KEY`): the server checks and writes the rows, audits them as the key's
//! actor, and tells FreeSWITCH of every SIP user concerned, exactly as for any other client.
//!
//! `--offline` writes straight into the database instead, as the audit actor `cli`, with a
//! progress bar. It reads the same JSON and CSV ([`parse_file`]) and runs the same use case
//! ([`import::import`]), but its change event goes to this process's own bus only: a running
//! server and its FreeSWITCH nodes would not learn of the new rows until they next read them.
//! It is meant for provisioning a database while no server runs, and on SQLite it refuses while
//! one does (see [`crate::single_node`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::CONTENT_TYPE;
use sea_orm::EntityTrait;
use sea_orm_migration::MigratorTrait;
use serde_json::Value;
use switchboard_domain::events::EventBus;
use switchboard_domain::services::Context;
use switchboard_domain::services::extensions::Deps;
use switchboard_domain::services::import::{self, ImportOptions, Progress, Stage};
use switchboard_domain::services::settings;
use switchboard_migration::Migrator;
use uuid::Uuid;

use crate::config::Config;
use crate::routes::import::{ImportFormat, ImportOnExisting, ImportReportDto, parse_file};
use crate::single_node::{Holder, claim_sqlite};
use crate::startup::{connect_database, load_cipher};

/// The environment variable holding the API key `switchboard import` sends.
pub const API_KEY_ENV: &str = "SWITCHBOARD_API_KEY";

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file: JSON (`{"users": [...], "locations": [...], "groups": [...],
    /// "extensions": [...], "devices": [...]}`) or CSV with a `kind` column, as for
    /// `POST /api/v1/domains/{id}/import`; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// The Domain to import into: its id, or its SIP domain (e.g. acme.pbx.example.net).
    #[arg(long, value_name = "ID_OR_SIP_DOMAIN")]
    pub domain: String,
    /// The running server's base URL, e.g. http://127.0.0.1:8080. The API key comes from
    /// SWITCHBOARD_API_KEY.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "offline",
        conflicts_with = "offline"
    )]
    pub url: Option<String>,
    /// Only check every row and print the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// What a row matching a stored record does: `error` (the server's default) or `update`
    /// (only the fields the row gives change).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub on_existing: Option<ImportOnExisting>,
    /// The file's format (default: from its extension, `.csv` or `.json`).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Write straight into the database of the configuration instead of going through a
    /// server, as the audit actor `cli`. Only while no server runs: a running server and
    /// FreeSWITCH are not told of the changes (on SQLite it refuses while a server runs).
    #[arg(long)]
    pub offline: bool,
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

/// What a report says, for the line on standard error.
struct Outcome {
    valid: bool,
    imported: bool,
    rows: u64,
    errors: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
}

impl Outcome {
    fn of(report: &Value) -> Self {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        Self {
            valid: report["valid"].as_bool().unwrap_or(false),
            imported: report["imported"].as_bool().unwrap_or(false),
            rows: n(&report["rows"]),
            errors: report["errors"].as_array().map_or(0, |e| e.len() as u64),
            created: n(&report["totals"]["created"]),
            updated: n(&report["totals"]["updated"]),
            unchanged: n(&report["totals"]["unchanged"]),
        }
    }

    /// Prints the report on standard output and the outcome on standard error; an invalid
    /// file is an error (exit status 1).
    fn finish(report: &Value, domain: &str) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(report)?);
        let o = Self::of(report);
        if !o.valid {
            anyhow::bail!(
                "{} error(s) in {} row(s); nothing was imported",
                o.errors,
                o.rows
            );
        }
        let counts = format!(
            "{} created, {} updated, {} unchanged",
            o.created, o.updated, o.unchanged
        );
        if o.imported {
            eprintln!("imported {} row(s) into {domain}: {counts}", o.rows);
        } else {
            eprintln!(
                "dry run: all {} row(s) are valid ({counts}); nothing was written",
                o.rows
            );
        }
        Ok(())
    }
}

/// Runs `switchboard import` through a running server: prints the report as JSON on standard
/// output, and fails (exit status 1) when any row is invalid or the server refuses.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let Some(url) = args.url.as_deref() else {
        anyhow::bail!("give the server with --url, or import with --offline");
    };
    let base = url.trim().trim_end_matches('/').to_owned();
    let key = std::env::var(API_KEY_ENV)
        .ok()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .with_context(|| {
            format!(
                "{API_KEY_ENV} is not set: create an API key of the Domain (POST /api/v1/domains/{{id}}/api-keys) and export it"
            )
        })?;
    let format = format_of(&args)?;
    let bytes = read_file(&args.file)?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let server = Server { client, base, key };
    let (domain_id, domain_name) = server.domain(&args.domain).await?;

    let mut query: Vec<(&str, &str)> = Vec::new();
    if args.dry_run {
        query.push(("dry_run", "true"));
    }
    if let Some(on_existing) = args.on_existing {
        query.push(("on_existing", on_existing.as_str()));
    }
    let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    spinner.set_message(format!("importing into {domain_name}"));
    spinner.enable_steady_tick(Duration::from_millis(200));
    // No overall timeout: hashing the PINs of a large file takes a while.
    let sent = server
        .client
        .post(server.url(&format!("/api/v1/domains/{domain_id}/import")))
        .bearer_auth(&server.key)
        .query(&query)
        .header(CONTENT_TYPE, format.content_type())
        .body(bytes)
        .send()
        .await;
    spinner.finish_and_clear();
    let response = sent.with_context(|| format!("sending the file to {}", server.base))?;
    let status = response.status();
    let body = Server::json(response).await?;
    match status.as_u16() {
        200 | 201 => Outcome::finish(&body, &domain_name),
        // Invalid rows: the problem document is the report.
        422 if body.get("rows").is_some() => Outcome::finish(&body, &domain_name),
        _ => Err(Server::refusal(status, &body)),
    }
}

/// A running server, as the command line talks to it.
struct Server {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn json(response: reqwest::Response) -> anyhow::Result<Value> {
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        serde_json::from_str(&text).with_context(|| {
            let start: String = text.chars().take(200).collect();
            format!("the server answered {status} with something that is not JSON: {start}")
        })
    }

    /// A refusal as an error naming the status, the problem's code and its detail.
    fn refusal(status: reqwest::StatusCode, problem: &Value) -> anyhow::Error {
        let detail = problem["detail"].as_str().unwrap_or("no detail");
        let code = problem["code"].as_str().unwrap_or("unknown");
        let hint = match status.as_u16() {
            401 => "; is SWITCHBOARD_API_KEY a valid, unrevoked API key?",
            403 => "; the API key's role lacks a permission the file needs",
            _ => "",
        };
        anyhow::anyhow!("the server refused the import ({status}, {code}): {detail}{hint}")
    }

    /// The Domain `id_or_name` names: an id as is, a SIP domain looked up among the Domains
    /// the key can see. Returns its id and how to call it.
    async fn domain(&self, id_or_name: &str) -> anyhow::Result<(Uuid, String)> {
        let wanted = id_or_name.trim();
        if let Ok(id) = Uuid::try_parse(wanted) {
            return Ok((id, id.to_string()));
        }
        let wanted = wanted.to_ascii_lowercase();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("q", wanted.clone()), ("limit", "100".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let response = self
                .client
                .get(self.url("/api/v1/domains"))
                .bearer_auth(&self.key)
                .query(&query)
                .send()
                .await
                .with_context(|| format!("asking {} for the Domain {wanted}", self.base))?;
            let status = response.status();
            let page = Self::json(response).await?;
            if !status.is_success() {
                return Err(Self::refusal(status, &page));
            }
            let found = page["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|d| d["sip_domain"].as_str() == Some(wanted.as_str()))
                    .and_then(|d| d["id"].as_str())
                    .and_then(|id| Uuid::try_parse(id).ok())
            });
            if let Some(id) = found {
                return Ok((id, wanted));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => anyhow::bail!(
                    "there is no Domain with the SIP domain {wanted} that this API key can see"
                ),
            }
        }
    }
}

/// Runs `switchboard import --offline`: straight on the database of `config`, as the system
/// actor `cli`. Prints the report as JSON on standard output, and fails (exit status 1) when
/// any row is invalid.
pub async fn run_offline(config: Config, args: ImportArgs) -> anyhow::Result<()> {
    // On SQLite a running server is known for sure, and refused (its caches would not learn
    // of the rows); on PostgreSQL only the warning below is possible.
    let _claim = claim_sqlite(&config.database_url, Holder::ImportOffline)?;
    let format = format_of(&args)?;
    let bytes = read_file(&args.file)?;
    let parsed =
        parse_file(format, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    drop(bytes);
    eprintln!(
        "warning: --offline writes straight into the database; a running server and FreeSWITCH are not told of the changes (use it only while no server runs)"
    );

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
    let domain = match Uuid::try_parse(args.domain.trim()) {
        Ok(id) => switchboard_domain::store::domains::Entity::find_by_id(id)
            .one(&db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("there is no Domain with the id {id}"))?,
        Err(_) => import::domain_by_sip_domain(&db, &args.domain)
            .await
            .map_err(|_| {
                anyhow::anyhow!("there is no Domain with the SIP domain {}", args.domain)
            })?,
    };
    let on_existing = match (parsed.on_existing, args.on_existing) {
        (Some(file), Some(flag)) if file != flag => anyhow::bail!(
            "the file says on_existing {} and --on-existing {}; give one",
            file.as_str(),
            flag.as_str()
        ),
        (file, flag) => file.or(flag).unwrap_or_default(),
    };

    let bus = EventBus::default();
    let deps = Deps {
        db: &db,
        cipher: &cipher,
        bus: &bus,
    };
    let ctx = Context::system("cli");
    let options = ImportOptions {
        dry_run: args.dry_run || parsed.dry_run,
        on_existing: on_existing.into(),
        token_ttl: chrono::Duration::hours(i64::from(config.auth.password_token_ttl_hours)),
    };
    let bar = Bar::new();
    let result = import::import(deps, &ctx, domain.id, parsed.file, options, &bar).await;
    bar.0.finish_and_clear();
    let report = result.map_err(|e| match e {
        switchboard_domain::DomainError::Conflict { message, .. } => {
            anyhow::anyhow!("{message}; nothing was imported, run it again")
        }
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
    let report = serde_json::to_value(ImportReportDto::from(report))?;
    Outcome::finish(&report, &domain.sip_domain)
}
