//! The small files of `<data_dir>/raft/` (`docs/cluster.md` section 11): the node's identity,
//! its current vote and the log's state. Each is one JSON value, replaced whole: written to
//! `<name>.tmp` and fsynced, renamed, then the directory fsynced. A crash at any step leaves
//! the old value or the new one, never a mix, and once `save` returns the new value survives a
//! power loss. That is the fsync no `fsync_policy` may skip: a vote forgotten in a crash would
//! let a node vote twice in one term.

use crate::checkpoint::{RealFs, StorageFs, TEMP_SUFFIX, publish_durably, remove_failed_temp};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory inside a data directory.
pub const RAFT_DIR: &str = "raft";
/// A file's size is bounded: none of them holds more than a few ids and addresses.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// One of the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftFile {
    /// `{cluster_id, node_id}`: written once, when the node first joins.
    Identity,
    /// The current Raft vote (term, candidate, committed).
    Vote,
    /// The last purged log id (and the last committed one, a hint).
    State,
}

impl RaftFile {
    pub const ALL: [RaftFile; 3] = [RaftFile::Identity, RaftFile::Vote, RaftFile::State];

    pub fn file_name(self) -> &'static str {
        match self {
            RaftFile::Identity => "identity",
            RaftFile::Vote => "vote",
            RaftFile::State => "state",
        }
    }
}

/// Why a file could not be read or written. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RaftFilesError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is {len} bytes, more than the {MAX_FILE_BYTES}-byte limit of a raft file")]
    TooLarge { path: PathBuf, len: u64 },
    #[error("{path} does not hold a valid value: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The `raft/` directory of one data directory. One writer at a time (the Raft core).
#[derive(Debug, Clone)]
pub struct RaftFiles {
    fs: Arc<dyn StorageFs>,
    dir: PathBuf,
}

impl RaftFiles {
    /// Opens `<data_dir>/raft/` on the real file system, creating it if missing.
    pub fn open(data_dir: &Path) -> Result<Self, RaftFilesError> {
        Self::open_with(Arc::new(RealFs), data_dir)
    }

    /// [`RaftFiles::open`] on `fs`. Removes the temp files a crash during a save left: they
    /// were never renamed, so they hold nothing that was promised.
    pub fn open_with(fs: Arc<dyn StorageFs>, data_dir: &Path) -> Result<Self, RaftFilesError> {
        let dir = data_dir.join(RAFT_DIR);
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| RaftFilesError::Io {
                action,
                path,
                source,
            }
        };
        fs.create_dir_all(&dir).map_err(io("create", &dir))?;
        let names = fs.file_names(&dir).map_err(io("list", &dir))?;
        for name in names.iter().filter(|name| name.ends_with(TEMP_SUFFIX)) {
            let path = dir.join(name);
            fs.remove_file(&path)
                .map_err(io("remove the leftover", &path))?;
        }
        Ok(Self { fs, dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value of `file`, or `None` if it was never saved.
    pub fn load<T: DeserializeOwned>(&self, file: RaftFile) -> Result<Option<T>, RaftFilesError> {
        let path = self.dir.join(file.file_name());
        let (len, mut reader) = match self.fs.open_read(&path) {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RaftFilesError::Io {
                    action: "open",
                    path,
                    source,
                });
            }
        };
        if len > MAX_FILE_BYTES {
            return Err(RaftFilesError::TooLarge { path, len });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        let read = reader
            .by_ref()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes);
        if let Err(source) = read {
            return Err(RaftFilesError::Io {
                action: "read",
                path,
                source,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RaftFilesError::Invalid { path, source })
    }

    /// Replaces `file`'s value; durable when this returns `Ok`.
    pub fn save<T: Serialize>(&self, file: RaftFile, value: &T) -> Result<(), RaftFilesError> {
        let path = self.dir.join(file.file_name());
        let bytes = serde_json::to_vec(value).map_err(|source| RaftFilesError::Invalid {
            path: path.clone(),
            source,
        })?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(RaftFilesError::TooLarge {
                path,
                len: bytes.len() as u64,
            });
        }
        // A temp file left by an earlier failed save of this file would refuse the new one.
        remove_failed_temp(&*self.fs, &self.dir.join(temp_name(file)));
        publish_durably(&*self.fs, &self.dir, file.file_name(), &[&bytes]).map_err(
            |(path, source)| RaftFilesError::Io {
                action: "save",
                path,
                source,
            },
        )
    }
}

fn temp_name(file: RaftFile) -> String {
    format!("{}{TEMP_SUFFIX}", file.file_name())
}
