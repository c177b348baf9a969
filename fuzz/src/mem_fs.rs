//! An in-memory [`StorageFs`]: a map from path to bytes. No faults; the fuzzer supplies the
//! damage through the file contents.

use rstmdb::checkpoint::{NewFile, StorageFs};
use std::collections::BTreeMap;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct MemFs {
    files: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
}

impl MemFs {
    /// Puts a file with `bytes` at `path` (replacing any).
    pub fn put(&self, path: PathBuf, bytes: Vec<u8>) {
        self.files().insert(path, bytes);
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Vec<u8>>> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

impl StorageFs for MemFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn file_names(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .files()
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open_read(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let bytes = self
            .files()
            .get(path)
            .cloned()
            .ok_or_else(|| not_found(path))?;
        Ok((bytes.len() as u64, Box::new(Cursor::new(bytes))))
    }

    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        let mut files = self.files();
        if files.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                path.display().to_string(),
            ));
        }
        files.insert(path.to_owned(), parts.concat());
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn NewFile + '_>> {
        self.write_new_synced(path, &[])?;
        Ok(Box::new(MemNewFile {
            fs: self,
            path: path.to_owned(),
        }))
    }

    fn append_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.files()
            .entry(path.to_owned())
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }

    fn truncate_synced(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut files = self.files();
        let file = files.get_mut(path).ok_or_else(|| not_found(path))?;
        file.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files();
        let bytes = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_owned(), bytes);
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files()
            .remove(path)
            .map(drop)
            .ok_or_else(|| not_found(path))
    }
}

/// A file of [`MemFs`] written a piece at a time.
struct MemNewFile<'a> {
    fs: &'a MemFs,
    path: PathBuf,
}

impl NewFile for MemNewFile<'_> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fs.append_synced(&self.path, bytes)
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut files = self.fs.files();
        let file = files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(bytes.len());
        if file.len() < end {
            file.resize(end, 0);
        }
        file[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}
