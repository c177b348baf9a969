//! [`CheckpointStore`]: whole-state checkpoints in `<data_dir>/checkpoints/`
//! (`docs/checkpoint-format.md` §1).

use super::error::{CheckpointError, CheckpointFault};
use super::format::{CheckpointMeta, CheckpointName, HEADER_LEN, Header};
use super::fs::{RealFs, StorageFs, StoreDir, file_names_or_empty, publish_durably};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// The sub-directory of the data directory that holds checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Verifying a payload without loading it reads it in pieces of this size.
const VERIFY_CHUNK_BYTES: usize = 1 << 20;

type Result<T, E = CheckpointError> = std::result::Result<T, E>;

/// A valid checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub file_name: String,
    pub generation: u64,
    pub meta: CheckpointMeta,
    pub payload_len: u64,
    pub payload_crc32c: u32,
}

impl CheckpointInfo {
    pub(super) fn from_header(header: &Header) -> Self {
        Self {
            file_name: header.name.file_name(),
            generation: header.name.generation,
            meta: header.meta(),
            payload_len: header.payload_len,
            payload_crc32c: header.payload_crc32c,
        }
    }

    /// The size of the whole file, header included.
    pub fn file_size_bytes(&self) -> u64 {
        HEADER_LEN as u64 + self.payload_len
    }
}

/// One checkpoint file as [`CheckpointStore::list`] sees it: name and size, and the header if it
/// passes the header checks. The payload CRC is not checked here; see [`CheckpointStore::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointEntry {
    pub name: CheckpointName,
    pub file_size_bytes: u64,
    pub header: Result<CheckpointInfo, CheckpointFault>,
}

/// The checkpoint recovery should start from, with its payload.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    pub info: CheckpointInfo,
    pub payload: Vec<u8>,
}

/// A newer checkpoint file that loading passed over; the caller logs it as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    pub file_name: String,
    pub fault: CheckpointFault,
}

/// The result of [`CheckpointStore::load_newest_valid`].
#[derive(Debug)]
pub struct LoadOutcome {
    /// The newest valid checkpoint, if any file is valid.
    pub loaded: Option<LoadedCheckpoint>,
    /// Files newer than `loaded` that were invalid, newest first.
    pub skipped: Vec<SkippedCheckpoint>,
}

/// Whole-state checkpoints. Writes are serialised inside the store and durable when they return.
#[derive(Debug)]
pub struct CheckpointStore {
    pub(super) files: StoreDir,
    cleaned_temp_files: Vec<String>,
}

impl CheckpointStore {
    /// Opens (creating if needed) `<data_dir>/checkpoints` for reading and writing, on the real
    /// file system. Deletes temp files left by unfinished writes: only the process that owns the
    /// data directory may do this.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_fs(data_dir, Arc::new(RealFs))
    }

    /// Like [`Self::open`], on any [`StorageFs`] (tests inject faults this way).
    pub fn open_with_fs(data_dir: impl AsRef<Path>, fs: Arc<dyn StorageFs>) -> Result<Self> {
        let files = StoreDir::open(data_dir.as_ref(), CHECKPOINT_DIR, fs)
            .map_err(|(path, err)| CheckpointError::io(path)(err))?;
        let mut store = Self::new(files);
        store.clean_temp_files()?;
        Ok(store)
    }

    /// Opens `<data_dir>/checkpoints` for inspection only: creates nothing, deletes nothing (a
    /// running server may be writing a temp file), and refuses `write` and retention. A missing
    /// directory reads as empty.
    pub fn open_read_only(data_dir: impl AsRef<Path>) -> Self {
        Self::new(StoreDir::read_only(data_dir.as_ref(), CHECKPOINT_DIR))
    }

    fn new(files: StoreDir) -> Self {
        Self {
            files,
            cleaned_temp_files: Vec::new(),
        }
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.files.dir
    }

    /// Temp files that [`Self::open`] deleted, for the caller to log.
    pub fn cleaned_temp_files(&self) -> &[String] {
        &self.cleaned_temp_files
    }

    fn clean_temp_files(&mut self) -> Result<()> {
        let names = self
            .files
            .fs
            .file_names(&self.files.dir)
            .map_err(CheckpointError::io(&self.files.dir))?;
        for name in names {
            if CheckpointName::parse_temp(&name).is_some() {
                let path = self.files.dir.join(&name);
                self.files
                    .fs
                    .remove_file(&path)
                    .map_err(CheckpointError::io(path))?;
                self.cleaned_temp_files.push(name);
            }
        }
        if !self.cleaned_temp_files.is_empty() {
            self.files
                .fs
                .sync_dir(&self.files.dir)
                .map_err(CheckpointError::io(&self.files.dir))?;
        }
        Ok(())
    }

    /// Writes a checkpoint; it is durable (file and directory fsynced) when this returns.
    ///
    /// The caller must have made the WAL durable up to `meta.checkpoint_offset` first (§4.19).
    /// A `checkpoint_offset` below the newest existing checkpoint's is refused: offsets only grow.
    /// A payload produced while it is written goes through
    /// [`CheckpointStore::begin_streamed`] instead.
    pub fn write(&self, meta: CheckpointMeta, payload: &[u8]) -> Result<CheckpointInfo> {
        if self.files.read_only {
            return Err(CheckpointError::ReadOnly);
        }
        let _serialised = self.files.lock_writes();
        let name = self.next_name(meta.checkpoint_offset)?;
        let header = Header::for_parts(name, &meta, &[payload]);
        let file_name = name.file_name();
        let encoded = header.encode();
        let parts = [&encoded[..], payload];
        publish_durably(&*self.files.fs, &self.files.dir, &file_name, &parts)
            .map_err(|(path, source)| CheckpointError::Io { path, source })?;
        Ok(CheckpointInfo::from_header(&header))
    }

    /// The name the next checkpoint at `checkpoint_offset` gets. Call it holding the write lock.
    pub(super) fn next_name(&self, checkpoint_offset: u64) -> Result<CheckpointName> {
        let names = self.names()?;
        if let Some(newest) = names.last()
            && checkpoint_offset < newest.checkpoint_offset
        {
            return Err(CheckpointError::OffsetWentBackwards {
                new: checkpoint_offset,
                newest: newest.checkpoint_offset,
                newest_file: newest.file_name(),
            });
        }
        // Greater than every generation on disk, so the name is new and sorts last.
        let max_generation = names.iter().map(|n| n.generation).max().unwrap_or(0);
        let generation = max_generation.checked_add(1).ok_or_else(|| {
            CheckpointError::GenerationExhausted(
                names.last().map(|n| n.file_name()).unwrap_or_default(),
            )
        })?;
        Ok(CheckpointName {
            checkpoint_offset,
            generation,
        })
    }

    /// The newest valid checkpoint and its payload, plus the newer files that were invalid.
    /// Content faults skip a file; I/O errors (other than a short read) are returned.
    pub fn load_newest_valid(&self) -> Result<LoadOutcome> {
        let mut skipped = Vec::new();
        for name in self.names()?.into_iter().rev() {
            match self.read_checked(name, Payload::Load)? {
                Ok((header, payload)) => {
                    let loaded = LoadedCheckpoint {
                        info: CheckpointInfo::from_header(&header),
                        payload,
                    };
                    return Ok(LoadOutcome {
                        loaded: Some(loaded),
                        skipped,
                    });
                }
                Err(fault) => skipped.push(SkippedCheckpoint {
                    file_name: name.file_name(),
                    fault,
                }),
            }
        }
        Ok(LoadOutcome {
            loaded: None,
            skipped,
        })
    }

    /// Every checkpoint file, oldest first, with header-level checks only (64 bytes read per file).
    pub fn list(&self) -> Result<Vec<CheckpointEntry>> {
        let mut entries = Vec::new();
        for name in self.names()? {
            let path = self.files.dir.join(name.file_name());
            let (file_len, mut reader) = match self.files.fs.open_read(&path) {
                Ok(opened) => opened,
                // Removed by a concurrent retention pass since the directory was read.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(CheckpointError::io(&path)(e)),
            };
            let header = read_header(&mut *reader, file_len, name)
                .map_err(CheckpointError::io(&path))?
                .map(|h| CheckpointInfo::from_header(&h));
            entries.push(CheckpointEntry {
                name,
                file_size_bytes: file_len,
                header,
            });
        }
        Ok(entries)
    }

    /// Fully checks one checkpoint file (header and payload CRC), streaming the payload.
    pub fn verify(&self, file_name: &str) -> Result<Result<CheckpointInfo, CheckpointFault>> {
        let name = CheckpointName::parse(file_name)
            .ok_or_else(|| CheckpointError::NotFound(file_name.to_owned()))?;
        let checked = self.read_checked(name, Payload::Verify)?;
        Ok(checked.map(|(header, _)| CheckpointInfo::from_header(&header)))
    }

    /// Removes checkpoint files older than the newest valid one (keeping also the next older
    /// valid one when `keep_previous`). Invalid files newer than the newest valid one are left
    /// for the operator. Returns how many files were removed; removes nothing when no checkpoint
    /// is valid. See `docs/checkpoint-format.md` §1.5.
    pub fn remove_older_than_newest(&self, keep_previous: bool) -> Result<usize> {
        if self.files.read_only {
            return Err(CheckpointError::ReadOnly);
        }
        let _serialised = self.files.lock_writes();
        let names = self.names()?;
        let wanted = if keep_previous { 2 } else { 1 };
        let mut oldest_kept = None;
        let mut kept = 0;
        for (index, name) in names.iter().enumerate().rev() {
            if self.read_checked(*name, Payload::Verify)?.is_ok() {
                oldest_kept = Some(index);
                kept += 1;
                if kept == wanted {
                    break;
                }
            }
        }
        let Some(oldest_kept) = oldest_kept else {
            return Ok(0);
        };
        for name in &names[..oldest_kept] {
            let path = self.files.dir.join(name.file_name());
            self.files
                .fs
                .remove_file(&path)
                .map_err(CheckpointError::io(path))?;
        }
        if oldest_kept > 0 {
            self.files
                .fs
                .sync_dir(&self.files.dir)
                .map_err(CheckpointError::io(&self.files.dir))?;
        }
        Ok(oldest_kept)
    }

    /// The number of checkpoint files (valid or not), as COMPACT's `total_snapshots` counts them.
    pub fn count(&self) -> Result<usize> {
        Ok(self.names()?.len())
    }

    /// Checkpoint names in the directory, oldest first.
    fn names(&self) -> Result<Vec<CheckpointName>> {
        let files = file_names_or_empty(&*self.files.fs, &self.files.dir)
            .map_err(CheckpointError::io(&self.files.dir))?;
        let mut names: Vec<_> = files
            .iter()
            .filter_map(|f| CheckpointName::parse(f))
            .collect();
        names.sort_unstable();
        Ok(names)
    }

    /// Reads and fully checks one file. The outer `Result` is an I/O failure, the inner one a
    /// content fault.
    fn read_checked(
        &self,
        name: CheckpointName,
        mode: Payload,
    ) -> Result<Result<(Header, Vec<u8>), CheckpointFault>> {
        let path = self.files.dir.join(name.file_name());
        let (file_len, mut reader) = self
            .files
            .fs
            .open_read(&path)
            .map_err(CheckpointError::io(&path))?;
        let checked = read_header(&mut *reader, file_len, name)
            .and_then(|header| match header {
                Ok(header) => read_payload(&mut *reader, &header, mode),
                Err(fault) => Ok(Err(fault)),
            })
            .map_err(CheckpointError::io(&path))?;
        Ok(checked)
    }
}

/// What to do with the payload while checking it.
#[derive(Debug, Clone, Copy)]
enum Payload {
    /// Keep it: one allocation of exactly `payload_len` bytes, one read, one CRC pass.
    Load,
    /// Only check its CRC, in bounded memory.
    Verify,
}

fn read_header(
    reader: &mut dyn Read,
    file_len: u64,
    name: CheckpointName,
) -> io::Result<Result<Header, CheckpointFault>> {
    if file_len < HEADER_LEN as u64 {
        return Ok(Err(CheckpointFault::TooShort { file_len }));
    }
    let mut bytes = [0u8; HEADER_LEN];
    match reader.read_exact(&mut bytes) {
        Ok(()) => Ok(Header::decode(&bytes, file_len, name)),
        // The file shrank after its length was taken: as torn as a short file.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Err(CheckpointFault::Truncated {
            payload_len: file_len.saturating_sub(HEADER_LEN as u64),
        })),
        Err(e) => Err(e),
    }
}

/// Reads the payload after a header that passed its checks; its length is therefore exactly what
/// remains of the file, which bounds the allocation.
fn read_payload(
    reader: &mut dyn Read,
    header: &Header,
    mode: Payload,
) -> io::Result<Result<(Header, Vec<u8>), CheckpointFault>> {
    // Only reachable when the file shrinks while it is read: its length was checked before.
    let short_read = || CheckpointFault::Truncated {
        payload_len: header.payload_len,
    };
    let (crc, payload) = match mode {
        Payload::Load => {
            let Ok(len) = usize::try_from(header.payload_len) else {
                return Ok(Err(short_read()));
            };
            let mut payload = vec![0u8; len];
            match reader.read_exact(&mut payload) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Err(short_read())),
                Err(e) => return Err(e),
            }
            (crc32c::crc32c(&payload), payload)
        }
        Payload::Verify => {
            let mut crc = 0u32;
            let mut remaining = header.payload_len;
            let mut chunk = vec![0u8; VERIFY_CHUNK_BYTES];
            while remaining > 0 {
                let want = usize::try_from(remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
                let read = reader.read(&mut chunk[..want])?;
                if read == 0 {
                    return Ok(Err(short_read()));
                }
                crc = crc32c::crc32c_append(crc, &chunk[..read]);
                remaining -= read as u64;
            }
            (crc, Vec::new())
        }
    };
    if crc != header.payload_crc32c {
        return Ok(Err(CheckpointFault::PayloadCrcMismatch {
            stored: header.payload_crc32c,
            computed: crc,
        }));
    }
    Ok(Ok((*header, payload)))
}
