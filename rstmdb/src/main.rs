//! The `rstmdb` binary: one clap enum of subcommands, one file per subcommand in `cli/`.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
