//! What a problem with one file looks like: a miette diagnostic labelled at the exact bytes
//! of the file, and the `error` object of the `--format json` line.

use super::labels::labels_and_help;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use rstmdb::dsl::definition::DefinitionError;
use rstmdb::dsl::json_span;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// Why one file is not a valid definition.
#[derive(Debug)]
pub(in crate::cli) struct Finding {
    path: String,
    /// `io_error`, `no_definitions`, `invalid_json`, `invalid_definition` or `invalid_guard`.
    reason: &'static str,
    kind: Option<&'static str>,
    /// JSON Pointer relative to the file (under `/definition` for the wrapper form).
    pointer: Option<String>,
    message: String,
    source: Option<NamedSource<String>>,
    /// The primary label first.
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    /// Further keys for the JSON line: `text`, `field`, `shadowed_by`, `guard`, `span`.
    extra: Map<String, Value>,
}

impl Finding {
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    pub(super) fn unreadable(path: &Path, error: &std::io::Error) -> Self {
        let name = path.display().to_string();
        Self::without_source(
            name.clone(),
            "io_error",
            format!("cannot read {name}: {error}"),
        )
    }

    pub(super) fn no_definitions(directory: &Path) -> Self {
        let name = directory.display().to_string();
        Self::without_source(
            name.clone(),
            "no_definitions",
            format!("no *.json file in directory {name}"),
        )
    }

    fn without_source(path: String, reason: &'static str, message: String) -> Self {
        Self {
            path,
            reason,
            kind: None,
            pointer: None,
            message,
            source: None,
            labels: Vec::new(),
            help: None,
            extra: Map::new(),
        }
    }

    pub(in crate::cli) fn syntax(path: String, text: String, error: &serde_json::Error) -> Self {
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let full = error.to_string();
        let problem = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let offset = if error.classify() == serde_json::error::Category::Eof {
            // The last character written: miette does not draw a label past the end of the
            // file, and this one is where the text stops short.
            let written = text.trim_end();
            written
                .char_indices()
                .next_back()
                .map_or(0, |(last, _)| last)
        } else {
            json_span::offset_of_serde_position(&text, error.line(), error.column())
        };
        // Underline the offending character; a newline or the end of the file is a position.
        let length = text[offset..]
            .chars()
            .next()
            .filter(|&character| character != '\n' && character != '\r')
            .map_or(0, char::len_utf8);
        let mut finding =
            Self::without_source(path, "invalid_json", format!("invalid JSON: {problem}"));
        finding.labels = vec![LabeledSpan::new_primary_with_span(
            Some(problem),
            (offset, length),
        )];
        finding.source = Some(NamedSource::new(finding.path.clone(), text));
        finding
    }

    pub(in crate::cli) fn invalid(
        path: String,
        text: String,
        prefix: &str,
        error: &DefinitionError,
    ) -> Self {
        let pointer = format!("{prefix}{}", error.pointer());
        let what = match error {
            DefinitionError::Invalid(_) => "invalid definition",
            DefinitionError::Guard { .. } => "invalid guard",
        };
        let message = if pointer.is_empty() {
            format!("{what}: {}", error.problem())
        } else {
            format!("{what} at {pointer}: {}", error.problem())
        };
        let (labels, help) = labels_and_help(&text, prefix, &pointer, error);
        let mut extra = match error.details_json() {
            Value::Object(details) => details,
            _ => Map::new(),
        };
        for key in ["reason", "kind", "pointer", "line", "column"] {
            extra.remove(key);
        }
        Self {
            path: path.clone(),
            reason: error.reason(),
            kind: Some(error.kind_str()),
            pointer: Some(pointer),
            message,
            source: Some(NamedSource::new(path, text)),
            labels,
            help,
            extra,
        }
    }

    /// 1-based line and column (in characters) of the primary label in the file.
    fn position(&self) -> Option<(usize, usize)> {
        let text = self.source.as_ref()?.inner();
        let primary = self.labels.first()?;
        Some(json_span::line_column(text, primary.offset()))
    }

    pub(super) fn to_json(&self) -> JsonError<'_> {
        JsonError {
            reason: self.reason,
            kind: self.kind,
            pointer: self.pointer.as_deref(),
            position: self
                .position()
                .map(|(line, column)| Position { line, column }),
            message: &self.message,
            details: &self.extra,
        }
    }
}

#[derive(Serialize)]
pub(super) struct JsonError<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
    /// `line` and `column`, when the error has a place in the file.
    #[serde(flatten)]
    position: Option<Position>,
    message: &'a str,
    /// `text`, `field`, `shadowed_by`, `guard`, `span`, as in the wire `details` (§7.10).
    #[serde(flatten)]
    details: &'a Map<String, Value>,
}

/// 1-based line and column (in characters) in the file.
#[derive(Serialize)]
pub(super) struct Position {
    line: usize,
    column: usize,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Finding {}

impl Diagnostic for Finding {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.unwrap_or(self.reason)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|source| source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}
