//! The `switchboard` binary: `serve`, `migrate`, `admin`, `openapi`.
#![forbid(unsafe_code)]

use clap::Parser;
use switchboard_api::cli::{self, Cli};

/// mimalloc rather than the system allocator: the cold start of the FreeSWITCH directory
/// allocates and frees hundreds of MiB on several threads, and glibc kept most of it as
/// fragmented per-thread arenas (RSS after start with 200 000 users: see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
