//! Evaluation semantics of spec §7.7 and §7.8 beyond the §7.12 table: the edges of truthiness,
//! equality within machine epsilon, no coercion, and how `payload.` resolves.

use rstmdb::dsl::guard::Guard;
use serde_json::{Value, json};

fn eval(text: &str, ctx: &Value, payload: Option<&Value>) -> bool {
    Guard::parse(text)
        .unwrap_or_else(|error| panic!("`{text}` should parse: {error:?}"))
        .eval(ctx, payload)
}

#[test]
fn negative_zero_and_zero_point_zero_are_falsy() {
    let ctx: Value =
        serde_json::from_str(r#"{"neg_zero": -0.0, "zero_float": 0.0, "tiny": 1e-300}"#)
            .expect("valid JSON");
    assert!(!eval("ctx.neg_zero", &ctx, None));
    assert!(!eval("ctx.zero_float", &ctx, None));
    assert!(eval("ctx.tiny", &ctx, None), "only zero itself is falsy");
}

#[test]
fn numbers_are_equal_within_machine_epsilon() {
    let ctx: Value =
        serde_json::from_str(r#"{"sum": 0.30000000000000004, "apart": 1.0000000000000004}"#)
            .expect("valid JSON");
    assert!(
        eval("ctx.sum == 0.3", &ctx, None),
        "differ by 5.6e-17 < epsilon"
    );
    assert!(
        !eval("ctx.apart == 1", &ctx, None),
        "differ by 4.4e-16 > epsilon"
    );
    assert!(eval("ctx.apart != 1", &ctx, None));
}

#[test]
fn integers_are_compared_as_f64() {
    let ctx = json!({"past_2_53": 9_007_199_254_740_993_u64, "max": u64::MAX, "min": i64::MIN});
    assert!(
        eval("ctx.past_2_53 == 9007199254740992", &ctx, None),
        "precision is lost"
    );
    assert!(eval("ctx.max > 1.8e19", &ctx, None));
    assert!(eval("ctx.min < -9.2e18", &ctx, None));
}

#[test]
fn equality_never_coerces_between_types() {
    let ctx = json!({"t": true, "one": 1, "s": "true", "arr": [1], "obj": {"a": 1}, "empty": []});
    assert!(!eval("ctx.t == 1", &ctx, None));
    assert!(!eval("ctx.one == true", &ctx, None));
    assert!(!eval("ctx.s == true", &ctx, None));
    assert!(!eval("ctx.arr == 1", &ctx, None), "arrays equal no literal");
    assert!(!eval("ctx.empty == null", &ctx, None));
    assert!(eval("ctx.obj != null", &ctx, None));
    assert!(!eval("ctx.one == null", &ctx, None));
}

#[test]
fn strings_compare_byte_for_byte_without_normalisation() {
    let ctx = json!({"composed": "é", "decomposed": "e\u{301}"});
    assert!(eval(r#"ctx.composed == "\u00e9""#, &ctx, None));
    assert!(!eval(r#"ctx.decomposed == "\u00e9""#, &ctx, None));
    assert!(eval(r#"ctx.decomposed == "e\u0301""#, &ctx, None));
}

#[test]
fn ordering_is_false_for_everything_but_numbers() {
    let ctx = json!({"s": "5", "t": true, "arr": [9], "nul": null});
    for text in [
        "ctx.s > 1",
        "ctx.s <= 9",
        "ctx.t >= 0",
        "ctx.arr > 1",
        "ctx.nul < 1",
        "ctx.nul >= 0",
    ] {
        assert!(!eval(text, &ctx, None), "`{text}` should be false");
    }
    assert!(eval("!(ctx.s > 1)", &ctx, None));
}

#[test]
fn keys_match_exactly_and_paths_do_not_index_arrays() {
    let ctx = json!({"A": 1, "list": [{"x": 1}], "deep": {"x": {"y": {"z": "found"}}}});
    assert!(!eval("ctx.a", &ctx, None));
    assert!(eval("ctx.A == 1", &ctx, None));
    assert!(!eval("ctx.list.0.x", &ctx, None));
    assert!(eval(r#"ctx.deep.x.y.z == "found""#, &ctx, None));
}

#[test]
fn a_context_that_is_not_an_object_resolves_every_path_to_null() {
    for ctx in [json!([1, 2]), json!("ctx"), json!(null), json!(3)] {
        assert!(eval("ctx.a == null", &ctx, None));
        assert!(!eval("ctx.a", &ctx, None));
    }
}

#[test]
fn an_absent_null_or_scalar_payload_resolves_every_payload_path_to_null() {
    let ctx = json!({"a": 1});
    for payload in [None, Some(&Value::Null), Some(&json!(7)), Some(&json!([1]))] {
        assert!(eval("payload.a == null", &ctx, payload));
        assert!(!eval("payload.a", &ctx, payload));
    }
    assert!(eval(
        "payload.a == 2 && ctx.a == 1",
        &ctx,
        Some(&json!({"a": 2}))
    ));
}

#[test]
fn precedence_groups_not_then_and_then_or() {
    let ctx = json!({"t": true, "f": false});
    // `!` binds to the comparison, not to the path alone.
    assert!(eval("!ctx.f == true", &ctx, None));
    assert!(eval("ctx.t || ctx.f && ctx.f", &ctx, None));
    assert!(!eval("(ctx.t || ctx.f) && ctx.f", &ctx, None));
    assert!(eval("ctx.f && ctx.t || ctx.t", &ctx, None));
    assert!(!eval("ctx.f && (ctx.t || ctx.t)", &ctx, None));
    assert!(eval("!!!ctx.f", &ctx, None));
}
