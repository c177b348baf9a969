//! The storage seam: every file-system call the checkpoint and snapshot stores make goes through
//! [`StorageFs`], so tests can substitute [`super::FaultFs`] and stop the write protocol at any
//! step (see `docs/checkpoint-format.md` §1.6).

use crate::data_files;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The file operations the stores need, and nothing more.
///
/// Implementations must be usable from several threads; the stores serialise their own writes.
pub trait StorageFs: fmt::Debug + Send + Sync {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the regular files directly inside `dir` (not sorted).
    fn file_names(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Opens `path` for reading; returns its length in bytes and a reader positioned at byte 0.
    fn open_read(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + Send>)>;

    /// Creates `path`, which must not exist, writes `parts` back to back and fsyncs the file.
    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> io::Result<()>;

    /// Creates `path`, which must not exist, to be written a piece at a time: a file whose
    /// content is produced while it is written (a checkpoint encoded from a cut).
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn NewFile + '_>>;

    /// Appends `bytes` to `path` (creating it if missing) and fsyncs the file.
    fn append_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Truncates `path` to `len` bytes and fsyncs it.
    fn truncate_synced(&self, path: &Path, len: u64) -> io::Result<()>;

    /// Atomically renames `from` to `to` inside one directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Fsyncs the directory `dir`, making renames, creations and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
}

/// A file being written a piece at a time ([`StorageFs::create_new`]).
pub trait NewFile: Send {
    /// Writes `bytes` after everything appended so far.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// Writes `bytes` at `offset`, over bytes already appended.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;

    /// Fsyncs the file.
    fn sync(&mut self) -> io::Result<()>;
}

/// The directory a store keeps its files in and how it may touch them: what the checkpoint and
/// the snapshot stores share.
#[derive(Debug)]
pub(super) struct StoreDir {
    pub(super) dir: PathBuf,
    pub(super) fs: Arc<dyn StorageFs>,
    /// Opened for offline inspection: every write is refused.
    pub(super) read_only: bool,
    /// Serialises the store's writes so its checks see a stable directory. It guards no data,
    /// so a poisoned lock is simply taken over.
    write_lock: Mutex<()>,
}

impl StoreDir {
    /// `data_dir/name` for reading and writing: created if needed, with its directory entry
    /// made durable before anything is written inside. On failure, the path of the failing
    /// call comes with the error.
    pub(super) fn open(
        data_dir: &Path,
        name: &str,
        fs: Arc<dyn StorageFs>,
    ) -> Result<StoreDir, (PathBuf, io::Error)> {
        let dir = data_dir.join(name);
        fs.create_dir_all(&dir).map_err(|err| (dir.clone(), err))?;
        fs.sync_dir(data_dir)
            .map_err(|err| (data_dir.to_path_buf(), err))?;
        Ok(StoreDir::new(dir, fs, false))
    }

    /// `data_dir/name` on the real file system, for reading only; nothing is created.
    pub(super) fn read_only(data_dir: &Path, name: &str) -> StoreDir {
        StoreDir::new(data_dir.join(name), Arc::new(RealFs), true)
    }

    fn new(dir: PathBuf, fs: Arc<dyn StorageFs>, read_only: bool) -> StoreDir {
        StoreDir {
            dir,
            fs,
            read_only,
            write_lock: Mutex::new(()),
        }
    }

    /// Held for the length of one write.
    pub(super) fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The real file system (`std::fs`). Directories are created 0700 and files 0600, and no file
/// is opened through a symlink (see [`crate::data_files`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl StorageFs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        data_files::create_dir_all(dir)
    }

    fn file_names(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            // A name that is not UTF-8 cannot be one of ours; skipping it is the same as ignoring
            // any other foreign file.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_read(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let file = open(path, data_files::open_options().read(true))?;
        let len = file.metadata()?.len();
        Ok((len, Box::new(file)))
    }

    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        let mut file = open(
            path,
            data_files::open_options().write(true).create_new(true),
        )?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn NewFile + '_>> {
        let file = open(
            path,
            data_files::open_options().write(true).create_new(true),
        )?;
        Ok(Box::new(RealNewFile(file)))
    }

    fn append_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = open(path, data_files::open_options().append(true).create(true))?;
        file.write_all(bytes)?;
        file.sync_data()
    }

    fn truncate_synced(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = open(path, data_files::open_options().write(true))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// Opens `path` with `options`; a symlink is refused with an error that says so.
fn open(path: &Path, options: &fs::OpenOptions) -> io::Result<File> {
    options
        .open(path)
        .map_err(|err| data_files::explain_symlink(path, err))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing on other platforms; their metadata journaling is
/// what makes a rename durable there.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// The durable write protocol shared by checkpoints and snapshots: write `<file_name>.tmp` in
/// `dir` and fsync it, rename it to `<file_name>`, fsync `dir`. When this returns `Ok` the file
/// and its name survive a power loss; if it fails part-way, a `.tmp` file may be left behind,
/// which is never read and is deleted by the next read-write open.
///
/// On failure, returns the path the failing step worked on.
pub(crate) fn publish_durably(
    fs: &dyn StorageFs,
    dir: &Path,
    file_name: &str,
    parts: &[&[u8]],
) -> Result<(), (std::path::PathBuf, io::Error)> {
    let temp_path = dir.join(format!("{file_name}{}", super::format::TEMP_SUFFIX));
    if let Err(e) = fs.write_new_synced(&temp_path, parts) {
        // A temp file that was already there is not ours to remove.
        if e.kind() != io::ErrorKind::AlreadyExists {
            remove_failed_temp(fs, &temp_path);
        }
        return Err((temp_path, e));
    }
    publish_temp(fs, dir, &temp_path, file_name)
}

/// Publishes a temp file that is complete and fsynced: renames it to `file_name`, then makes
/// the rename durable. [`publish_durably`]'s second half, and the end of a streamed write.
pub(crate) fn publish_temp(
    fs: &dyn StorageFs,
    dir: &Path,
    temp_path: &Path,
    file_name: &str,
) -> Result<(), (PathBuf, io::Error)> {
    let final_path = dir.join(file_name);
    if let Err(e) = fs.rename(temp_path, &final_path) {
        remove_failed_temp(fs, temp_path);
        return Err((final_path, e));
    }
    fs.sync_dir(dir).map_err(|e| (dir.to_path_buf(), e))
}

/// Best effort: a failed write (ENOSPC, say) should not keep its space until the next open.
/// The error that matters is the original one; a temp file that survives this is never read
/// and is deleted by the next read-write open.
pub(crate) fn remove_failed_temp(fs: &dyn StorageFs, temp_path: &Path) {
    let _ = fs.remove_file(temp_path);
}

#[derive(Debug)]
struct RealNewFile(File);

impl NewFile for RealNewFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, bytes, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
}

/// Like [`StorageFs::file_names`], but a directory that does not exist is empty (read-only opens
/// do not create it).
pub(crate) fn file_names_or_empty(fs: &dyn StorageFs, dir: &Path) -> io::Result<Vec<String>> {
    match fs.file_names(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}
