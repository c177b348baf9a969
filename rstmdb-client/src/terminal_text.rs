//! Text from the database made safe to print on a terminal. Instance ids, machine names,
//! states, events and ctx values are chosen by whoever writes to the database; printed as they
//! are, an `ESC` or C1 control in one of them could clear an operator's screen, retitle the
//! window, or hide and forge output. The REPL's tables, `rstmdb wal-inspect dump` and the
//! dashboard all print through [`escape_controls`]. (JSON output needs no help for C0 controls:
//! serde_json writes them as `\u001b`.)

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character written out: `\n`, `\r` and `\t` as themselves, other
/// C0 controls and DEL as `\xNN`, C1 controls (U+0080 to U+009F, which some terminals obey as
/// 8-bit escapes) as `\u{NN}`. An escape sequence is thus shown, not obeyed: its `ESC` becomes
/// `\x1b` and the rest is plain text. Everything else, all printable Unicode included, is kept.
/// Borrows when there is nothing to escape, which is almost always.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(c));
            }
            '\u{80}'..='\u{9f}' => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        assert_eq!(
            escape_controls("a\x1b[2J\x1b]0;pwned\x07b"),
            "a\\x1b[2J\\x1b]0;pwned\\x07b"
        );
        assert_eq!(escape_controls("\u{9b}31m\x7f"), "\\u{9b}31m\\x7f");
        assert_eq!(escape_controls("line\nnext\ttab\r"), "line\\nnext\\ttab\\r");
    }

    #[test]
    fn printable_unicode_is_kept_and_borrowed() {
        let text = "order-1 → paid, Zürich 東京 🚚";
        assert!(matches!(escape_controls(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn no_control_character_survives() {
        let all: String = (0u32..0x110000).filter_map(char::from_u32).collect();
        assert!(!escape_controls(&all).chars().any(char::is_control));
    }
}
