//! Number literals (§7.4 `number`, §7.6): `5`, `-5`, `5.`, `.5`, `-.5`, `1e3`, `1.5E-2`, `-2e+2`.

use super::error::{GuardError, GuardErrorKind, Span};
use super::lexer::{Cursor, glues_to_token};

impl Cursor<'_> {
    /// Whether a number starts at the cursor: an optional `-`, then a digit, or a `.` followed
    /// by a digit. Anything else where a number is expected is `expected_number` or
    /// `expected_literal`, spanning the word; once a number has started, a malformed one is
    /// `invalid_number`.
    pub(super) fn number_starts_here(&self) -> bool {
        let bytes = self.rest().as_bytes();
        let unsigned = bytes.strip_prefix(b"-").unwrap_or(bytes);
        match unsigned {
            [first, ..] if first.is_ascii_digit() => true,
            [b'.', second, ..] => second.is_ascii_digit(),
            _ => false,
        }
    }

    /// Scans a number that [`Self::number_starts_here`] found, converting it to the nearest f64.
    pub(super) fn number(&mut self) -> Result<f64, GuardError> {
        let start = self.pos;
        let mut end = start + usize::from(self.rest().starts_with('-'));
        end += self.digits_at(end);
        if self.text.as_bytes().get(end) == Some(&b'.') {
            end += 1;
            end += self.digits_at(end);
        }
        let mut complete = true;
        if matches!(self.text.as_bytes().get(end), Some(b'e' | b'E')) {
            end += 1;
            if matches!(self.text.as_bytes().get(end), Some(b'+' | b'-')) {
                end += 1;
            }
            let exponent_digits = self.digits_at(end);
            complete = exponent_digits > 0;
            end += exponent_digits;
        }
        // `1x`, `1.2.3` and `1e`: the span takes in whatever is glued to the number.
        let glued = self.run_length(end, glues_to_token);
        let invalid =
            |end| GuardError::new(GuardErrorKind::InvalidNumber, Span::between(start, end));
        if !complete || glued > 0 {
            return Err(invalid(end + glued));
        }
        // The text now matches the grammar, which is a subset of what `f64::from_str` accepts;
        // it rounds to nearest and overflows to infinity, which §7.4 rejects.
        match self.text[start..end].parse::<f64>() {
            Ok(value) if value.is_finite() => {
                self.pos = end;
                Ok(value)
            }
            _ => Err(invalid(end)),
        }
    }

    fn digits_at(&self, from: usize) -> usize {
        self.run_length(from, |c| c.is_ascii_digit())
    }
}
