//! The scanner: a cursor over the guard text that the parser drives one token at a time.
//!
//! Scanning is driven by what the parser expects next rather than done up front, because the
//! error kind and span of §7.10 depend on it: `5` is a number after `>` but an `expected_path`
//! at the start of an operand, and text after a complete expression is `trailing_input` whatever
//! it contains (even an unterminated string). Numbers and strings live in `number.rs` and
//! `string.rs`; this file has the cursor, whitespace, words, operators, paths and keywords.

use super::ast::{EqualityOp, Literal, OrderingOp, Path, Root};
use super::error::{GuardError, GuardErrorKind, Span};
use unicode_ident::is_xid_continue;

/// A comparison operator, as scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operator {
    Equality(EqualityOp),
    Ordering(OrderingOp),
}

/// Longest first, so `>=` is never read as `>` followed by `=`.
const OPERATORS: [(&str, Operator); 6] = [
    ("==", Operator::Equality(EqualityOp::Eq)),
    ("!=", Operator::Equality(EqualityOp::Ne)),
    (">=", Operator::Ordering(OrderingOp::Ge)),
    ("<=", Operator::Ordering(OrderingOp::Le)),
    (">", Operator::Ordering(OrderingOp::Gt)),
    ("<", Operator::Ordering(OrderingOp::Lt)),
];

const KEYWORDS: [(&str, Literal); 3] = [
    ("true", Literal::Bool(true)),
    ("false", Literal::Bool(false)),
    ("null", Literal::Null),
];

/// The characters that end a "word" (§7.10), besides whitespace.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '!' | '&' | '|' | '=' | '<' | '>')
}

/// What may not directly follow a keyword or a number (§7.4, token boundaries).
pub(super) fn glues_to_token(c: char) -> bool {
    c == '.' || is_xid_continue(c)
}

#[derive(Debug)]
pub(super) struct Cursor<'a> {
    pub(super) text: &'a str,
    /// Byte offset of the next unread character; always on a char boundary.
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, pos: 0 }
    }

    /// The unread text.
    pub(super) fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Skips Unicode `White_Space`, which may separate any two tokens.
    pub(super) fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches(char::is_whitespace).len();
    }

    /// Consumes `token` if the unread text starts with it.
    pub(super) fn eat(&mut self, token: &str) -> bool {
        let found = self.rest().starts_with(token);
        if found {
            self.pos += token.len();
        }
        found
    }

    /// Consumes a `!` that negates; `!=` is always the operator, never a `!` (§7.4).
    pub(super) fn eat_not(&mut self) -> bool {
        !self.rest().starts_with("!=") && self.eat("!")
    }

    pub(super) fn eat_operator(&mut self) -> Option<Operator> {
        let (token, operator) = OPERATORS
            .iter()
            .find(|(token, _)| self.rest().starts_with(token))?;
        self.pos += token.len();
        Some(*operator)
    }

    /// Byte length of the run of characters satisfying `accept` starting at byte `from`.
    pub(super) fn run_length(&self, from: usize, accept: impl Fn(char) -> bool) -> usize {
        let tail = self.text.get(from..).unwrap_or("");
        tail.len() - tail.trim_start_matches(accept).len()
    }

    /// The "word" at the cursor (§7.10): the longest run of characters that are neither
    /// whitespace nor one of `( ) ! & | = < >`; one character if that run is empty; zero
    /// length at the end of the text.
    pub(super) fn word_span(&self) -> Span {
        let run = self.run_length(self.pos, |c| !ends_word(c));
        let length = match self.rest().chars().next() {
            Some(first) if run == 0 => first.len_utf8(),
            _ => run,
        };
        Span {
            offset: self.pos,
            length,
        }
    }

    /// An error of `kind` spanning the word at the cursor.
    pub(super) fn word_error(&self, kind: GuardErrorKind) -> GuardError {
        GuardError::new(kind, self.word_span())
    }

    /// Scans `root.segment{.segment}`. Anything else at an operand start is `expected_path`.
    pub(super) fn path(&mut self) -> Result<Path, GuardError> {
        // The root must be followed directly by `.`: `ctx`, `ctx .a` and `ctxa.b` are not paths.
        let root = if self.rest().starts_with("ctx.") {
            Root::Ctx
        } else if self.rest().starts_with("payload.") {
            Root::Payload
        } else {
            return Err(self.word_error(GuardErrorKind::ExpectedPath));
        };
        self.pos += root.as_str().len();
        let mut segments = Vec::new();
        while self.eat(".") {
            let length = self.run_length(self.pos, is_xid_continue);
            if length == 0 {
                return Err(GuardError::new(
                    GuardErrorKind::EmptySegment,
                    Span {
                        offset: self.pos,
                        length: 0,
                    },
                ));
            }
            segments.push(Box::from(&self.text[self.pos..self.pos + length]));
            self.pos += length;
        }
        Ok(Path {
            root,
            segments: segments.into_boxed_slice(),
        })
    }

    /// Scans `true`, `false` or `null`, if the cursor is at one; `truex` and `null.a` are
    /// `invalid_literal`, covering the keyword and what is glued to it.
    pub(super) fn keyword(&mut self) -> Option<Result<Literal, GuardError>> {
        let (keyword, literal) = KEYWORDS
            .iter()
            .find(|(keyword, _)| self.rest().starts_with(keyword))?;
        let start = self.pos;
        let end = start + keyword.len();
        let glued = self.run_length(end, glues_to_token);
        if glued > 0 {
            return Some(Err(GuardError::new(
                GuardErrorKind::InvalidLiteral,
                Span::between(start, end + glued),
            )));
        }
        self.pos = end;
        Some(Ok(literal.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word_at(text: &str, pos: usize) -> &str {
        let cursor = Cursor { text, pos };
        let span = cursor.word_span();
        &text[span.offset..span.offset + span.length]
    }

    #[test]
    fn a_word_runs_until_whitespace_or_an_operator_character() {
        assert_eq!(word_at("abc def", 0), "abc");
        assert_eq!(word_at("'x'&&y", 0), "'x'");
        assert_eq!(word_at("ctx.b)", 0), "ctx.b");
        assert_eq!(word_at("é\u{3000}x", 0), "é");
    }

    #[test]
    fn an_empty_word_is_one_whole_character_or_nothing_at_the_end() {
        assert_eq!(word_at(")x", 0), ")");
        assert_eq!(word_at("==", 0), "=");
        assert_eq!(word_at("ab", 2), "");
    }

    #[test]
    fn operators_are_read_longest_first() {
        let mut cursor = Cursor::new(">=<=<>!===");
        let mut read = Vec::new();
        while let Some(operator) = cursor.eat_operator() {
            read.push(operator);
        }
        use Operator::{Equality, Ordering};
        assert_eq!(
            read,
            [
                Ordering(OrderingOp::Ge),
                Ordering(OrderingOp::Le),
                Ordering(OrderingOp::Lt),
                Ordering(OrderingOp::Gt),
                Equality(EqualityOp::Ne),
                Equality(EqualityOp::Eq),
            ]
        );
    }
}
