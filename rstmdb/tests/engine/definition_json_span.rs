//! Properties of the source-span locator used for diagnostics: every pointer into a document
//! finds exactly the text of that value, and decoded string offsets map back through escapes.

use proptest::prelude::*;
use rstmdb::dsl::json_span::{decoded_to_raw, locate};
use serde_json::Value;

fn document() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "\\PC{0,5}".prop_map(Value::String),
        "[\"\\\\/\u{1}\n\t é😀~]{0,5}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z/~\"é]{0,3}", inner, 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Every pointer into `value`, the root included (RFC 6901 escaping of `~` and `/`).
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (key, member) in members {
                let token = key.replace('~', "~0").replace('/', "~1");
                pointers(member, format!("{at}/{token}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    #[test]
    fn every_pointer_locates_exactly_its_value(value in document(), pretty in any::<bool>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&value)
        } else {
            serde_json::to_string(&value)
        }
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let mut all = Vec::new();
        pointers(&value, String::new(), &mut all);
        for pointer in all {
            let range = locate(&text, &pointer);
            prop_assert!(range.is_some(), "{} not found in {}", pointer, text);
            let range = range.unwrap_or_default();
            let found: Value = serde_json::from_str(&text[range])
                .map_err(|error| TestCaseError::fail(format!("{pointer}: {error}")))?;
            prop_assert_eq!(Some(&found), value.pointer(&pointer));
        }
    }

    #[test]
    fn decoded_offsets_map_to_the_raw_prefix_that_decodes_to_them(decoded in "[\"\\\\/\u{1}\n\t aé😀]{0,8}") {
        let literal = serde_json::to_string(&decoded).map_err(|error| TestCaseError::fail(error.to_string()))?;
        for (offset, _) in decoded.char_indices().chain(std::iter::once((decoded.len(), ' '))) {
            let raw = decoded_to_raw(&literal, offset);
            prop_assert!(raw.is_some());
            let raw = raw.unwrap_or_default();
            let prefix: String = serde_json::from_str(&format!("{}\"", &literal[..raw]))
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            prop_assert_eq!(prefix.as_str(), &decoded[..offset]);
        }
    }
}

#[test]
fn unicode_escapes_written_by_hand_map_to_their_whole_escape() {
    let literal = r#""\u0041\u00e9\ud83d\ude00!""#;
    // decoded: "A" (1 byte), "é" (2), "😀" (4), "!" (1)
    assert_eq!(decoded_to_raw(literal, 1), Some(7));
    assert_eq!(decoded_to_raw(literal, 3), Some(13));
    assert_eq!(decoded_to_raw(literal, 7), Some(25));
    assert_eq!(&literal[25..26], "!");
}
