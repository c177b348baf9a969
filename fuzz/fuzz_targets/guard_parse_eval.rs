//! Arbitrary text as a guard, evaluated against a context taken from the input.
//!
//! Input: `guard text \0 context JSON` (no `\0`: the whole input is the guard and the context
//! is the one of spec §7.12). Checks: no panic; an error's span lies inside the text on
//! character boundaries and its message renders; a parsed guard prints to text that parses to
//! the same tree, prints the same again, and evaluates the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rstmdb::dsl::guard::Guard;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let (guard_bytes, ctx_bytes) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(guard_bytes);
    let guard = match Guard::parse(&text) {
        Ok(guard) => guard,
        Err(error) => {
            let end = error
                .span
                .offset
                .checked_add(error.span.length)
                .expect("span end fits");
            assert!(end <= text.len(), "span {:?} past the text", error.span);
            assert!(text.is_char_boundary(error.span.offset) && text.is_char_boundary(end));
            let _ = error.line_column(&text);
            let _ = error.message(&text);
            return;
        }
    };

    let printed = guard.to_string();
    let reparsed = Guard::parse(&printed)
        .unwrap_or_else(|e| panic!("printed guard {printed:?} does not parse: {e:?}"));
    assert_eq!(
        reparsed.expr(),
        guard.expr(),
        "print/parse changed the tree"
    );
    assert_eq!(
        reparsed.to_string(),
        printed,
        "printing is not a fixed point"
    );

    let (ctx, payload) = match ctx_bytes.and_then(|b| serde_json::from_slice::<Value>(b).ok()) {
        Some(ctx) => {
            let payload = ctx.get("payload").cloned();
            (ctx, payload)
        }
        None => (spec_context(), Some(json!({"amount": 150, "ok": true}))),
    };
    for payload in [payload.as_ref(), None] {
        assert_eq!(
            guard.eval(&ctx, payload),
            reparsed.eval(&ctx, payload),
            "the printed guard evaluates differently"
        );
    }
});

/// The context of the guard examples in spec §7.12.
fn spec_context() -> Value {
    json!({"ok":true,"flag":false,"n":5,"f":1.0,"zero":0,"s":"abc","e":"","str1":"1","arr":[],
        "arr1":[1],"obj":{},"nul":null,"nested":{"a":{"b":2}},"q":"a\"b","neg":-2.5,"big":1e20,
        "ünï":1})
}
