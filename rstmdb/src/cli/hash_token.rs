//! `rstmdb hash-token TOKEN`: prints the lowercase hex SHA-256 that `auth.token_hashes` expects
//! (spec §8.1).

use clap::Args;
use rstmdb::server::auth::token_hash_hex;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// The bearer token to hash (its raw UTF-8 bytes, no trailing newline).
    token: String,
}

pub fn run(args: HashTokenArgs) -> ExitCode {
    println!("{}", token_hash_hex(&args.token));
    ExitCode::SUCCESS
}
