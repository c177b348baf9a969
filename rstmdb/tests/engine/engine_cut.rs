//! A cut (COMPACT's image of one moment, encoded in steps while writes go on): writes ahead of
//! the walk, behind it and taken back (a failed append undoes its group) never show in the
//! image, which is byte for byte what a checkpoint of that moment holds. The random
//! interleavings are in `engine_model.rs`; these are the cases worth naming.

use crate::engine_support::{Harness, apply, create, delete, order_v1, put};
use rstmdb::engine::{Command, CutImage, CutStep, Engine, EngineConfig};

fn harness(config: EngineConfig, instances: usize) -> Harness {
    let mut h = Harness::new(config);
    h.ok(put("order", 1, order_v1()));
    for i in 0..instances {
        h.ok(Command::CreateInstance(create(
            "order",
            1,
            &format!("i{i:03}"),
        )));
    }
    h
}

/// What a checkpoint of the engine as it is now holds.
fn checkpoint_of(engine: &Engine) -> Vec<u8> {
    let mut at_the_cut = engine.clone();
    at_the_cut.drop_deleted();
    at_the_cut.encode_image()
}

fn walk_to_the_end(engine: &mut Engine, mut image: CutImage) -> Vec<u8> {
    loop {
        match engine.cut_step(&mut image, 7) {
            CutStep::More => {}
            CutStep::Done => break,
            CutStep::Cancelled => panic!("no FLUSH_ALL ran"),
        }
    }
    engine.end_cut(&image);
    image.finish()
}

#[test]
fn writes_ahead_of_the_walk_behind_it_and_taken_back_stay_out_of_the_image() {
    let mut h = harness(EngineConfig::default(), 40);
    h.ok(delete("i005"));
    let expected = checkpoint_of(&h.engine);
    let mut image = h.engine.begin_cut();
    assert_eq!(h.engine.cut_step(&mut image, 20), CutStep::More);

    // Behind the walk (i000..i019 are encoded): nothing is saved for them.
    h.ok(Command::ApplyEvent(apply("i003", "PAY")));
    h.ok(delete("i010"));
    assert_eq!(h.engine.cut_saved(), 0);
    // Ahead of it: changed, deleted, created, and changed twice.
    h.ok(Command::ApplyEvent(apply("i030", "PAY")));
    h.ok(delete("i030"));
    h.ok(delete("i031"));
    h.ok(Command::CreateInstance(create("order", 1, "i0305")));
    assert_eq!(h.engine.cut_saved(), 3, "one before-image per id changed");
    // A group whose append failed: executed ahead of the walk, then undone.
    let failed = vec![
        h.run(Command::ApplyEvent(apply("i032", "PAY"))).unwrap(),
        h.run(Command::CreateInstance(create("order", 1, "zzz")))
            .unwrap(),
    ];
    h.undo_all(failed);

    let encoded = walk_to_the_end(&mut h.engine, image);
    assert_eq!(encoded, expected);
    assert_eq!(h.engine.cut_saved(), 0, "the cut ended");
    // The image restores the state of its moment.
    let restored = Engine::decode_image(EngineConfig::default(), &encoded).unwrap();
    assert_eq!(restored.live_instance_count(), 39);
}

#[test]
fn instances_deleted_before_the_cut_become_tombstones_when_ids_stay_reserved() {
    for allow_instance_recreate in [false, true] {
        let config = EngineConfig {
            allow_instance_recreate,
            ..EngineConfig::default()
        };
        let mut h = harness(config.clone(), 10);
        h.ok(delete("i002"));
        h.ok(delete("i007"));
        // Earlier tombstones come along too.
        h.engine.drop_deleted();
        h.ok(delete("i004"));
        let expected = checkpoint_of(&h.engine);
        let image = h.engine.begin_cut();
        // Deleted ahead of the walk after the cut: still live in the image.
        h.ok(delete("i009"));
        let encoded = walk_to_the_end(&mut h.engine, image);
        assert_eq!(
            encoded, expected,
            "recreate allowed: {allow_instance_recreate}"
        );
        let restored = Engine::decode_image(config, &encoded).unwrap();
        assert_eq!(restored.live_instance_count(), 7);
    }
}

#[test]
fn a_flush_all_during_the_walk_cancels_it_and_ends_the_logging() {
    let config = EngineConfig {
        allow_flush_all: true,
        ..EngineConfig::default()
    };
    let mut h = harness(config, 10);
    let mut image = h.engine.begin_cut();
    assert_eq!(h.engine.cut_step(&mut image, 3), CutStep::More);
    h.ok(Command::FlushAll);
    h.ok(put("order", 1, order_v1()));
    h.ok(Command::CreateInstance(create("order", 1, "i009")));
    assert_eq!(h.engine.cut_step(&mut image, 3), CutStep::Cancelled);
    assert_eq!(
        h.engine.cut_saved(),
        0,
        "nothing is saved for a cancelled cut"
    );
    // A new cut starts cleanly afterwards.
    let expected = checkpoint_of(&h.engine);
    let image = h.engine.begin_cut();
    assert_eq!(walk_to_the_end(&mut h.engine, image), expected);
}

#[test]
fn an_empty_engine_and_a_step_larger_than_the_table_finish_at_once() {
    let mut engine = Engine::new(EngineConfig::default());
    let expected = checkpoint_of(&engine);
    let mut image = engine.begin_cut();
    assert_eq!(engine.cut_step(&mut image, 1024), CutStep::Done);
    engine.end_cut(&image);
    assert_eq!(image.finish(), expected);

    let mut h = harness(EngineConfig::default(), 5);
    let expected = checkpoint_of(&h.engine);
    let mut image = h.engine.begin_cut();
    assert_eq!(h.engine.cut_step(&mut image, 1024), CutStep::Done);
    assert_eq!(image.instances(), 5);
    h.engine.end_cut(&image);
    assert_eq!(image.finish(), expected);
}

/// COMPACT writes each step's instances to the checkpoint file between steps and hands the
/// buffer back for a later step: what it writes, first part last, is still the image.
#[test]
fn steps_taken_out_between_steps_with_their_buffers_reused_make_the_same_image() {
    let mut h = harness(EngineConfig::default(), 100);
    h.ok(delete("i042"));
    let expected = checkpoint_of(&h.engine);
    let mut image = h.engine.begin_cut();
    let first_part_len = image.first_part_len();
    let mut written = Vec::new();
    for steps in 0.. {
        image.prepare_step();
        let step = h.engine.cut_step(&mut image, 9);
        // A write between two steps, ahead of the walk at first, later behind it: after the
        // cut either way, so it stays out of the image.
        h.ok(Command::ApplyEvent(apply(
            &format!("i{:03}", 99 - steps),
            "PAY",
        )));
        for chunk in image.take_chunks() {
            written.extend_from_slice(&chunk);
            image.recycle(chunk);
        }
        match step {
            CutStep::More => {}
            CutStep::Done => break,
            CutStep::Cancelled => panic!("no FLUSH_ALL ran"),
        }
    }
    h.engine.end_cut(&image);
    let (first, rest) = image.into_first_and_rest();
    assert_eq!(
        first.len(),
        first_part_len,
        "the first part's length was known at the cut"
    );
    let mut encoded = first;
    encoded.extend_from_slice(&written);
    for part in rest {
        encoded.extend_from_slice(&part);
    }
    assert_eq!(encoded, expected);
}
