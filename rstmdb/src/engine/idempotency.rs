//! The idempotency table (§6.2): which requests a key recorded, and their original results.
//!
//! Entries are ordered by the WAL offset of the record that recorded them. Offsets and record
//! timestamps grow together, so the first entry is both the oldest (evicted first when the
//! table is full) and the first to expire. Expired entries are ignored by lookups at once and
//! purged when the next record is applied, using that record's timestamp — so execution and
//! replay purge exactly the same entries.

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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdempotencyTable {
    entries: HashMap<IdemKey, IdemEntry>,
    by_offset: BTreeMap<u64, IdemKey>,
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

    /// Records a key, then evicts the oldest entries beyond `max_entries`.
    pub fn insert(
        &mut self,
        key: IdemKey,
        entry: IdemEntry,
        max_entries: usize,
        change: &mut IdemChange,
    ) {
        if let Some(old) = self.entries.get(&key) {
            // A key whose entry expired may be recorded again (§6.2: it is unknown again).
            let offset = old.wal_offset;
            self.remove_at(offset, change);
        }
        self.by_offset.insert(entry.wal_offset, key.clone());
        self.entries.insert(key.clone(), entry);
        change.inserted = Some(key);
        while self.entries.len() > max_entries {
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
            change.removed.push((key, entry));
        }
    }

    /// Reverts one record's [`IdemChange`].
    pub fn undo(&mut self, change: IdemChange) {
        if let Some(key) = change.inserted
            && let Some(entry) = self.entries.remove(&key)
        {
            self.by_offset.remove(&entry.wal_offset);
        }
        for (key, entry) in change.removed.into_iter().rev() {
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

    /// Builds the table from entries (engine image decode).
    pub fn from_entries(entries: Vec<(IdemKey, IdemEntry)>) -> IdempotencyTable {
        let mut table = IdempotencyTable::default();
        for (key, entry) in entries {
            table.by_offset.insert(entry.wal_offset, key.clone());
            table.entries.insert(key, entry);
        }
        table
    }
}

fn is_expired(entry: &IdemEntry, now_ms: i64, ttl_ms: i64) -> bool {
    now_ms >= entry.timestamp_ms.saturating_add(ttl_ms)
}
