//! Every example of spec §7.12: the accepted guards (1–54) with their results, and the rejected
//! guards (E1–E23) with their error kind, span and text.

use rstmdb::dsl::guard::Guard;
use serde_json::{Value, json};

/// The context of §7.12, verbatim.
const SPEC_CONTEXT: &str = r#"{"ok":true,"flag":false,"n":5,"f":1.0,"zero":0,"s":"abc","e":"","str1":"1","arr":[],"arr1":[1],"obj":{},"nul":null,"nested":{"a":{"b":2}},"q":"a\"b","neg":-2.5,"big":1e20,"ünï":1}"#;

/// Whether a row is evaluated with the payload P of §7.12.
#[derive(Clone, Copy)]
enum Payload {
    None,
    P,
}

/// (row, guard text, payload, expected result)
const ACCEPTED: &[(u32, &str, Payload, bool)] = &[
    (1, "ctx.ok", Payload::None, true),
    (2, "ctx.flag", Payload::None, false),
    (3, "ctx.missing", Payload::None, false),
    (4, "!ctx.missing", Payload::None, true),
    (5, "ctx.zero", Payload::None, false),
    (6, "ctx.e", Payload::None, false),
    (7, "ctx.arr", Payload::None, false),
    (8, "ctx.arr1", Payload::None, true),
    (9, "ctx.obj", Payload::None, false),
    (10, "ctx.nul", Payload::None, false),
    (11, "ctx.n == 5", Payload::None, true),
    (12, "ctx.f == 1", Payload::None, true),
    (13, "ctx.n == 5.0", Payload::None, true),
    (14, "ctx.str1 == 1", Payload::None, false),
    (15, "ctx.str1 != 1", Payload::None, true),
    (16, r#"ctx.str1 == "1""#, Payload::None, true),
    (17, "ctx.ok == 1", Payload::None, false),
    (18, "ctx.missing == null", Payload::None, true),
    (19, "ctx.missing != null", Payload::None, false),
    (20, "ctx.nul == null", Payload::None, true),
    (21, "ctx.n > 4.5", Payload::None, true),
    (22, "ctx.n >= 5", Payload::None, true),
    (23, "ctx.n < 5", Payload::None, false),
    (24, "ctx.str1 > 0", Payload::None, false),
    (25, "!(ctx.str1 > 0)", Payload::None, true),
    (26, "ctx.missing < 1", Payload::None, false),
    (27, "ctx.neg < -2", Payload::None, true),
    (28, "ctx.n > .5", Payload::None, true),
    (29, "ctx.n <= 5.", Payload::None, true),
    (30, "ctx.big > 1e19", Payload::None, true),
    (31, "ctx.n >= 1e3", Payload::None, false),
    (32, "ctx.nested.a.b == 2", Payload::None, true),
    (33, "ctx.nested.a.c", Payload::None, false),
    (34, "ctx.nested.a.b.c", Payload::None, false),
    (35, "ctx.s.length", Payload::None, false),
    (36, "ctx.arr1.0", Payload::None, false),
    (37, "!ctx.n == 5", Payload::None, false),
    (38, "!ctx.flag && ctx.ok", Payload::None, true),
    (39, "ctx.flag && ctx.ok || ctx.n", Payload::None, true),
    (40, "ctx.flag && (ctx.ok || ctx.n)", Payload::None, false),
    (41, "ctx.ok || ctx.flag && ctx.zero", Payload::None, true),
    (42, "!!ctx.ok", Payload::None, true),
    (43, "!(ctx.ok && ctx.flag)", Payload::None, true),
    (44, r#"ctx.q == "a\"b""#, Payload::None, true),
    (45, r#"ctx.s == "\u0061bc""#, Payload::None, true),
    (46, r#"ctx.s == "ABC""#, Payload::None, false),
    (47, r#"ctx.e == """#, Payload::None, true),
    (48, "ctx.ünï == 1", Payload::None, true),
    (49, "payload.amount > 100", Payload::P, true),
    (50, "payload.amount > 100", Payload::None, false),
    (51, "payload.ok && !ctx.flag", Payload::P, true),
    (52, "ctx.amount > 100", Payload::P, false),
    (53, "  ctx.ok\n&& ctx.n  ", Payload::None, true),
    (54, "ctx.n==5&&ctx.ok", Payload::None, true),
];

/// (row, guard text, kind, span offset, span length, span text)
const REJECTED: &[(&str, &str, &str, usize, usize, &str)] = &[
    ("E1", "", "empty_guard", 0, 0, ""),
    ("E2", "ctx.ok foo", "trailing_input", 7, 3, "foo"),
    ("E3", "ctx.a = 5", "trailing_input", 6, 3, "= 5"),
    ("E4", "ctx.my-field", "trailing_input", 6, 6, "-field"),
    ("E5", "(ctx.ok) == true", "trailing_input", 9, 7, "== true"),
    ("E6", "ctx.ok == truex", "invalid_literal", 10, 5, "truex"),
    ("E7", "ctx..a", "empty_segment", 4, 0, ""),
    ("E8", "ctx.", "empty_segment", 4, 0, ""),
    ("E9", "ctx", "expected_path", 0, 3, "ctx"),
    ("E10", "CTX.ok", "expected_path", 0, 6, "CTX.ok"),
    ("E11", "5 < ctx.n", "expected_path", 0, 1, "5"),
    ("E12", "ctx.ok &&", "expected_path", 9, 0, ""),
    ("E13", r#"ctx.s > "a""#, "expected_number", 8, 3, r#""a""#),
    ("E14", "ctx.a > ctx.b", "expected_number", 8, 5, "ctx.b"),
    ("E15", "ctx.n > -", "expected_number", 8, 1, "-"),
    ("E16", "ctx.s == 'abc'", "expected_literal", 9, 5, "'abc'"),
    ("E17", "(ctx.ok", "expected_rparen", 7, 0, ""),
    (
        "E18",
        r#"ctx.s == "abc"#,
        "unterminated_string",
        9,
        4,
        r#""abc"#,
    ),
    ("E19", r#"ctx.s == "a\qc""#, "invalid_escape", 11, 2, r"\q"),
    ("E20", "ctx.n == 1e400", "invalid_number", 9, 5, "1e400"),
    ("E21", "ctx.ok)", "trailing_input", 6, 1, ")"),
    ("E22", "ctx.a == 1.2.3", "invalid_number", 9, 5, "1.2.3"),
    ("E23", "ctx.n > 1e", "invalid_number", 8, 2, "1e"),
];

fn spec_context() -> Value {
    serde_json::from_str(SPEC_CONTEXT).expect("the spec context is valid JSON")
}

#[test]
fn every_accepted_example_evaluates_to_the_spec_result() {
    let ctx = spec_context();
    let payload_p = json!({"amount": 150, "ok": true});
    let mut failures = Vec::new();
    for &(row, text, payload, expected) in ACCEPTED {
        let payload = match payload {
            Payload::None => None,
            Payload::P => Some(&payload_p),
        };
        match Guard::parse(text) {
            Ok(guard) if guard.eval(&ctx, payload) == expected => {}
            Ok(_) => failures.push(format!("row {row} `{text}`: expected {expected}")),
            Err(error) => failures.push(format!("row {row} `{text}`: rejected as {error:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(ACCEPTED.len(), 54);
}

#[test]
fn every_rejected_example_reports_the_spec_kind_and_span() {
    let mut failures = Vec::new();
    for &(row, text, kind, offset, length, span_text) in REJECTED {
        match Guard::parse(text) {
            Ok(guard) => failures.push(format!("{row} `{text}`: accepted as `{guard}`")),
            Err(error) => {
                let got = (
                    error.kind.as_str(),
                    error.span.offset,
                    error.span.length,
                    error.text(text),
                );
                if got != (kind, offset, length, span_text) {
                    failures.push(format!("{row} `{text}`: got {got:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(REJECTED.len(), 23);
}

#[test]
fn accepted_examples_survive_a_print_and_reparse() {
    for &(row, text, ..) in ACCEPTED {
        let guard = Guard::parse(text).expect("accepted row parses");
        let printed = guard.to_string();
        let reparsed = Guard::parse(&printed)
            .unwrap_or_else(|error| panic!("row {row}: `{printed}` does not reparse: {error:?}"));
        assert_eq!(
            reparsed.expr(),
            guard.expr(),
            "row {row} printed as `{printed}`"
        );
    }
}

#[test]
fn the_spec_error_example_has_its_line_column_and_message() {
    let text = "ctx.ok foo";
    let error = Guard::parse(text).expect_err("trailing text is rejected");
    assert_eq!(error.line_column(text), (1, 8));
    assert_eq!(error.message(text), "unexpected trailing text 'foo'");
}
