//! Checking one file: read, parse, validate; and the `--format json` line of the outcome.

use super::finding::{Finding, JsonError};
use rstmdb::dsl::definition::MachineDefinition;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// The outcome for one file.
#[derive(Debug)]
pub(super) enum CheckedFile {
    Valid(Summary),
    Invalid(Finding),
}

/// What a valid file's summary line reports.
#[derive(Debug)]
pub(super) struct Summary {
    path: String,
    states: usize,
    transitions: usize,
    checksum: String,
}

impl Summary {
    /// `ok  examples/order.json  (4 states, 5 transitions, checksum 1a2b3c4d)`.
    pub(super) fn line(&self) -> String {
        format!(
            "ok  {}  ({}, {}, checksum {})",
            self.path,
            plural(self.states, "state"),
            plural(self.transitions, "transition"),
            self.checksum
        )
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
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
    let wrapped = document
        .as_object()
        .filter(|object| !object.contains_key("states"))
        .and_then(|object| object.get("definition"));
    let (definition, prefix) = match wrapped {
        Some(definition) => (definition, "/definition"),
        None => (&document, ""),
    };
    match MachineDefinition::from_json(definition) {
        Ok(machine) => CheckedFile::Valid(Summary {
            path: name,
            states: machine.state_count(),
            transitions: machine.transitions.len(),
            checksum: machine.checksum_hex(),
        }),
        Err(error) => CheckedFile::Invalid(Finding::invalid(name, text, prefix, &error)),
    }
}

impl CheckedFile {
    /// The `--format json` line. Typed structs keep the keys in a fixed, readable order.
    pub(super) fn to_json_line(&self) -> String {
        let line = match self {
            Self::Valid(summary) => JsonLine {
                file: &summary.path,
                valid: true,
                checksum: Some(&summary.checksum),
                states: Some(summary.states),
                transitions: Some(summary.transitions),
                error: None,
            },
            Self::Invalid(finding) => JsonLine {
                file: finding.path(),
                valid: false,
                checksum: None,
                states: None,
                transitions: None,
                error: Some(finding.to_json()),
            },
        };
        // Strings, integers and string-keyed maps always serialise.
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
