//! A checkpoint written while its payload is still being produced: COMPACT encodes the image
//! from a cut a step at a time (`engine/cut.rs`), and each step's bytes go to the temp file at
//! once. The image is never held whole in memory, and a step's buffer can be used again for
//! the next step. The file is published as [`CheckpointStore::write`] publishes one:
//! complete, fsynced, then renamed, then the directory fsynced (`docs/checkpoint-format.md`).
//!
//! The payload's first part is known last (the image head ends with the instance count): its
//! place is reserved, written over at the end, and its CRC combined with the rest's. The header
//! goes to byte 0 last of all, so a crash at any point leaves only a temp file, which is never
//! read and is deleted by the next read-write open.

use super::error::CheckpointError;
use super::format::{CheckpointMeta, CheckpointName, HEADER_LEN, Header, TEMP_SUFFIX};
use super::fs::{NewFile, publish_temp, remove_failed_temp};
use super::store::{CheckpointInfo, CheckpointStore};
use std::path::PathBuf;
use std::sync::MutexGuard;

type Result<T> = std::result::Result<T, CheckpointError>;

/// A checkpoint being written; [`CheckpointWriter::finish`] publishes it. Dropped unfinished,
/// it removes its temp file. Holds the store's write lock meanwhile.
pub struct CheckpointWriter<'a> {
    store: &'a CheckpointStore,
    name: CheckpointName,
    temp_path: PathBuf,
    /// `None` once finished.
    file: Option<Box<dyn NewFile + 'a>>,
    first_part_len: usize,
    rest_len: u64,
    rest_crc32c: u32,
    _serialised: MutexGuard<'a, ()>,
}

impl std::fmt::Debug for CheckpointWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("name", &self.name)
            .field("first_part_len", &self.first_part_len)
            .field("rest_len", &self.rest_len)
            .finish_non_exhaustive()
    }
}

impl CheckpointStore {
    /// Starts a checkpoint at `checkpoint_offset` whose payload's first part, given to
    /// [`CheckpointWriter::finish`], is `first_part_len` bytes long; the rest is appended
    /// meanwhile.
    pub fn begin_streamed(
        &self,
        checkpoint_offset: u64,
        first_part_len: usize,
    ) -> Result<CheckpointWriter<'_>> {
        if self.files.read_only {
            return Err(CheckpointError::ReadOnly);
        }
        let serialised = self.files.lock_writes();
        let name = self.next_name(checkpoint_offset)?;
        let temp_path = self
            .files
            .dir
            .join(format!("{}{TEMP_SUFFIX}", name.file_name()));
        let io_error = |source| CheckpointError::Io {
            path: temp_path.clone(),
            source,
        };
        let mut file = self.files.fs.create_new(&temp_path).map_err(io_error)?;
        // The header and the first part, written over by `finish`.
        if let Err(source) = file.append(&vec![0; HEADER_LEN + first_part_len]) {
            drop(file);
            remove_failed_temp(&*self.files.fs, &temp_path);
            return Err(io_error(source));
        }
        Ok(CheckpointWriter {
            store: self,
            name,
            temp_path,
            file: Some(file),
            first_part_len,
            rest_len: 0,
            rest_crc32c: 0,
            _serialised: serialised,
        })
    }
}

impl CheckpointWriter<'_> {
    /// Appends the next part of the payload (after the first).
    pub fn append(&mut self, part: &[u8]) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .expect("a writer is unfinished until finish");
        file.append(part).map_err(|source| CheckpointError::Io {
            path: self.temp_path.clone(),
            source,
        })?;
        self.rest_crc32c = crc32c::crc32c_append(self.rest_crc32c, part);
        self.rest_len += part.len() as u64;
        Ok(())
    }

    /// Writes the first part and the header, fsyncs the file and publishes it.
    ///
    /// # Panics
    ///
    /// If `meta` is for another offset, or `first_part` is not as long as announced: the
    /// caller encoded something other than what it started.
    pub fn finish(mut self, meta: CheckpointMeta, first_part: &[u8]) -> Result<CheckpointInfo> {
        assert_eq!(meta.checkpoint_offset, self.name.checkpoint_offset);
        assert_eq!(first_part.len(), self.first_part_len);
        let payload_crc32c = crc32c::crc32c_combine(
            crc32c::crc32c(first_part),
            self.rest_crc32c,
            self.rest_len as usize,
        );
        let header = Header::new(
            self.name,
            &meta,
            first_part.len() as u64 + self.rest_len,
            payload_crc32c,
        );
        let mut file = self.file.take().expect("finished once");
        let written = file
            .write_at(HEADER_LEN as u64, first_part)
            .and_then(|()| file.write_at(0, &header.encode()))
            .and_then(|()| file.sync());
        drop(file);
        let fs = &*self.store.files.fs;
        if let Err(source) = written {
            remove_failed_temp(fs, &self.temp_path);
            return Err(CheckpointError::Io {
                path: self.temp_path.clone(),
                source,
            });
        }
        publish_temp(
            fs,
            &self.store.files.dir,
            &self.temp_path,
            &self.name.file_name(),
        )
        .map_err(|(path, source)| CheckpointError::Io { path, source })?;
        Ok(CheckpointInfo::from_header(&header))
    }
}

impl Drop for CheckpointWriter<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            remove_failed_temp(&*self.store.files.fs, &self.temp_path);
        }
    }
}
