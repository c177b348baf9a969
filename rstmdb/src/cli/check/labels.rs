//! Where a definition error is underlined in the file, what the label says, and the hint.

use miette::LabeledSpan;
use rstmdb::dsl::definition::error::expected_type;
use rstmdb::dsl::definition::{DefinitionError, DefinitionErrorKind};
use rstmdb::dsl::json_span;
use std::ops::Range;

/// Labels on the offending bytes of the file, and a hint, for a definition error.
pub(super) fn labels_and_help(
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
            let label = error.message(guard);
            (vec![primary(span, label)], None)
        }
        DefinitionError::Invalid(invalid) => {
            let name = invalid.text.as_deref().unwrap_or_default();
            let (field, shadowed_by) = (&invalid.field, &invalid.shadowed_by);
            match invalid.kind {
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
                    let expected = expected_type(pointer.strip_prefix(prefix).unwrap_or(pointer));
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
