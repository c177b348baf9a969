//! Live instance ids per (machine, version, state), each set in id byte order: the index
//! LIST_INSTANCES pages a `machine`/`state` filter from. A filtered page, and a page after a
//! cursor, cost O(log n + keys + page) instead of a walk over every instance under the engine
//! lock (issue 14).
//!
//! The ids are the same allocations as the instance map's keys (`Arc<str>`), so the index adds
//! a pointer and its B-tree share per live instance, not a second copy of every id.
//! [`super::instances::Instances::replace`] keeps it in step with the map; nothing else
//! changes it.

use crate::engine::counts::CountKey;
use crate::engine::machines::NameId;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::ops::Bound;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StateIndex {
    /// Only keys with at least one live instance, so that equality means equal contents.
    by_key: BTreeMap<CountKey, BTreeSet<Arc<str>>>,
}

impl StateIndex {
    /// From ids grouped by key, each group in byte order (a bulk build: full B-tree nodes).
    pub fn from_sorted(grouped: BTreeMap<CountKey, Vec<Arc<str>>>) -> StateIndex {
        StateIndex {
            by_key: grouped
                .into_iter()
                .map(|(key, ids)| (key, ids.into_iter().collect()))
                .collect(),
        }
    }

    pub fn insert(&mut self, key: CountKey, id: Arc<str>) {
        self.by_key.entry(key).or_default().insert(id);
    }

    pub fn remove(&mut self, key: CountKey, id: &str) {
        if let Some(ids) = self.by_key.get_mut(&key) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_key.remove(&key);
            }
        }
    }

    /// The keys of `machine` that have live instances.
    pub fn keys_of(&self, machine: NameId) -> impl Iterator<Item = CountKey> + '_ {
        self.by_key
            .range((machine, 0, 0)..=(machine, u32::MAX, u32::MAX))
            .map(|(key, _)| *key)
    }

    /// The live ids under any of `keys` that are greater than `after` (all when `None`), in
    /// byte order. An id is under one key only, so merging the sets never repeats one.
    pub fn ids_after<'a>(&'a self, keys: &[CountKey], after: Option<&str>) -> MergedIds<'a> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut sources: Vec<_> = keys
            .iter()
            .filter_map(|key| self.by_key.get(key))
            .map(|ids| ids.range::<str, _>((lower, Bound::Unbounded)))
            .collect();
        let mut heads = BinaryHeap::with_capacity(sources.len());
        for (source, ids) in sources.iter_mut().enumerate() {
            if let Some(id) = ids.next() {
                heads.push(Reverse((&**id, source)));
            }
        }
        MergedIds { sources, heads }
    }

    /// Every (key, id) pair, for the tests that compare the index with a full scan.
    #[cfg(test)]
    pub fn entries(&self) -> impl Iterator<Item = (CountKey, &str)> {
        self.by_key
            .iter()
            .flat_map(|(key, ids)| ids.iter().map(move |id| (*key, &**id)))
    }
}

/// A k-way merge of sorted, disjoint id sets: O(log k) per id.
pub(crate) struct MergedIds<'a> {
    sources: Vec<std::collections::btree_set::Range<'a, Arc<str>>>,
    /// The smallest not yet returned id of each source that has one.
    heads: BinaryHeap<Reverse<(&'a str, usize)>>,
}

impl<'a> Iterator for MergedIds<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let Reverse((id, source)) = self.heads.pop()?;
        if let Some(next) = self.sources[source].next() {
            self.heads.push(Reverse((&**next, source)));
        }
        Some(id)
    }
}
