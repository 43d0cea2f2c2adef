//! `switchboard-openapi`: writes the committed OpenAPI document `openapi/openapi.json` from the
//! api crate, or with `--check` fails when the committed file differs from what the code
//! generates (CI runs the check, so the document cannot drift from the routes).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

const USAGE: &str = "usage: switchboard-openapi [--check]\n\
    \n\
    Without arguments, writes openapi/openapi.json from the routes.\n\
    With --check, exits 1 if the committed openapi/openapi.json differs from them.";

/// The committed document, whatever the working directory.
fn document_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => false,
        ["--check"] => true,
        ["-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if check {
        check_document()
    } else {
        write_document()
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate() -> anyhow::Result<String> {
    switchboard_api::openapi::document_json().context("serializing the OpenAPI document")
}

fn write_document() -> anyhow::Result<ExitCode> {
    let path = document_path();
    let generated = generate()?;
    if std::fs::read_to_string(&path).is_ok_and(|committed| committed == generated) {
        println!("{} is up to date", path.display());
    } else {
        std::fs::write(&path, generated).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn check_document() -> anyhow::Result<ExitCode> {
    let path = document_path();
    let generated = generate()?;
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "{} does not exist; generate it with `cargo run -p switchboard-openapi` and commit it",
                path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if committed == generated {
        println!("{} matches the routes", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} is out of date: the routes generate a different document.\n\
         Regenerate it with `cargo run -p switchboard-openapi` and commit it.\n",
        path.display()
    );
    eprint!("{}", diff_hint(&committed, &generated));
    Ok(ExitCode::FAILURE)
}

/// A short unified-style excerpt around the first difference (`-` committed, `+` generated).
fn diff_hint(committed: &str, generated: &str) -> String {
    const CONTEXT: usize = 3;
    const SHOWN: usize = 12;
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let Some(first) = (0..old.len().max(new.len())).find(|&i| old.get(i) != new.get(i)) else {
        // Same lines: only line endings or the final newline differ.
        return "(the files differ only in line endings or the trailing newline)\n".to_owned();
    };
    // Skip the common tail so the excerpt shows the changed block, not everything after it.
    let common_tail = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(old.len() - first)
        .min(new.len() - first);
    let old_changed = &old[first..old.len() - common_tail];
    let new_changed = &new[first..new.len() - common_tail];
    let start = first.saturating_sub(CONTEXT);

    let mut out = format!(
        "--- committed openapi/openapi.json\n+++ generated\n@@ line {} ({} line(s) removed, {} added) @@\n",
        first + 1,
        old_changed.len(),
        new_changed.len()
    );
    for line in &old[start..first] {
        out.push_str(&format!(" {line}\n"));
    }
    for line in old_changed.iter().take(SHOWN) {
        out.push_str(&format!("-{line}\n"));
    }
    if old_changed.len() > SHOWN {
        out.push_str(&format!("-… {} more\n", old_changed.len() - SHOWN));
    }
    for line in new_changed.iter().take(SHOWN) {
        out.push_str(&format!("+{line}\n"));
    }
    if new_changed.len() > SHOWN {
        out.push_str(&format!("+… {} more\n", new_changed.len() - SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::diff_hint;

    #[test]
    fn the_hint_shows_the_changed_block_with_context() {
        let old = "a\nb\nc\nd\ne\nf\n";
        let new = "a\nb\nc\nX\nY\ne\nf\n";
        let hint = diff_hint(old, new);
        assert!(
            hint.contains("@@ line 4 (1 line(s) removed, 2 added) @@"),
            "{hint}"
        );
        assert!(hint.contains(" c\n-d\n+X\n+Y\n"), "{hint}");
        assert!(!hint.contains("-e"), "{hint}");
    }

    #[test]
    fn a_missing_final_newline_is_explained() {
        assert!(diff_hint("a\n", "a").contains("trailing newline"));
    }
}
