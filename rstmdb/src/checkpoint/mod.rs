//! Whole-state checkpoints (COMPACT, recovery) and per-instance snapshots (SNAPSHOT_INSTANCE).
//! The formats, write protocols and crash behaviour are in `docs/checkpoint-format.md`.
//!
//! - [`CheckpointStore`] (`store.rs`): checkpoint files holding an opaque state payload — this
//!   module never interprets it — plus the metadata recovery needs; writes are durable when they
//!   return; loading picks the newest valid file.
//! - [`SnapshotStore`] (`snapshot.rs`, `snapshot_index.rs`): one JSON file per snapshot plus
//!   `index.jsonl`; recovery never reads them.
//! - [`StorageFs`] (`fs.rs`): every file-system call goes through it; `FaultFs` (feature
//!   `testing`) simulates a crash at any step of the write protocols for storage fault tests.
//!
//! Depends on neither the engine nor the WAL: the caller supplies the payload, the offsets and
//! the clock.

mod error;
#[cfg(any(test, feature = "testing"))]
mod fault_fs;
mod format;
mod fs;
mod snapshot;
mod snapshot_index;
mod store;
mod streamed;

pub use error::{CheckpointError, CheckpointFault, SnapshotError, SnapshotFault};
#[cfg(any(test, feature = "testing"))]
pub use fault_fs::{CrashPoint, FaultFs};
pub use format::{CheckpointMeta, CheckpointName, FORMAT_VERSION, HEADER_LEN, MAGIC};
pub use fs::{NewFile, RealFs, StorageFs};
// The durable replace of a small file, for the cluster's `raft/` files.
pub(crate) use format::TEMP_SUFFIX;
pub(crate) use fs::{publish_durably, remove_failed_temp};
pub use snapshot::{
    InstanceSnapshot, SNAPSHOT_DIR, SnapshotReport, SnapshotRetention, SnapshotStore,
    StoredSnapshot, checksum_hex, validate_snapshot_id,
};
pub use snapshot_index::{INDEX_FILE, SnapshotIndexEntry};
pub use store::{
    CHECKPOINT_DIR, CheckpointEntry, CheckpointInfo, CheckpointStore, LoadOutcome,
    LoadedCheckpoint, SkippedCheckpoint,
};
pub use streamed::CheckpointWriter;

#[cfg(test)]
mod tests {
    /// The server shares the stores between tasks (behind an `Arc`, calling them from blocking
    /// threads), so they must stay `Send + Sync`.
    #[test]
    fn the_stores_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::CheckpointStore>();
        shareable::<super::SnapshotStore>();
        shareable::<super::FaultFs>();
    }
}
