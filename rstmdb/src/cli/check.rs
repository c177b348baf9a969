//! `rstmdb check FILE|DIR...`: validate machine definitions offline with miette diagnostics.
//!
//! Each file holds either a bare definition (§7.1) or the PUT_MACHINE wrapper
//! `{"machine": ..., "version": ..., "definition": {...}}`; errors point into the file either way.

pub(super) mod finding;
mod labels;
mod outcome;

use clap::{Args, ValueEnum};
use finding::Finding;
use miette::{GraphicalReportHandler, GraphicalTheme};
use outcome::CheckedFile;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Definition files, or directories: a directory checks every `*.json` file directly in
    /// it, in name order (subdirectories are not searched).
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,

    /// `human`: a summary line per valid file, a diagnostic with the offending text underlined
    /// per invalid one. `json`: one JSON object per file per line, on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Exit status 0 when every file is a valid definition, 1 otherwise.
pub fn run(args: CheckArgs) -> ExitCode {
    let mut all_valid = true;
    let mut stdout = std::io::stdout().lock();
    let stderr_is_terminal = std::io::stderr().is_terminal();
    for target in expand(&args.paths) {
        let checked = match target {
            Ok(path) => outcome::check_file(&path),
            Err(finding) => CheckedFile::Invalid(finding),
        };
        all_valid &= matches!(checked, CheckedFile::Valid(_));
        // A closed stdout (e.g. `| head`) must not turn into a panic; the exit code still
        // reports validity.
        let _ = match args.format {
            Format::Json => writeln!(stdout, "{}", checked.to_json_line()),
            Format::Human => match &checked {
                CheckedFile::Valid(summary) => writeln!(stdout, "{}", summary.line()),
                CheckedFile::Invalid(finding) => {
                    let _ = stdout.flush();
                    eprint!("{}", render(finding, stderr_is_terminal));
                    Ok(())
                }
            },
        };
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The files to check, in command-line order, each directory replaced by its `*.json` files
/// sorted by name. A directory that cannot be read, or holds no `*.json` file, is a finding.
fn expand(paths: &[PathBuf]) -> Vec<Result<PathBuf, Finding>> {
    let mut targets = Vec::new();
    for path in paths {
        if !path.is_dir() {
            targets.push(Ok(path.clone()));
            continue;
        }
        match json_files_in(path) {
            Ok(files) if files.is_empty() => targets.push(Err(Finding::no_definitions(path))),
            Ok(files) => targets.extend(files.into_iter().map(Ok)),
            Err(error) => targets.push(Err(Finding::unreadable(path, &error))),
        }
    }
    targets
}

fn json_files_in(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "json")
            && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Colours only on a terminal: redirected output is plain and stable, so scripts and tests
/// can read it.
pub(super) fn render(finding: &Finding, colored: bool) -> String {
    let theme = if colored {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(160);
    let mut out = String::new();
    if handler.render_report(&mut out, finding).is_err() {
        // Rendering only fails on a formatter error; fall back to the plain message.
        out = format!("error: {finding}\n");
    }
    out
}
