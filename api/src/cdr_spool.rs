//! The CDRs FreeSWITCH could not post: `mod_json_cdr` writes each to its `err-log-dir` after
//! its last retry (`<leg uuid>.cdr.json`, `a_<uuid>.cdr.json` with `prefix-a-leg`). When that
//! folder is on this host (`history.cdr_spool_dir`), switchboard imports the files at start
//! and then every `history.spool_interval_secs`: a file is stored (once, like a posted CDR) and
//! deleted; one that is not a CDR is renamed `*.bad` and left for an operator. A file younger
//! than two seconds may still be being written and waits for the next pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sea_orm::DatabaseConnection;
use switchboard_domain::history::cdr::LegFacts;
use switchboard_domain::services::history;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolPass {
    /// Files stored (or already known) and deleted.
    pub imported: usize,
    /// Files renamed `*.bad`.
    pub bad: usize,
    /// Files left for the next pass (too young, or the database refused).
    pub left: usize,
}

const SETTLE: Duration = Duration::from_secs(2);

fn spooled_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // `rotate` puts each day in a folder of its own.
            if let Ok(inner) = std::fs::read_dir(&path) {
                out.extend(inner.flatten().map(|e| e.path()).filter(|p| is_cdr(p)));
            }
        } else if is_cdr(&path) {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn is_cdr(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".cdr.json"))
}

/// Imports what is in `dir` now.
pub async fn import_once(db: &DatabaseConnection, dir: &Path) -> SpoolPass {
    let mut pass = SpoolPass::default();
    let dir = dir.to_owned();
    let files = tokio::task::spawn_blocking(move || spooled_files(&dir))
        .await
        .unwrap_or_default();
    for path in files {
        let settled = tokio::fs::metadata(&path)
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age >= SETTLE);
        if !settled {
            pass.left += 1;
            continue;
        }
        let Ok(body) = tokio::fs::read(&path).await else {
            pass.left += 1;
            continue;
        };
        let leg = match LegFacts::from_json(&body) {
            Ok(leg) => leg,
            Err(e) => {
                let bad = path.with_extension("json.bad");
                tracing::warn!(file = %path.display(), error = %e, "a spooled CDR that cannot be read was renamed *.bad");
                let _ = tokio::fs::rename(&path, &bad).await;
                pass.bad += 1;
                continue;
            }
        };
        match history::ingest(db, &leg, chrono::Utc::now()).await {
            Ok(_) => {
                if let Err(e) = tokio::fs::remove_file(&path).await {
                    tracing::warn!(file = %path.display(), error = %e, "an imported CDR could not be deleted (it will not be stored twice)");
                }
                pass.imported += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, "importing spooled CDRs paused: the database refused");
                pass.left += 1;
                break;
            }
        }
    }
    if pass.imported > 0 || pass.bad > 0 {
        tracing::info!(
            imported = pass.imported,
            bad = pass.bad,
            left = pass.left,
            "spooled CDRs imported"
        );
    }
    pass
}

/// Imports the spool every `interval`, forever.
pub async fn import_forever(db: DatabaseConnection, dir: PathBuf, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        import_once(&db, &dir).await;
    }
}
