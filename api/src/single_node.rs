//! SQLite stays single-node: one `switchboard serve` per SQLite database file.
//!
//! Several nodes share a database only on PostgreSQL, where every cross-node rule (advisory
//! locks, the bootstrap race) is kept by the database. On SQLite a second server would start
//! and seem to work, with caches and event streams that never hear of the other's changes, so
//! it is refused: whoever serves (or writes offline into) an SQLite file holds an exclusive
//! lock on `<database file>.lock` next to it for as long as it runs. The lock is the operating
//! system's (`flock`), so it is released however the process ends, even by `kill -9`; the
//! file itself stays and is reused.
//!
//! Only the commands that must have the database to themselves take it: `serve`,
//! `import --offline` and `copy-data`. `migrate` and `admin create` keep working next to a
//! running server, as they always have.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use switchboard_domain::db;

/// What a process holds the claim for; written into the lock file, so that a refused process
/// can say who is in its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// `switchboard serve`.
    Serve,
    /// `switchboard import --offline`.
    ImportOffline,
    /// `switchboard copy-data`.
    CopyData,
}

impl Holder {
    /// The command, as the user typed it.
    pub fn command(self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::ImportOffline => "import --offline",
            Self::CopyData => "copy-data",
        }
    }

    fn parse(command: &str) -> Option<Self> {
        [Self::Serve, Self::ImportOffline, Self::CopyData]
            .into_iter()
            .find(|h| h.command() == command)
    }
}

/// The exclusive claim of an SQLite database file; released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct SqliteClaim {
    // Held open for the lock it carries; never read.
    _file: File,
    path: PathBuf,
}

impl SqliteClaim {
    /// The database file claimed.
    pub fn database(&self) -> &Path {
        &self.path
    }
}

/// Why the claim was not granted.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another process holds it.
    #[error("{}", held_message(*.wanted, .database, *.holder, *.pid))]
    Held {
        /// What this process wanted to do.
        wanted: Holder,
        /// The database file.
        database: PathBuf,
        /// What the other process holds it for, when it says.
        holder: Option<Holder>,
        /// The other process's id, when it says.
        pid: Option<u32>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: {source}", .lock_file.display())]
    Io {
        /// The lock file.
        lock_file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn held_message(
    wanted: Holder,
    database: &Path,
    holder: Option<Holder>,
    pid: Option<u32>,
) -> String {
    let database = database.display();
    let other = match holder {
        // An empty file: the holder has locked it but not yet said who it is. Nearly always a
        // server starting.
        Some(Holder::Serve) | None => None,
        Some(other) => Some(other),
    };
    match (wanted, other) {
        (Holder::Serve, None) => format!(
            "another switchboard node is already serving the SQLite database {database} ({}SQLite \
             is single-node; to run several nodes move to PostgreSQL: see README \
             \"Moving to PostgreSQL\")",
            pid.map(|p| format!("pid {p}; ")).unwrap_or_default()
        ),
        (Holder::ImportOffline, None) => format!(
            "a switchboard server{} is serving the SQLite database {database}: import through \
             it instead (`switchboard import --url …`), or stop it first (--offline writes \
             straight into the database, only while no server runs)",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        (Holder::CopyData, None) => format!(
            "a switchboard server{} is serving the SQLite database {database}: stop it first, so \
             that nothing changes while its data is copied",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        (wanted, Some(other)) => format!(
            "`switchboard {}`{} is using the SQLite database {database}; run `switchboard {}` \
             when it has finished",
            other.command(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            wanted.command()
        ),
    }
}

/// The SQLite database file `database_url` names; `None` for PostgreSQL, an in-memory
/// database, or a URL sqlx cannot read (connecting reports that one).
pub fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    if !db::is_sqlite(database_url) {
        return None;
    }
    let options = SqliteConnectOptions::from_str(database_url).ok()?;
    // Read as sqlx reads it: `sqlite::memory:` (which sqlx gives a made-up file name) or
    // `mode=memory` is no file.
    let rest = database_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = database == ":memory:"
        || url::form_urlencoded::parse(params.as_bytes())
            .any(|(key, value)| key == "mode" && value == "memory");
    let path = options.get_filename();
    if in_memory || path.as_os_str().is_empty() {
        return None;
    }
    Some(canonical(path))
}

/// The one name of a file however it was given (relative, through a symbolic link), so that
/// every process finds the same lock file; for a file not created yet, its folder's.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(path) = std::fs::canonicalize(path) {
        return path;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(parent), Some(name)) => parent.join(name),
        _ => path.to_path_buf(),
    }
}

/// The lock file of an SQLite database file: `<database file>.lock`.
pub fn lock_file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Claims the SQLite database file of `database_url` for this process, as `holder`: `None`
/// for PostgreSQL and in-memory databases (nothing to claim), the claim when no other
/// process holds it, [`ClaimError::Held`] when one does. Hold the claim for as long as the
/// database is used.
pub fn claim_sqlite(database_url: &str, holder: Holder) -> Result<Option<SqliteClaim>, ClaimError> {
    let Some(database) = sqlite_file(database_url) else {
        return Ok(None);
    };
    let lock_file = lock_file_of(&database);
    let io = |source| ClaimError::Io {
        lock_file: lock_file.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_file)
        .map_err(io)?;
    // `File::try_lock` is std's `flock(LOCK_EX | LOCK_NB)`, stable since Rust 1.89. The
    // workspace still declares rust-version 1.85 although it builds with newer (let chains
    // already need 1.88): raising it turns on let-chain lints across every crate, a change of
    // its own.
    #[allow(clippy::incompatible_msrv)]
    let locked = file.try_lock();
    match locked {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let (holder_now, pid) = read_holder(&mut file);
            return Err(ClaimError::Held {
                wanted: holder,
                database,
                holder: holder_now,
                pid,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // Say who holds it; a failure here costs only the better message of a refused process.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{} {}", std::process::id(), holder.command()))
        .and_then(|()| file.flush());
    Ok(Some(SqliteClaim {
        _file: file,
        path: database,
    }))
}

/// The holder's `<pid> <command>` line, as far as it can be read.
fn read_holder(file: &mut File) -> (Option<Holder>, Option<u32>) {
    let mut text = String::new();
    if file.rewind().is_err() || file.read_to_string(&mut text).is_err() {
        return (None, None);
    }
    let line = text.lines().next().unwrap_or_default();
    let (pid, command) = line.split_once(' ').unwrap_or((line, ""));
    (Holder::parse(command.trim()), pid.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A fresh folder, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "switchboard-single-node-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn url(&self) -> String {
            format!(
                "sqlite://{}?mode=rwc",
                self.0.join("switchboard.db").display()
            )
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_second_claim_of_the_same_file_is_refused_until_the_first_is_dropped() {
        let dir = Dir::new();
        let first = claim_sqlite(&dir.url(), Holder::Serve).unwrap().unwrap();
        assert_eq!(
            first.database(),
            dir.0.canonicalize().unwrap().join("switchboard.db")
        );

        let refused = claim_sqlite(&dir.url(), Holder::Serve).unwrap_err();
        let message = refused.to_string();
        assert!(
            message.starts_with("another switchboard node is already serving the SQLite database"),
            "{message}"
        );
        assert!(message.contains("switchboard.db"), "{message}");
        assert!(message.contains("Moving to PostgreSQL"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "the holder's pid is named: {message}"
        );

        drop(first);
        let again = claim_sqlite(&dir.url(), Holder::Serve).unwrap();
        assert!(again.is_some(), "granted once the first claim is gone");
    }

    #[test]
    fn the_same_file_named_another_way_is_the_same_claim() {
        let dir = Dir::new();
        let _first = claim_sqlite(&dir.url(), Holder::Serve).unwrap().unwrap();
        let roundabout = format!(
            "sqlite://{}/../{}/switchboard.db",
            dir.0.display(),
            dir.0.file_name().unwrap().to_string_lossy()
        );
        assert!(matches!(
            claim_sqlite(&roundabout, Holder::Serve),
            Err(ClaimError::Held { .. })
        ));
    }

    #[test]
    fn the_lock_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new();
        let claim = claim_sqlite(&dir.url(), Holder::Serve).unwrap().unwrap();
        let mode = std::fs::metadata(lock_file_of(claim.database()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "mode {:o}", mode & 0o777);
    }

    #[test]
    fn a_refusal_says_who_holds_the_database_and_what_to_do() {
        let dir = Dir::new();
        let server = claim_sqlite(&dir.url(), Holder::Serve).unwrap().unwrap();
        let import = claim_sqlite(&dir.url(), Holder::ImportOffline)
            .unwrap_err()
            .to_string();
        assert!(
            import.starts_with("a switchboard server (pid ")
                && import.contains("is serving the SQLite database")
                && import.contains("--url"),
            "{import}"
        );
        let copy = claim_sqlite(&dir.url(), Holder::CopyData)
            .unwrap_err()
            .to_string();
        assert!(copy.contains("stop it first"), "{copy}");
        drop(server);

        let _copying = claim_sqlite(&dir.url(), Holder::CopyData).unwrap().unwrap();
        let serve = claim_sqlite(&dir.url(), Holder::Serve)
            .unwrap_err()
            .to_string();
        assert!(
            serve.contains("`switchboard copy-data`") && serve.contains("when it has finished"),
            "{serve}"
        );
    }

    #[test]
    fn memory_and_postgresql_databases_are_not_claimed() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://shared?mode=memory&cache=shared",
            "postgres://postgres@127.0.0.1:5432/switchboard",
        ] {
            assert!(
                claim_sqlite(url, Holder::Serve).unwrap().is_none(),
                "{url} was claimed"
            );
        }
    }
}
