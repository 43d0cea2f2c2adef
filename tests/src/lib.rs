//! End-to-end test support: the real server on port 0 against a fresh SQLite file or a fresh
//! PostgreSQL database, an HTTP client pointed at it, and a macro that runs every scenario on
//! both databases.
//!
//! ```text
//! use switchboard_tests::{TestApp, both_databases};
//!
//! both_databases!(
//!     liveness_answers_ok,
//!     a_body_over_the_limit_is_rejected with |c| c.http.max_body_bytes = 4096,
//! );
//!
//! async fn liveness_answers_ok(app: TestApp) {
//!     assert_eq!(app.get("/health/live").await.status(), 200);
//! }
//! ```
//!
//! PostgreSQL is found at `SWITCHBOARD_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test creates its own database there and
//! drops it afterwards. Set `TEST_LOG=1` to see the server's logs (`RUST_LOG` filters them).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![forbid(unsafe_code)]

pub mod cluster;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::Value;
pub use switchboard_api::Config;
pub mod provisioning;
pub mod smtp;
use switchboard_api::config::{BootstrapConfig, DatabaseConfig, HttpConfig, SecretsConfig};
use switchboard_api::{Application, telemetry};

/// The environment variable naming the PostgreSQL server the tests create databases on.
pub const POSTGRES_URL_ENV: &str = "SWITCHBOARD_TEST_POSTGRES_URL";
/// Where the tests look for PostgreSQL when [`POSTGRES_URL_ENV`] is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The platform administrator every test server is bootstrapped with.
pub const ADMIN_EMAIL: &str = "admin@switchboard.test";
/// Their password (strong enough for the password rules, fixed so tests can log in).
pub const ADMIN_PASSWORD: &str = "Correct-Horse-Battery-Staple-42";
/// A fixed SIP-secret encryption key (32 bytes, base64), so no key file is written.
pub const TEST_ENCRYPTION_KEY: &str = "c3dpdGNoYm9hcmQtdGVzdHMtZml4ZWQta2V5LTMyYiE=";

/// Which database a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file in the temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server at [`POSTGRES_URL_ENV`].
    Postgres,
}

/// A running server and everything a test needs to talk to it. Dropping it deletes the
/// database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// A client that does not follow redirects.
    pub client: reqwest::Client,
    /// The server's own connection pool.
    pub db: DatabaseConnection,
    /// The server's change-event bus (subscribe to see what it publishes after commit).
    pub events: switchboard_domain::events::EventBus,
    /// The database URL the server was given.
    pub database_url: String,
    /// Which database this is.
    pub backend: Backend,
    /// The bootstrapped platform administrator's email.
    pub admin_email: String,
    /// Their password.
    pub admin_password: String,
    /// The configuration it runs with (to start it again on the same port and database).
    pub config: Config,
    /// Stops the running server.
    server: std::sync::Mutex<Option<actix_web::dev::ServerHandle>>,
    /// The thread whose runtime runs a detached server (see [`spawn_app_detached`]).
    runtime: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    // Declared last so the pool above is dropped before the database is removed.
    _database: TestDatabase,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("address", &self.address)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The configuration every test server starts from: port 0, one worker, the test
/// administrator, a fixed encryption key. Environment variables are not read, so a developer's
/// `SWITCHBOARD_*` settings cannot leak into tests.
pub fn test_config(database_url: &str) -> Config {
    let defaults = Config::default();
    Config {
        database_url: database_url.to_owned(),
        database: DatabaseConfig {
            max_connections: 5,
            ..defaults.database
        },
        http: HttpConfig {
            port: 0,
            workers: Some(1),
            shutdown_timeout_secs: 1,
            ..defaults.http
        },
        bootstrap: BootstrapConfig {
            admin_email: Some(ADMIN_EMAIL.to_owned()),
            admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
        },
        secrets: SecretsConfig {
            encryption_key: Some(SecretString::from(TEST_ENCRYPTION_KEY)),
            ..defaults.secrets
        },
        ..defaults
    }
}

/// Starts the real server on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the real server on a fresh database of `backend`, after `tweak` has adjusted the
/// configuration (e.g. a smaller `http.max_body_bytes`).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, tweak, false).await
}

/// A fresh, empty database that no server has touched yet (e.g. the target of
/// `switchboard copy-data`); removed on drop, or by the [`TestApp`] it is handed to with
/// [`spawn_app_on`].
pub struct FreshDatabase(TestDatabase);

impl std::fmt::Debug for FreshDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FreshDatabase").field(&self.url()).finish()
    }
}

impl FreshDatabase {
    /// Creates one on `backend` (on PostgreSQL, `CREATE DATABASE`; on SQLite, a file name in
    /// the temporary directory that SQLite creates on first use).
    pub async fn create(backend: Backend) -> Self {
        Self(TestDatabase::create(backend).await)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        self.0.url()
    }
}

/// Starts the real server on `database` as it is (e.g. filled by `switchboard copy-data`),
/// after `tweak` has adjusted the configuration; the app owns the database from then on.
pub async fn spawn_app_on(database: FreshDatabase, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(database.0, tweak, false).await
}

async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config), detached: bool) -> TestApp {
    spawn_on(TestDatabase::create(backend).await, tweak, detached).await
}

async fn spawn_on(
    database: TestDatabase,
    tweak: impl FnOnce(&mut Config),
    detached: bool,
) -> TestApp {
    let backend = database.backend();
    let database_url = database.url();
    let mut config = test_config(&database_url);
    tweak(&mut config);
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init(&config.log);
    }
    if let Err(errors) = config.validate() {
        panic!("the test configuration is invalid: {errors}");
    }
    let ((port, db, events, handle), runtime) = if detached {
        let (started, thread) = run_detached(config.clone()).await;
        (started, Some(thread))
    } else {
        let app = Application::build(config.clone())
            .await
            .unwrap_or_else(|e| panic!("the server did not start on {backend:?}: {e:#}"));
        let started = (
            app.port(),
            app.state().db.clone(),
            app.state().events.clone(),
            app.server_handle(),
        );
        tokio::spawn(app.run_until_stopped());
        (started, None)
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building the HTTP client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client,
        db,
        events,
        database_url,
        backend,
        admin_email: ADMIN_EMAIL.to_owned(),
        admin_password: ADMIN_PASSWORD.to_owned(),
        config,
        server: std::sync::Mutex::new(Some(handle)),
        runtime: std::sync::Mutex::new(runtime),
        _database: database,
    }
}

/// What a server started on a runtime of its own hands back.
type Started = (
    u16,
    DatabaseConnection,
    switchboard_domain::events::EventBus,
    actix_web::dev::ServerHandle,
);

/// Builds and runs the server on a runtime of its own, on a thread of its own: stopping it
/// ends everything it started (listeners, Event Socket links, background work), as stopping
/// the process does.
async fn run_detached(config: Config) -> (Started, std::thread::JoinHandle<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<Started, String>>();
    let thread = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(format!("building a runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            match Application::build(config).await {
                Ok(app) => {
                    let started = (
                        app.port(),
                        app.state().db.clone(),
                        app.state().events.clone(),
                        app.server_handle(),
                    );
                    let _ = tx.send(Ok(started));
                    let _ = app.run_until_stopped().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                }
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
    });
    match rx.await {
        Ok(Ok(started)) => (started, thread),
        Ok(Err(e)) => panic!("the server did not start: {e}"),
        Err(_) => panic!("the server's thread ended before it started"),
    }
}

/// Like [`spawn_app_with`], but the server runs on a runtime of its own, so that
/// [`TestApp::stop`] stops all of it as a process stop would (the live suite's restarts).
pub async fn spawn_app_detached(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, tweak, true).await
}

impl TestApp {
    /// Stops the server as SIGTERM does (in-flight requests finish; the port closes; its
    /// background work, such as the CDR spool import, ends).
    pub async fn stop(&self) {
        let handle = self.server.lock().map(|mut h| h.take()).ok().flatten();
        if let Some(handle) = handle {
            handle.stop(true).await;
        }
        let thread = self.runtime.lock().map(|mut t| t.take()).ok().flatten();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Starts the server again, on the same port and database (after [`TestApp::stop`]).
    pub async fn start_again(&self) {
        let mut config = self.config.clone();
        config.http.port = self.port;
        let ((_, _, _, handle), thread) = run_detached(config).await;
        if let Ok(mut slot) = self.server.lock() {
            *slot = Some(handle);
        }
        if let Ok(mut slot) = self.runtime.lock() {
            *slot = Some(thread);
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request to `path`, to add headers or a body to before sending.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Response {
        send(self.request(Method::DELETE, path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::PUT, path).json(body)).await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch_json(&self, path: &str, body: &Value) -> Response {
        send(self.request(Method::PATCH, path).json(body)).await
    }

    /// `POST path` with a raw body of the given content type (for malformed requests).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        send(
            self.request(Method::POST, path)
                .header(CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }

    /// `method path` as the holder of `token` (`Authorization: Bearer`), with an optional JSON
    /// body.
    pub async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.request(method, path).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// Logs in and returns the token response (panics unless 200).
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/auth/login",
                &serde_json::json!({ "email": email, "password": password }),
            )
            .await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::OK,
            "logging in as {email} failed: {body}"
        );
        serde_json::from_str(&body).expect("the token response is JSON")
    }

    /// An access token of the bootstrapped platform administrator.
    pub async fn admin_token(&self) -> String {
        let tokens = self.login(&self.admin_email, &self.admin_password).await;
        tokens["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_owned()
    }
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("the request could not be sent")
}

/// Reads a JSON body (panics with the body when it is not JSON).
pub async fn json_body(response: Response) -> Value {
    let text = response.text().await.expect("reading the body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text}"))
}

/// Checks that `response` is an `application/problem+json` document with `status` and `code`,
/// and returns the document for further checks (`errors`, `detail`).
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    let actual_status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("reading the body");
    assert_eq!(
        actual_status, status,
        "expected a {status} problem `{code}`, got {actual_status}: {text}"
    );
    assert_eq!(
        content_type, "application/problem+json",
        "not a problem document: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the problem is not JSON ({e}): {text}"));
    assert_eq!(body["code"], code, "unexpected problem code in {body}");
    assert_eq!(
        body["status"], status,
        "the body's status differs from the response's: {body}"
    );
    body
}

/// The `switchboard` command line to run in tests: `switchboard-cli`, compiled by this package
/// from `api/src/main.rs` (see tests/Cargo.toml), which cargo builds next to the test executable
/// (`target/<profile>/switchboard-cli`) before it runs this package's integration tests.
pub fn switchboard_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/api-<hash> → target/<profile>/switchboard-cli
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the target directory");
    let binary = profile_dir.join(format!("switchboard-cli{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing; `cargo test -p switchboard-tests` (or --workspace) builds it",
        binary.display()
    );
    binary
}

/// A fresh database, removed on drop.
enum TestDatabase {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        server_url: String,
        name: String,
        url: String,
    },
}

impl TestDatabase {
    async fn create(backend: Backend) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("switchboard-test-{unique}.db"));
                Self::Sqlite { path }
            }
            Backend::Postgres => {
                let server_url = std::env::var(POSTGRES_URL_ENV)
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let name = format!("switchboard_test_{unique}");
                let server = connect_postgres_server(&server_url).await;
                server
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot CREATE DATABASE on {}: {e}; the user in {POSTGRES_URL_ENV} needs the CREATEDB privilege",
                            redact(&server_url)
                        )
                    });
                let _ = server.close().await;
                let mut url = url::Url::parse(&server_url).expect("a valid PostgreSQL URL");
                url.set_path(&format!("/{name}"));
                Self::Postgres {
                    server_url,
                    name,
                    url: url.to_string(),
                }
            }
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            Self::Postgres { url, .. } => url.clone(),
        }
    }

    fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }
}

async fn connect_postgres_server(server_url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(server_url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    match Database::connect(options).await {
        Ok(db) => db,
        Err(e) => panic!(
            "PostgreSQL does not answer at {} ({e}).\n\
             The tests run on both SQLite and PostgreSQL and never skip one. Start PostgreSQL \
             (e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or \
             just run `.ci/run`), or point {POSTGRES_URL_ENV} at a server where this user may \
             CREATE DATABASE.",
            redact(server_url)
        ),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { path } => {
                // `.lock`: the single-node claim of `serve` and `copy-data`.
                for suffix in ["", "-wal", "-shm", ".lock"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Self::Postgres {
                server_url, name, ..
            } => {
                // Drop cannot await, and may run inside the test's runtime: use a thread with a
                // runtime of its own. WITH (FORCE) ends the server's still-open connections.
                let server_url = server_url.clone();
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let server = Database::connect(
                            ConnectOptions::new(server_url)
                                .max_connections(1)
                                .sqlx_logging(false)
                                .to_owned(),
                        )
                        .await
                        .map_err(std::io::Error::other)?;
                        server
                            .execute_unprepared(&sql)
                            .await
                            .map_err(std::io::Error::other)?;
                        let _ = server.close().await;
                        Ok::<(), std::io::Error>(())
                    })
                })
                .join();
                match dropped {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        eprintln!("warning: could not drop the test database {name}: {e}")
                    }
                    Err(_) => eprintln!("warning: dropping the test database {name} panicked"),
                }
            }
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages.
fn redact(url: &str) -> String {
    switchboard_api::config::redact_url_password(url)
}

/// Runs each scenario on SQLite and on PostgreSQL, as `<scenario>::sqlite` and
/// `<scenario>::postgres`. A scenario is an `async fn(TestApp)` named as a sentence; append
/// `with <closure>` to adjust its configuration first:
///
/// ```text
/// both_databases!(
///     liveness_answers_ok,
///     a_body_over_the_limit_is_rejected with |c| c.http.max_body_bytes = 4096,
/// );
/// ```
#[macro_export]
macro_rules! both_databases {
    ($($scenario:ident $(with $tweak:expr)?),+ $(,)?) => {
        $(
            mod $scenario {
                // The configuration tweak is written in the caller's module; let it see its
                // items (constants, helpers).
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::spawn_app_with(
                        $crate::Backend::Sqlite,
                        $crate::__config_tweak!($($tweak)?),
                    )
                    .await;
                    super::$scenario(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::spawn_app_with(
                        $crate::Backend::Postgres,
                        $crate::__config_tweak!($($tweak)?),
                    )
                    .await;
                    super::$scenario(app).await;
                }
            }
        )+
    };
}

/// The configuration tweak of [`both_databases!`]: the given closure, or one that does nothing.
#[doc(hidden)]
#[macro_export]
macro_rules! __config_tweak {
    () => {
        |_: &mut $crate::Config| {}
    };
    ($tweak:expr) => {
        $tweak
    };
}
