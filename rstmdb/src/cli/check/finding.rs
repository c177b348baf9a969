//! Checking one file, and what a problem with it looks like: a miette diagnostic labelled at
//! the exact bytes of the file, and the JSON line of `--format json`.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use rstmdb::dsl::definition::{DefinitionError, DefinitionErrorKind, MachineDefinition};
use rstmdb::dsl::json_span;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// The outcome for one file.
#[derive(Debug)]
pub(super) enum CheckedFile {
    Valid {
        path: String,
        states: usize,
        transitions: usize,
        checksum: String,
    },
    Invalid(Finding),
}

/// Why one file is not a valid definition.
#[derive(Debug)]
pub(super) struct Finding {
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

pub(super) fn check_file(path: &Path) -> CheckedFile {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => return CheckedFile::Invalid(Finding::unreadable(path, &error)),
    };
    let name = path.display().to_string();
    let document: Value = match serde_json::from_str(&text) {
        Ok(document) => document,
        Err(error) => return CheckedFile::Invalid(Finding::syntax(name, text, &error)),
    };
    // The PUT_MACHINE wrapper form; a bare definition always has `states`.
    let (definition, prefix) = match document.as_object() {
        Some(object) if object.contains_key("definition") && !object.contains_key("states") => {
            (&object["definition"], "/definition")
        }
        _ => (&document, ""),
    };
    match MachineDefinition::from_json(definition) {
        Ok(machine) => CheckedFile::Valid {
            path: name,
            states: machine.state_count(),
            transitions: machine.transitions.len(),
            checksum: machine.checksum_hex(),
        },
        Err(error) => CheckedFile::Invalid(Finding::invalid(name, text, prefix, &error)),
    }
}

impl CheckedFile {
    pub(super) fn summary_line(&self) -> String {
        match self {
            Self::Valid {
                path,
                states,
                transitions,
                checksum,
            } => format!(
                "ok  {path}  ({states} states, {transitions} transitions, checksum {checksum})"
            ),
            Self::Invalid(finding) => format!("error  {}  {}", finding.path, finding.message),
        }
    }

    /// The `--format json` line. Typed structs keep the keys in a fixed, readable order.
    pub(super) fn to_json_line(&self) -> String {
        let line = match self {
            Self::Valid {
                path,
                states,
                transitions,
                checksum,
            } => JsonLine {
                file: path,
                valid: true,
                checksum: Some(checksum),
                states: Some(*states),
                transitions: Some(*transitions),
                error: None,
            },
            Self::Invalid(finding) => JsonLine {
                file: &finding.path,
                valid: false,
                checksum: None,
                states: None,
                transitions: None,
                error: Some(finding.to_json()),
            },
        };
        // Strings, integers and a string-keyed map always serialise.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    file: &'a str,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    states: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transitions: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonError<'a> {
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    message: &'a str,
    /// `text`, `field`, `shadowed_by`, `guard`, `span`, as in the wire `details` (§7.10).
    #[serde(flatten)]
    details: &'a Map<String, Value>,
}

impl Finding {
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

    fn syntax(path: String, text: String, error: &serde_json::Error) -> Self {
        let suffix = format!(" at line {} column {}", error.line(), error.column());
        let full = error.to_string();
        let problem = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        let offset = if error.classify() == serde_json::error::Category::Eof {
            text.len()
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

    fn invalid(path: String, text: String, prefix: &str, error: &DefinitionError) -> Self {
        let pointer = format!("{prefix}{}", error.pointer());
        let what = match error {
            DefinitionError::Invalid { .. } => "invalid definition",
            DefinitionError::Guard { .. } => "invalid guard",
        };
        let message = if pointer.is_empty() {
            format!("{what}: {}", error.problem())
        } else {
            format!("{what} at {pointer}: {}", error.problem())
        };
        let (labels, help) = labels_and_help(&text, prefix, &pointer, error);
        let mut extra = match error.details() {
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

    fn to_json(&self) -> JsonError<'_> {
        let position = self.position();
        JsonError {
            reason: self.reason,
            kind: self.kind,
            pointer: self.pointer.as_deref(),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
            message: &self.message,
            details: &self.extra,
        }
    }
}

/// Labels on the offending bytes of the file, and a hint, for a definition error.
fn labels_and_help(
    text: &str,
    prefix: &str,
    pointer: &str,
    error: &DefinitionError,
) -> (Vec<LabeledSpan>, Option<String>) {
    let Some(value) = json_span::locate(text, pointer) else {
        return (Vec::new(), None);
    };
    let primary = |span: Range<usize>, label: String| {
        LabeledSpan::new_primary_with_span(Some(label), span.start..span.end)
    };
    match error {
        DefinitionError::Guard { guard, error, .. } => {
            let decoded = error.span.offset..error.span.offset + error.span.length;
            let span = json_span::decoded_range_to_raw(&text[value.clone()], decoded)
                .map_or(value.clone(), |raw| {
                    value.start + raw.start..value.start + raw.end
                });
            let label = rstmdb::dsl::definition::error::guard_problem(error, guard);
            (vec![primary(span, label)], None)
        }
        DefinitionError::Invalid {
            kind,
            text: name,
            field,
            shadowed_by,
            ..
        } => {
            let name = name.as_deref().unwrap_or_default();
            match kind {
                DefinitionErrorKind::NotObject => (
                    vec![primary(head(text, value), "expected a JSON object".into())],
                    None,
                ),
                DefinitionErrorKind::MissingField => {
                    let field = field.as_deref().unwrap_or(name);
                    let label = format!("this object has no \"{field}\" key");
                    (
                        vec![primary(head(text, value), label)],
                        Some(format!("add a \"{field}\" key")),
                    )
                }
                DefinitionErrorKind::WrongType => {
                    let expected =
                        rstmdb::dsl::definition::error::expected_type(&pointer[prefix.len()..]);
                    (vec![primary(value, format!("expected {expected}"))], None)
                }
                DefinitionErrorKind::UnknownInitial
                | DefinitionErrorKind::UnknownTarget
                | DefinitionErrorKind::UnknownSource => {
                    let label = primary(inside_quotes(text, value), "not one of `states`".into());
                    (vec![label], Some(unknown_state_help(text, prefix, name)))
                }
                DefinitionErrorKind::UnreachableTransition => {
                    let mut labels = vec![primary(
                        head(text, value),
                        "this transition can never be chosen".into(),
                    )];
                    let earlier = shadowed_by.unwrap_or_default();
                    if let Some(shadow) =
                        json_span::locate(text, &format!("{prefix}/transitions/{earlier}"))
                    {
                        let span = head(text, shadow);
                        labels.push(LabeledSpan::new_with_span(
                            Some(format!("transition {earlier} has no guard and always wins")),
                            span.start..span.end,
                        ));
                    }
                    let help = format!(
                        "give transition {earlier} a guard, or move this transition before it"
                    );
                    (labels, Some(help))
                }
            }
        }
    }
}

/// A value on one line is labelled whole; a multi-line one only at its first character, so
/// the label stays next to the text it names.
fn head(text: &str, value: Range<usize>) -> Range<usize> {
    if text[value.clone()].contains('\n') {
        value.start..value.start + 1
    } else {
        value
    }
}

fn inside_quotes(text: &str, value: Range<usize>) -> Range<usize> {
    let literal = &text[value.clone()];
    if literal.len() >= 2 && literal.starts_with('"') && literal.ends_with('"') {
        value.start + 1..value.end - 1
    } else {
        value
    }
}

/// Names at most this long get a "did you mean" search; it bounds the edit-distance work on a
/// hostile file to (names × this²) steps.
const MAX_SUGGESTION_NAME_CHARS: usize = 64;
/// How many states the suggestion search looks at.
const MAX_SUGGESTION_CANDIDATES: usize = 10_000;

fn unknown_state_help(text: &str, prefix: &str, unknown: &str) -> String {
    let states: Vec<String> = json_span::locate(text, &format!("{prefix}/states"))
        .and_then(|range| serde_json::from_str::<Vec<String>>(&text[range]).ok())
        .unwrap_or_default();
    match closest_name(unknown, &states) {
        Some(close) => format!("did you mean `{close}`?"),
        None if states.len() <= 8 => {
            let listed: Vec<String> = states.iter().map(|state| format!("`{state}`")).collect();
            format!("the states are {}", listed.join(", "))
        }
        None => format!(
            "add `{unknown}` to `states`, or name one of the {} states",
            states.len()
        ),
    }
}

/// The state nearest to `unknown` by edit distance, if it is close enough to be a typo: one
/// edit per three characters, rounded up, and fewer edits than characters (so a one-letter name
/// is never "corrected" into another). Ties go to the first in `states`.
fn closest_name<'a>(unknown: &str, states: &'a [String]) -> Option<&'a str> {
    let length = unknown.chars().count();
    if length > MAX_SUGGESTION_NAME_CHARS {
        return None;
    }
    let allowed = length.div_ceil(3).min(length.saturating_sub(1));
    states
        .iter()
        .take(MAX_SUGGESTION_CANDIDATES)
        .filter(|state| state.chars().count() <= MAX_SUGGESTION_NAME_CHARS + allowed)
        .map(|state| (strsim::levenshtein(unknown, state), state.as_str()))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, state)| state)
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

#[cfg(test)]
mod tests {
    use super::{closest_name, labels_and_help};
    use rstmdb::dsl::definition::DefinitionError;
    use rstmdb::dsl::guard::{GuardError, GuardErrorKind, Span};

    /// The guard parser reports spans in the decoded guard text; the label must land on the
    /// same characters as written in the file, past the `\"` and `\\` escapes before them.
    #[test]
    fn guard_label_lands_on_the_raw_characters_in_the_file() {
        let text = include_str!("../../../tests/fixtures/definitions/invalid_guard.json");
        let guard = "ctx.name == \"a\\\"b\" foo";
        let offset = guard.find("foo").unwrap_or_default();
        let error = DefinitionError::Guard {
            pointer: "/transitions/0/guard".to_owned(),
            guard: guard.to_owned(),
            error: GuardError {
                kind: GuardErrorKind::TrailingInput,
                span: Span { offset, length: 3 },
            },
        };
        let (labels, _) = labels_and_help(text, "", "/transitions/0/guard", &error);
        let label = &labels[0];
        assert_eq!(&text[label.offset()..label.offset() + label.len()], "foo");
        assert_eq!(label.label(), Some("unexpected trailing text 'foo'"));
    }

    #[test]
    fn suggests_a_state_one_typo_away() {
        let states = ["created".to_owned(), "shipped".to_owned()];
        assert_eq!(closest_name("shiped", &states), Some("shipped"));
        assert_eq!(closest_name("payed", &["paid".to_owned()]), Some("paid"));
        assert_eq!(closest_name("cancelled", &states), None);
        assert_eq!(closest_name("x", &["a".to_owned()]), None);
    }
}
