//! The deterministic state: machines, instances and the idempotency table.
//!
//! Pure: no I/O, no clock reads, no randomness, no tokio. The caller passes `now_ms` and any
//! server-generated instance id. One sequencer task owns the [`Engine`] (`&mut self`); WAL
//! replay drives the same code.
//!
//! # API
//!
//! - [`Engine::new`] with an [`EngineConfig`].
//! - [`Engine::execute`]`(&Command, now_ms, assign)`: runs one write op's processing order
//!   (§4.7, §4.10, §4.13, §4.14, §4.23). A command that writes builds its [`Record`] and hands
//!   it to `assign`, which encodes it, reserves its WAL position and returns its offset — or
//!   refuses it (e.g. `record_too_large`), and then nothing changes. The engine then applies
//!   the record and returns the result, the record, its offset and an [`Undo`]. Commands that
//!   write nothing (idempotent replays, `created:false`, repeated deletes) never call `assign`.
//! - [`Engine::undo`]: reverts one executed command, newest first. Atomic BATCH executes its
//!   sub-ops in order (later ones see earlier effects) and undoes them in reverse on a failure;
//!   the sequencer also undoes writes whose WAL append failed.
//! - [`Engine::apply_record`]: replay. It never evaluates guards; the record carries the
//!   outcome. Execution applies its records through the same code, so replaying the records of
//!   a run into a fresh engine gives an identical state (timestamps and keys included).
//! - Reads (`reads.rs`): `get_machine`, `list_machines`, `get_instance`,
//!   `latest_record_offset` (the read durability gate), `state_counts`, `live_instance_count`,
//!   `machine_version_count`, `idempotency_key_count`, `machine_definition`.
//! - LIST_INSTANCES (`listing.rs`): `list_instances` in one go, or [`Engine::list_step`] with a
//!   [`ListWalk`], in chunks between which the caller may release the engine lock;
//!   [`ListLandmarks`] lets a walk start where an earlier one of the same ids stood.
//! - [`Engine::encode_image`] / [`Engine::decode_image`]: the whole state for checkpoints
//!   (the checkpoint's engine image, format in [`image`]); [`Engine::drop_deleted`] before
//!   writing one (§6.4). A per-instance "snapshot" (SNAPSHOT_INSTANCE) is another thing: see
//!   `crate::checkpoint`.
//!
//! Record timestamps never go back (§6.5): a write is stamped `max(now_ms, last timestamp)`.

mod changes;
mod command;
mod config;
mod counts;
mod cut;
mod cut_log;
mod error;
mod execute;
mod idempotency;
pub mod image;
mod index;
mod instance_key;
mod instances;
mod landmarks;
mod listing;
mod machines;
mod reads;
mod record;
mod replay;
mod result;

pub use command::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, InstanceIdChoice, PutMachine,
};
pub use config::EngineConfig;
pub use cut::{CutImage, CutStep};
pub use error::{ApplyError, ExecuteError, ReplayError};
pub use image::ImageError;
pub use landmarks::ListLandmarks;
pub use listing::{ListWalk, MAX_RESTARTS};
pub use record::{
    ApplyEventRecord, CreateInstanceRecord, DeleteInstanceRecord, FlushAllRecord, PutMachineRecord,
    RAFT_ENTRY_KIND, Record,
};
pub use result::{OpResult, RawCtx};

use idempotency::{IdemChange, IdempotencyTable};
use instances::{Instance, Instances};
use machines::{MachineInserted, Machines};

/// Everything that an engine image holds and that FLUSH_ALL erases.
#[derive(Debug, Clone, Default)]
struct State {
    machines: Machines,
    instances: Instances,
    idempotency: IdempotencyTable,
    /// The newest record timestamp; the next record is never stamped lower (§6.5).
    last_timestamp_ms: i64,
}

/// The engine: the state plus the settings that shape commands.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    state: State,
}

/// A command the engine executed.
#[derive(Debug)]
pub struct Executed {
    /// The op result (`applied:false` / `created:false` when nothing was written).
    pub result: OpResult,
    /// The record written, if any (the caller publishes watch events from it).
    pub record: Option<Record>,
    /// The offset `assign` returned: `meta.wal_offset` (§3.4). `None` when nothing was written.
    pub wal_offset: Option<u64>,
    /// Reverts this command; see [`Engine::undo`].
    pub undo: Undo,
}

/// Reverts exactly one executed command. Undo in reverse execution order: an undo assumes the
/// state is the one its command left.
#[must_use = "dropping an Undo makes the command permanent"]
#[derive(Debug)]
pub struct Undo {
    previous_timestamp_ms: i64,
    change: Change,
}

#[derive(Debug)]
enum Change {
    /// The command wrote nothing.
    Nothing,
    Machine {
        inserted: MachineInserted,
        idempotency: IdemChange,
    },
    Instance {
        id: Box<str>,
        previous: Option<Instance>,
        previous_tombstone: Option<u64>,
        idempotency: IdemChange,
    },
    /// FLUSH_ALL: the whole state before it.
    Flush(Box<State>),
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            config,
            state: State::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The newest record timestamp applied (0 for a fresh engine).
    pub fn last_timestamp_ms(&self) -> i64 {
        self.state.last_timestamp_ms
    }

    /// Drops deleted instances before a checkpoint (§6.4): they disappear when re-creation is
    /// allowed; otherwise their ids stay reserved as tombstones.
    pub fn drop_deleted(&mut self) {
        let keep_tombstones = !self.config.allow_instance_recreate;
        self.state.instances.drop_deleted(keep_tombstones);
    }

    /// [`Engine::drop_deleted`] for the instances deleted by a record below `offset`: what a
    /// checkpoint at `offset` dropped, so the live state agrees with a restart from it.
    /// Returns how many instances it dropped. Costs O(dropped × log n).
    pub fn drop_deleted_before(&mut self, offset: u64) -> usize {
        let keep_tombstones = !self.config.allow_instance_recreate;
        self.state
            .instances
            .drop_deleted_before(keep_tombstones, offset)
    }

    /// Builds the LIST_INSTANCES index now rather than on the first filtered list, which would
    /// hold the engine lock (and every writer) while it builds: call it once a replay is done.
    pub fn build_list_index(&self) {
        self.state.instances.index();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_engine_can_sit_behind_a_read_write_lock_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Engine>();
        shareable::<super::Record>();
        shareable::<super::Undo>();
    }
}
