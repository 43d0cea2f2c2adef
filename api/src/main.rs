//! The `switchboard` binary: `serve`, `migrate`, `admin`, `openapi`.
#![forbid(unsafe_code)]

use clap::Parser;
use switchboard_api::cli::{self, Cli};

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
