//! The data-directory lock: one process per data dir (`<data>/LOCK`, an exclusive `flock`).

use super::error::WalError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// Held for as long as the process uses the data directory; released on drop.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    dir: PathBuf,
}

impl DataDirLock {
    /// Takes the lock, creating the directory and the `LOCK` file if needed. A second opener
    /// (another server, or `wal-inspect` while a server runs) gets [`WalError::Locked`].
    pub fn acquire(data_dir: &Path) -> Result<Self, WalError> {
        std::fs::create_dir_all(data_dir).map_err(WalError::io(format!(
            "create data directory {}",
            data_dir.display()
        )))?;
        let path = data_dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(WalError::io(format!("open {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
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
    fn the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(DataDirLock::acquire(dir.path()).expect("first lock"));
        assert!(DataDirLock::acquire(dir.path()).is_ok());
    }
}
