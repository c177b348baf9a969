//! Bytes of heap per instance, measured with a counting allocator, and the snapshot speed of a
//! 1,000,000-instance state. Run: `cargo bench -p rstmdb --bench instance_memory`.
//!
//! Each instance has a 36-character id and a ctx of about 100 bytes, as in the task's sizing.
//! The target is at most 600 bytes per instance (`tests/engine/engine_memory.rs` asserts it
//! on a smaller state).

use rstmdb::engine::{Command, CreateInstance, Engine, EngineConfig, InstanceIdChoice, PutMachine};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::time::Instant;

const INSTANCES: u64 = 1_000_000;

fn ctx(i: u64) -> Map<String, Value> {
    match json!({"customer": format!("customer-{i:08}"), "amount": i % 10_000, "currency": "EUR",
        "items": [1, 2, 3], "note": "standard delivery"})
    {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn main() {
    let mut engine = Engine::new(EngineConfig::default());
    // As the server does once it has replayed: from then on every change keeps the index.
    engine.build_list_index();
    let mut offset = 1u64 << 40;
    let mut assign = |size: u64| {
        let at = offset;
        offset += size;
        Ok::<u64, Infallible>(at)
    };
    let put = Command::PutMachine(PutMachine {
        machine: "order".into(),
        version: 1,
        definition: json!({"states":["created","paid"],"initial":"created",
            "transitions":[{"from":"created","event":"PAY","to":"paid"}]}),
    });
    if let Err(error) = engine.execute(&put, 0, |_| assign(300)) {
        eprintln!("put failed: {error}");
        return;
    }
    let ctx_bytes = serde_json::to_string(&ctx(0)).map_or(0, |s| s.len());
    let started = Instant::now();
    let info = allocation_counter::measure(|| {
        for i in 0..INSTANCES {
            let create = Command::CreateInstance(CreateInstance {
                machine: "order".into(),
                version: 1,
                instance_id: InstanceIdChoice::Given(format!(
                    "{:08x}-0000-4000-8000-{:012x}",
                    i.wrapping_mul(2_654_435_761) & 0xffff_ffff,
                    i
                )),
                initial_ctx: Some(ctx(i)),
                idempotency_key: None,
            });
            if let Err(error) = engine.execute(&create, 1, |_| assign(250)) {
                eprintln!("create {i} failed: {error}");
                return;
            }
        }
    });
    println!(
        "{INSTANCES} instances (36-byte ids, {ctx_bytes}-byte ctx): {:.1} bytes per instance \
         (created in {:.2?})",
        info.bytes_current as f64 / INSTANCES as f64,
        started.elapsed()
    );

    let started = Instant::now();
    let bytes = engine.encode_image();
    println!(
        "snapshot encode: {} bytes in {:.2?}",
        bytes.len(),
        started.elapsed()
    );
    // The original stays alive during the decode: freeing a million small allocations just
    // before would bill the allocator's deferred clean-up to the decode (the server decodes in
    // a fresh process).
    let started = Instant::now();
    let mut decoded = None;
    let info = allocation_counter::measure(|| {
        decoded = Engine::decode_image(EngineConfig::default(), &bytes).ok();
        if let Some(engine) = &decoded {
            engine.build_list_index();
        }
    });
    let elapsed = started.elapsed();
    match decoded {
        Some(engine) => println!(
            "snapshot decode: {} instances in {elapsed:.2?}, {:.1} bytes per instance after decode",
            engine.live_instance_count(),
            info.bytes_current as f64 / INSTANCES as f64
        ),
        None => eprintln!("snapshot decode failed"),
    }
    drop(engine);
}
