//! The idempotency table (§6.2): which requests a key recorded, and their original results.
//!
//! Entries are ordered by the WAL offset of the record that recorded them. Offsets and record
//! timestamps grow together, so the first entry is both the oldest (evicted first when the
//! table is full, by count or by bytes) and the first to expire. Expired entries are ignored by
//! lookups at once and purged when the next record is applied, using that record's timestamp —
//! so execution and replay purge exactly the same entries.

use super::image::idempotency_entry_len;
use std::collections::{BTreeMap, HashMap};

/// A key in its scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum IdemKey {
    /// CREATE_INSTANCE keys are global.
    Create(Box<str>),
    /// APPLY_EVENT and DELETE_INSTANCE share one namespace per instance id.
    Instance {
        instance_id: Box<str>,
        key: Box<str>,
    },
}

/// What a key recorded: the compared fields of the request and the original result.
/// JSON values are held as canonical text (compact, keys sorted), so that comparing text
/// compares structure (§6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    Create {
        instance_id: Box<str>,
        machine: Box<str>,
        version: u32,
        initial_ctx: Box<str>,
        initial_state: Box<str>,
    },
    Apply(RecordedApply),
    /// DELETE_INSTANCE compares only the op; the id is part of the key.
    Delete,
}

/// An APPLY_EVENT as its key recorded it: the request's compared fields (§6.2), then the
/// answer a replay repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordedApply {
    pub event: Box<str>,
    pub payload: Option<Box<str>>,
    pub expected_state: Option<Box<str>>,
    pub expected_wal_offset: Option<u64>,
    pub event_id: Option<Box<str>>,
    pub from_state: Box<str>,
    pub to_state: Box<str>,
    pub ctx: Box<str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdemEntry {
    /// Timestamp of the recording record; the TTL counts from here.
    pub timestamp_ms: i64,
    /// Offset of the recording record (`original_wal_offset`).
    pub wal_offset: u64,
    pub recorded: Recorded,
}

/// What one record did to the table, for undo.
#[derive(Debug, Default)]
pub(crate) struct IdemChange {
    /// Expired, evicted or replaced entries, in removal order.
    removed: Vec<(IdemKey, IdemEntry)>,
    /// The key the record recorded.
    inserted: Option<IdemKey>,
}

/// How many entries the table keeps and how many bytes they may take (§6.2):
/// `storage.idempotency_max_entries` and `storage.idempotency_max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdemLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdempotencyTable {
    entries: HashMap<IdemKey, IdemEntry>,
    by_offset: BTreeMap<u64, IdemKey>,
    /// What the entries take in an engine image (a checkpoint): the byte budget counts this,
    /// so the budget bounds the checkpoint as well as the memory the entries' text takes.
    bytes: usize,
}

impl IdempotencyTable {
    /// The entry of a key, unless it has expired at `now_ms`.
    pub fn lookup(&self, key: &IdemKey, now_ms: i64, ttl_ms: i64) -> Option<&IdemEntry> {
        self.entries
            .get(key)
            .filter(|entry| !is_expired(entry, now_ms, ttl_ms))
    }

    /// Removes the entries that have expired at `now_ms` (§6.2 retention).
    pub fn purge_expired(&mut self, now_ms: i64, ttl_ms: i64, change: &mut IdemChange) {
        while let Some((&offset, key)) = self.by_offset.first_key_value() {
            let expired = self
                .entries
                .get(key)
                .is_none_or(|entry| is_expired(entry, now_ms, ttl_ms));
            if !expired {
                break;
            }
            self.remove_at(offset, change);
        }
    }

    /// Records a key, then evicts the oldest entries until the table is within `limits`. An
    /// entry that alone exceeds them is not kept (and evicts nothing): its key stays unknown,
    /// as an evicted one would be.
    pub fn insert(
        &mut self,
        key: IdemKey,
        entry: IdemEntry,
        limits: IdemLimits,
        change: &mut IdemChange,
    ) {
        if let Some(old) = self.entries.get(&key) {
            // A key whose entry expired may be recorded again (§6.2: it is unknown again).
            let offset = old.wal_offset;
            self.remove_at(offset, change);
        }
        let len = idempotency_entry_len(&key, &entry);
        if limits.max_entries == 0 || len > limits.max_bytes {
            return;
        }
        self.by_offset.insert(entry.wal_offset, key.clone());
        self.entries.insert(key.clone(), entry);
        self.bytes += len;
        change.inserted = Some(key);
        self.evict_beyond(limits, change);
        debug_assert!(
            change
                .inserted
                .as_ref()
                .is_some_and(|key| self.entries.contains_key(key)),
            "the newest entry fits on its own, so eviction stops before it"
        );
    }

    /// Evicts the oldest entries until the table is within `limits`.
    fn evict_beyond(&mut self, limits: IdemLimits, change: &mut IdemChange) {
        while self.entries.len() > limits.max_entries || self.bytes > limits.max_bytes {
            let Some((&offset, _)) = self.by_offset.first_key_value() else {
                break;
            };
            self.remove_at(offset, change);
        }
    }

    fn remove_at(&mut self, offset: u64, change: &mut IdemChange) {
        if let Some(key) = self.by_offset.remove(&offset)
            && let Some(entry) = self.entries.remove(&key)
        {
            self.bytes -= idempotency_entry_len(&key, &entry);
            change.removed.push((key, entry));
        }
    }

    /// Reverts one record's [`IdemChange`].
    pub fn undo(&mut self, change: IdemChange) {
        if let Some(key) = change.inserted
            && let Some(entry) = self.entries.remove(&key)
        {
            self.by_offset.remove(&entry.wal_offset);
            self.bytes -= idempotency_entry_len(&key, &entry);
        }
        for (key, entry) in change.removed.into_iter().rev() {
            self.bytes += idempotency_entry_len(&key, &entry);
            self.by_offset.insert(entry.wal_offset, key.clone());
            self.entries.insert(key, entry);
        }
    }

    /// Entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&IdemKey, &IdemEntry)> {
        self.by_offset
            .values()
            .filter_map(|key| self.entries.get_key_value(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What the entries take in an engine image.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Builds the table from entries (engine image decode), then evicts the oldest beyond
    /// `limits`: a checkpoint written under larger limits is cut to the current ones at once.
    /// Every decode of the same image under the same limits keeps the same entries, so a
    /// restart and a compaction rebuild agree.
    pub fn from_entries(
        entries: Vec<(IdemKey, IdemEntry)>,
        limits: IdemLimits,
    ) -> IdempotencyTable {
        let mut table = IdempotencyTable::default();
        for (key, entry) in entries {
            table.bytes += idempotency_entry_len(&key, &entry);
            table.by_offset.insert(entry.wal_offset, key.clone());
            table.entries.insert(key, entry);
        }
        table.evict_beyond(limits, &mut IdemChange::default());
        table
    }
}

fn is_expired(entry: &IdemEntry, now_ms: i64, ttl_ms: i64) -> bool {
    now_ms >= entry.timestamp_ms.saturating_add(ttl_ms)
}
