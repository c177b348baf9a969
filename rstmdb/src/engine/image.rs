//! The whole engine state as bytes, for checkpoints.
//!
//! Layout (all integers little-endian; `str` = u32 byte length + UTF-8 bytes; `opt<T>` = u8 0
//! or 1 then T):
//!
//! ```text
//! magic "RSTMENG1" | i64 last_timestamp_ms
//! u32 names     | per name:     str name | u32 versions | per version: u32 version | str definition (as received, JSON)
//! u64 instances | per instance, ids strictly ascending:
//!     str id | u32 name index | u32 version | str state | opt<u64> deleted_at
//!     | i64 created_at | i64 updated_at | u64 last_wal_offset | opt<str> last_event_id | str ctx
//! u64 tombstones | per tombstone: str id | u64 delete offset
//! u64 keys      | per key, oldest first: u8 scope (0 create, 1 instance) | str key | [str instance id]
//!     | i64 timestamp_ms | u64 wal_offset | u8 kind, then
//!       kind 0 create: str instance_id | str machine | u32 version | str initial_ctx | str initial_state
//!       kind 1 apply:  str event | opt<str> payload | opt<str> expected_state
//!                      | opt<u64> expected_wal_offset | opt<str> event_id | str from | str to | str ctx
//!       kind 2 delete: nothing
//! ```
//!
//! A binary layout rather than JSON lines: decoding 1,000,000 instances is a copy per string
//! and a hash lookup per state name, with no JSON parsing of ctx. Definitions are validated
//! again on decode (there are few). Integrity (a CRC over the bytes) is the checkpoint file's
//! job; decode still refuses anything malformed rather than panic.

use crate::dsl::definition::MachineDefinition;
use crate::engine::counts::StateCounts;
use crate::engine::idempotency::{IdemEntry, IdemKey, IdempotencyTable, Recorded, RecordedApply};
use crate::engine::instance_key::InstanceKey;
use crate::engine::instances::{Instance, Instances};
use crate::engine::machines::{Machines, StoredMachine};
use crate::engine::{Engine, EngineConfig, State};
use serde_json::Value;
use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"RSTMENG1";

/// Why engine image bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("not an engine image (bad magic)")]
    BadMagic,
    #[error("engine image truncated at byte {0}")]
    Truncated(usize),
    #[error("invalid UTF-8 in a string at byte {0}")]
    InvalidUtf8(usize),
    #[error("invalid tag {tag} at byte {at}")]
    InvalidTag { tag: u8, at: usize },
    #[error("machine {machine} version {version}: {reason}")]
    InvalidMachine {
        machine: String,
        version: u32,
        reason: String,
    },
    #[error("instance {instance_id}: {reason}")]
    InvalidInstance { instance_id: String, reason: String },
    #[error("{0} bytes after the end of the engine image")]
    TrailingBytes(usize),
}

impl Engine {
    /// Encodes the whole state (machines, instances and tombstones, idempotency keys, the last
    /// record timestamp). Deterministic: equal states give equal bytes.
    pub fn encode_image(&self) -> Vec<u8> {
        // Counted first, then written into a buffer of exactly that size: growing it by
        // doubling instead copied the image once more and touched up to twice its pages
        // (a quarter of a COMPACT of a million instances went to page faults and copies).
        let mut size = Counter(0);
        encode_state(&mut size, &self.state);
        let mut out = Writer(Vec::with_capacity(size.0));
        encode_state(&mut out, &self.state);
        debug_assert_eq!(out.0.len(), size.0, "the count matches the encoding");
        out.0
    }

    /// Rebuilds an engine from [`Engine::encode_image`] bytes.
    pub fn decode_image(config: EngineConfig, bytes: &[u8]) -> Result<Engine, ImageError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let last_timestamp_ms = r.i64()?;
        let machines = decode_machines(&mut r)?;
        let (by_id, counts) = decode_instances(&mut r, &machines)?;
        let tombstone_count = r.u64()?;
        let mut tombstones = Vec::new();
        for _ in 0..tombstone_count {
            tombstones.push((r.str()?.into(), r.u64()?));
        }
        let key_count = r.u64()?;
        let mut keys = Vec::new();
        for _ in 0..key_count {
            keys.push(decode_key(&mut r)?);
        }
        if r.at != bytes.len() {
            return Err(ImageError::TrailingBytes(bytes.len() - r.at));
        }
        let state = State {
            machines,
            instances: Instances::from_parts(by_id, tombstones.into_iter().collect(), counts),
            idempotency: IdempotencyTable::from_entries(keys, config.idempotency_limits()),
            last_timestamp_ms,
        };
        Ok(Engine { config, state })
    }
}

fn decode_machines(r: &mut Reader<'_>) -> Result<Machines, ImageError> {
    let mut machines = Machines::default();
    let name_count = r.u32()?;
    for _ in 0..name_count {
        let name = r.str()?;
        let version_count = r.u32()?;
        for _ in 0..version_count {
            let version = r.u32()?;
            let invalid = |reason: String| ImageError::InvalidMachine {
                machine: name.to_owned(),
                version,
                reason,
            };
            let received: Value =
                serde_json::from_str(r.str()?).map_err(|e| invalid(e.to_string()))?;
            let definition =
                MachineDefinition::from_json(&received).map_err(|e| invalid(e.to_string()))?;
            let checksum = definition.checksum_hex().into();
            let _ = machines.insert(
                name,
                version,
                StoredMachine {
                    received,
                    definition,
                    checksum,
                },
            );
        }
    }
    Ok(machines)
}

/// Decodes the instances into a vector sized up front (growing a 100 MB vector by doubling
/// costs more than the decode itself), bulk-builds the map from it, and counts the live
/// instances on the way.
fn decode_instances(
    r: &mut Reader<'_>,
    machines: &Machines,
) -> Result<(BTreeMap<InstanceKey, Instance>, StateCounts), ImageError> {
    let count = r.u64()?;
    let mut counts = StateCounts::default();
    let mut previous: Option<&str> = None;
    // Each instance takes at least 40 bytes, so a corrupt count cannot force a huge allocation.
    let capacity = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .min((r.bytes.len() - r.at) / 40);
    let mut decoded = Vec::with_capacity(capacity);
    for _ in 0..count {
        decoded.push({
            let id = r.str()?;
            let invalid = |reason: &str| ImageError::InvalidInstance {
                instance_id: id.to_owned(),
                reason: reason.to_owned(),
            };
            // Strictly ascending ids: the bulk build below relies on it, and it rules out
            // duplicates.
            if previous.is_some_and(|previous| previous >= id) {
                return Err(invalid("ids are not in strictly ascending order"));
            }
            previous = Some(id);
            let machine = r.u32()?;
            let version = r.u32()?;
            let stored = machines
                .get(machine, version)
                .ok_or_else(|| invalid("unknown machine version"))?;
            let state = stored
                .definition
                .state_id(r.str()?)
                .ok_or_else(|| invalid("unknown state"))?;
            let deleted_at = match r.opt(Reader::u64)? {
                None => None,
                Some(offset) => Some(NonZeroU64::new(offset).ok_or_else(|| invalid("offset 0"))?),
            };
            let created_at = r.i64()?;
            let updated_at = r.i64()?;
            let last_wal_offset = r.u64()?;
            let last_event_id = r.opt(Reader::str)?.map(Into::into);
            let ctx = r.str()?;
            if !(ctx.starts_with('{') && ctx.ends_with('}')) {
                return Err(invalid("ctx is not an object"));
            }
            if deleted_at.is_none() {
                counts.add((machine, version, state));
            }
            (
                InstanceKey::new(Arc::from(id)),
                Instance {
                    machine,
                    version,
                    state,
                    deleted_at,
                    created_at,
                    updated_at,
                    last_wal_offset,
                    last_event_id,
                    ctx: ctx.into(),
                },
            )
        });
    }
    // The ids are sorted, so this is a linear bulk build (the sort inside only checks).
    Ok((decoded.into_iter().collect(), counts))
}

/// The image of `state` into `out` (see [`Engine::encode_image`]).
fn encode_state<S: Sink>(out: &mut S, state: &State) {
    encode_head(out, state);
    out.u64(state.instances.len() as u64);
    for (id, instance) in state.instances.iter() {
        encode_instance(out, &state.machines, id, instance);
    }
    encode_tombstones(out, state.instances.tombstones());
    encode_keys(out, state);
}

/// The magic, the last timestamp and the machines: what comes before the instance count.
pub(super) fn encode_head<S: Sink>(out: &mut S, state: &State) {
    out.bytes(MAGIC);
    out.i64(state.last_timestamp_ms);
    let names: Vec<_> = state.machines.names().collect();
    out.u32(names.len() as u32);
    for (id, name) in names {
        out.str(name);
        let versions: Vec<_> = state.machines.versions_of(id).collect();
        out.u32(versions.len() as u32);
        for (version, stored) in versions {
            out.u32(version);
            out.str(&stored.received.to_string());
        }
    }
}

pub(super) fn encode_instance<S: Sink>(
    out: &mut S,
    machines: &Machines,
    id: &str,
    instance: &Instance,
) {
    out.str(id);
    out.u32(instance.machine);
    out.u32(instance.version);
    let state_name = machines
        .get(instance.machine, instance.version)
        .map_or("", |m| m.definition.state_name(instance.state));
    out.str(state_name);
    out.opt(instance.deleted_at.map(NonZeroU64::get), S::u64);
    out.i64(instance.created_at);
    out.i64(instance.updated_at);
    out.u64(instance.last_wal_offset);
    out.opt(instance.last_event_id.as_deref(), S::str);
    out.str(&instance.ctx);
}

/// The tombstones, in id order: what follows the instances.
pub(super) fn encode_tombstones<'a, S: Sink>(
    out: &mut S,
    tombstones: impl ExactSizeIterator<Item = (&'a str, u64)>,
) {
    out.u64(tombstones.len() as u64);
    for (id, offset) in tombstones {
        out.str(id);
        out.u64(offset);
    }
}

/// The idempotency keys, oldest first: the end of the image.
pub(super) fn encode_keys<S: Sink>(out: &mut S, state: &State) {
    out.u64(state.idempotency.len() as u64);
    for (key, entry) in state.idempotency.iter() {
        encode_key(out, key, entry);
    }
}

/// The bytes one idempotency entry takes in the image: what `storage.idempotency_max_bytes`
/// counts (§6.2), so the budget bounds the checkpoint as well as the table.
pub(crate) fn idempotency_entry_len(key: &IdemKey, entry: &IdemEntry) -> usize {
    let mut counter = Counter(0);
    encode_key(&mut counter, key, entry);
    counter.0
}

fn encode_key<S: Sink>(out: &mut S, key: &IdemKey, entry: &IdemEntry) {
    match key {
        IdemKey::Create(key) => {
            out.u8(0);
            out.str(key);
        }
        IdemKey::Instance { instance_id, key } => {
            out.u8(1);
            out.str(key);
            out.str(instance_id);
        }
    }
    out.i64(entry.timestamp_ms);
    out.u64(entry.wal_offset);
    match &entry.recorded {
        Recorded::Create {
            instance_id,
            machine,
            version,
            initial_ctx,
            initial_state,
        } => {
            out.u8(0);
            out.str(instance_id);
            out.str(machine);
            out.u32(*version);
            out.str(initial_ctx);
            out.str(initial_state);
        }
        Recorded::Apply(apply) => {
            out.u8(1);
            out.str(&apply.event);
            out.opt(apply.payload.as_deref(), S::str);
            out.opt(apply.expected_state.as_deref(), S::str);
            out.opt(apply.expected_wal_offset, S::u64);
            out.opt(apply.event_id.as_deref(), S::str);
            out.str(&apply.from_state);
            out.str(&apply.to_state);
            out.str(&apply.ctx);
        }
        Recorded::Delete => out.u8(2),
    }
}

fn decode_key(r: &mut Reader<'_>) -> Result<(IdemKey, IdemEntry), ImageError> {
    let at = r.at;
    let key = match r.u8()? {
        0 => IdemKey::Create(r.str()?.into()),
        1 => {
            let key = r.str()?.into();
            IdemKey::Instance {
                instance_id: r.str()?.into(),
                key,
            }
        }
        tag => return Err(ImageError::InvalidTag { tag, at }),
    };
    let timestamp_ms = r.i64()?;
    let wal_offset = r.u64()?;
    let at = r.at;
    let recorded = match r.u8()? {
        0 => Recorded::Create {
            instance_id: r.str()?.into(),
            machine: r.str()?.into(),
            version: r.u32()?,
            initial_ctx: r.str()?.into(),
            initial_state: r.str()?.into(),
        },
        1 => Recorded::Apply(RecordedApply {
            event: r.str()?.into(),
            payload: r.opt(Reader::str)?.map(Into::into),
            expected_state: r.opt(Reader::str)?.map(Into::into),
            expected_wal_offset: r.opt(Reader::u64)?,
            event_id: r.opt(Reader::str)?.map(Into::into),
            from_state: r.str()?.into(),
            to_state: r.str()?.into(),
            ctx: r.str()?.into(),
        }),
        2 => Recorded::Delete,
        tag => return Err(ImageError::InvalidTag { tag, at }),
    };
    Ok((
        key,
        IdemEntry {
            timestamp_ms,
            wal_offset,
            recorded,
        },
    ))
}

/// Where encoded bytes go: [`Writer`] keeps them, [`Counter`] only counts them (the idempotency
/// table's byte budget is what its entries take in this image, counted without encoding; and
/// the image's size, to allocate its buffer once).
pub(super) trait Sink {
    fn bytes(&mut self, v: &[u8]);
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }
    fn str(&mut self, v: &str) {
        self.u32(v.len() as u32);
        self.bytes(v.as_bytes());
    }
    fn opt<T>(&mut self, v: Option<T>, write: impl FnOnce(&mut Self, T))
    where
        Self: Sized,
    {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                write(self, v);
            }
        }
    }
}

pub(super) struct Writer(pub(super) Vec<u8>);

impl Sink for Writer {
    fn bytes(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
}

struct Counter(usize);

impl Sink for Counter {
    fn bytes(&mut self, v: &[u8]) {
        self.0 += v.len();
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ImageError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(ImageError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ImageError> {
        let at = self.at;
        self.take(N)?
            .try_into()
            .map_err(|_| ImageError::Truncated(at))
    }
    fn u8(&mut self) -> Result<u8, ImageError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, ImageError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ImageError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, ImageError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn str(&mut self) -> Result<&'a str, ImageError> {
        let len = self.u32()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(len)?).map_err(|_| ImageError::InvalidUtf8(at))
    }
    fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, ImageError>,
    ) -> Result<Option<T>, ImageError> {
        let at = self.at;
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(ImageError::InvalidTag { tag, at }),
        }
    }
}
