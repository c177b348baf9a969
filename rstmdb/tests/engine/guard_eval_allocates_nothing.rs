//! `Guard::eval` allocates nothing: literals and path segments are decoded at parse time, and
//! evaluation only walks borrowed JSON values. Measured with a counting global allocator.

use rstmdb::dsl::guard::Guard;
use serde_json::json;

const GUARDS: &[&str] = &[
    "ctx.ok",
    "!ctx.missing",
    r#"ctx.q == "a\"b" && ctx.s != "\u0061bc""#,
    "ctx.n >= 5 && ctx.f == 1 || ctx.big > 1e19",
    "ctx.nested.a.b == 2 && !ctx.nested.a.c && ctx.ünï == 1",
    "payload.amount > 100 && !(payload.ok == false || ctx.nul != null)",
    r#"ctx.amount > 100 && !ctx.blocked || payload.tier == "gold""#,
];

#[test]
fn the_counter_sees_allocations_so_a_zero_below_means_something() {
    let info = allocation_counter::measure(|| {
        let guard = Guard::parse("ctx.a == \"text\"").expect("parses");
        std::hint::black_box(guard);
    });
    assert!(info.count_total > 0);
}

#[test]
fn evaluating_guards_makes_no_heap_allocation() {
    let ctx = json!({
        "ok": true, "n": 5, "f": 1.0, "s": "abc", "q": "a\"b", "big": 1e20, "nul": null,
        "nested": {"a": {"b": 2}}, "ünï": 1, "amount": 120, "blocked": false,
    });
    let payload = json!({"amount": 150, "ok": true, "tier": "gold"});
    let guards: Vec<Guard> = GUARDS
        .iter()
        .map(|text| Guard::parse(text).expect("parses"))
        .collect();
    let mut results = Vec::with_capacity(2 * guards.len());
    let info = allocation_counter::measure(|| {
        for guard in &guards {
            results.push(guard.eval(&ctx, Some(&payload)));
            results.push(guard.eval(&ctx, None));
        }
    });
    assert_eq!(info.count_total, 0, "eval allocated: {info:?}");
    // The guards really ran (and differ between payload and no payload for the payload ones).
    assert_eq!(results.len(), 2 * GUARDS.len());
    assert!(results.iter().any(|&result| result) && results.iter().any(|&result| !result));
}
