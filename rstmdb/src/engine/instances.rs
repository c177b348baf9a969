//! Instances by id (byte order), tombstones, and the counts that follow them.
//!
//! Every change goes through [`Instances::replace`], which keeps the counts exact; nothing else
//! touches the map.

use crate::dsl::definition::StateId;
use crate::engine::counts::{CountKey, StateCounts};
use crate::engine::machines::NameId;
use std::collections::BTreeMap;
use std::num::NonZeroU64;

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

    fn count_key(&self) -> CountKey {
        (self.machine, self.version, self.state)
    }
}

/// What an id refers to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'a> {
    Live(&'a Instance),
    /// Deleted, still known: the offset of its delete record (§6.4).
    Deleted(u64),
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Instances {
    /// Live and soft-deleted instances, in id byte order (LIST_INSTANCES pages in this order).
    by_id: BTreeMap<Box<str>, Instance>,
    /// Ids of deleted instances whose state a checkpoint dropped while re-creation was
    /// disabled, with their delete offsets: the id stays reserved (§6.4).
    tombstones: BTreeMap<Box<str>, u64>,
    counts: StateCounts,
}

impl Instances {
    pub fn lookup(&self, id: &str) -> Lookup<'_> {
        match self.by_id.get(id) {
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
        if let Some(instance) = new.as_ref().filter(|i| i.is_live()) {
            self.counts.add(instance.count_key());
        }
        let old = match new {
            Some(instance) => match self.by_id.get_mut(id) {
                Some(slot) => Some(std::mem::replace(slot, instance)),
                None => self.by_id.insert(id.into(), instance),
            },
            None => self.by_id.remove(id),
        };
        if let Some(instance) = old.as_ref().filter(|i| i.is_live()) {
            self.counts.remove(instance.count_key());
        }
        old
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

    /// Drops the instances whose delete record lies below `offset` (a checkpoint's bound).
    pub fn drop_deleted_before(&mut self, keep_tombstones: bool, offset: u64) {
        let tombstones = &mut self.tombstones;
        self.by_id.retain(|id, instance| match instance.deleted_at {
            Some(deleted) if deleted.get() < offset => {
                if keep_tombstones {
                    tombstones.insert(id.clone(), deleted.get());
                }
                false
            }
            _ => true,
        });
    }

    /// Every instance (live and deleted), in id byte order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Instance)> {
        self.by_id.iter().map(|(id, i)| (&**id, i))
    }

    /// Instances whose id is greater than `after` (all when `None`), in id byte order.
    pub fn iter_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> Box<dyn Iterator<Item = (&'a str, &'a Instance)> + 'a> {
        use std::ops::Bound;
        match after {
            None => Box::new(self.iter()),
            Some(after) => Box::new(
                self.by_id
                    .range::<str, _>((Bound::Excluded(after), Bound::Unbounded))
                    .map(|(id, i)| (&**id, i)),
            ),
        }
    }

    pub fn tombstones(&self) -> impl Iterator<Item = (&str, u64)> {
        self.tombstones.iter().map(|(id, o)| (&**id, *o))
    }

    pub fn counts(&self) -> &StateCounts {
        &self.counts
    }

    /// Builds the table from decoded parts (engine image decode); `counts` must match `by_id`.
    pub fn from_parts(
        by_id: BTreeMap<Box<str>, Instance>,
        tombstones: BTreeMap<Box<str>, u64>,
        counts: StateCounts,
    ) -> Instances {
        Instances {
            by_id,
            tombstones,
            counts,
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }
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
