//! Parse errors: the kinds of spec §7.10, their byte spans, and the positions and messages derived
//! from a span.

/// A byte range into the guard text: the form miette's `SourceSpan` uses, and the `span`
/// object of an `invalid_guard` error's details (§7.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    pub offset: usize,
    pub length: usize,
}

impl Span {
    /// The span from `start` (inclusive) to `end` (exclusive), both byte offsets.
    pub(super) fn between(start: usize, end: usize) -> Span {
        Span {
            offset: start,
            length: end.saturating_sub(start),
        }
    }
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
    pub(super) fn new(kind: GuardErrorKind, span: Span) -> GuardError {
        GuardError { kind, span }
    }

    /// The guard text covered by the span (`""` for a zero-length span).
    ///
    /// `guard` must be the text this error came from; for any other text the result is `""`
    /// rather than a panic when the span does not fit it.
    pub fn text<'a>(&self, guard: &'a str) -> &'a str {
        guard
            .get(self.span.offset..self.span.offset + self.span.length)
            .unwrap_or("")
    }

    /// 1-based (line, column) of the span start; columns count Unicode scalar values (§7.10).
    pub fn line_column(&self, guard: &str) -> (usize, usize) {
        let before = guard.get(..self.span.offset).unwrap_or(guard);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// A one-line human description, e.g. `unexpected trailing text 'foo'` (the wording of the
    /// spec's §7.10 example). `guard` is the text this error came from.
    pub fn message(&self, guard: &str) -> String {
        let found = match self.text(guard) {
            "" => "the end of the guard".to_owned(),
            text => format!("'{text}'"),
        };
        let text = self.text(guard);
        match self.kind {
            GuardErrorKind::EmptyGuard => "the guard is empty".to_owned(),
            GuardErrorKind::ExpectedPath => {
                format!("expected a path such as ctx.field or payload.field, found {found}")
            }
            GuardErrorKind::EmptySegment => "a '.' in a path must be followed by a name".to_owned(),
            GuardErrorKind::ExpectedLiteral => {
                format!("expected true, false, null, a string or a number, found {found}")
            }
            GuardErrorKind::ExpectedNumber => format!("expected a number, found {found}"),
            GuardErrorKind::InvalidLiteral => format!("invalid literal '{text}'"),
            GuardErrorKind::InvalidNumber => format!("invalid or out-of-range number '{text}'"),
            GuardErrorKind::UnterminatedString => format!("unterminated string {text}"),
            GuardErrorKind::InvalidEscape => format!("invalid escape '{text}'"),
            GuardErrorKind::ExpectedRparen => format!("expected ')', found {found}"),
            GuardErrorKind::TrailingInput => format!("unexpected trailing text '{text}'"),
            GuardErrorKind::TooDeep => format!(
                "parentheses and '!' are nested deeper than {}",
                super::parser::MAX_NESTING_DEPTH
            ),
        }
    }
}
