//! The data-directory lock: one process per data dir (`<data>/LOCK`, an exclusive `flock`), or
//! any number of read-only inspectors (a shared `flock`) while no writer holds it.

use super::error::WalError;
use crate::data_files;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// Held for as long as the process uses the data directory; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    /// `None` for a read-only inspector of a directory that has no `LOCK` file (and so has never
    /// had a writer that could still be running).
    _file: Option<File>,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the lock, creating the directory and the `LOCK` file if needed. A second opener
    /// (another server, or `wal-inspect` while a server runs) gets [`WalError::Locked`].
    pub fn acquire(data_dir: &Path) -> Result<Self, WalError> {
        data_files::create_dir_all(data_dir).map_err(WalError::io(format!(
            "create data directory {}",
            data_dir.display()
        )))?;
        let path = data_dir.join("LOCK");
        let file = data_files::open_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| data_files::explain_symlink(&path, err))
            .map_err(WalError::io(format!("open {}", path.display())))?;
        Self::lock(file, &path, data_dir, File::try_lock)
    }

    /// For read-only inspection: opens `LOCK` read-only (creating nothing, so a read-only copy of
    /// a data directory can be inspected) and takes a shared lock, which a running server's
    /// exclusive lock refuses, and which keeps a server from starting meanwhile.
    pub fn acquire_shared(data_dir: &Path) -> Result<Self, WalError> {
        let path = data_dir.join("LOCK");
        let opened = data_files::open_options().read(true).open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    _file: None,
                    dir: data_dir.to_path_buf(),
                });
            }
            Err(err) => {
                return Err(WalError::Io {
                    action: format!("open {}", path.display()),
                    source: data_files::explain_symlink(&path, err),
                });
            }
        };
        Self::lock(file, &path, data_dir, File::try_lock_shared)
    }

    fn lock(
        file: File,
        path: &Path,
        data_dir: &Path,
        try_lock: fn(&File) -> Result<(), TryLockError>,
    ) -> Result<Self, WalError> {
        match try_lock(&file) {
            Ok(()) => Ok(Self {
                _file: Some(file),
                dir: data_dir.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) => Err(WalError::Locked {
                dir: data_dir.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(WalError::Io {
                action: format!("lock {}", path.display()),
                source: e,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused_naming_the_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = DataDirLock::acquire(dir.path()).expect("first lock");
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(&err, WalError::Locked { dir: d } if d == dir.path()));
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn inspectors_share_the_lock_but_not_with_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = DataDirLock::acquire(dir.path()).expect("writer");
        let err = DataDirLock::acquire_shared(dir.path()).unwrap_err();
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
        drop(held);
        let first = DataDirLock::acquire_shared(dir.path()).expect("first inspector");
        let _second = DataDirLock::acquire_shared(dir.path()).expect("second inspector");
        assert!(matches!(
            DataDirLock::acquire(dir.path()),
            Err(WalError::Locked { .. })
        ));
        drop(first);
    }

    #[test]
    fn the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(DataDirLock::acquire(dir.path()).expect("first lock"));
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }
}
