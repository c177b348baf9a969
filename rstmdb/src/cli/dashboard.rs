//! `rstmdb dashboard`: the live terminal dashboard (rstmdb-tui) against a running server,
//! with the same connection flags as the REPL.

use super::connect::ConnectArgs;
use clap::Args;
use std::process::ExitCode;

/// Exit status when the first connection fails (address, token or TLS), as in the REPL.
const EXIT_CONNECT: u8 = 2;

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub fn run(args: DashboardArgs) -> ExitCode {
    let options = match args.connect.client_options("rstmdb-dashboard") {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONNECT);
        }
    };
    let runtime = match super::async_runtime(Some(2)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(rstmdb_tui::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ rstmdb_tui::DashboardError::Connect(_)) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_CONNECT)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
