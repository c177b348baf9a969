//! Command-line interface: one clap derive enum, one module per subcommand.

mod bench;
mod check;
mod cluster;
pub mod connect;
mod dashboard;
mod fd_limit;
mod hash_token;
mod repl;
mod serve;
mod snapshot;
mod wal_inspect;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "rstmdb",
    version,
    about = "rstmdb: a state machine database and its toolkit"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate machine definition files offline.
    Check(check::CheckArgs),
    /// Inspect and verify checkpoints and instance snapshots in a data directory (offline).
    Snapshot(snapshot::SnapshotArgs),
    /// Inspect, verify and repair a data directory's WAL offline.
    WalInspect(wal_inspect::WalInspectArgs),
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Generate load against a server (or an embedded one) and report throughput, latency
    /// percentiles, errors by code and CPU time.
    Bench(bench::BenchArgs),
    /// Print the SHA-256 hash of a bearer token, for auth.token_hashes.
    HashToken(hash_token::HashTokenArgs),
    /// An interactive shell against a running server (or `-c COMMAND`, or a script on stdin).
    Repl(repl::ReplArgs),
    /// A live terminal dashboard of a running server: instances, transitions, WAL, server.
    Dashboard(dashboard::DashboardArgs),
    /// A cluster's status and membership (a server with a [cluster] table).
    Cluster(cluster::ClusterArgs),
}

/// The async runtime a subcommand runs on: `worker_threads` workers, or one per core. A
/// failure to start one is reported here; the caller exits with the returned code.
fn async_runtime(worker_threads: Option<usize>) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = worker_threads {
        builder.worker_threads(workers);
    }
    builder.enable_all().build().map_err(|err| {
        eprintln!("error: cannot start the async runtime: {err}");
        ExitCode::FAILURE
    })
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::WalInspect(args) => wal_inspect::run(args),
        Command::Serve(args) => serve::run(args),
        Command::HashToken(args) => hash_token::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Repl(args) => repl::run(args),
        Command::Dashboard(args) => dashboard::run(args),
        Command::Cluster(args) => cluster::run(args),
    }
}
