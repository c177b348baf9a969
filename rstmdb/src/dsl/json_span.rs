//! Where a value sits in JSON source text, so diagnostics can underline it.
//!
//! The definition is validated as a parsed `serde_json::Value`, which has no positions. These
//! functions walk the original text again, following a JSON Pointer (RFC 6901), and map offsets
//! in a decoded string back to the raw characters of its literal (escapes such as `\"`, `\n` or
//! `\u00e9` make the two differ). They never panic: text that is not well-formed JSON or a
//! pointer that does not resolve gives `None`.
//!
//! The walk is iterative with byte-level skipping (structural characters are ASCII and never
//! occur inside a UTF-8 sequence), so nesting depth costs no stack.

use crate::dsl::guard::simple_escape;
use std::ops::Range;

/// The byte range of the value at `pointer` in `text`. When an object repeats a key, the last
/// occurrence wins, as in serde_json's parsed value.
pub fn locate(text: &str, pointer: &str) -> Option<Range<usize>> {
    let mut position = skip_whitespace(text, 0);
    if !pointer.is_empty() {
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            position = match text.as_bytes().get(position)? {
                b'{' => member_value(text, position, &token)?,
                b'[' => element_value(text, position, token.parse().ok()?)?,
                _ => return None,
            };
        }
    }
    Some(position..skip_value(text, position)?)
}

/// The byte offset, relative to the start of `literal` (a JSON string literal including its
/// quotes), of the character at `decoded_offset` in the decoded string. `decoded_offset` equal
/// to the decoded length gives the offset of the closing quote.
pub fn decoded_to_raw(literal: &str, decoded_offset: usize) -> Option<usize> {
    if !literal.starts_with('"') {
        return None;
    }
    let mut raw = 1;
    let mut decoded = 0;
    while decoded < decoded_offset {
        let (character, next) = string_unit(literal, raw)?;
        decoded += character.len_utf8();
        raw = next;
    }
    Some(raw)
}

/// Maps a byte range of the decoded string to the byte range of its raw characters in the
/// literal (relative to the literal's start).
pub fn decoded_range_to_raw(literal: &str, decoded: Range<usize>) -> Option<Range<usize>> {
    let start = decoded_to_raw(literal, decoded.start)?;
    let end = decoded_to_raw(literal, decoded.end)?;
    Some(start..end.max(start))
}

/// 1-based line and column of a byte offset; columns count Unicode scalar values, as in §7.10.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The byte offset of the character a serde_json syntax error points at. serde_json reports a
/// 1-based line and, as its column, the number of bytes read on that line including the
/// offending one; column 0 means the offending byte was the newline ending the previous line.
pub fn offset_of_serde_position(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line > 1 {
        text.match_indices('\n')
            .nth(line - 2)
            .map_or(text.len(), |(newline, _)| newline + 1)
    } else {
        0
    };
    floor_char_boundary(text, (line_start + column).saturating_sub(1))
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn skip_whitespace(text: &str, mut position: usize) -> usize {
    let bytes = text.as_bytes();
    while matches!(bytes.get(position), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        position += 1;
    }
    position
}

/// Start of the value of the last member named `key` in the object starting at `open`.
fn member_value(text: &str, open: usize, key: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut position = skip_whitespace(text, open + 1);
    let mut found = None;
    if bytes.get(position) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = skip_string(text, position)?;
        let member_key = decode_string(text.get(position..key_end)?)?;
        position = skip_whitespace(text, key_end);
        if bytes.get(position) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(text, position + 1);
        if member_key == key {
            found = Some(value_start);
        }
        position = skip_whitespace(text, skip_value(text, value_start)?);
        match bytes.get(position)? {
            b',' => position = skip_whitespace(text, position + 1),
            b'}' => return found,
            _ => return None,
        }
    }
}

/// Start of element `index` of the array starting at `open`.
fn element_value(text: &str, open: usize, index: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut position = skip_whitespace(text, open + 1);
    if bytes.get(position) == Some(&b']') {
        return None;
    }
    for _ in 0..index {
        position = skip_whitespace(text, skip_value(text, position)?);
        match bytes.get(position)? {
            b',' => position = skip_whitespace(text, position + 1),
            _ => return None,
        }
    }
    Some(position)
}

/// The offset just past the value starting at `start`.
fn skip_value(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.get(start)? {
        b'"' => skip_string(text, start),
        b'{' | b'[' => skip_container(text, start),
        b',' | b':' | b'}' | b']' => None,
        _ => {
            let length = bytes[start..]
                .iter()
                .take_while(|byte| {
                    !matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                })
                .count();
            Some(start + length)
        }
    }
}

fn skip_string(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let mut position = start + 1;
    loop {
        match bytes.get(position)? {
            b'\\' => position += 2,
            b'"' => return Some(position + 1),
            _ => position += 1,
        }
    }
}

fn skip_container(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut position = start;
    loop {
        match bytes.get(position)? {
            b'"' => {
                position = skip_string(text, position)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(position + 1);
                }
            }
            _ => {}
        }
        position += 1;
    }
}

/// Decodes a complete string literal (with its quotes).
fn decode_string(literal: &str) -> Option<String> {
    let mut decoded = String::new();
    let mut position = 1;
    while let Some((character, next)) = string_unit(literal, position) {
        decoded.push(character);
        position = next;
    }
    (literal.get(position..)? == "\"").then_some(decoded)
}

/// The character at `position` inside a string literal and the offset after it; `None` at the
/// closing quote or on a malformed escape. A lone surrogate escape decodes to U+FFFD (serde_json
/// refuses such text anyway, so this only keeps the walk going).
fn string_unit(literal: &str, position: usize) -> Option<(char, usize)> {
    let rest = literal.get(position..)?;
    let mut chars = rest.chars();
    match chars.next()? {
        '"' => None,
        '\\' => {
            let letter = chars.next()?;
            if letter == 'u' {
                return unicode_escape(literal, position);
            }
            let escaped = simple_escape(letter)?;
            Some((escaped, position + 2))
        }
        character => Some((character, position + character.len_utf8())),
    }
}

/// A `\uXXXX` escape at `position`, combining a surrogate pair into one character.
fn unicode_escape(literal: &str, position: usize) -> Option<(char, usize)> {
    let hex4 = |at: usize| {
        let digits = literal.get(at..at + 4)?;
        digits
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit())
            .then(|| u32::from_str_radix(digits, 16).ok())
            .flatten()
    };
    let high = hex4(position + 2)?;
    let after = position + 6;
    let low = hex4(after + 2).filter(|low| (0xDC00..0xE000).contains(low));
    if let Some(low) = low.filter(|_| {
        (0xD800..0xDC00).contains(&high) && literal.get(after..after + 2) == Some("\\u")
    }) {
        let combined = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
        return Some((char::from_u32(combined)?, after + 6));
    }
    Some((char::from_u32(high).unwrap_or('\u{FFFD}'), after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{
  "states": ["a", "b"],
  "initial": "a",
  "transitions": [
    {"from": "a", "event": "GO", "to": "b", "guard": "ctx.name == \"a\\\"b\" foo"},
    {"from": ["a", "b"], "event": "X\u00e9", "to": "c"}
  ]
}"#;

    fn at<'a>(text: &'a str, pointer: &str) -> &'a str {
        let range = locate(text, pointer).expect("pointer resolves");
        &text[range]
    }

    #[test]
    fn locates_nested_values_by_key_and_index() {
        assert_eq!(at(TEXT, "/initial"), "\"a\"");
        assert_eq!(at(TEXT, "/states"), "[\"a\", \"b\"]");
        assert_eq!(at(TEXT, "/states/1"), "\"b\"");
        assert_eq!(at(TEXT, "/transitions/1/from/1"), "\"b\"");
        assert_eq!(at(TEXT, "/transitions/1/to"), "\"c\"");
        assert_eq!(
            at(TEXT, "/transitions/1"),
            r#"{"from": ["a", "b"], "event": "X\u00e9", "to": "c"}"#
        );
        assert_eq!(at(TEXT, ""), TEXT);
    }

    #[test]
    fn pointer_that_does_not_resolve_gives_none() {
        assert_eq!(locate(TEXT, "/missing"), None);
        assert_eq!(locate(TEXT, "/states/2"), None);
        assert_eq!(locate(TEXT, "/initial/0"), None);
        assert_eq!(locate(TEXT, "/states/x"), None);
        assert_eq!(locate("{\"a\": ", "/a"), None);
        assert_eq!(locate("", ""), None);
    }

    #[test]
    fn repeated_key_resolves_to_its_last_occurrence_like_serde_json() {
        let text = r#"{"to": "first", "to": "second"}"#;
        assert_eq!(at(text, "/to"), "\"second\"");
    }

    #[test]
    fn escaped_keys_are_compared_decoded() {
        let text = r#"{"\u0074o": 1, "a/b": 2, "m~n": 3}"#;
        assert_eq!(at(text, "/to"), "1");
        assert_eq!(at(text, "/a~1b"), "2");
        assert_eq!(at(text, "/m~0n"), "3");
    }

    #[test]
    fn decoded_guard_offsets_map_through_escapes_to_the_raw_literal() {
        let literal = at(TEXT, "/transitions/0/guard");
        let decoded: String = serde_json::from_str(literal).expect("valid literal");
        assert_eq!(decoded, r#"ctx.name == "a\"b" foo"#);
        let foo = decoded.find("foo").expect("foo is in the guard");
        let raw = decoded_range_to_raw(literal, foo..foo + 3).expect("maps");
        assert_eq!(&literal[raw], "foo");
        // The decoded `\"` inside the guard's own string is three raw characters wide.
        let escape = decoded.find('\\').expect("backslash");
        let raw = decoded_range_to_raw(literal, escape..escape + 2).expect("maps");
        assert_eq!(&literal[raw], r#"\\\""#);
    }

    #[test]
    fn unicode_escapes_and_surrogate_pairs_map_to_their_whole_escape() {
        let literal = r#""a\u00e9b\ud83d\ude00c""#;
        // decoded: a (1) é (2) b (1) 😀 (4) c (1)
        assert_eq!(decoded_range_to_raw(literal, 1..3), Some(2..8));
        assert_eq!(decoded_range_to_raw(literal, 4..8), Some(9..21));
        assert_eq!(decoded_to_raw(literal, 9), Some(22));
        assert_eq!(decoded_to_raw(literal, 10), None);
    }

    #[test]
    fn end_of_text_maps_to_the_closing_quote() {
        assert_eq!(decoded_range_to_raw(r#""ab\n""#, 3..3), Some(5..5));
    }

    #[test]
    fn serde_positions_convert_to_the_offending_byte() {
        let text = "{\n  \"a\": tru\n}";
        let error = serde_json::from_str::<serde_json::Value>(text).expect_err("invalid");
        let offset = offset_of_serde_position(text, error.line(), error.column());
        assert_eq!(
            &text[offset..offset + 1],
            "\n",
            "the newline after `tru` is unexpected"
        );
        let text = "{\"a\": 1,\n  \"b\" 2}";
        let error = serde_json::from_str::<serde_json::Value>(text).expect_err("invalid");
        let offset = offset_of_serde_position(text, error.line(), error.column());
        assert_eq!(&text[offset..], "2}");
    }

    #[test]
    fn line_column_counts_characters_not_bytes() {
        assert_eq!(line_column("é\néé x", 7), (2, 3));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
