//! Cluster mode (issue 17, `docs/cluster.md`): several servers keep one database with Raft,
//! through openraft. Being built piece by piece; a server does not accept `[cluster]` yet.
//!
//! - [`raft_files`]: the small durable files of `<data_dir>/raft/` (identity, vote, state).

pub mod raft_files;

pub use raft_files::{RaftFile, RaftFiles, RaftFilesError};
