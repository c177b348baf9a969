//! Instances by id (byte order), tombstones, and the counts and index that follow them.
//!
//! Every change goes through [`Instances::replace`], which keeps the counts, the
//! (machine, version, state) index (once something has read it: it is built on first use) and
//! the set of deleted instances exact and logs changes of live keys; nothing else touches the
//! map.

use crate::dsl::definition::StateId;
use crate::engine::changes::{ChangeLog, KeyChange};
use crate::engine::counts::{CountKey, StateCounts};
use crate::engine::cut_log::CutLog;
use crate::engine::index::StateIndex;
use crate::engine::instance_key::{InstanceKey, KeyView, Probe};
use crate::engine::machines::NameId;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;
use std::sync::{Arc, OnceLock};

/// One instance, kept small: about 80 bytes plus its id and ctx text (see the memory bench).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub machine: NameId,
    pub version: u32,
    pub state: StateId,
    /// Set once deleted: the offset of the `delete_instance` record. WAL offsets are never 0
    /// (the first segment is 1, §6.10), so the niche costs nothing.
    pub deleted_at: Option<NonZeroU64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Offset of the latest `create_instance` or `apply_event` record (§6.3).
    pub last_wal_offset: u64,
    pub last_event_id: Option<Box<str>>,
    /// Compact JSON text of an object; parsed only when an event is applied.
    pub ctx: Box<str>,
}

impl Instance {
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    pub fn count_key(&self) -> CountKey {
        (self.machine, self.version, self.state)
    }
}

/// [`Instances::create`] refused: a live instance holds the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdIsLive;

/// What an id refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'a> {
    Live(&'a Instance),
    /// Deleted, still known: the offset of its delete record (§6.4).
    Deleted(u64),
    Unknown,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Instances {
    /// Live and soft-deleted instances, in id byte order (LIST_INSTANCES pages in this order).
    /// The ids are shared with `index`, which would otherwise store each a second time.
    by_id: BTreeMap<InstanceKey, Instance>,
    /// Ids of deleted instances whose state a checkpoint dropped while re-creation was
    /// disabled, with their delete offsets: the id stays reserved (§6.4).
    tombstones: BTreeMap<Box<str>, u64>,
    /// The deleted instances still in `by_id`, by delete offset: a checkpoint drops those below
    /// its bound under the engine's write lock, at a cost in the number dropped rather than a
    /// scan of every instance (a few tens of ms at 1,000,000, every writer waiting).
    deleted: BTreeSet<(u64, Arc<str>)>,
    counts: StateCounts,
    /// Live ids per (machine, version, state), for filtered LIST_INSTANCES pages. Built on
    /// first use, from the map in id order, then kept in step: a replay or a decoded image
    /// never pays a random insert per instance into it (see [`Instances::index`]).
    index: OnceLock<StateIndex>,
    /// The latest changes of live keys, for LIST_INSTANCES walks done in chunks.
    changes: ChangeLog,
    /// The cut a checkpoint is being encoded from, if any (`engine/cut.rs`).
    cut: Option<CutLog>,
}

/// The index and the change log are derived from the rest (or, for the log, not state at all):
/// equal maps make equal tables, whether or not either has built its index yet. A cut in
/// progress is not state either.
impl PartialEq for Instances {
    fn eq(&self, other: &Instances) -> bool {
        self.by_id == other.by_id
            && self.tombstones == other.tombstones
            && self.deleted == other.deleted
            && self.counts == other.counts
    }
}

impl Eq for Instances {}

impl Instances {
    pub fn lookup(&self, id: &str) -> Lookup<'_> {
        match self.by_id.get(Probe::new(id).view()) {
            Some(instance) => match instance.deleted_at {
                None => Lookup::Live(instance),
                Some(offset) => Lookup::Deleted(offset.get()),
            },
            None => self
                .tombstones
                .get(id)
                .map_or(Lookup::Unknown, |offset| Lookup::Deleted(*offset)),
        }
    }

    /// Sets or removes the instance stored under `id`, returning what was there.
    pub fn replace(&mut self, id: &str, new: Option<Instance>) -> Option<Instance> {
        let new_key = new
            .as_ref()
            .filter(|i| i.is_live())
            .map(Instance::count_key);
        let new_deleted_at = new.as_ref().and_then(|i| i.deleted_at);
        let (shared_id, old) = match new {
            Some(instance) => {
                let (shared_id, old) = self.store(id, instance);
                (Some(shared_id), old)
            }
            None => match self.by_id.remove_entry(Probe::new(id).view()) {
                Some((key, old)) => (Some(Arc::clone(key.id())), Some(old)),
                None => (None, None),
            },
        };
        self.account(id, shared_id, old.as_ref(), new_key, new_deleted_at);
        old
    }

    /// Stores a new live instance under `id` unless a live one holds it (then nothing
    /// changes): CREATE_INSTANCE's change in one search of the map, where a lookup and then
    /// [`Instances::replace`] took two. Returns the deleted instance it replaced, if any.
    pub fn create(&mut self, id: &str, instance: Instance) -> Result<Option<Instance>, IdIsLive> {
        debug_assert!(instance.is_live(), "a created instance is live");
        let new_key = Some(instance.count_key());
        let (shared_id, old) = match self.by_id.entry(InstanceKey::new(Arc::from(id))) {
            Entry::Vacant(vacant) => {
                let shared_id = Arc::clone(vacant.key().id());
                vacant.insert(instance);
                (shared_id, None)
            }
            Entry::Occupied(occupied) if occupied.get().is_live() => return Err(IdIsLive),
            Entry::Occupied(mut occupied) => {
                let shared_id = Arc::clone(occupied.key().id());
                (shared_id, Some(occupied.insert(instance)))
            }
        };
        self.account(id, Some(shared_id), old.as_ref(), new_key, None);
        Ok(old)
    }

    /// Brings the counts, the index, the deleted set, a cut in progress and the change log in
    /// step with a change of `id` from `old` to an instance with `new_key` (`None`: not live)
    /// and `new_deleted_at`. `shared_id` is the map's key for `id`, `None` if nothing changed.
    fn account(
        &mut self,
        id: &str,
        shared_id: Option<Arc<str>>,
        old: Option<&Instance>,
        new_key: Option<CountKey>,
        new_deleted_at: Option<NonZeroU64>,
    ) {
        if let Some(key) = new_key {
            self.counts.add(key);
            if let (Some(shared_id), Some(index)) = (&shared_id, self.index.get_mut()) {
                index.insert(key, Arc::clone(shared_id));
            }
        }
        if let Some(id) = &shared_id {
            self.track_deleted(id, old, new_deleted_at);
            if let Some(cut) = &mut self.cut {
                cut.remember(id, old);
            }
        }
        let old_key = old.filter(|i| i.is_live()).map(Instance::count_key);
        if let Some(old_key) = old_key {
            self.counts.remove(old_key);
            // Unless the new instance sits under the same key (then the insert above was the
            // id already there).
            if new_key != Some(old_key)
                && let Some(index) = self.index.get_mut()
            {
                index.remove(old_key, id);
            }
        }
        if old_key != new_key
            && let Some(id) = shared_id
        {
            self.changes.record(KeyChange {
                id,
                old: old_key,
                new: new_key,
            });
        }
    }

    /// Stores `instance` under `id` in one search of the map: at a million ids each search
    /// is a chain of cache misses, which costs more than the key allocated up front and
    /// dropped again when the id is already there (its key stays: the index shares it).
    fn store(&mut self, id: &str, instance: Instance) -> (Arc<str>, Option<Instance>) {
        match self.by_id.entry(InstanceKey::new(Arc::from(id))) {
            Entry::Vacant(vacant) => {
                let shared_id = Arc::clone(vacant.key().id());
                vacant.insert(instance);
                (shared_id, None)
            }
            Entry::Occupied(mut occupied) => {
                let shared_id = Arc::clone(occupied.key().id());
                (shared_id, Some(occupied.insert(instance)))
            }
        }
    }

    /// Keeps `deleted` in step with a replacement under `id`.
    fn track_deleted(
        &mut self,
        id: &Arc<str>,
        old: Option<&Instance>,
        new_deleted_at: Option<NonZeroU64>,
    ) {
        let old_deleted_at = old.and_then(|i| i.deleted_at);
        if old_deleted_at == new_deleted_at {
            return;
        }
        if let Some(offset) = old_deleted_at {
            self.deleted.remove(&(offset.get(), Arc::clone(id)));
        }
        if let Some(offset) = new_deleted_at {
            self.deleted.insert((offset.get(), Arc::clone(id)));
        }
    }

    /// Sets or removes the tombstone of `id`, returning the previous one.
    pub fn replace_tombstone(&mut self, id: &str, offset: Option<u64>) -> Option<u64> {
        match offset {
            Some(offset) => self.tombstones.insert(id.into(), offset),
            None => self.tombstones.remove(id),
        }
    }

    /// Drops deleted instances; keeps their ids as tombstones when asked to (§6.4).
    pub fn drop_deleted(&mut self, keep_tombstones: bool) {
        self.drop_deleted_before(keep_tombstones, u64::MAX);
    }

    /// Drops the instances whose delete record lies below `offset` (a checkpoint's bound);
    /// returns how many. Costs O(dropped × log n), whatever the number of instances.
    pub fn drop_deleted_before(&mut self, keep_tombstones: bool, offset: u64) -> usize {
        // Only a compaction drops, and it does so after its cut ended.
        debug_assert!(self.cut.is_none(), "dropping instances during a cut");
        // "" is the least id: everything from (offset, "") on stays.
        let kept = self.deleted.split_off(&(offset, Arc::from("")));
        let dropped = std::mem::replace(&mut self.deleted, kept);
        let count = dropped.len();
        for (deleted_at, id) in dropped {
            let removed = self.by_id.remove(Probe::new(&id).view());
            debug_assert!(
                removed.is_some_and(|i| i.deleted_at.map(NonZeroU64::get) == Some(deleted_at)),
                "the deleted set names only deleted instances in the map"
            );
            // Deleted instances are not in the index or the counts: only the map changes.
            if keep_tombstones {
                self.tombstones.insert(Box::from(&*id), deleted_at);
            }
        }
        count
    }

    /// Every instance (live and deleted), in id byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Instance)> {
        self.by_id.iter().map(|(key, i)| (&**key.id(), i))
    }

    /// Instances whose id is greater than `after` (all when `None`), in id byte order.
    pub fn iter_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> Box<dyn Iterator<Item = (&'a str, &'a Instance)> + 'a> {
        use std::ops::Bound;
        match after {
            None => Box::new(self.iter()),
            Some(after) => {
                let after = Probe::new(after);
                Box::new(
                    self.by_id
                        .range::<dyn KeyView, _>((Bound::Excluded(after.view()), Bound::Unbounded))
                        .map(|(key, i)| (&**key.id(), i)),
                )
            }
        }
    }

    pub fn tombstones(&self) -> impl ExactSizeIterator<Item = (&str, u64)> {
        self.tombstones.iter().map(|(id, o)| (&**id, *o))
    }

    pub fn counts(&self) -> &StateCounts {
        &self.counts
    }

    /// The index, built now if this is its first use. One pass over the map in id order
    /// (about 0.2 s for a million instances) instead of a random insert per change while
    /// nothing reads it: a replay of a million creates spent a quarter of its time on those.
    pub fn index(&self) -> &StateIndex {
        self.index.get_or_init(|| index_of(&self.by_id))
    }

    pub fn changes(&self) -> &ChangeLog {
        &self.changes
    }

    /// After the whole table was swapped for another (FLUSH_ALL, or its undo): the change log
    /// goes on from `previous`'s position with nothing kept, so walks in progress start over.
    /// A cut in progress ends: its log described the table that was swapped.
    pub fn continue_changes_of(&mut self, previous: &mut Instances) {
        self.changes = std::mem::take(&mut previous.changes);
        self.changes.forget();
        previous.cut = None;
        self.cut = None;
    }

    /// Starts logging before-images for cut `cut_id` (one cut at a time).
    pub fn begin_cut(&mut self, cut_id: u64) {
        debug_assert!(self.cut.is_none(), "a cut is already in progress");
        self.cut = Some(CutLog::new(cut_id));
    }

    /// Stops logging for cut `cut_id` (nothing if another cut, or none, is in progress).
    pub fn end_cut(&mut self, cut_id: u64) {
        if self.cut.as_ref().is_some_and(|cut| cut.cut_id() == cut_id) {
            self.cut = None;
        }
    }

    /// Visits the next `max` instances as they were at cut `cut_id`, in id order (see
    /// [`CutLog::walk`]). `None` when that cut is no longer in progress (FLUSH_ALL ended it);
    /// otherwise whether the walk is done.
    pub fn walk_cut(
        &mut self,
        cut_id: u64,
        max: usize,
        visit: impl FnMut(&str, &Instance),
    ) -> Option<bool> {
        let cut = self.cut.as_mut().filter(|cut| cut.cut_id() == cut_id)?;
        Some(cut.walk(&self.by_id, max, visit))
    }

    /// Before-images the cut in progress keeps (0 without one).
    pub fn cut_saved(&self) -> usize {
        self.cut.as_ref().map_or(0, CutLog::saved)
    }

    /// The instance stored under `id`, live or deleted.
    pub fn get(&self, id: &str) -> Option<&Instance> {
        self.by_id.get(Probe::new(id).view())
    }

    /// Builds the table from decoded parts (engine image decode); `counts` must match `by_id`.
    /// The index is built on first use.
    pub fn from_parts(
        by_id: BTreeMap<InstanceKey, Instance>,
        tombstones: BTreeMap<Box<str>, u64>,
        counts: StateCounts,
    ) -> Instances {
        let deleted = by_id
            .iter()
            .filter_map(|(key, i)| i.deleted_at.map(|at| (at.get(), Arc::clone(key.id()))))
            .collect();
        Instances {
            by_id,
            tombstones,
            deleted,
            counts,
            index: OnceLock::new(),
            changes: ChangeLog::default(),
            cut: None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// The index of the live instances in `by_id`: one pass in id order, so every set is built in
/// order.
fn index_of(by_id: &BTreeMap<InstanceKey, Instance>) -> StateIndex {
    let mut grouped: BTreeMap<CountKey, Vec<Arc<str>>> = BTreeMap::new();
    for (key, instance) in by_id.iter().filter(|(_, i)| i.is_live()) {
        grouped
            .entry(instance.count_key())
            .or_default()
            .push(Arc::clone(key.id()));
    }
    StateIndex::from_sorted(grouped)
}

#[cfg(test)]
mod tests {
    use super::Instance;

    #[test]
    fn an_instance_record_stays_small() {
        // Millions of these live in memory: ids and ctx are separate allocations, everything
        // else fits in 80 bytes (the memory bench measures the whole cost).
        assert!(
            std::mem::size_of::<Instance>() <= 80,
            "{}",
            std::mem::size_of::<Instance>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Instance>>(),
            std::mem::size_of::<Instance>()
        );
    }
}

#[cfg(test)]
mod index_tests {
    use super::{Instance, Instances};
    use crate::engine::counts::CountKey;
    use rstmdb_testkit::rng::Rng;
    use std::collections::BTreeSet;
    use std::num::NonZeroU64;
    use std::sync::Arc;

    fn instance(rng: &mut Rng) -> Instance {
        Instance {
            machine: rng.range(0, 3) as u32,
            version: rng.range(1, 3) as u32,
            state: rng.range(0, 4) as u32,
            deleted_at: (rng.percent(20)).then(|| NonZeroU64::MIN.saturating_add(rng.range(0, 99))),
            created_at: 0,
            updated_at: 0,
            last_wal_offset: 1,
            last_event_id: None,
            ctx: "{}".into(),
        }
    }

    /// What the index must hold: every live instance under its key, found by a full scan.
    fn scanned(instances: &Instances) -> Vec<(CountKey, String)> {
        let mut expected: Vec<(CountKey, String)> = instances
            .iter()
            .filter(|(_, i)| i.is_live())
            .map(|(id, i)| (i.count_key(), id.to_owned()))
            .collect();
        expected.sort();
        expected
    }

    fn indexed(instances: &Instances) -> Vec<(CountKey, String)> {
        let mut got: Vec<(CountKey, String)> = instances
            .index()
            .entries()
            .map(|(key, id)| (key, id.to_owned()))
            .collect();
        got.sort();
        got
    }

    #[test]
    fn the_index_and_the_deleted_set_match_a_full_scan_after_random_changes() {
        let seed = rstmdb_testkit::rng::seed_from_env("RSTMDB_INDEX_SEED");
        let mut rng = Rng::new(seed);
        let mut instances = Instances::default();
        for step in 0..4000 {
            let id = format!("i{}", rng.range(0, 60));
            match rng.range(0, 10) {
                0..=6 => {
                    let new = instance(&mut rng);
                    instances.replace(&id, Some(new));
                }
                7 | 8 => {
                    instances.replace(&id, None);
                }
                _ => {
                    let (keep_tombstones, offset) = (rng.percent(50), rng.range(1, 120));
                    // What a scan of every instance drops (the code before the deleted set).
                    let mut expected_ids: Vec<Arc<str>> = Vec::new();
                    let mut expected_tombstones = instances.tombstones.clone();
                    for (id, instance) in instances.iter() {
                        match instance.deleted_at {
                            Some(at) if at.get() < offset => {
                                if keep_tombstones {
                                    expected_tombstones.insert(Box::from(id), at.get());
                                }
                            }
                            _ => expected_ids.push(Arc::from(id)),
                        }
                    }
                    instances.drop_deleted_before(keep_tombstones, offset);
                    let ids: Vec<Arc<str>> =
                        instances.iter().map(|(id, _)| Arc::from(id)).collect();
                    assert_eq!(ids, expected_ids, "seed {seed} step {step}");
                    assert_eq!(
                        instances.tombstones, expected_tombstones,
                        "seed {seed} step {step}"
                    );
                }
            }
            assert_eq!(
                indexed(&instances),
                scanned(&instances),
                "seed {seed} step {step}"
            );
            let deleted_by_scan: BTreeSet<(u64, Arc<str>)> = instances
                .iter()
                .filter_map(|(id, i)| i.deleted_at.map(|at| (at.get(), Arc::from(id))))
                .collect();
            assert_eq!(
                instances.deleted, deleted_by_scan,
                "seed {seed} step {step}"
            );
        }
        // The image decode builds the index from the map on first use: the same index as the
        // one kept in step change by change.
        let by_id = instances.by_id.clone();
        let rebuilt = Instances::from_parts(
            by_id,
            instances.tombstones.clone(),
            instances.counts().clone(),
        );
        assert_eq!(rebuilt, instances, "seed {seed}");
        assert_eq!(indexed(&rebuilt), indexed(&instances), "seed {seed}");
    }

    #[test]
    fn merged_ids_come_in_byte_order_from_the_cursor_on() {
        let mut rng = Rng::new(7);
        let mut instances = Instances::default();
        for n in 0..300 {
            let mut new = instance(&mut rng);
            new.deleted_at = None;
            instances.replace(&format!("id-{n:03}"), Some(new));
        }
        let keys: Vec<CountKey> = (0..4).map(|state| (1, 1, state)).collect();
        let merged: Vec<&str> = instances.index().ids_after(&keys, Some("id-100")).collect();
        let expected: Vec<&str> = instances
            .iter()
            .filter(|(id, i)| *id > "id-100" && keys.contains(&i.count_key()))
            .map(|(id, _)| id)
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(merged, expected);
    }
}
