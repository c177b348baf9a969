//! String literals (§7.4 `string`): JSON escapes, decoded at parse time so that evaluation only
//! compares bytes.

use super::error::{GuardError, GuardErrorKind, Span};
use super::lexer::Cursor;

/// `\u` plus four hex digits.
const UNICODE_ESCAPE_BYTES: usize = 6;
const HIGH_SURROGATES: std::ops::RangeInclusive<u32> = 0xD800..=0xDBFF;
const LOW_SURROGATES: std::ops::RangeInclusive<u32> = 0xDC00..=0xDFFF;

impl Cursor<'_> {
    /// Scans a string whose opening `"` is at the cursor and returns its decoded content.
    pub(super) fn string(&mut self) -> Result<Box<str>, GuardError> {
        let open = self.pos;
        let unterminated = GuardError::new(
            GuardErrorKind::UnterminatedString,
            Span::between(open, self.text.len()),
        );
        let mut decoded = String::new();
        let mut at = open + 1;
        loop {
            let Some(c) = self.text[at..].chars().next() else {
                return Err(unterminated);
            };
            match c {
                '"' => {
                    self.pos = at + 1;
                    return Ok(decoded.into_boxed_str());
                }
                '\\' => {
                    let (character, length) =
                        self.escape(at).ok_or_else(|| unterminated.clone())??;
                    decoded.push(character);
                    at += length;
                }
                other => {
                    decoded.push(other);
                    at += other.len_utf8();
                }
            }
        }
    }

    /// Decodes the escape whose `\` is at byte `backslash`: the character and the bytes used.
    /// `None` when the text ends right after the `\` (the string is then unterminated).
    fn escape(&self, backslash: usize) -> Option<Result<(char, usize), GuardError>> {
        let letter = self.text[backslash + 1..].chars().next()?;
        if letter == 'u' {
            return Some(self.unicode_escape(backslash));
        }
        match simple_escape(letter) {
            Some(simple) => Some(Ok((simple, 2))),
            None => Some(Err(GuardError::new(
                GuardErrorKind::InvalidEscape,
                Span::between(backslash, backslash + 1 + letter.len_utf8()),
            ))),
        }
    }

    /// `\uXXXX`, or a surrogate pair `\uD83D\uDE00` (RFC 8259); a lone surrogate is an error.
    fn unicode_escape(&self, backslash: usize) -> Result<(char, usize), GuardError> {
        let unit = self.code_unit(backslash)?;
        let invalid_here = || self.invalid_unicode_escape(backslash);
        if LOW_SURROGATES.contains(&unit) {
            return Err(invalid_here());
        }
        if !HIGH_SURROGATES.contains(&unit) {
            // Not a surrogate, so always a valid scalar value.
            let character = char::from_u32(unit).ok_or_else(invalid_here)?;
            return Ok((character, UNICODE_ESCAPE_BYTES));
        }
        let second = backslash + UNICODE_ESCAPE_BYTES;
        if !self.text[second..].starts_with("\\u") {
            return Err(invalid_here());
        }
        let low = self.code_unit(second)?;
        if !LOW_SURROGATES.contains(&low) {
            return Err(invalid_here());
        }
        let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        let character = char::from_u32(scalar).ok_or_else(invalid_here)?;
        Ok((character, 2 * UNICODE_ESCAPE_BYTES))
    }

    /// The four hex digits of the `\u` escape at byte `backslash`.
    fn code_unit(&self, backslash: usize) -> Result<u32, GuardError> {
        let digits = self
            .text
            .get(backslash + 2..backslash + UNICODE_ESCAPE_BYTES)
            .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()));
        digits
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .ok_or_else(|| self.invalid_unicode_escape(backslash))
    }

    /// The span of a bad `\u` escape: its 6 bytes, cut short at the end of the text, and widened
    /// to whole characters if a non-ASCII character sits where a hex digit belongs.
    fn invalid_unicode_escape(&self, backslash: usize) -> GuardError {
        let digits: usize = self.text[backslash + 2..]
            .chars()
            .take(UNICODE_ESCAPE_BYTES - 2)
            .map(char::len_utf8)
            .sum();
        GuardError::new(
            GuardErrorKind::InvalidEscape,
            Span::between(backslash, backslash + 2 + digits),
        )
    }
}

/// The character a two-character JSON escape `\letter` stands for (RFC 8259); `None` for
/// `\u` (which takes four hex digits) and for letters that are no escape. Shared with the
/// JSON source-span locator, which maps guard offsets back through the same escapes.
pub(crate) fn simple_escape(letter: char) -> Option<char> {
    Some(match letter {
        '"' => '"',
        '\\' => '\\',
        '/' => '/',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        _ => return None,
    })
}
