//! Why a command failed, its exit status, and how it is shown: `error: CODE: message` with
//! the details, plus the `rstmdb check` rendering for a definition file the server refused.

use rstmdb::dsl::definition::MachineDefinition;
use rstmdb::dsl::json_span;
use rstmdb_client::ClientError;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::invocation::UsageError;
use super::parse::ParseError;
use super::render::safe;
use crate::cli::check;
use crate::cli::check::finding::Finding;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line does not fit the command.
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Local input the command needs is unusable: an unreadable file, invalid JSON.
    #[error("{0}")]
    Input(String),
    /// A file the command reads is not JSON: shown at the line and column, as `rstmdb check`
    /// shows it.
    #[error("{0}")]
    InvalidJsonFile(Box<Finding>),
    /// Ctrl-C while the command waited for the server.
    #[error("interrupted; a write may or may not have been applied")]
    Interrupted,
    /// The server refused, or could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server refused a definition read from a file: shown pointing into the file.
    #[error("{}", .0.error)]
    Definition(Box<DefinitionRefusal>),
}

/// A definition file the server refused, with the text to point into.
#[derive(Debug)]
pub struct DefinitionRefusal {
    pub error: ClientError,
    pub file: PathBuf,
    pub text: String,
    /// Where the definition sits in the file: `""` or `/definition`.
    pub prefix: &'static str,
}

impl Failure {
    /// 2 for a malformed command (like a bad command line), 1 for a command that failed.
    pub fn exit_status(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Parse(_) => 2,
            Self::Input(_)
            | Self::InvalidJsonFile(_)
            | Self::Interrupted
            | Self::Client(_)
            | Self::Definition(_) => 1,
        }
    }

    /// The text for stderr, ending in a newline.
    pub fn render(&self, colored: bool) -> String {
        match self {
            Self::Client(error) => client_error(error),
            Self::Definition(refusal) => {
                let mut out = client_error(&refusal.error);
                out.push_str(&definition_diagnostic(refusal, colored));
                out
            }
            Self::InvalidJsonFile(finding) => check::render(finding, colored),
            other => format!("error: {other}\n"),
        }
    }
}

/// `error: CODE: message`, then the details as one JSON line. Messages and details quote ids
/// and values from the database, so their control characters are escaped.
fn client_error(error: &ClientError) -> String {
    let Some(server) = error.server_error() else {
        return format!("error: {}\n", safe(&error.to_string()));
    };
    let mut out = format!("error: {}: {}\n", server.code, safe(&server.message));
    if let Some(details) = &server.details {
        let _ = writeln!(
            out,
            "  details: {}",
            safe(&Value::Object(details.clone()).to_string())
        );
    }
    out
}

/// The server validates with the same code as `rstmdb check`, so validating the file's
/// definition here finds the same error, now with the file's text to point into. Should the
/// two disagree, the server's pointer is still mapped to a line and column of the file.
fn definition_diagnostic(refusal: &DefinitionRefusal, colored: bool) -> String {
    let DefinitionRefusal {
        error,
        file,
        text,
        prefix,
    } = refusal;
    let name = file.display().to_string();
    let local = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|document| {
            let definition = document.pointer(prefix)?;
            MachineDefinition::from_json(definition).err()
        });
    let server_pointer = error
        .server_error()
        .and_then(|e| e.detail("pointer"))
        .and_then(Value::as_str);
    match local {
        Some(local) if server_pointer.is_none_or(|p| p == local.pointer()) => {
            let finding = Finding::invalid(name, text.clone(), prefix, &local);
            check::render(&finding, colored)
        }
        _ => match server_pointer.and_then(|p| json_span::locate(text, &format!("{prefix}{p}"))) {
            Some(span) => {
                let (line, column) = json_span::line_column(text, span.start);
                format!("  at {name}:{line}:{column}\n")
            }
            None => String::new(),
        },
    }
}

/// Whether a server error is about the definition's content (worth pointing into the file).
pub fn is_definition_error(error: &ClientError) -> bool {
    matches!(error.reason(), Some("invalid_definition" | "invalid_guard"))
}
