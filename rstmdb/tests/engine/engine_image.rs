//! The engine image (the whole state) that checkpoints hold: round trip and refusal of damaged
//! bytes.

use crate::engine_support::{Harness, apply, create, delete, object, order_v1, put, review};
use rstmdb::engine::{ApplyEvent, Command, Engine, EngineConfig};
use rstmdb_client::params::ListInstancesParams;
use serde_json::json;

fn populated() -> Harness {
    let mut h = Harness::new(EngineConfig {
        allow_instance_recreate: false,
        ..EngineConfig::default()
    });
    h.ok(put("order", 1, order_v1()));
    h.ok(put("review", 0, review()));
    for i in 0..20 {
        let (machine, version) = if i % 2 == 0 {
            ("order", 1)
        } else {
            ("review", 0)
        };
        let mut c = create(machine, version, &format!("id-{i}"));
        c.initial_ctx = Some(object(json!({"i": i, "nested": {"a": [1, 2.5, null]}})));
        c.idempotency_key = (i % 3 == 0).then(|| format!("c{i}"));
        h.ok(Command::CreateInstance(c));
    }
    h.ok(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"ready": true}))),
        event_id: Some("e".into()),
        expected_state: Some("created".into()),
        idempotency_key: Some("k".into()),
        ..apply("id-0", "PAY")
    }));
    h.ok(Command::ApplyEvent(ApplyEvent {
        payload: Some(object(json!({"score": 70}))),
        ..apply("id-1", "DECIDE")
    }));
    h.ok(Command::DeleteInstance(rstmdb::engine::DeleteInstance {
        instance_id: "id-2".into(),
        idempotency_key: Some("d".into()),
    }));
    h.ok(delete("id-4"));
    h.engine.drop_deleted();
    h.ok(delete("id-6"));
    h
}

#[test]
fn an_image_round_trip_keeps_the_whole_state() {
    let h = populated();
    let bytes = h.engine.encode_image();
    let decoded = Engine::decode_image(h.engine.config().clone(), &bytes).unwrap();
    assert_eq!(decoded.encode_image(), bytes);
    assert_eq!(decoded.state_counts(), h.engine.state_counts());
    assert_eq!(decoded.last_timestamp_ms(), h.engine.last_timestamp_ms());
    assert_eq!(
        decoded.idempotency_key_count(),
        h.engine.idempotency_key_count()
    );
    let query = ListInstancesParams::default();
    assert_eq!(
        decoded.list_instances(&query),
        h.engine.list_instances(&query)
    );
    let view = |e: &Engine| serde_json::to_value(e.get_instance("id-0").unwrap()).unwrap();
    assert_eq!(view(&decoded), view(&h.engine));
    assert_eq!(decoded.list_machines(), h.engine.list_machines());
}

#[test]
fn a_decoded_engine_behaves_like_the_original() {
    let mut h = populated();
    let bytes = h.engine.encode_image();
    let mut decoded = Harness {
        engine: Engine::decode_image(h.engine.config().clone(), &bytes).unwrap(),
        next_offset: h.next_offset,
        now_ms: h.now_ms,
        records: Vec::new(),
    };
    let commands = [
        Command::ApplyEvent(ApplyEvent {
            payload: Some(object(json!({"ready": true}))),
            event_id: Some("e".into()),
            expected_state: Some("created".into()),
            idempotency_key: Some("k".into()),
            ..apply("id-0", "PAY")
        }),
        delete("id-4"),
        delete("id-6"),
        Command::CreateInstance(create("order", 1, "id-4")),
        Command::ApplyEvent(apply("id-0", "SHIP")),
        Command::ApplyEvent(apply("id-8", "PAY")),
    ];
    for cmd in commands {
        let a = h
            .result(cmd.clone())
            .map_err(|e| crate::engine_support::wire(&e));
        let b = decoded
            .result(cmd)
            .map_err(|e| crate::engine_support::wire(&e));
        assert_eq!(a, b);
    }
    assert_eq!(decoded.engine.encode_image(), h.engine.encode_image());
}

#[test]
fn damaged_images_are_refused_without_panicking() {
    let h = populated();
    let bytes = h.engine.encode_image();
    let config = h.engine.config().clone();
    for len in (0..bytes.len()).step_by(7) {
        assert!(
            Engine::decode_image(config.clone(), &bytes[..len]).is_err(),
            "prefix {len}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Engine::decode_image(config.clone(), &trailing).is_err());
    let mut magic = bytes.clone();
    magic[0] ^= 0xff;
    assert!(Engine::decode_image(config.clone(), &magic).is_err());
    for i in (8..bytes.len()).step_by(13) {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0xa5;
        // Either refused or decoded into some state; never a panic.
        let _ = Engine::decode_image(config.clone(), &flipped);
    }
}
