//! `rstmdb hash-token [TOKEN]`: prints the lowercase hex SHA-256 that `auth.token_hashes`
//! expects (spec §8.1). Without TOKEN the token is read from standard input, so it stays out of
//! the shell history and of `ps`.

use super::connect::token_from_text;
use clap::Args;
use rstmdb::server::auth::token_hash_hex;
use std::io::{BufRead, IsTerminal, Read};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct HashTokenArgs {
    /// The bearer token to hash (its raw UTF-8 bytes, no trailing newline). Without it, the
    /// token is read from standard input, surrounding whitespace removed as for --token-file.
    token: Option<String>,
}

pub fn run(args: HashTokenArgs) -> ExitCode {
    let token = match args.token {
        Some(token) => token,
        None => match read_stdin() {
            Ok(token) => token,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!("{}", token_hash_hex(&token));
    ExitCode::SUCCESS
}

/// One line from a terminal (Enter ends it); everything from a pipe or file.
fn read_stdin() -> Result<String, String> {
    let stdin = std::io::stdin();
    let mut text = String::new();
    let read = if stdin.is_terminal() {
        eprint!("token: ");
        stdin.lock().read_line(&mut text)
    } else {
        stdin.lock().read_to_string(&mut text)
    };
    read.map_err(|err| format!("cannot read the token from standard input: {err}"))?;
    token_from_text(&text)
        .map(str::to_owned)
        .map_err(|problem| format!("standard input {problem}"))
}
