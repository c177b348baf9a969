//! Per-instance memory stays small (target: at most 600 bytes with a 36-byte id and a ~100-byte
//! ctx). Heap use is deterministic, so this is a size assertion, not a timing one; the bench
//! `benches/instance_memory.rs` measures the same at 1,000,000 instances.

use rstmdb::engine::{Command, CreateInstance, Engine, EngineConfig, InstanceIdChoice, PutMachine};
use serde_json::{Map, Value, json};
use std::convert::Infallible;

const INSTANCES: u64 = 50_000;
const MAX_BYTES_PER_INSTANCE: f64 = 600.0;

fn ctx(i: u64) -> Map<String, Value> {
    match json!({"customer": format!("customer-{i:08}"), "amount": i % 10_000, "currency": "EUR",
        "items": [1, 2, 3], "note": "standard delivery"})
    {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn populated(engine: &mut Engine) {
    let mut offset = 1u64 << 40;
    let put = Command::PutMachine(PutMachine {
        machine: "order".into(),
        version: 1,
        definition: json!({"states":["created","paid"],"initial":"created",
            "transitions":[{"from":"created","event":"PAY","to":"paid"}]}),
    });
    engine
        .execute(&put, 0, |_| Ok::<u64, Infallible>(offset))
        .unwrap();
    for i in 0..INSTANCES {
        offset += 300;
        let create = Command::CreateInstance(CreateInstance {
            machine: "order".into(),
            version: 1,
            instance_id: InstanceIdChoice::Given(format!(
                "{:08x}-0000-4000-8000-{i:012x}",
                i * 7919
            )),
            initial_ctx: Some(ctx(i)),
            idempotency_key: None,
        });
        engine
            .execute(&create, 1, |_| Ok::<u64, Infallible>(offset))
            .unwrap();
    }
}

#[test]
fn an_instance_with_a_100_byte_ctx_takes_at_most_600_bytes() {
    let ctx_len = serde_json::to_string(&ctx(1)).unwrap().len();
    assert!((95..=110).contains(&ctx_len), "ctx of {ctx_len} bytes");
    let mut engine = Engine::new(EngineConfig::default());
    // The machine itself is not part of the per-instance cost: measure instances only.
    let info = allocation_counter::measure(|| populated(&mut engine));
    let per_instance = info.bytes_current as f64 / INSTANCES as f64;
    assert_eq!(engine.live_instance_count(), INSTANCES);
    assert!(
        per_instance <= MAX_BYTES_PER_INSTANCE,
        "{per_instance:.1} bytes per instance"
    );
    // Sanity: the figure counts at least the id and the ctx text themselves.
    assert!(
        per_instance >= 137.0,
        "{per_instance:.1} bytes per instance"
    );
}
