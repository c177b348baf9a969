//! The small storage trait the WAL runs on, and its real-file implementation.
//!
//! Everything the WAL does to disk goes through [`Storage`] and [`SegmentFile`], so the
//! fault-injecting [`crate::wal::fault::FaultStorage`] can stand in for the file system in tests.

use crate::data_files;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One open segment file. Methods take `&self` so the appender and the sync thread can share it.
pub trait SegmentFile: Send + Sync + std::fmt::Debug {
    /// Writes all of `buf` at `offset`. On error, a prefix of `buf` may have been written.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates (or extends with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the data written so far (and the file length) survive power loss.
    fn sync_data(&self) -> io::Result<()>;
}

/// A directory of files (the WAL directory).
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates a new empty file; fails if it exists. The directory entry is durable only after
    /// [`Storage::sync_dir`].
    fn create(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>>;
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>>;
    fn remove(&self, name: &str) -> io::Result<()>;
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, removals and renames in the directory durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// Makes the directory's own entry in its parent durable (`wal/` in the data directory):
    /// until then a power loss may take the directory, and every segment in it, away.
    fn sync_parent_dir(&self) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
pub fn read_exact_at(
    file: &dyn SegmentFile,
    mut offset: u64,
    mut buf: &mut [u8],
) -> io::Result<()> {
    while !buf.is_empty() {
        let n = file.read_at(offset, buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
        }
        offset += n as u64;
        buf = &mut buf[n..];
    }
    Ok(())
}

/// Real files under one directory (std::fs). Files are created 0600 and never opened through a
/// symlink (see [`crate::data_files`]).
#[derive(Debug, Clone)]
pub struct DirStorage {
    dir: PathBuf,
    /// Opened for inspection: files are opened read-only and every change is refused, so
    /// `wal-inspect` works on a read-only copy and cannot alter what it inspects.
    read_only: bool,
}

impl DirStorage {
    /// Uses `dir` for reading and writing, creating it (and its parents, 0700) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        data_files::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            read_only: false,
        })
    }

    /// Uses the existing `dir` for reading only: nothing is created, files are opened
    /// `O_RDONLY`, and `create`, `remove`, `rename` and `set_len` fail.
    pub fn open_read_only(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Self {
            dir,
            read_only: true,
        })
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn refuse_if_read_only(&self, what: &str) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error(what));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

fn read_only_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{what}: the WAL directory is open read-only"),
    )
}

#[derive(Debug)]
struct RealFile {
    file: File,
    /// Opened `O_RDONLY`: writes would fail in the kernel anyway; refusing them here gives the
    /// reason instead of EBADF.
    read_only: bool,
}

impl SegmentFile for RealFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error("write"));
        }
        self.file.write_all_at(buf, offset)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.read_only {
            return Err(read_only_error("truncate"));
        }
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.read_only {
            // Nothing was written through this handle.
            return Ok(());
        }
        self.file.sync_data()
    }
}

impl Storage for DirStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        self.refuse_if_read_only(&format!("create {name}"))?;
        let path = self.dir.join(name);
        let file = data_files::open_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|err| data_files::explain_symlink(&path, err))?;
        Ok(Arc::new(RealFile {
            file,
            read_only: false,
        }))
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.dir.join(name);
        let file = data_files::open_options()
            .read(true)
            .write(!self.read_only)
            .open(&path)
            .map_err(|err| data_files::explain_symlink(&path, err))?;
        Ok(Arc::new(RealFile {
            file,
            read_only: self.read_only,
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.refuse_if_read_only(&format!("remove {name}"))?;
        fs::remove_file(self.dir.join(name))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.refuse_if_read_only(&format!("rename {from}"))?;
        fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn sync_dir(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        File::open(&self.dir)?.sync_all()
    }
    fn sync_parent_dir(&self) -> io::Result<()> {
        match self.dir.parent() {
            // The root has no entry to sync; a read-only inspector created nothing.
            _ if self.read_only => Ok(()),
            None => Ok(()),
            // A relative path of one component (`wal`) lives in the working directory.
            Some(parent) if parent.as_os_str().is_empty() => File::open(".")?.sync_all(),
            Some(parent) => File::open(parent)?.sync_all(),
        }
    }
}
