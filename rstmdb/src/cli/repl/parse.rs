//! Tokenising a command line: words, quoted strings and JSON values that may span lines.
//!
//! A word that starts with `{` or `[` is a JSON value: it runs until its brackets balance
//! (brackets inside JSON strings do not count), whatever spaces and newlines it contains. Other
//! words end at whitespace; `"..."` (with `\"` and `\\` escapes) and `'...'` quote spaces.

/// Why a command line cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unclosed quote")]
    UnclosedQuote,
    #[error("unclosed JSON value: a `{{` or `[` is never closed")]
    UnclosedJson,
}

/// Whether `text` is a whole command: false while a JSON value is still open, so that the
/// reader asks for more lines. Any other problem is "complete" and reported when it runs.
pub fn is_complete(text: &str) -> bool {
    tokenize(text) != Err(ParseError::UnclosedJson)
}

/// Splits a command into words (see the module docs).
pub fn tokenize(text: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            return Ok(words);
        };
        let length = if first == '{' || first == '[' {
            json_length(rest)?
        } else {
            let (word, length) = plain_word(rest)?;
            words.push(word);
            rest = &rest[length..];
            continue;
        };
        words.push(rest[..length].to_owned());
        rest = &rest[length..];
    }
}

/// The byte length of the JSON value at the start of `text`, up to its closing bracket.
fn json_length(text: &str) -> Result<usize, ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        if in_string {
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match character {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                // Never below zero: the value starts with its first opening bracket.
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(index + 1);
                }
            }
            _ => {}
        }
    }
    Err(ParseError::UnclosedJson)
}

/// A whitespace-delimited word with its quotes removed, and the bytes it took.
fn plain_word(text: &str) -> Result<(String, usize), ParseError> {
    let mut word = String::new();
    let mut characters = text.char_indices();
    while let Some((index, character)) = characters.next() {
        match character {
            c if c.is_whitespace() => return Ok((word, index)),
            '\'' => loop {
                match characters.next() {
                    Some((_, '\'')) => break,
                    Some((_, c)) => word.push(c),
                    None => return Err(ParseError::UnclosedQuote),
                }
            },
            '"' => loop {
                match characters.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match characters.next() {
                        Some((_, c)) => word.push(c),
                        None => return Err(ParseError::UnclosedQuote),
                    },
                    Some((_, c)) => word.push(c),
                    None => return Err(ParseError::UnclosedQuote),
                }
            },
            c => word.push(c),
        }
    }
    Ok((word, text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).unwrap_or_else(|error| panic!("{text:?} did not tokenise: {error}"))
    }

    #[test]
    fn words_split_on_whitespace_and_quotes_keep_spaces() {
        assert_eq!(
            words("apply  'order 1' PAY \"a \\\"b\\\"\""),
            ["apply", "order 1", "PAY", "a \"b\""]
        );
    }

    #[test]
    fn a_json_value_is_one_word_even_across_spaces_and_lines() {
        let text = "create order 1 --ctx {\"a\": [1, 2],\n \"b\": \"} ]\"} tail";
        assert_eq!(
            words(text),
            [
                "create",
                "order",
                "1",
                "--ctx",
                "{\"a\": [1, 2],\n \"b\": \"} ]\"}",
                "tail"
            ]
        );
    }

    #[test]
    fn open_json_is_incomplete_until_its_brackets_balance() {
        assert!(!is_complete("put-machine m 1 {\"states\": ["));
        assert!(!is_complete("apply x E {\"s\": \"}\""));
        assert!(is_complete("apply x E {\"s\": \"}\"}"));
        assert!(is_complete("ping"));
    }

    #[test]
    fn brackets_inside_quoted_words_do_not_open_json() {
        assert!(is_complete("get 'a{b'"));
        assert_eq!(words("get x{y"), ["get", "x{y"]);
    }

    #[test]
    fn unclosed_quotes_and_brackets_are_errors() {
        assert_eq!(tokenize("get 'abc"), Err(ParseError::UnclosedQuote));
        assert_eq!(
            tokenize("apply x E {\"a\":1"),
            Err(ParseError::UnclosedJson)
        );
    }
}
