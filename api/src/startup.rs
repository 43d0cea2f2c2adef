//! Building and running the HTTP application.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_cors::CorsError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, Service, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, DefaultHeaders};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use actix_web_prom::PrometheusMetricsBuilder;
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use switchboard_domain::cluster::journal::Journal;
use switchboard_domain::cluster::lease::Leases;
use switchboard_domain::db::{self, PoolSettings};
use switchboard_domain::events::EventBus;
use switchboard_domain::services::bootstrap::{self, CreatedAdmin};
use switchboard_domain::services::presence::LineStates;
use switchboard_domain::services::scheduler;
use switchboard_domain::services::settings;
use switchboard_domain::telephony::secrets::SecretCipher;
use switchboard_esl_bridge::directory::{Directory, DirectorySettings};
use switchboard_esl_bridge::link::{Bridge, Cluster};
use switchboard_esl_bridge::metrics::BridgeMetrics;
use switchboard_migration::Migrator;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::config::Config;
use crate::extract;
use crate::openapi::{self, RouteTable};
use crate::problem::ApiError;
use crate::routes;
use crate::sse::EventLog;
use crate::state::AppState;

/// How often the auto-logout scheduler looks for hot-desk sessions that are due.
const HOTDESK_SCHEDULER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// The settings key of the generated JWT signing key.
const JWT_SECRET_SETTING: &str = "jwt_signing_key";

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    bootstrap: Option<CreatedAdmin>,
    generated_key_file: Option<PathBuf>,
}

/// Loads the SIP secret encryption key: configured, else (development) from the key file,
/// else generated into a new key file. Returns the path when a key was generated.
pub fn load_cipher(config: &Config) -> anyhow::Result<(SecretCipher, Option<PathBuf>)> {
    if let Some(key) = &config.secrets.encryption_key {
        return Ok((SecretCipher::from_base64(key.expose_secret())?, None));
    }
    let path = &config.secrets.key_file;
    match std::fs::read_to_string(path) {
        Ok(key) => {
            let cipher = SecretCipher::from_base64(&key).with_context(|| {
                format!("the key file {} does not hold a valid key", path.display())
            })?;
            Ok((cipher, None))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretCipher::generate_key();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create the key file {}", path.display()))?;
            file.write_all(key.expose_secret().as_bytes())?;
            file.write_all(b"\n")?;
            Ok((
                SecretCipher::from_base64(key.expose_secret())?,
                Some(path.clone()),
            ))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {}", path.display())),
    }
}

/// Creates a missing SQLite database file readable by its owner only (0600; SQLite gives its
/// `-wal` and `-shm` files the same mode), and warns when an existing one is readable by
/// others: it holds password hashes and sessions.
fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    use std::os::unix::fs::PermissionsExt;
    use std::str::FromStr;

    if !db::is_sqlite(url) {
        return Ok(());
    }
    let Ok(options) = SqliteConnectOptions::from_str(url) else {
        // sqlx reports a malformed URL when connecting.
        return Ok(());
    };
    let path = options.get_filename();
    let name = path.to_string_lossy();
    if name.is_empty() || name == ":memory:" || url.contains("mode=memory") {
        return Ok(());
    }
    // Only where SQLite itself would create the file (`mode=rwc`); otherwise a missing file
    // stays the error it was.
    let create = url.contains("mode=rwc") && !path.exists();
    if !create {
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "the SQLite database is readable by other users; chmod 600 it"
            );
        }
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Created meanwhile by another process starting: theirs to own.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create the database file {name}")),
    }
}

/// Opens the database pool for `config`.
pub async fn connect_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    prepare_sqlite_file(&config.database_url)?;
    let settings = PoolSettings {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_secs),
    };
    db::connect(&config.database_url, &settings)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                config.database_url_for_logs()
            )
        })
}

/// Compiles the FreeSWITCH directory from the database (the cold start) and keeps it current:
/// the bus marks changed Domains stale as it publishes, a task recompiles them.
async fn start_directory(
    config: &Config,
    db: &DatabaseConnection,
    cipher: &Arc<SecretCipher>,
    events: &EventBus,
) -> anyhow::Result<Arc<Directory>> {
    let xml_curl = &config.freeswitch.xml_curl;
    if xml_curl.password.is_none() {
        tracing::warn!(
            "freeswitch.xml_curl.password is not set: /freeswitch/xml answers any client from {:?} without credentials",
            xml_curl.allowed_networks
        );
    }
    let directory = Arc::new(Directory::new(
        db.clone(),
        cipher.clone(),
        DirectorySettings {
            cacheable_ms: xml_curl.cacheable_ms,
            outbound_socket: config.freeswitch.outbound_socket.clone(),
            recordings_dir: config.freeswitch.recordings_dir.clone(),
            live: Arc::default(),
        },
    ));
    // Observe first, then load: a change committed during the load is recompiled after it.
    events.observe(directory.observer());
    let started = std::time::Instant::now();
    // On SQLite every connection is a thread of its own, and what a thread allocated stays
    // with it until it allocates again: the cold start reads through a pool of its own,
    // closed after it, whose threads end and give back the rows they read.
    let cold = if db::is_sqlite(&config.database_url) {
        let settings = db::PoolSettings {
            max_connections: 4,
            ..db::PoolSettings::default()
        };
        Some(
            db::connect(&config.database_url, &settings)
                .await
                .context("opening the database for the directory's cold start")?,
        )
    } else {
        None
    };
    let stats = directory
        .load_all_from(cold.as_ref().unwrap_or(db))
        .await
        .map_err(|e| anyhow::anyhow!("compiling the FreeSWITCH directory: {e}"))?;
    if let Some(cold) = cold {
        if let Err(e) = cold.close().await {
            tracing::warn!(error = %e, "closing the cold start's connections");
        }
    }
    tracing::info!(
        domains = stats.domains,
        users = stats.users,
        elapsed_ms = started.elapsed().as_millis() as u64,
        load_ms = stats.load.as_millis() as u64,
        compile_ms = stats.compile.as_millis() as u64,
        "FreeSWITCH directory compiled"
    );
    directory.spawn_refresher();
    Ok(directory)
}

/// Starts the ESL bridge: event ingestion, the pusher and a link per FreeSWITCH node (the
/// configured ones and those registered through the API), and opens the feature codes'
/// outbound socket once there is a node.
async fn start_bridge(
    config: &Arc<Config>,
    db: &DatabaseConnection,
    cipher: &Arc<SecretCipher>,
    events: &EventBus,
    lines: &Arc<LineStates>,
    cluster: Cluster,
) -> anyhow::Result<Arc<Bridge>> {
    let metrics = BridgeMetrics::new().map_err(|e| anyhow::anyhow!("bridge metrics: {e}"))?;
    let nodes = crate::fs_nodes::wanted(config, db, cipher).await?;
    let sweep_interval = Duration::from_secs(config.freeswitch.link.sweep_interval_secs);
    let bridge = Arc::new(Bridge::start(
        nodes,
        db.clone(),
        events,
        cluster,
        lines.clone(),
        metrics,
        sweep_interval,
    ));
    let socket = Arc::new(crate::fs_nodes::OutboundSocket::new(
        config.clone(),
        db.clone(),
        events.clone(),
    ));
    if bridge.enabled() {
        socket.open()?;
    }
    crate::fs_nodes::follow(
        config.clone(),
        db.clone(),
        cipher.clone(),
        events,
        bridge.clone(),
        socket,
    );
    Ok(bridge)
}

impl Application {
    /// Connects to the database, applies migrations (unless turned off), creates the first
    /// administrator on an empty database, and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = connect_database(&config).await?;
        if config.database.auto_migrate {
            migrate_exclusively(&db).await?;
        } else {
            let pending = Migrator::get_pending_migrations(&db)
                .await
                .context("reading migration status")?;
            if !pending.is_empty() {
                anyhow::bail!(
                    "the database has {} pending migration(s) and database.auto_migrate is off: run `switchboard migrate up`",
                    pending.len()
                );
            }
        }

        let (cipher, generated_key_file) = load_cipher(&config)?;
        settings::verify_cipher(&db, &cipher)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;

        let bootstrap = bootstrap::ensure_first_admin(
            &db,
            config.bootstrap.admin_email.as_deref(),
            config.bootstrap.admin_password.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating the first administrator: {e}"))?;

        // The generated key is kept encrypted with the secrets key (an older plaintext row is
        // encrypted on this start): the database alone does not let anyone forge tokens.
        let jwt_secret = match &config.auth.jwt_secret {
            Some(secret) => secret.clone(),
            None => settings::get_or_generate_encrypted_secret(&db, JWT_SECRET_SETTING, &cipher)
                .await
                .map_err(|e| anyhow::anyhow!("loading the generated JWT key: {e}"))?,
        };

        // Bound first: the node's default name is its host and port.
        let listener = TcpListener::bind((config.http.host.as_str(), config.http.port))
            .with_context(|| {
                format!("cannot listen on {}:{}", config.http.host, config.http.port)
            })?;
        let port = listener.local_addr()?.port();
        let node_name = config.node_name(port);

        let events = EventBus::default();
        // Before anything publishes: every change goes to the shared change log.
        let journal = Journal::start(db.clone(), events.clone(), node_name.clone())
            .await
            .context("starting the change log")?;
        let event_log = Arc::new(EventLog::new());
        event_log.spawn(&journal);
        let lines = Arc::new(LineStates::new(db.clone(), events.clone()));
        switchboard_domain::cluster::lines::start(&db, &lines, &node_name);
        let cluster = Cluster {
            node: node_name.clone(),
            leases: Leases::new(&db),
            journal: journal.clone(),
        };
        let cipher = Arc::new(cipher);
        let config = Arc::new(config);
        let bridge = start_bridge(&config, &db, &cipher, &events, &lines, cluster).await?;
        let directory = start_directory(&config, &db, &cipher, &events).await?;
        // Ring groups read the line state (busy members, longest idle).
        directory.flow_live().set_lines(lines.clone());
        let xml_curl_networks = Arc::new(config.freeswitch.xml_curl.networks());
        let config_trusted_proxies = config.http.trusted_proxy_networks();
        let cdrs = crate::cdr_writer::CdrWriter::start(db.clone(), config.history.cdr_queue);
        let given = switchboard_domain::services::provisioning::backfill_passwords(&db, &cipher)
            .await
            .map_err(|e| anyhow::anyhow!("giving Devices provisioning passwords: {e}"))?;
        if given > 0 {
            tracing::info!(devices = given, "gave Devices their provisioning passwords");
        }
        let provisioner = Arc::new(crate::provisioning::Provisioner::new(
            db.clone(),
            cipher.clone(),
            &config,
        ));
        events.observe(provisioner.observer());
        let state = AppState {
            db,
            config,
            jwt_secret: Arc::new(jwt_secret),
            api_keys: Arc::new(Default::default()),
            cipher,
            events,
            journal,
            event_log,
            stream_checks: Arc::new(Default::default()),
            lines,
            directory,
            xml_curl_networks,
            trusted_proxies: Arc::new(config_trusted_proxies),
            bridge,
            provisioner,
            cdrs,
        };
        // Auto-logout of hot-desk sessions runs for as long as the process does.
        tokio::spawn(scheduler::run_forever(
            state.db.clone(),
            state.events.clone(),
            HOTDESK_SCHEDULER_INTERVAL,
        ));
        let server = run(listener, state.clone())?;
        Ok(Self {
            port,
            server,
            state,
            bootstrap,
            generated_key_file,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (database pool, configuration).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The administrator created on this start, if the database was empty.
    pub fn take_bootstrap_admin(&mut self) -> Option<CreatedAdmin> {
        self.bootstrap.take()
    }

    /// The key file generated on this start, if there was no key yet.
    pub fn generated_key_file(&self) -> Option<&std::path::Path> {
        self.generated_key_file.as_deref()
    }

    /// A handle that stops the server (as SIGTERM does).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish. The call history's
    /// background work (the CDR spool import, the purge) and the voicemail e-mail sender run for as
    /// long as the server does.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let history = &self.state.config.history;
        let mut tasks = Vec::new();
        if let Some(dir) = &history.cdr_spool_dir {
            tasks.push(tokio::spawn(crate::cdr_spool::import_forever(
                self.state.db.clone(),
                dir.clone(),
                Duration::from_secs(history.spool_interval_secs),
            )));
        }
        tasks.push(tokio::spawn(
            switchboard_domain::services::history::purge_forever(
                self.state.db.clone(),
                Duration::from_secs(history.purge_interval_secs),
            ),
        ));
        tasks.push(tokio::spawn(crate::voicemail_mail::send_forever(
            self.state.clone(),
        )));
        tasks.push(tokio::spawn(purge_change_log_forever(
            self.state.db.clone(),
            self.state.config.cluster.change_log_hours,
        )));
        let result = self.server.await;
        for task in tasks {
            task.abort();
        }
        result
    }
}

/// Applies pending migrations; on PostgreSQL under a session advisory lock, so that nodes
/// starting together on one database migrate one after the other (the later ones find
/// nothing left to do).
pub async fn migrate_exclusively(db: &DatabaseConnection) -> anyhow::Result<()> {
    use sea_orm::sqlx::Connection as _;
    const MIGRATION_LOCK: i64 = 0x7377_6368_6d69_6701;
    if db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Migrator::up(db, None)
            .await
            .context("applying database migrations");
    }
    // A connection of its own, closed afterwards: the lock can never stay with the pool.
    let mut lock = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .context("a connection for the migration lock")?
        .detach();
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut lock)
        .await
        .context("taking the migration lock")?;
    let result = Migrator::up(db, None)
        .await
        .context("applying database migrations");
    let _ = lock.close().await;
    result
}

/// Deletes changes older than `hours` from the change log, at start and hourly. Every node runs
/// it; the deletes are idempotent.
async fn purge_change_log_forever(db: DatabaseConnection, hours: u32) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let before = chrono::Utc::now() - chrono::Duration::hours(i64::from(hours));
        match switchboard_domain::cluster::journal::purge(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changes = n, "purged the change log"),
            Err(e) => tracing::warn!(error = %e, "purging the change log failed"),
        }
    }
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::LOCATION,
        ])
        .supports_credentials()
        .max_age(3600)
        // Same-origin requests (Swagger UI) carry an Origin too; the browser enforces CORS.
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

fn run(listener: TcpListener, state: AppState) -> anyhow::Result<Server> {
    // Built on a thread of its own that ends with it: composing the document allocates and
    // frees tens of MiB, which an idle thread (the server's main thread) would keep.
    let (route_table, doc_json) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let doc = openapi::document();
                // Serialized once and shared by every worker.
                serde_json::to_vec(&doc).map(|json| (RouteTable::from_document(&doc), json))
            })
            .join()
    })
    .map_err(|_| anyhow::anyhow!("building the OpenAPI document failed"))?
    .map_err(|e| anyhow::anyhow!("serializing the OpenAPI document: {e}"))?;
    let route_table = web::Data::new(route_table);
    let doc_json = web::Data::new(OpenApiJson(web::Bytes::from(doc_json)));
    let registry = prometheus::Registry::new();
    state.bridge.metrics().register(&registry);
    let cluster = crate::telemetry::ClusterCollector::new(state.journal.clone())
        .and_then(|c| registry.register(Box::new(c)));
    if let Err(e) = cluster {
        tracing::warn!(error = %e, "cannot register the cluster metrics");
    }
    if let Some(metrics) = state.directory.metrics() {
        metrics.register(&registry);
    }
    let metrics = PrometheusMetricsBuilder::new("switchboard")
        .registry(registry)
        .endpoint("/metrics")
        .mask_unmatched_patterns("UNMATCHED")
        .build()
        .map_err(|e| anyhow::anyhow!("building metrics: {e}"))?;
    let config = state.config.clone();
    let shutdown_secs = config.http.shutdown_timeout_secs;
    let workers = config.http.workers;
    let data = web::Data::new(state);

    let mut server = HttpServer::new(move || {
        let origins = &config.http.cors_allowed_origins;
        // Everything but FreeSWITCH's hot path lives in a scope of its own (matching every
        // path) that carries the API's middleware; see `routes::configure_freeswitch`.
        // Plain actix routes: the OpenAPI document was built once, above.
        let api = web::scope("")
            .configure(routes::configure_api)
            .route("/api/openapi.json", web::get().to(openapi_json))
            .service(
                SwaggerUi::new("/api/docs/{_:.*}")
                    .config(SwaggerConfig::new(["/api/openapi.json"])),
            )
            .route("/api/docs", web::get().to(docs_redirect))
            .default_service(web::to(fallback))
            .wrap(Condition::new(!origins.is_empty(), cors(origins)))
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move { problem_for_every_error(response.await) }
            })
            .wrap(security_headers())
            .wrap(metrics.clone())
            .wrap_fn(|req, srv| {
                let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        response
                            .headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), value);
                    }
                    Ok(response)
                }
            })
            .wrap(TracingLogger::default());
        App::new()
            .app_data(data.clone())
            .app_data(route_table.clone())
            .app_data(doc_json.clone())
            .app_data(web::PayloadConfig::new(config.http.max_body_bytes))
            .app_data(extract::BodyTimeout(Duration::from_secs(
                config.http.body_timeout_secs,
            )))
            .app_data(web::PathConfig::default().error_handler(extract::path_error))
            .configure(routes::configure_freeswitch)
            .service(api)
    })
    .listen(listener)?
    .shutdown_timeout(shutdown_secs);
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Headers on every answer of the API and the documentation: no content sniffing, no
/// referrer, and no framing (the Swagger UI must not be framed by another site).
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
}

/// Every error answer is a problem document: an error of a middleware (a refused CORS
/// preflight) or of actix itself, sent as text, is replaced by the problem of its status.
fn problem_for_every_error<B: MessageBody + 'static>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match result {
        Ok(response) => {
            // A problem, or a documented JSON answer (`/health/ready`'s 503), stays.
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    let essence = v.split(';').next().unwrap_or_default().trim();
                    essence == "application/json" || essence.ends_with("+json")
                });
            if response.status().as_u16() < 400 || is_json {
                return Ok(response.map_into_boxed_body());
            }
            // actix-cors answers a refused preflight or origin itself, as text.
            let cors = response.status() == StatusCode::BAD_REQUEST
                && response.request().headers().contains_key(header::ORIGIN);
            let detail = cors.then(|| {
                "the origin, method or headers of this cross-origin request are not allowed"
                    .to_owned()
            });
            let problem = problem_of_status(response.status(), detail).error_response();
            Ok(response.into_response(problem))
        }
        Err(e) => {
            let detail = e.as_error::<CorsError>().map(ToString::to_string);
            let status = e.as_response_error().status_code();
            if e.as_error::<ApiError>().is_some() {
                return Err(e);
            }
            Err(problem_of_status(status, detail).into())
        }
    }
}

/// The problem of an error that came without one (`detail` from a CORS refusal).
fn problem_of_status(status: StatusCode, detail: Option<String>) -> ApiError {
    let code = match status {
        StatusCode::BAD_REQUEST if detail.is_some() => "cors_refused",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal_error",
        _ => "request_refused",
    };
    let detail = detail.unwrap_or_else(|| {
        format!(
            "the request was refused ({})",
            status.canonical_reason().unwrap_or("error")
        )
    });
    ApiError::new(status, code, detail)
}

/// `/api/docs` → `/api/docs/` (where Swagger UI's relative asset paths resolve).
/// The OpenAPI document, serialized once at start.
struct OpenApiJson(web::Bytes);

/// `GET /api/openapi.json`.
async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(doc.0.clone())
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "/api/docs/"))
        .finish()
}

/// Unknown route → 404; known route with another method → 405 with `Allow`.
pub(crate) async fn fallback(req: HttpRequest, routes: web::Data<RouteTable>) -> HttpResponse {
    let error = match routes.allowed(req.path()) {
        Some(methods) if !methods.is_empty() && !methods.contains(req.method()) => {
            let allow = methods
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed on {}; use {allow}",
                    req.method(),
                    req.path()
                ),
            )
            .with_header(header::ALLOW, allow)
        }
        _ => ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("there is no route {} {}", req.method(), req.path()),
        ),
    };
    error.error_response()
}
