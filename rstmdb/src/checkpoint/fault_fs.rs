//! [`FaultFs`]: a [`StorageFs`] that simulates a crash at a chosen point of the write protocol,
//! for storage fault tests (docs/architecture.md §7). It works on the real file system and
//! leaves on disk exactly what that crash would leave; every call after the crash fails, as if
//! the process were gone. Tests then reopen the directory with [`super::RealFs`] and check
//! recovery.

use super::fs::{NewFile, RealFs, StorageFs};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where [`FaultFs`] crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// While a new (temp) file is written: only its first `bytes_written` bytes reach the disk.
    MidTempWrite { bytes_written: usize },
    /// After the temp file is complete and fsynced, before it is renamed.
    BeforeRename,
    /// After a rename, before the directory fsync that makes it durable. A power loss may keep
    /// or lose such a rename; `rename_survives` chooses which.
    BeforeDirSync { rename_survives: bool },
    /// While files are removed, after `removals_done` of them are gone.
    DuringRemoval { removals_done: usize },
    /// While bytes are appended to a file: only the first `bytes_written` of them reach the disk.
    MidAppend { bytes_written: usize },
}

#[derive(Debug, Default)]
struct Plan {
    crash_at: Option<CrashPoint>,
    crashed: bool,
    removals_done: usize,
    /// The last rename, so a crash before the directory fsync can undo it.
    last_rename: Option<Rename>,
}

#[derive(Debug)]
struct Rename {
    from: PathBuf,
    to: PathBuf,
    /// What `to` held before, if it existed.
    replaced: Option<Vec<u8>>,
}

/// A fault-injecting file system over the real one.
#[derive(Debug, Default)]
pub struct FaultFs {
    real: RealFs,
    plan: Mutex<Plan>,
}

impl FaultFs {
    /// A file system that behaves like the real one until `point` is reached.
    pub fn crashing_at(point: CrashPoint) -> Self {
        Self {
            real: RealFs,
            plan: Mutex::new(Plan {
                crash_at: Some(point),
                ..Plan::default()
            }),
        }
    }

    /// Whether the simulated crash has happened.
    pub fn has_crashed(&self) -> bool {
        self.plan().crashed
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails if the crash has already happened (a dead process does no more I/O).
    fn alive(&self) -> io::Result<std::sync::MutexGuard<'_, Plan>> {
        let plan = self.plan();
        if plan.crashed {
            return Err(crash_error());
        }
        Ok(plan)
    }
}

fn crash_error() -> io::Error {
    io::Error::other("simulated crash (FaultFs)")
}

fn crash(plan: &mut Plan) -> io::Error {
    plan.crashed = true;
    crash_error()
}

impl StorageFs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let _plan = self.alive()?;
        self.real.create_dir_all(dir)
    }

    fn file_names(&self, dir: &Path) -> io::Result<Vec<String>> {
        let _plan = self.alive()?;
        self.real.file_names(dir)
    }

    fn open_read(&self, path: &Path) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let _plan = self.alive()?;
        self.real.open_read(path)
    }

    fn write_new_synced(&self, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
        let mut plan = self.alive()?;
        if let Some(CrashPoint::MidTempWrite { bytes_written }) = plan.crash_at {
            let prefix: Vec<u8> = parts.concat().into_iter().take(bytes_written).collect();
            self.real.write_new_synced(path, &[&prefix])?;
            return Err(crash(&mut plan));
        }
        self.real.write_new_synced(path, parts)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn NewFile + '_>> {
        let _plan = self.alive()?;
        Ok(Box::new(FaultNewFile {
            fs: self,
            real: self.real.create_new(path)?,
            written: 0,
        }))
    }

    fn append_synced(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut plan = self.alive()?;
        if let Some(CrashPoint::MidAppend { bytes_written }) = plan.crash_at {
            let kept = bytes_written.min(bytes.len());
            self.real.append_synced(path, &bytes[..kept])?;
            return Err(crash(&mut plan));
        }
        self.real.append_synced(path, bytes)
    }

    fn truncate_synced(&self, path: &Path, len: u64) -> io::Result<()> {
        let _plan = self.alive()?;
        self.real.truncate_synced(path, len)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut plan = self.alive()?;
        if plan.crash_at == Some(CrashPoint::BeforeRename) {
            return Err(crash(&mut plan));
        }
        // A rename over a file (the raft files are replaced whole) that is lost brings the
        // replaced file back, as the old directory entry would.
        let replaced = std::fs::read(to).ok();
        self.real.rename(from, to)?;
        plan.last_rename = Some(Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            replaced,
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut plan = self.alive()?;
        // Only the sync that follows a rename is the protocol step this crash point names.
        if let Some(CrashPoint::BeforeDirSync { rename_survives }) = plan.crash_at
            && let Some(rename) = plan.last_rename.take()
        {
            if !rename_survives {
                self.real.rename(&rename.to, &rename.from)?;
                if let Some(bytes) = rename.replaced {
                    std::fs::write(&rename.to, bytes)?;
                }
            }
            return Err(crash(&mut plan));
        }
        self.real.sync_dir(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut plan = self.alive()?;
        if let Some(CrashPoint::DuringRemoval { removals_done }) = plan.crash_at
            && plan.removals_done == removals_done
        {
            return Err(crash(&mut plan));
        }
        self.real.remove_file(path)?;
        plan.removals_done += 1;
        Ok(())
    }
}

/// A file written a piece at a time; [`CrashPoint::MidTempWrite`] counts every byte written to
/// it, appended or written over.
struct FaultNewFile<'a> {
    fs: &'a FaultFs,
    real: Box<dyn NewFile + 'a>,
    written: usize,
}

impl FaultNewFile<'_> {
    /// How many of `len` more bytes may reach the disk, and whether the crash comes with them.
    fn allowance(&self, plan: &Plan, len: usize) -> (usize, bool) {
        match plan.crash_at {
            Some(CrashPoint::MidTempWrite { bytes_written }) => {
                let left = bytes_written.saturating_sub(self.written);
                (left.min(len), left < len)
            }
            _ => (len, false),
        }
    }
}

impl NewFile for FaultNewFile<'_> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut plan = self.fs.alive()?;
        let (allowed, crashes) = self.allowance(&plan, bytes.len());
        self.real.append(&bytes[..allowed])?;
        self.written += allowed;
        if crashes {
            return Err(crash(&mut plan));
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut plan = self.fs.alive()?;
        let (allowed, crashes) = self.allowance(&plan, bytes.len());
        self.real.write_at(offset, &bytes[..allowed])?;
        self.written += allowed;
        if crashes {
            return Err(crash(&mut plan));
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let _plan = self.fs.alive()?;
        self.real.sync()
    }
}
