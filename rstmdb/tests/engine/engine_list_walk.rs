//! A LIST_INSTANCES walk in chunks (`Engine::list_step`), with the engine changed between the
//! chunks the way the sequencer changes it while the lock is let go, answers exactly what a
//! single-snapshot page (`Engine::list_instances`) gives at its last chunk: the server may then
//! walk a large offset without holding the engine lock for the whole walk (issue 14).

use crate::engine_support::{Harness, apply, create, delete, put};
use proptest::prelude::*;
use rstmdb::engine::{Command, EngineConfig, Executed, ListLandmarks, ListWalk, MAX_RESTARTS};
use rstmdb_client::params::ListInstancesParams;
use serde_json::{Value, json};

/// States a → b → c → a, so events move instances between index keys.
fn cycle(states: [&str; 3]) -> Value {
    let [a, b, c] = states;
    json!({"states": [a, b, c], "initial": a, "transitions": [
        {"from": a, "event": "NEXT", "to": b},
        {"from": b, "event": "NEXT", "to": c},
        {"from": c, "event": "NEXT", "to": a}]})
}

fn harness() -> Harness {
    let mut h = Harness::new(EngineConfig {
        allow_instance_recreate: true,
        allow_flush_all: true,
        ..EngineConfig::default()
    });
    h.ok(put("m", 1, cycle(["a", "b", "c"])));
    // The same state names in another order: a state filter resolves per version.
    h.ok(put("m", 2, cycle(["c", "a", "b"])));
    h.ok(put("n", 1, cycle(["a", "b", "c"])));
    h
}

fn id(n: u8) -> String {
    format!("i{n:02}")
}

/// Creates instances `0..count`, spread over the machines and versions.
fn populate(h: &mut Harness, count: u8) {
    for n in 0..count {
        let (machine, version) = [("m", 1), ("m", 2), ("n", 1)][usize::from(n % 3)];
        h.ok(Command::CreateInstance(create(machine, version, &id(n))));
    }
}

#[derive(Debug, Clone)]
enum Change {
    Create {
        id: u8,
        machine: u8,
    },
    Apply {
        id: u8,
    },
    Delete {
        id: u8,
    },
    /// Drops deleted instances, as a checkpoint does.
    Checkpoint,
    Flush,
    /// Undoes the newest change still undoable, as the sequencer does when a write fails.
    Undo,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        60 => (0u8..48, 0u8..3).prop_map(|(id, machine)| Change::Create { id, machine }),
        40 => (0u8..48).prop_map(|id| Change::Apply { id }),
        30 => (0u8..48).prop_map(|id| Change::Delete { id }),
        10 => Just(Change::Checkpoint),
        10 => Just(Change::Undo),
        // Rare: it empties the engine, and every walk in progress starts over.
        1 => Just(Change::Flush),
    ]
}

fn query() -> impl Strategy<Value = ListInstancesParams> {
    let filters = [
        (None, None),
        (Some("m"), None),
        (Some("n"), None),
        (Some("m"), Some("b")),
        (None, Some("a")),
    ];
    (
        prop::sample::select(filters.to_vec()),
        prop::option::of(prop::sample::select(vec!["i05", "i17", "i30"])),
        0u32..30,
        1u32..5,
    )
        .prop_map(
            |((machine, state), after, offset, limit)| ListInstancesParams {
                machine: machine.map(Into::into),
                state: state.map(Into::into),
                limit: Some(limit),
                offset: Some(offset),
                after: after.map(Into::into),
            },
        )
}

fn run(h: &mut Harness, change: &Change, undoable: &mut Vec<Executed>) {
    let command = match change {
        Change::Create { id: n, machine } => {
            let (machine, version) = [("m", 1), ("m", 2), ("n", 1)][usize::from(*machine)];
            Command::CreateInstance(create(machine, version, &id(*n)))
        }
        Change::Apply { id: n } => Command::ApplyEvent(apply(&id(*n), "NEXT")),
        Change::Delete { id: n } => delete(&id(*n)),
        Change::Flush => Command::FlushAll,
        Change::Checkpoint => {
            h.engine.drop_deleted();
            undoable.clear();
            return;
        }
        Change::Undo => {
            if let Some(executed) = undoable.pop() {
                h.engine.undo(executed.undo);
            }
            return;
        }
    };
    // Refusals (an unknown id, a deleted one) change nothing, like on a server.
    if let Ok(executed) = h.run(command) {
        undoable.push(executed);
    }
}

proptest! {
    #![proptest_config(rstmdb_testkit::proptest_config(256))]

    /// With landmarks, a walk may also start where an earlier walk of the same ids stood,
    /// changes having happened since.
    #[test]
    fn a_walk_in_chunks_answers_like_a_snapshot_at_its_last_chunk(
        queries in prop::collection::vec(query(), 1..8),
        steps in prop::collection::vec((1usize..4, prop::collection::vec(change(), 0..4)), 1..120),
        use_landmarks in any::<bool>(),
    ) {
        let mut h = harness();
        populate(&mut h, 40);
        let mut undoable = Vec::new();
        let mut landmarks = ListLandmarks::default();
        let mut queries = queries.into_iter();
        let start = |query: Option<ListInstancesParams>, landmarks: &ListLandmarks| {
            query.map(|query| if use_landmarks { landmarks.start(query) } else { ListWalk::new(query) })
        };
        let mut current = queries.next();
        let mut walk = start(current.clone(), &landmarks);
        for (budget, changes) in &steps {
            let (Some(query), Some(walking)) = (&current, &mut walk) else {
                break;
            };
            let answer = h.engine.list_step(walking, *budget);
            landmarks.remember(walking);
            if let Some(page) = answer {
                prop_assert_eq!(&page, &h.engine.list_instances(query), "query {:?}", query);
                current = queries.next();
                walk = start(current.clone(), &landmarks);
            }
            for change in changes {
                run(&mut h, change, &mut undoable);
            }
        }
    }
}

fn unfiltered(offset: u32) -> ListInstancesParams {
    ListInstancesParams {
        machine: None,
        state: None,
        limit: Some(3),
        offset: Some(offset),
        after: None,
    }
}

#[test]
fn creates_and_deletes_on_both_sides_of_the_walk_neither_restart_it_nor_shift_the_page() {
    let mut h = harness();
    populate(&mut h, 40);
    let query = unfiltered(20);
    let mut walk = ListWalk::new(query.clone());
    let mut calls = 0;
    let page = loop {
        calls += 1;
        if let Some(page) = h.engine.list_step(&mut walk, 4) {
            break page;
        }
        // Behind the walk's position and ahead of it, a create, a delete and an event.
        let behind = id(calls * 4 - 2);
        h.ok(delete(&behind));
        h.ok(Command::CreateInstance(create(
            "n",
            1,
            &format!("{behind}x"),
        )));
        h.ok(Command::CreateInstance(create(
            "m",
            1,
            &format!("z{calls}"),
        )));
        h.ok(Command::ApplyEvent(apply(&id(39), "NEXT")));
    };
    assert!(calls > 2, "the walk ran in {calls} calls");
    assert_eq!(walk.restarts(), 0);
    assert_eq!(page, h.engine.list_instances(&query));
    assert_eq!(page.instances.len(), 3);
}

#[test]
fn a_walk_whose_missed_changes_are_forgotten_starts_over_and_then_finishes_in_one_call() {
    let mut h = harness();
    populate(&mut h, 40);
    let query = unfiltered(30);
    let mut walk = ListWalk::new(query.clone());
    let mut made = 0u32;
    let mut calls = 0;
    let page = loop {
        calls += 1;
        if let Some(page) = h.engine.list_step(&mut walk, 2) {
            break page;
        }
        // More changes than the engine keeps for walks: the walk cannot correct itself.
        for _ in 0..1100 {
            made += 1;
            h.ok(Command::CreateInstance(create(
                "n",
                1,
                &format!("a{made:06}"),
            )));
        }
    };
    assert_eq!(walk.restarts(), MAX_RESTARTS);
    assert_eq!(calls, MAX_RESTARTS + 1);
    assert_eq!(page, h.engine.list_instances(&query));
    // The new ids sort before every `i..` id, so the page holds some of them.
    assert!(page.instances.iter().all(|i| i.id.starts_with('a')));
}

#[test]
fn the_same_large_offset_asked_again_starts_where_the_last_walk_stood() {
    let mut h = harness();
    populate(&mut h, 40);
    let mut landmarks = ListLandmarks::default();
    let query = unfiltered(30);
    let mut first = landmarks.start(query.clone());
    let mut calls = 0;
    while h.engine.list_step(&mut first, 4).is_none() {
        landmarks.remember(&first);
        calls += 1;
    }
    landmarks.remember(&first);
    assert!(calls >= 7, "the first walk ran in {calls} calls");
    // Changes before and after the position: the landmark is corrected (one id back), not
    // thrown away, so the walk answers in one call of a budget far below the offset.
    h.ok(delete(&id(3)));
    h.ok(delete(&id(5)));
    h.ok(Command::CreateInstance(create("m", 1, "i10x")));
    h.ok(Command::CreateInstance(create("n", 1, "z")));
    let mut again = landmarks.start(query.clone());
    let page = h.engine.list_step(&mut again, 4);
    landmarks.remember(&again);
    assert_eq!(page, Some(h.engine.list_instances(&query)));
    assert_eq!(again.restarts(), 0);
    // A later page of offsets passes only what lies between.
    let next = unfiltered(36);
    let mut later = landmarks.start(next.clone());
    assert_eq!(
        h.engine.list_step(&mut later, 8),
        Some(h.engine.list_instances(&next))
    );
}
