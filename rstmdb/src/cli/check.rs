//! `rstmdb check FILE|DIR...`: validate machine definitions offline with miette diagnostics.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Definition files, or directories whose `*.json` files are checked.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(_args: CheckArgs) -> ExitCode {
    ExitCode::FAILURE
}
