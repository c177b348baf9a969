//! The `rstmdb` binary: one clap enum of subcommands, one file per subcommand in `cli/`.
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// The server allocates per request (frames, params, results); mimalloc's thread-local free
/// lists cost a fraction of glibc's bins there (docs/benchmarks.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::run(args)
}
