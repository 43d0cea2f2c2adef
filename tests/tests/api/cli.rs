//! The `switchboard` binary itself: configuration errors, `migrate`, `admin create`, `openapi`,
//! one server per SQLite file.
//!
//! These run `switchboard-cli`: the `switchboard` binary compiled from `api/src/main.rs` by this
//! package (see tests/Cargo.toml), so cargo always builds the current CLI before these tests.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use switchboard_migration::{Migrator, MigratorTrait};
use switchboard_tests::{TestApp, both_databases, switchboard_binary};

/// What a finished run printed.
pub(crate) struct Run {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs the binary in `dir` with only the given `SWITCHBOARD_*` variables (a developer's own
/// settings are removed), feeding `stdin`, and gives up after a minute.
pub(crate) fn switchboard(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Run {
    let mut command = command(dir, args, env);
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().expect("starting the switchboard binary");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("writing to stdin");
    }
    // Read both pipes while waiting, so a long output cannot block the child.
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for switchboard") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("switchboard {args:?} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// The binary with `args`, run in `dir` with only the given `SWITCHBOARD_*` variables (a
/// developer's own settings are removed), its output piped.
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(switchboard_binary());
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("SWITCHBOARD_")
        {
            command.env_remove(key);
        }
    }
    command
        .env_remove("RUST_LOG")
        .env("SWITCHBOARD_LOG__LEVEL", "warn")
        .envs(env.iter().copied());
    command
}

/// A fresh directory (the binary's working directory), removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("switchboard-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn sqlite_url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join("cli.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn serve_with_an_invalid_port_exits_with_an_error_naming_http_port() {
    let dir = TempDir::new();
    let url = dir.sqlite_url();
    let run = switchboard(
        &dir.0,
        &["serve"],
        &[
            ("SWITCHBOARD_HTTP__PORT", "notaport"),
            ("SWITCHBOARD_DATABASE_URL", &url),
        ],
        None,
    );
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("http.port"), "{run}");
    assert!(
        !dir.0.join("cli.db").exists(),
        "the database was touched before the configuration was valid"
    );
}

#[test]
fn an_unknown_configuration_file_is_an_error_naming_it() {
    let dir = TempDir::new();
    let run = switchboard(
        &dir.0,
        &["--config", "missing.toml", "migrate", "status"],
        &[],
        None,
    );
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("missing.toml"), "{run}");
}

fn status_lines(run: &Run) -> Vec<(String, String)> {
    assert!(run.status.success(), "{run}");
    run.stdout
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let state = words.next().unwrap_or_default().to_owned();
            let name = words.next().unwrap_or_default().to_owned();
            (state, name)
        })
        .collect()
}

#[test]
fn migrate_status_up_and_down_report_each_migration_by_name() {
    let dir = TempDir::new();
    let url = dir.sqlite_url();
    let env = [("SWITCHBOARD_DATABASE_URL", url.as_str())];
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert!(!names.is_empty());
    let with = |state: &str| {
        names
            .iter()
            .map(|n| (state.to_owned(), n.clone()))
            .collect::<Vec<_>>()
    };

    let run = switchboard(&dir.0, &["migrate", "status"], &env, None);
    assert_eq!(status_lines(&run), with("pending"), "{run}");

    let run = switchboard(&dir.0, &["migrate", "up"], &env, None);
    assert!(run.status.success(), "{run}");
    assert_eq!(run.stdout.trim(), "database is up to date");
    let run = switchboard(&dir.0, &["migrate", "status"], &env, None);
    assert_eq!(status_lines(&run), with("applied"), "{run}");

    let run = switchboard(&dir.0, &["migrate", "down", "--steps", "1"], &env, None);
    assert!(run.status.success(), "{run}");
    assert_eq!(run.stdout.trim(), "rolled back 1 migration(s)");
    let run = switchboard(&dir.0, &["migrate", "status"], &env, None);
    let mut expected = with("applied");
    if let Some(last) = expected.last_mut() {
        last.0 = "pending".to_owned();
    }
    assert_eq!(status_lines(&run), expected, "{run}");
}

#[test]
fn openapi_prints_the_document_the_server_serves() {
    let dir = TempDir::new();
    let run = switchboard(&dir.0, &["openapi"], &[], None);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        switchboard_api::openapi::document_json().unwrap()
    );
}

both_databases!(
    an_administrator_created_on_the_command_line_can_log_in,
    admin_create_refuses_a_weak_password_and_a_taken_email,
);

/// Runs `switchboard admin create` against the test server's database, off the async runtime.
async fn admin_create(app: &TestApp, email: &str, password: &str) -> Run {
    let url = app.database_url.clone();
    let email = email.to_owned();
    let stdin = format!("{password}\n");
    tokio::task::spawn_blocking(move || {
        let dir = TempDir::new();
        let args = ["admin", "create", "--email", &email, "--password-stdin"];
        switchboard(
            &dir.0,
            &args,
            &[("SWITCHBOARD_DATABASE_URL", &url)],
            Some(&stdin),
        )
    })
    .await
    .unwrap()
}

async fn an_administrator_created_on_the_command_line_can_log_in(app: TestApp) {
    let run = admin_create(&app, "Ops@Example.com", "Another-Strong-Passphrase-7").await;
    assert!(run.status.success(), "{run}");
    assert!(run.stdout.contains("ops@example.com"), "{run}");
    assert!(run.stdout.contains("the one you supplied"), "{run}");
    assert!(
        !run.stdout.contains("Another-Strong-Passphrase-7"),
        "the password was echoed: {run}"
    );

    let tokens = app
        .login("ops@example.com", "Another-Strong-Passphrase-7")
        .await;
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{tokens}"
    );
}

async fn admin_create_refuses_a_weak_password_and_a_taken_email(app: TestApp) {
    let run = admin_create(&app, "ops@example.com", "short").await;
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("password"), "{run}");

    let run = admin_create(&app, &app.admin_email, "Another-Strong-Passphrase-7").await;
    assert!(!run.status.success(), "{run}");
    assert!(run.stderr.contains("already exists"), "{run}");
}

/// `switchboard serve` running in the background, killed (SIGKILL) on drop.
pub(crate) struct Server {
    child: std::process::Child,
}

impl Server {
    /// Starts `serve` in `dir` on a free port and waits until it listens (a minute at most).
    pub(crate) fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.extend([
            ("SWITCHBOARD_HTTP__PORT", "0"),
            // The line saying it listens is logged at info.
            ("SWITCHBOARD_LOG__LEVEL", "info"),
        ]);
        let mut command = command(dir, &["serve"], &env);
        command.stdin(Stdio::null()).stdout(Stdio::null());
        let mut child = command.spawn().expect("starting switchboard serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut seen = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("listening") {
                    let _ = tx.send(Ok(()));
                }
            }
            // The process ended (or closed stderr) without saying it listens.
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => Self { child },
            Ok(Err(log)) => {
                let _ = child.kill();
                panic!("switchboard serve ended before it listened:\n{log}")
            }
            Err(_) => {
                let _ = child.kill();
                panic!("switchboard serve did not listen within a minute")
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn one_sqlite_file_has_one_server_and_offline_writers_wait_for_it() {
    let dir = TempDir::new();
    let url = dir.sqlite_url();
    let env = [
        ("SWITCHBOARD_DATABASE_URL", url.as_str()),
        (
            "SWITCHBOARD_SECRETS__ENCRYPTION_KEY",
            switchboard_tests::TEST_ENCRYPTION_KEY,
        ),
    ];
    let first = Server::start(&dir.0, &env);

    // A second node on the same file: refused before it touches the database.
    let second = switchboard(
        &dir.0,
        &["serve"],
        &[env[0], env[1], ("SWITCHBOARD_HTTP__PORT", "0")],
        None,
    );
    assert_eq!(second.status.code(), Some(1), "{second}");
    let database = dir.0.join("cli.db").canonicalize().unwrap();
    assert!(
        second.stderr.contains(&format!(
            "error: another switchboard node is already serving the SQLite database {}",
            database.display()
        )),
        "{second}"
    );
    assert!(
        second.stderr.contains("SQLite is single-node")
            && second.stderr.contains("Moving to PostgreSQL"),
        "{second}"
    );

    // Writers that need the database to themselves are refused with what to do instead.
    std::fs::write(
        dir.0.join("rows.csv"),
        "kind,number,display_name\nextension,201,Ada\n",
    )
    .unwrap();
    let import = switchboard(
        &dir.0,
        &[
            "import",
            "--offline",
            "--domain",
            "cli.pbx.test",
            "--file",
            "rows.csv",
        ],
        &env,
        None,
    );
    assert_eq!(import.status.code(), Some(1), "{import}");
    assert!(
        import.stderr.contains("a switchboard server")
            && import.stderr.contains("is serving the SQLite database")
            && import.stderr.contains("--url"),
        "{import}"
    );
    let target = format!("sqlite://{}?mode=rwc", dir.0.join("copy.db").display());
    let copy = switchboard(
        &dir.0,
        &["copy-data", "--from", &url, "--to", &target],
        &[],
        None,
    );
    assert_eq!(copy.status.code(), Some(1), "{copy}");
    assert!(
        copy.stderr.contains("is serving the SQLite database")
            && copy.stderr.contains("stop it first"),
        "{copy}"
    );
    assert!(
        !dir.0.join("copy.db").exists(),
        "the target was touched: {copy}"
    );

    // Reading and migrating next to a running server stay possible.
    let status = switchboard(&dir.0, &["migrate", "status"], &env, None);
    assert!(status.status.success(), "{status}");

    // However the first one ends (here SIGKILL), the file is free for the next.
    drop(first);
    let _next = Server::start(&dir.0, &env);
}
