//! Guard evaluation and parsing speed: `cargo bench -p rstmdb --bench guard_eval`.
//! Figures go in the issue note, never into timed tests.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rstmdb::dsl::guard::Guard;
use serde_json::{Value, json};
use std::hint::black_box;

const THREE_CLAUSES: &str = r#"ctx.amount > 100 && !ctx.blocked || payload.tier == "gold""#;

/// An order's context as a real machine might carry it: a few dozen keys, some nested.
fn order_context() -> Value {
    json!({
        "order_id": "ord_01HZX3K9M2", "customer_id": "cus_88412", "amount": 250.75,
        "currency": "EUR", "blocked": false, "items": 3, "express": true,
        "address": {"street": "1 Main St", "city": "Lyon", "zip": "69001", "country": "FR"},
        "lines": [{"sku": "A-1", "qty": 1}, {"sku": "B-7", "qty": 2}],
        "risk": {"score": 12, "checked_at_ms": 1_764_000_000_000_u64, "reasons": []},
        "coupon": null, "notes": "", "attempts": 0, "created_by": "api",
        "tags": ["vip", "returning"], "shipping_cost": 4.9, "tax_rate": 0.2,
    })
}

fn eval_benches(c: &mut Criterion) {
    let ctx = order_context();
    let payload = json!({"tier": "silver", "amount": 150, "source": "checkout"});
    let guard = Guard::parse(THREE_CLAUSES).expect("the bench guard parses");
    // Both branches of the `||` are exercised: the context passes the first, not the second.
    let mut group = c.benchmark_group("guard_eval");
    group.throughput(Throughput::Elements(1));
    group.bench_function("three_clauses_first_branch_true", |b| {
        b.iter(|| black_box(&guard).eval(black_box(&ctx), black_box(Some(&payload))))
    });
    let mut blocked = ctx.clone();
    blocked["blocked"] = json!(true);
    group.bench_function("three_clauses_all_clauses_evaluated", |b| {
        b.iter(|| black_box(&guard).eval(black_box(&blocked), black_box(Some(&payload))))
    });
    group.finish();
}

fn parse_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("guard_parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("three_clauses", |b| {
        b.iter(|| Guard::parse(black_box(THREE_CLAUSES)))
    });
    group.finish();
}

criterion_group!(benches, eval_benches, parse_benches);
criterion_main!(benches);
