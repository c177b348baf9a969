//! A checkpoint image of the state as of one moment — the cut — encoded a step at a time while
//! writes go on (COMPACT; docs/checkpoint-format.md).
//!
//! [`Engine::begin_cut`] encodes the small parts of the state at once (the machines, the
//! tombstones and the idempotency keys: bounded by their own limits) and starts logging
//! before-images in the instance table. Each [`Engine::cut_step`] then encodes the next
//! instances in id order; the caller holds the engine's lock for one step and lets writers in
//! between. The first change, after the cut, of an instance the walk has not reached yet saves
//! the instance's value from before the change (`engine/cut_log.rs`), and the walk takes a
//! saved value over the live one, so every instance is encoded as it was at the cut. Writers
//! pay one map lookup per change while a cut is in progress, and memory for the instances they
//! change ahead of the walk.
//!
//! The image equals, byte for byte, [`Engine::encode_image`] of the state at the cut after
//! [`Engine::drop_deleted`]: what a checkpoint holds (spec §6.4). FLUSH_ALL swaps the whole
//! table and ends a cut in progress: the step answers [`CutStep::Cancelled`].

use super::image::{self, Sink, Writer};
use super::{Engine, State};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Cut ids, unique in the process, so that a walk never continues another cut's log.
static NEXT_CUT_ID: AtomicU64 = AtomicU64::new(1);

/// An image being encoded from a cut.
#[derive(Debug)]
pub struct CutImage {
    cut_id: u64,
    /// What precedes the instance count: the magic, the last timestamp, the machines.
    head: Vec<u8>,
    /// The instances, one buffer per step: a single growing buffer would copy all of them so
    /// far, now and then, while the caller holds the engine's lock.
    chunks: Vec<Vec<u8>>,
    instances: u64,
    /// The size of the last chunk: the next one is allocated at about that size at once.
    last_chunk_len: usize,
    /// The next step's buffer, allocated and touched beforehand ([`CutImage::prepare_step`]).
    next_chunk: Vec<u8>,
    /// A step's buffer given back once written ([`CutImage::recycle`]), for a later step.
    spare_chunk: Option<Vec<u8>>,
    /// The tombstones at the cut, plus the deleted instances the walk drops when ids stay
    /// reserved.
    tombstones: BTreeMap<Box<str>, u64>,
    keep_tombstones: bool,
    /// The idempotency keys at the cut, encoded.
    keys: Vec<u8>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutStep {
    /// Instances are left: step again.
    More,
    /// Every instance is encoded: end the cut and finish the image.
    Done,
    /// FLUSH_ALL ended the cut; the image cannot be finished.
    Cancelled,
}

impl Engine {
    /// Starts a cut of the state as it is now. Costs O(machines + tombstones + idempotency
    /// keys); the instances are encoded by [`Engine::cut_step`]. One cut at a time.
    pub fn begin_cut(&mut self) -> CutImage {
        let cut_id = NEXT_CUT_ID.fetch_add(1, Ordering::Relaxed);
        let mut head = Writer(Vec::new());
        image::encode_head(&mut head, &self.state);
        let mut keys = Writer(Vec::new());
        image::encode_keys(&mut keys, &self.state);
        let tombstones = self
            .state
            .instances
            .tombstones()
            .map(|(id, offset)| (Box::from(id), offset))
            .collect();
        self.state.instances.begin_cut(cut_id);
        CutImage {
            cut_id,
            head: head.0,
            chunks: Vec::new(),
            instances: 0,
            last_chunk_len: 0,
            next_chunk: Vec::new(),
            spare_chunk: None,
            tombstones,
            keep_tombstones: !self.config.allow_instance_recreate,
            keys: keys.0,
        }
    }

    /// Encodes the next `max` instances (at least one) as they were at the cut.
    pub fn cut_step(&mut self, image: &mut CutImage, max: usize) -> CutStep {
        let State {
            machines,
            instances,
            ..
        } = &mut self.state;
        let mut chunk = Writer(std::mem::take(&mut image.next_chunk));
        let (tombstones, count) = (&mut image.tombstones, &mut image.instances);
        let keep_tombstones = image.keep_tombstones;
        let walked = instances.walk_cut(image.cut_id, max.max(1), |id, instance| {
            match instance.deleted_at {
                // A checkpoint drops deleted instances (§6.4), keeping the id when it must
                // stay reserved, as `drop_deleted` does.
                Some(offset) => {
                    if keep_tombstones {
                        tombstones.insert(id.into(), offset.get());
                    }
                }
                None => {
                    image::encode_instance(&mut chunk, machines, id, instance);
                    *count += 1;
                }
            }
        });
        if chunk.0.is_empty() {
            // Every id of the step was deleted: the buffer, touched already, serves a later one.
            image.recycle(chunk.0);
        } else {
            image.last_chunk_len = chunk.0.len();
            image.chunks.push(chunk.0);
        }
        match walked {
            None => CutStep::Cancelled,
            Some(false) => CutStep::More,
            Some(true) => CutStep::Done,
        }
    }

    /// Ends the cut (done or abandoned): writers stop saving before-images for it.
    pub fn end_cut(&mut self, image: &CutImage) {
        self.state.instances.end_cut(image.cut_id);
    }

    /// Before-images the cut in progress keeps: instances changed ahead of the walk.
    pub fn cut_saved(&self) -> usize {
        self.state.instances.cut_saved()
    }
}

impl CutImage {
    /// Allocates the next step's buffer and touches every page of it, so that the step, run
    /// under the engine's lock, copies into memory the kernel has already handed out (zeroing
    /// fresh pages was most of a step's time). Call it before taking the lock.
    pub fn prepare_step(&mut self) {
        // The first step has no size to go by: a guess that later steps correct.
        let size = if self.last_chunk_len == 0 {
            64 << 10
        } else {
            self.last_chunk_len * 9 / 8
        };
        // A buffer given back was touched in full when it was allocated.
        if let Some(mut spare) = self.spare_chunk.take()
            && spare.capacity() >= size
        {
            spare.clear();
            self.next_chunk = spare;
            return;
        }
        // Written, not `vec![0; size]`: a zeroed allocation may come straight from the kernel
        // untouched, and then the step would fault its pages in under the lock after all.
        #[expect(
            clippy::slow_vector_initialization,
            reason = "the writes are the point"
        )]
        let mut chunk = {
            let mut chunk = Vec::with_capacity(size);
            chunk.resize(size, 0);
            chunk
        };
        chunk.clear();
        self.next_chunk = chunk;
    }

    /// Instances encoded so far.
    pub fn instances(&self) -> u64 {
        self.instances
    }

    /// The length of the image's first part (see [`CutImage::into_first_and_rest`]), known
    /// from the start: the head with the instance count.
    pub fn first_part_len(&self) -> usize {
        self.head.len() + std::mem::size_of::<u64>()
    }

    /// The steps' encoded instances so far, in order, taken out of the image: to be written
    /// while the walk goes on. Give each buffer back with [`CutImage::recycle`].
    pub fn take_chunks(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.chunks)
    }

    /// Gives a written step's buffer back, so a later step needs no fresh memory.
    pub fn recycle(&mut self, chunk: Vec<u8>) {
        if self
            .spare_chunk
            .as_ref()
            .is_none_or(|spare| spare.capacity() < chunk.capacity())
        {
            self.spare_chunk = Some(chunk);
        }
    }

    /// The image, once a step answered [`CutStep::Done`]: its first part (the head with the
    /// instance count), and the parts after it (the steps not taken yet, the tombstones and
    /// the keys).
    pub fn into_first_and_rest(self) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut head = Writer(self.head);
        head.u64(self.instances);
        let mut tail = Writer(Vec::new());
        image::encode_tombstones(
            &mut tail,
            self.tombstones.iter().map(|(id, offset)| (&**id, *offset)),
        );
        tail.bytes(&self.keys);
        let mut rest = self.chunks;
        rest.push(tail.0);
        (head.0, rest)
    }

    /// The image as one buffer.
    pub fn finish(self) -> Vec<u8> {
        let (mut image, rest) = self.into_first_and_rest();
        for part in rest {
            image.extend_from_slice(&part);
        }
        image
    }
}
