//! The guard language (spec §7.4–7.12).
//!
//! TEMPORARY STUB: this file fixes the public API that the engine and the definition loader
//! code against. The guard-language work replaces the bodies (lexer, parser, printer,
//! evaluator) without changing these signatures.

use serde_json::Value;
use std::fmt;

/// A byte range into the guard text: the form miette's `SourceSpan` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub offset: usize,
    pub length: usize,
}

/// The error kinds of spec §7.10, in the order of its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardErrorKind {
    EmptyGuard,
    ExpectedPath,
    EmptySegment,
    ExpectedLiteral,
    ExpectedNumber,
    InvalidLiteral,
    InvalidNumber,
    UnterminatedString,
    InvalidEscape,
    ExpectedRparen,
    TrailingInput,
    TooDeep,
}

impl GuardErrorKind {
    /// The wire name (`details.kind`), e.g. `"trailing_input"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyGuard => "empty_guard",
            Self::ExpectedPath => "expected_path",
            Self::EmptySegment => "empty_segment",
            Self::ExpectedLiteral => "expected_literal",
            Self::ExpectedNumber => "expected_number",
            Self::InvalidLiteral => "invalid_literal",
            Self::InvalidNumber => "invalid_number",
            Self::UnterminatedString => "unterminated_string",
            Self::InvalidEscape => "invalid_escape",
            Self::ExpectedRparen => "expected_rparen",
            Self::TrailingInput => "trailing_input",
            Self::TooDeep => "too_deep",
        }
    }
}

/// A guard that failed to parse: what went wrong and where, as a byte span into the guard text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.kind.as_str())]
pub struct GuardError {
    pub kind: GuardErrorKind,
    pub span: Span,
}

impl GuardError {
    /// The guard text covered by the span (`""` for a zero-length span).
    pub fn text<'a>(&self, guard: &'a str) -> &'a str {
        &guard[self.span.offset..self.span.offset + self.span.length]
    }

    /// 1-based (line, column) of the span start; columns count Unicode scalar values (§7.10).
    pub fn line_column(&self, guard: &str) -> (usize, usize) {
        let before = &guard[..self.span.offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// A parsed guard. Parse once when the definition is stored; evaluate many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    text: Box<str>,
}

impl Guard {
    /// Parses `text` strictly: the whole text must be one expression.
    pub fn parse(text: &str) -> Result<Guard, GuardError> {
        if text.trim().is_empty() {
            return Err(GuardError {
                kind: GuardErrorKind::EmptyGuard,
                span: Span {
                    offset: 0,
                    length: text.len(),
                },
            });
        }
        Ok(Guard { text: text.into() })
    }

    /// The guard text exactly as written in the definition.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the guard against the context before the merge and the event's payload.
    /// Never fails and never allocates.
    pub fn eval(&self, _ctx: &Value, _payload: Option<&Value>) -> bool {
        true
    }
}

/// Prints the parsed tree in canonical form; parsing the output gives the same tree.
impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
