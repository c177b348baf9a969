//! The write-ahead log. The on-disk format and the commit protocol are in `docs/wal-format.md`.
//!
//! Start reading at [`Wal::open`] (recovery, then the writer).
//! - [`storage`]: the small file-system trait and real files; `fault` (feature `testing`): the
//!   crashing in-memory one for storage fault tests.
//! - [`record`]: the record codec; [`segment`]: segment names and offset arithmetic;
//!   [`placement`]: where a record lands (the rotation rule, for the writer and the sequencer).
//! - [`scan`] and [`analyze`]: reading segments and validating a whole WAL (shared by recovery,
//!   `verify` and `repair`); [`recovery`]: the cuts and the start-up sync.
//! - [`writer`] (appends, rotation, failures), [`positions`] (offsets, stats, readers, segment
//!   deletion) and [`sync`] (group commit, the sync thread).
//! - [`reader`]: iterating records from an offset; [`repair`]: cutting a corrupt WAL;
//!   [`truncate`]: cutting the tail of a running WAL (cluster mode).
//! - [`lock`]: one process per data directory.

pub mod analyze;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fault;
pub mod lock;
pub mod placement;
pub mod policy;
pub mod positions;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod repair;
pub mod scan;
pub mod segment;
pub mod stats;
pub mod storage;
pub mod sync;
pub mod truncate;
pub mod writer;

pub use analyze::{CheckpointPosition, ReplayFn};
pub use error::{Corruption, WalError};
pub use lock::DataDirLock;
pub use placement::Placement;
pub use policy::{FsyncPolicy, WalConfig};
pub use reader::{WalReader, WalRecord};
pub use record::{MAX_RECORD_PAYLOAD_BYTES, UnitMarker};
pub use recovery::{Cut, RecoveryReport};
pub use scan::RecordView;
pub use stats::{IoStats, WalStats};
pub use storage::{DirStorage, SegmentFile, Storage};
pub use sync::{SyncBy, WRITEBACK_BYTES};
pub use truncate::CutTail;
pub use writer::{Appended, DeletedSegments, NewRecord, SegmentInfo, Wal};

/// The WAL directory inside a data directory.
pub fn wal_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("wal")
}
