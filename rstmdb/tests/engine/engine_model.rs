//! Property test: random command sequences against the engine and a deliberately simple model
//! (HashMaps of serde_json Values that follow the spec text), comparing every result and error;
//! then replay (from the last checkpoint) must rebuild the same state, undoing the last k
//! commands must restore the earlier state, and a snapshot must round-trip. A cut started at
//! any point and walked between later commands must encode exactly the state of its moment.

use crate::engine_model_support::{Model, Outcome, def_json, defs};
use crate::engine_support::{FIRST_OFFSET, Harness};
use proptest::prelude::*;
use rstmdb::dsl::definition::MachineDefinition;
use rstmdb::engine::{
    ApplyEvent, Command, CreateInstance, CutImage, CutStep, DeleteInstance, Engine, EngineConfig,
    Executed, InstanceIdChoice, PutMachine,
};
use rstmdb_client::params::ListInstancesParams;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// A cut in progress and what it must encode.

struct Cut {
    image: CutImage,
    /// The state at the cut as a checkpoint holds it: deleted instances dropped.
    expected: Vec<u8>,
    /// A FLUSH_ALL ran since the cut: the walk must say it was cancelled.
    flushed: bool,
}

impl Cut {
    fn begin(engine: &mut Engine) -> Cut {
        let mut at_the_cut = engine.clone();
        at_the_cut.drop_deleted();
        Cut {
            expected: at_the_cut.encode_image(),
            image: engine.begin_cut(),
            flushed: false,
        }
    }

    /// One step; `None` once the walk ended (checked against the expected image).
    fn step(mut self, engine: &mut Engine, max: usize) -> Result<Option<Cut>, TestCaseError> {
        match engine.cut_step(&mut self.image, max) {
            CutStep::More => Ok(Some(self)),
            CutStep::Done => {
                prop_assert!(!self.flushed, "a FLUSH_ALL ran, yet the cut finished");
                engine.end_cut(&self.image);
                prop_assert_eq!(self.image.finish(), self.expected, "the image of the cut");
                Ok(None)
            }
            CutStep::Cancelled => {
                prop_assert!(self.flushed, "the cut was cancelled without a FLUSH_ALL");
                Ok(None)
            }
        }
    }

    fn walk_to_the_end(self, engine: &mut Engine) -> Result<(), TestCaseError> {
        let mut walk = Some(self);
        while let Some(cut) = walk {
            walk = cut.step(engine, 2)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Random operations.

#[derive(Debug, Clone)]
enum Op {
    Put {
        name: u8,
        version: u32,
        def: usize,
    },
    Create {
        id: u8,
        given: bool,
        name: u8,
        version: u32,
        ctx: Option<Map<String, Value>>,
        key: Option<u8>,
    },
    Apply {
        id: u8,
        event: u8,
        payload: Option<Map<String, Value>>,
        expected_state: Option<u8>,
        expected_offset: u8,
        event_id: Option<u8>,
        key: Option<u8>,
    },
    Delete {
        id: u8,
        key: Option<u8>,
    },
    Flush,
    Checkpoint,
    /// Starts a cut (COMPACT's image of this moment) unless one is in progress.
    Cut,
    /// Encodes the next few instances of the cut in progress, between commands.
    CutStep(usize),
    Clock(i64),
    /// Sends an earlier command again, verbatim: idempotent replays and key conflicts.
    Repeat(prop::sample::Index),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        (0u32..100).prop_map(|n| Value::from(f64::from(n) + 0.5)),
        (0u64..3).prop_map(|n| Value::from(n as f64)),
        "[a-c]{0,2}".prop_map(Value::from),
        (0u64..3).prop_map(|n| json!({"deep": n})),
    ]
}

fn map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (prop::sample::select(vec!["flag", "n", "x", "y"]), value()),
        0..4,
    )
    .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::option::weighted(0.5, 0u8..3);
    prop_oneof![
        4 => (0u8..2, 1u32..3, 0usize..3).prop_map(|(name, version, def)| Op::Put { name, version, def }),
        20 => (0u8..5, prop::bool::weighted(0.8), 0u8..2, 1u32..3, prop::option::of(map()), key.clone())
            .prop_map(|(id, given, name, version, ctx, key)| Op::Create { id, given, name, version, ctx, key }),
        50 => (0u8..5, 0u8..3, prop::option::of(map()), prop::option::weighted(0.2, 0u8..3), 0u8..6, prop::option::of(0u8..2), key.clone())
            .prop_map(|(id, event, payload, expected_state, expected_offset, event_id, key)| Op::Apply { id, event, payload, expected_state, expected_offset, event_id, key }),
        8 => (0u8..5, key).prop_map(|(id, key)| Op::Delete { id, key }),
        1 => Just(Op::Flush),
        2 => Just(Op::Checkpoint),
        2 => Just(Op::Cut),
        10 => (1usize..4).prop_map(Op::CutStep),
        12 => any::<prop::sample::Index>().prop_map(Op::Repeat),
        // Small steps around the 40 ms TTL hit its exact boundary often; a negative step is
        // the clock going back (§6.5).
        8 => prop::sample::select(vec![-10i64, 10, 20, 30, 40]).prop_map(Op::Clock),
    ]
}

/// Every test case starts with the four machine versions and one instance per id, so that
/// the random part mostly meets existing instances.
fn prelude() -> Vec<Op> {
    let mut ops = vec![
        Op::Put {
            name: 0,
            version: 1,
            def: 0,
        },
        Op::Put {
            name: 0,
            version: 2,
            def: 1,
        },
        Op::Put {
            name: 1,
            version: 1,
            def: 2,
        },
        Op::Put {
            name: 1,
            version: 2,
            def: 1,
        },
    ];
    for id in 0..5u8 {
        ops.push(Op::Create {
            id,
            given: true,
            name: id % 2,
            version: 1 + u32::from(id / 2) % 2,
            ctx: None,
            key: None,
        });
    }
    ops
}

fn config() -> impl Strategy<Value = EngineConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0u32, 2]),
        prop::sample::select(vec![40i64, 1_000_000]),
        prop::sample::select(vec![2usize, 1_000]),
    )
        .prop_map(|(recreate, flush, versions, ttl, max)| EngineConfig {
            allow_instance_recreate: recreate,
            allow_flush_all: flush,
            max_machine_versions: versions,
            idempotency_ttl_ms: ttl,
            idempotency_max_entries: max,
            // The model counts entries, not bytes: the default budget is far beyond any run.
            ..EngineConfig::default()
        })
}

fn command(op: &Op, model: &Model, generated: &mut u32) -> Option<Command> {
    let name = |n: u8| format!("m{n}");
    let id = |n: u8| format!("i{n}");
    let key = |k: &Option<u8>| k.map(|k| format!("k{k}"));
    let defs = defs();
    Some(match op {
        Op::Put {
            name: n,
            version,
            def,
        } => Command::PutMachine(PutMachine {
            machine: name(*n),
            version: *version,
            definition: def_json(&defs[*def]),
        }),
        Op::Create {
            id: i,
            given,
            name: n,
            version,
            ctx,
            key: k,
        } => {
            *generated += 1;
            let instance_id = if *given {
                InstanceIdChoice::Given(id(*i))
            } else {
                InstanceIdChoice::Generated(format!("g{generated}"))
            };
            Command::CreateInstance(CreateInstance {
                machine: name(*n),
                version: *version,
                instance_id,
                initial_ctx: ctx.clone(),
                idempotency_key: key(k),
            })
        }
        Op::Apply {
            id: i,
            event,
            payload,
            expected_state,
            expected_offset,
            event_id,
            key: k,
        } => {
            let current = model
                .instances
                .get(&id(*i))
                .map_or(FIRST_OFFSET, |m| m.last_wal_offset);
            Command::ApplyEvent(ApplyEvent {
                instance_id: id(*i),
                event: format!("E{}", event + 1),
                payload: payload.clone(),
                expected_state: expected_state.map(|s| ["a", "b", "c"][s as usize].to_owned()),
                expected_wal_offset: match expected_offset {
                    0 => Some(current),
                    1 => Some(current + 1),
                    _ => None,
                },
                event_id: event_id.map(|e| format!("ev{e}")),
                idempotency_key: key(k),
            })
        }
        Op::Delete { id: i, key: k } => Command::DeleteInstance(DeleteInstance {
            instance_id: id(*i),
            idempotency_key: key(k),
        }),
        Op::Flush => Command::FlushAll,
        Op::Checkpoint | Op::Cut | Op::CutStep(_) | Op::Clock(_) | Op::Repeat(_) => return None,
    })
}

fn engine_outcome(h: &mut Harness, cmd: Command, now: i64) -> (Outcome, Option<Executed>) {
    match h.run_at(cmd, now) {
        Ok(executed) => (
            Ok(serde_json::to_value(&executed.result).unwrap()),
            Some(executed),
        ),
        Err(e) => (Err(crate::engine_support::wire(&e)), None),
    }
}

fn compare_reads(h: &Harness, model: &Model, ids: &[String]) {
    for id in ids {
        let engine = h
            .engine
            .get_instance(id)
            .ok()
            .map(|v| serde_json::to_value(v).unwrap());
        assert_eq!(engine, model.view(id), "GET_INSTANCE {id}");
    }
    // Every filter shape (none, machine, machine and state, state) with a cursor and an
    // offset, so the indexed pages and the unfiltered walk both answer like the model.
    let pages = [
        (None, 0),
        (Some("i1"), 0),
        (None, 2),
        (Some("i0"), 1),
        (Some(""), 9),
    ];
    for (machine, state) in [
        (None, None),
        (Some("m0"), None),
        (Some("m1"), None),
        (Some("m1"), Some("b")),
        (None, Some("a")),
        (Some("m2"), None),
    ] {
        let mut expected: Vec<&String> = model
            .instances
            .iter()
            .filter(|(_, i)| {
                i.deleted.is_none()
                    && machine.is_none_or(|m| i.machine == m)
                    && state.is_none_or(|s| i.state == s)
            })
            .map(|(id, _)| id)
            .collect();
        expected.sort();
        for (after, offset) in pages {
            let query = ListInstancesParams {
                machine: machine.map(Into::into),
                state: state.map(Into::into),
                limit: Some(3),
                offset: (offset > 0).then_some(offset),
                after: after.map(Into::into),
            };
            let page = h.engine.list_instances(&query);
            let shown = format!("{machine:?} {state:?} after {after:?} offset {offset}");
            assert_eq!(page.total, expected.len() as u64, "total for {shown}");
            let following: Vec<&String> = expected
                .iter()
                .filter(|id| after.is_none_or(|after| id.as_str() > after))
                .skip(offset as usize)
                .copied()
                .collect();
            let got: Vec<&String> = page.instances.iter().map(|i| &i.id).collect();
            assert_eq!(
                got,
                following.iter().take(3).copied().collect::<Vec<_>>(),
                "page for {shown}"
            );
            assert_eq!(page.has_more, following.len() > 3, "has_more for {shown}");
        }
    }
    let mut versions: Vec<(String, u32)> = model.machines.keys().cloned().collect();
    versions.sort();
    let listed: Vec<(String, u32)> = h
        .engine
        .list_machines()
        .items
        .into_iter()
        .flat_map(|item| {
            item.versions
                .into_iter()
                .map(move |v| (item.machine.clone(), v))
        })
        .collect();
    assert_eq!(listed, versions);
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    #[test]
    fn the_engine_agrees_with_the_model(config in config(), ops in prop::collection::vec(op(), 1..80), undo_k in 0usize..8) {
        let defs = defs();
        let checksums: Vec<String> = defs
            .iter()
            .map(|d| MachineDefinition::from_json(&def_json(d)).unwrap().checksum_hex())
            .collect();
        let mut h = Harness::new(config.clone());
        let mut model = Model::new(config.clone());
        let mut generated = 0;
        let mut sent: Vec<Command> = Vec::new();
        let mut ids: Vec<String> = (0..5).map(|i| format!("i{i}")).collect();
        // Recovery's starting point: the last checkpoint's bytes and how many records it covers.
        let mut base: (Vec<u8>, usize) = (Engine::new(config.clone()).encode_image(), 0);
        // Since the last checkpoint: (state before, executed) for the undo check.
        let mut undoable: Vec<(Vec<u8>, Executed)> = Vec::new();
        let mut cut: Option<Cut> = None;

        for op in prelude().iter().chain(&ops) {
            match op {
                Op::Clock(delta) => { h.now_ms += delta; continue; }
                Op::Cut => {
                    if cut.is_none() {
                        cut = Some(Cut::begin(&mut h.engine));
                    }
                    continue;
                }
                Op::CutStep(max) => {
                    if let Some(walk) = cut.take() {
                        cut = walk.step(&mut h.engine, *max)?;
                    }
                    continue;
                }
                Op::Checkpoint => {
                    // A compaction drops deleted instances after its cut is done.
                    if let Some(walk) = cut.take() {
                        walk.walk_to_the_end(&mut h.engine)?;
                    }
                    h.engine.drop_deleted();
                    model.checkpoint();
                    base = (h.engine.encode_image(), h.records.len());
                    undoable.clear();
                    continue;
                }
                _ => {}
            }
            let cmd = match op {
                Op::Repeat(index) if !sent.is_empty() => sent[index.index(sent.len())].clone(),
                _ => match command(op, &model, &mut generated) {
                    Some(cmd) => cmd,
                    None => continue,
                },
            };
            sent.push(cmd.clone());
            if let Command::CreateInstance(CreateInstance { instance_id: InstanceIdChoice::Generated(g), .. }) = &cmd {
                ids.push(g.clone());
            }
            let offset = h.next_offset;
            let now = h.now_ms;
            let before = h.engine.encode_image();
            let (expected, writes) = model.run(&cmd, now, offset, &defs, &checksums);
            let (actual, executed) = engine_outcome(&mut h, cmd.clone(), now);
            prop_assert_eq!(&actual, &expected, "command {:?}", cmd);
            if let (Some(walk), Some(Command::FlushAll)) = (&mut cut, executed.as_ref().map(|_| &cmd)) {
                walk.flushed = true;
            }
            if let Some(executed) = executed {
                prop_assert_eq!(executed.wal_offset.is_some(), writes);
                if writes {
                    prop_assert_eq!(executed.wal_offset, Some(offset));
                }
                undoable.push((before, executed));
            }
            compare_reads(&h, &model, &ids);
            let counts: u64 = h.engine.state_counts().iter().map(|c| c.count).sum();
            prop_assert_eq!(counts, h.engine.live_instance_count());
        }

        if let Some(walk) = cut.take() {
            walk.walk_to_the_end(&mut h.engine)?;
        }

        // Replay: the last checkpoint plus the records after it.
        let mut replayed = Engine::decode_image(config.clone(), &base.0).unwrap();
        for (record, offset) in &h.records[base.1..] {
            let read = serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap();
            replayed.apply_record(&read, *offset).unwrap();
        }
        prop_assert_eq!(replayed.encode_image(), h.engine.encode_image());
        prop_assert_eq!(replayed.state_counts(), h.engine.state_counts());
        // Filtered lists read the index, which a replay builds on first use rather than
        // record by record: the same pages as the engine that kept it in step.
        for entry in h.engine.state_counts() {
            let query = ListInstancesParams {
                machine: Some(entry.machine.clone()),
                state: Some(entry.state.clone()),
                ..ListInstancesParams::default()
            };
            prop_assert_eq!(
                replayed.list_instances(&query),
                h.engine.list_instances(&query)
            );
        }

        // A snapshot round trip.
        let bytes = h.engine.encode_image();
        let decoded = Engine::decode_image(config, &bytes).unwrap();
        prop_assert_eq!(decoded.encode_image(), bytes);

        // Undo the last k executed commands: the state before the k-th from the end returns.
        let k = undo_k.min(undoable.len());
        let mut target = None;
        for (before, executed) in undoable.into_iter().rev().take(k) {
            h.engine.undo(executed.undo);
            target = Some(before);
        }
        if let Some(target) = target {
            prop_assert_eq!(h.engine.encode_image(), target);
        }
    }
}
