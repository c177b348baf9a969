//! `rstmdb repl`: an interactive shell against a running server, and a script runner.
//!
//! - `commands`: the table of commands (one source for parsing, `help` and completion),
//!   and `invocation`: a command line bound to its entry in that table;
//! - `parse`: splitting a line into words, JSON values that may span lines;
//! - `execute`: one command against the server; `render`: tables and `--json` output;
//! - `complete`: tab completion and the multi-line check for the line editor (rustyline);
//! - `failure`: error text and exit status.
//!
//! Exit status: 0 when every command succeeded; 1 when a command failed (the first failure
//! ends a script or `-c`); 2 when the server cannot be reached or a command is malformed.

mod commands;
mod complete;
mod execute;
mod failure;
mod invocation;
mod parse;
mod render;

use clap::Args;
use rstmdb_client::Client;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::runtime::Runtime;

use super::connect::ConnectArgs;
use complete::{ReplHelper, SharedNames};
use execute::{Flow, OutputMode};
use failure::Failure;

const EXIT_CONNECT: u8 = 2;
const PROMPT: &str = "rstmdb> ";
const HISTORY_ENTRIES: usize = 1000;

#[derive(Debug, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Run one command and exit (e.g. `-c "get order-1"`). Without it, commands are read
    /// from the terminal, or from standard input when it is not a terminal (a script: the
    /// first failing command ends it).
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    command: Option<String>,

    /// Print each result as the server's raw JSON object (one line) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ReplArgs) -> ExitCode {
    if let Some(status) = args.command.as_deref().and_then(offline_help) {
        return ExitCode::from(status);
    }
    // One worker is plenty for one connection, and keeps the connection's reader running
    // while the line editor blocks this thread.
    let runtime = match super::async_runtime(Some(1)) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = match args.connect.client_options("rstmdb-repl") {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONNECT);
        }
    };
    let client = match runtime.block_on(Client::connect(options)) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_CONNECT);
        }
    };
    let interactive = args.command.is_none() && std::io::stdin().is_terminal();
    let mode = OutputMode {
        json: args.json,
        interactive,
    };
    let status = match (&args.command, interactive) {
        (Some(command), _) => match run_text(&runtime, &client, command, mode) {
            Ok(_) => 0,
            Err(failure) => report(&failure),
        },
        (None, true) => interactive_loop(&runtime, &client, mode),
        (None, false) => run_script(&runtime, &client, std::io::stdin().lock(), mode),
    };
    let _ = runtime.block_on(client.close());
    ExitCode::from(status)
}

/// Runs one REPL command against the server `connect` names, as `repl -c COMMAND` does
/// (`rstmdb cluster` uses it).
pub fn run_command(connect: ConnectArgs, command: String, json: bool) -> ExitCode {
    run(ReplArgs {
        connect,
        command: Some(command),
        json,
    })
}

/// `-c help ...` answers without a server; `None` for any other command.
fn offline_help(text: &str) -> Option<u8> {
    let words = parse::tokenize(text).ok()?;
    let invocation = invocation::bind(&words).ok()?;
    if invocation.spec.action != commands::Action::Help {
        return None;
    }
    Some(match execute::help_text(invocation.positional(0)) {
        Ok(text) => {
            execute::emit(&text);
            0
        }
        Err(failure) => report(&failure),
    })
}

/// Tokenises, binds and runs one command.
fn run_text(
    runtime: &Runtime,
    client: &Client,
    text: &str,
    mode: OutputMode,
) -> Result<Flow, Failure> {
    let words = parse::tokenize(text)?;
    if words.is_empty() {
        return Ok(Flow::Continue);
    }
    let invocation = invocation::bind(&words)?;
    runtime.block_on(execute::execute(client, &invocation, mode))
}

/// Prints a failure to stderr and returns its exit status.
fn report(failure: &Failure) -> u8 {
    eprint!("{}", failure.render(std::io::stderr().is_terminal()));
    failure.exit_status()
}

/// Runs commands from `input` until the end or the first failure. Blank lines and lines
/// starting with `#` are skipped; a JSON value may continue over further lines.
fn run_script(runtime: &Runtime, client: &Client, input: impl BufRead, mode: OutputMode) -> u8 {
    let mut pending = String::new();
    for line in input.lines() {
        let line = match line {
            Ok(line) => line,
            Err(error) => return report(&Failure::Input(format!("cannot read input: {error}"))),
        };
        if pending.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        if !parse::is_complete(&pending) {
            continue;
        }
        let command = std::mem::take(&mut pending);
        match run_text(runtime, client, &command, mode) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => return 0,
            Err(failure) => return report(&failure),
        }
    }
    if pending.is_empty() {
        0
    } else {
        report(&Failure::Parse(parse::ParseError::UnclosedJson))
    }
}

fn interactive_loop(runtime: &Runtime, client: &Client, mode: OutputMode) -> u8 {
    let names = SharedNames::default();
    runtime.block_on(complete::refresh(client, &names));
    let mut editor = match new_editor(Arc::clone(&names)) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start the line editor: {error}");
            return 1;
        }
    };
    let history = history_path();
    if let Some(path) = &history {
        // A first run has no history file yet.
        let _ = editor.load_history(path);
    }
    eprintln!(
        "connected to {}; `help` lists the commands, Ctrl-D leaves",
        client.options().addr
    );
    loop {
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(error) => {
                eprintln!("error: cannot read the line: {error}");
                return 1;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        match run_text(runtime, client, &line, mode) {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => {
                if writes(&line) {
                    runtime.block_on(complete::refresh(client, &names));
                }
            }
            Err(failure) => {
                report(&failure);
            }
        }
    }
    0
}

/// Whether the line ran a command that may have changed the names completion offers.
fn writes(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    commands::find(first).is_some_and(|spec| spec.writes)
}

fn new_editor(names: SharedNames) -> rustyline::Result<Editor<ReplHelper, DefaultHistory>> {
    let config = Config::builder()
        .max_history_size(HISTORY_ENTRIES)?
        .history_ignore_dups(true)?
        .completion_type(CompletionType::List)
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(ReplHelper::new(names)));
    Ok(editor)
}

/// `$XDG_STATE_HOME/rstmdb/history`, else `~/.rstmdb_history`.
fn history_path() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("rstmdb").join("history"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".rstmdb_history"))
}

/// Saved after every command, so that history survives a killed terminal.
fn save_history(editor: &mut Editor<ReplHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(error) = editor.save_history(path) {
        eprintln!(
            "warning: cannot save history to {}: {error}",
            path.display()
        );
    }
}
