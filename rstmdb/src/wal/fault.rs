//! An in-memory [`Storage`] that can crash: for fault tests (docs/architecture.md §7, layer 3).
//!
//! Each file keeps the image that the last `sync_data` made durable plus the list of writes
//! since then. [`FaultStorage::crash`] builds the disk a reboot would find: the durable image,
//! a chosen number of the unsynced operations, and optionally a torn prefix of the next write.
//! [`FaultStorage::crash_keeping_pages`] models a disk that writes pages back in any order: any
//! subset of the pages the unsynced writes touched reaches the disk, the others keep their
//! durable contents (zeros past the durable length).
//! Files whose directory entry was never synced vanish, and so does the whole directory while its
//! own entry in its parent was never synced (see [`FaultStorage::fresh_directory`]). Writes can be
//! made to fail after a byte budget (like ENOSPC), syncs can be made to fail or to take time, and
//! the next few creates, removes or renames can be made to fail.

use super::storage::{SegmentFile, Storage};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The unit in which [`FaultStorage::crash_keeping_pages`] keeps or loses unsynced data: a
/// page of the page cache.
pub const PAGE_BYTES: u64 = 4096;

/// How much of the unsynced work survives a crash, for every file.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrashPlan {
    /// Unsynced operations (writes, truncations) that reach the disk whole, oldest first.
    pub kept_ops: usize,
    /// Bytes of the next unsynced write that reach the disk (a torn write).
    pub torn_bytes: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl Op {
    fn apply(&self, image: &mut Vec<u8>, limit: usize) {
        match self {
            Op::Write { offset, bytes } => {
                let part = &bytes[..limit.min(bytes.len())];
                let start = *offset as usize;
                let end = start + part.len();
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(part);
            }
            Op::SetLen(len) => image.resize(*len as usize, 0),
        }
    }
}

#[derive(Debug, Default)]
struct FileState {
    durable: Vec<u8>,
    current: Vec<u8>,
    unsynced: Vec<Op>,
}

#[derive(Debug, Default)]
struct Faults {
    fail_syncs: AtomicBool,
    /// `u64::MAX` means unlimited.
    write_budget: AtomicU64,
    sync_delay_us: AtomicU64,
    syncs: AtomicU64,
    /// How many of the next `create`, `remove` and `rename` calls fail.
    failing_creates: AtomicU64,
    failing_removes: AtomicU64,
    failing_renames: AtomicU64,
    removes_held: RemoveHold,
}

/// While held, every `remove` waits (a slow file system, frozen at the test's command).
#[derive(Debug, Default)]
struct RemoveHold {
    state: Mutex<HoldState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct HoldState {
    held: bool,
    /// Removes waiting right now.
    waiting: usize,
}

impl RemoveHold {
    /// Waits while held.
    fn pass(&self) {
        let mut state = lock(&self.state);
        state.waiting += 1;
        self.changed.notify_all();
        while state.held {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.waiting -= 1;
    }

    fn set(&self, held: bool) {
        lock(&self.state).held = held;
        self.changed.notify_all();
    }

    fn wait_for_waiter(&self, timeout: Duration) -> bool {
        let state = lock(&self.state);
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |state| state.waiting == 0)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.waiting > 0
    }
}

/// Takes one failure off `counter`: true while injected failures remain.
fn take_failure(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("{what} failed (injected)"))
}

#[derive(Debug)]
struct MemFile {
    state: Mutex<FileState>,
    faults: Arc<Faults>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this thread's result.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SegmentFile for MemFile {
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let budget = self.faults.write_budget.load(Ordering::SeqCst);
        let allowed = (budget.min(buf.len() as u64)) as usize;
        if budget != u64::MAX {
            self.faults
                .write_budget
                .store(budget - allowed as u64, Ordering::SeqCst);
        }
        let op = Op::Write {
            offset,
            bytes: buf[..allowed].to_vec(),
        };
        let mut st = lock(&self.state);
        op.apply(&mut st.current, usize::MAX);
        st.unsynced.push(op);
        if allowed < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left (injected)",
            ));
        }
        Ok(())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let st = lock(&self.state);
        let start = (offset as usize).min(st.current.len());
        let n = buf.len().min(st.current.len() - start);
        buf[..n].copy_from_slice(&st.current[start..start + n]);
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.state).current.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let op = Op::SetLen(len);
        let mut st = lock(&self.state);
        op.apply(&mut st.current, usize::MAX);
        st.unsynced.push(op);
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let delay = self.faults.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::other("fdatasync failed (injected)"));
        }
        let mut st = lock(&self.state);
        st.durable = st.current.clone();
        st.unsynced.clear();
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn page_range(page: u64, len: usize) -> std::ops::Range<usize> {
    let start = (page * PAGE_BYTES) as usize;
    start.min(len)..(start + PAGE_BYTES as usize).min(len)
}

/// Pages whose bytes differ between the durable and the current image (a byte past the end of
/// one image counts as different).
fn changed_pages(durable: &[u8], current: &[u8]) -> Vec<u64> {
    let pages = durable
        .len()
        .max(current.len())
        .div_ceil(PAGE_BYTES as usize) as u64;
    (0..pages)
        .filter(|&page| {
            durable.get(page_range(page, durable.len()))
                != current.get(page_range(page, current.len()))
        })
        .collect()
}

/// The durable image with the kept changed pages of the current one laid over it. A page lost
/// past the durable length reads as zeros when a later page was kept (a hole); the file ends at
/// the durable length or after the last kept page, whichever is later, and never past the
/// current length. An unsynced truncation is kept (the writer syncs every truncation at once).
fn page_subset_image(durable: &[u8], current: &[u8], keep: &dyn Fn(u64) -> bool) -> Vec<u8> {
    if current.len() < durable.len() {
        return current.to_vec();
    }
    let kept: Vec<u64> = changed_pages(durable, current)
        .into_iter()
        .filter(|&page| keep(page))
        .collect();
    let len = kept
        .iter()
        .map(|&page| page_range(page, current.len()).end)
        .fold(durable.len(), usize::max);
    let mut image = durable.to_vec();
    image.resize(len, 0);
    for page in kept {
        let range = page_range(page, current.len());
        image[range.clone()].copy_from_slice(&current[range]);
    }
    image
}

#[derive(Debug, Default)]
struct Dir {
    files: BTreeMap<String, Arc<MemFile>>,
    /// Names whose directory entry is durable.
    durable_names: BTreeSet<String>,
    /// The directory's own entry in its parent is not durable yet: a crash loses everything.
    entry_unsynced: bool,
}

/// The fault-injecting in-memory storage. Clones share the same "disk".
#[derive(Debug, Clone)]
pub struct FaultStorage {
    dir: Arc<Mutex<Dir>>,
    faults: Arc<Faults>,
}

impl Default for FaultStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultStorage {
    pub fn new() -> Self {
        let faults = Faults {
            write_budget: AtomicU64::new(u64::MAX),
            ..Faults::default()
        };
        Self {
            dir: Arc::default(),
            faults: Arc::new(faults),
        }
    }

    /// A directory just created (like `wal/` in a new data directory) whose own entry in its
    /// parent is not durable until [`Storage::sync_parent_dir`]: a crash before that finds the
    /// directory empty, whatever was synced inside it.
    pub fn fresh_directory() -> Self {
        let storage = Self::new();
        lock(&storage.dir).entry_unsynced = true;
        storage
    }

    /// The disk after a power loss: see [`CrashPlan`]. Fault settings are reset.
    pub fn crash(&self, plan: CrashPlan) -> FaultStorage {
        self.crash_with(&|_, st| {
            let mut image = st.durable.clone();
            for op in st.unsynced.iter().take(plan.kept_ops) {
                op.apply(&mut image, usize::MAX);
            }
            if let Some(op @ Op::Write { .. }) = st.unsynced.get(plan.kept_ops) {
                op.apply(&mut image, plan.torn_bytes);
            }
            image
        })
    }

    /// The disk after a power loss on a disk that writes pages back in any order: of the pages
    /// (of [`PAGE_BYTES`]) whose contents differ from the durable image, those for which
    /// `keep(file, page index)` is true hold their current contents, the others their durable
    /// contents (zeros past the durable length). The file is as long as its durable image, or
    /// longer where a kept page lies past it. Fault settings are reset.
    pub fn crash_keeping_pages(&self, keep: &dyn Fn(&str, u64) -> bool) -> FaultStorage {
        self.crash_with(&|name, st| {
            page_subset_image(&st.durable, &st.current, &|page| keep(name, page))
        })
    }

    fn crash_with(&self, image_of: &dyn Fn(&str, &FileState) -> Vec<u8>) -> FaultStorage {
        let dir = lock(&self.dir);
        let after = FaultStorage::new();
        let mut new_dir = lock(&after.dir);
        if dir.entry_unsynced {
            // The directory itself vanished; the next open creates it again, empty.
            new_dir.entry_unsynced = true;
            drop(new_dir);
            return after;
        }
        for (name, file) in &dir.files {
            if !dir.durable_names.contains(name) {
                continue;
            }
            let image = image_of(name, &lock(&file.state));
            let state = FileState {
                durable: image.clone(),
                current: image,
                unsynced: Vec::new(),
            };
            let file = MemFile {
                state: Mutex::new(state),
                faults: Arc::clone(&after.faults),
            };
            new_dir.files.insert(name.clone(), Arc::new(file));
            new_dir.durable_names.insert(name.clone());
        }
        drop(new_dir);
        after
    }

    /// Per file, the indices of the pages whose contents differ from the durable image: the
    /// choices [`FaultStorage::crash_keeping_pages`] has.
    pub fn unsynced_pages(&self) -> BTreeMap<String, Vec<u64>> {
        let dir = lock(&self.dir);
        dir.files
            .iter()
            .map(|(n, f)| {
                let st = lock(&f.state);
                (n.clone(), changed_pages(&st.durable, &st.current))
            })
            .collect()
    }

    /// Unsynced operations per file, to choose a [`CrashPlan`].
    pub fn unsynced_ops(&self) -> BTreeMap<String, usize> {
        let dir = lock(&self.dir);
        dir.files
            .iter()
            .map(|(n, f)| (n.clone(), lock(&f.state).unsynced.len()))
            .collect()
    }

    /// Bytes of `name` made durable by the last sync (0 when the file does not exist).
    pub fn durable_len(&self, name: &str) -> u64 {
        let dir = lock(&self.dir);
        dir.files
            .get(name)
            .map_or(0, |f| lock(&f.state).durable.len() as u64)
    }

    /// The current contents of a file, or `None`.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let dir = lock(&self.dir);
        dir.files.get(name).map(|f| lock(&f.state).current.clone())
    }

    /// Replaces a file's contents as if written and synced (for corrupting a log in tests).
    pub fn put_synced(&self, name: &str, bytes: Vec<u8>) {
        let mut dir = lock(&self.dir);
        let state = FileState {
            durable: bytes.clone(),
            current: bytes,
            unsynced: Vec::new(),
        };
        let file = MemFile {
            state: Mutex::new(state),
            faults: Arc::clone(&self.faults),
        };
        dir.files.insert(name.to_owned(), Arc::new(file));
        dir.durable_names.insert(name.to_owned());
    }

    /// Writes fail once `bytes` more bytes have been written (`None`: unlimited).
    pub fn set_write_budget(&self, bytes: Option<u64>) {
        self.faults
            .write_budget
            .store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    pub fn set_fail_syncs(&self, fail: bool) {
        self.faults.fail_syncs.store(fail, Ordering::SeqCst);
    }

    /// Makes every `sync_data` sleep first, like a slow disk.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.faults
            .sync_delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// The next `count` calls of `create` fail (like ENOSPC or EMFILE), creating nothing.
    pub fn fail_next_creates(&self, count: u64) {
        self.faults.failing_creates.store(count, Ordering::SeqCst);
    }

    /// The next `count` calls of `remove` fail, removing nothing.
    pub fn fail_next_removes(&self, count: u64) {
        self.faults.failing_removes.store(count, Ordering::SeqCst);
    }

    /// Makes every `remove` wait until [`FaultStorage::release_removes`].
    pub fn hold_removes(&self) {
        self.faults.removes_held.set(true);
    }

    pub fn release_removes(&self) {
        self.faults.removes_held.set(false);
    }

    /// Waits up to `timeout` for a `remove` to be waiting on the hold; true if one is.
    pub fn wait_for_held_remove(&self, timeout: Duration) -> bool {
        self.faults.removes_held.wait_for_waiter(timeout)
    }

    /// The next `count` calls of `rename` fail, renaming nothing.
    pub fn fail_next_renames(&self, count: u64) {
        self.faults.failing_renames.store(count, Ordering::SeqCst);
    }

    /// Successful `sync_data` calls so far.
    pub fn syncs(&self) -> u64 {
        self.faults.syncs.load(Ordering::SeqCst)
    }
}

impl Storage for FaultStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(lock(&self.dir).files.keys().cloned().collect())
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        if take_failure(&self.faults.failing_creates) {
            return Err(injected(&format!("create {name}")));
        }
        let mut dir = lock(&self.dir);
        if dir.files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_owned(),
            ));
        }
        let file = Arc::new(MemFile {
            state: Mutex::new(FileState::default()),
            faults: Arc::clone(&self.faults),
        });
        dir.files.insert(name.to_owned(), Arc::clone(&file));
        Ok(file)
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn SegmentFile>> {
        let dir = lock(&self.dir);
        match dir.files.get(name) {
            Some(f) => Ok(Arc::clone(f) as Arc<dyn SegmentFile>),
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        }
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.faults.removes_held.pass();
        if take_failure(&self.faults.failing_removes) {
            return Err(injected(&format!("remove {name}")));
        }
        let mut dir = lock(&self.dir);
        dir.durable_names.remove(name);
        match dir.files.remove(name) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
        }
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        if take_failure(&self.faults.failing_renames) {
            return Err(injected(&format!("rename {from}")));
        }
        let mut dir = lock(&self.dir);
        let file = dir
            .files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_owned()))?;
        dir.durable_names.remove(from);
        dir.files.insert(to.to_owned(), file);
        Ok(())
    }
    fn sync_dir(&self) -> io::Result<()> {
        let mut dir = lock(&self.dir);
        let names: Vec<String> = dir.files.keys().cloned().collect();
        dir.durable_names = names.into_iter().collect();
        Ok(())
    }
    fn sync_parent_dir(&self) -> io::Result<()> {
        lock(&self.dir).entry_unsynced = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(storage: &FaultStorage, name: &str) -> Arc<dyn SegmentFile> {
        let file = storage.create(name).expect("create");
        storage.sync_dir().expect("sync dir");
        file
    }

    #[test]
    fn a_crash_drops_every_unsynced_byte() {
        let storage = FaultStorage::new();
        let file = file_with(&storage, "a");
        file.write_at(0, b"synced").expect("write");
        file.sync_data().expect("sync");
        file.write_at(6, b" lost").expect("write");
        let after = storage.crash(CrashPlan::default());
        assert_eq!(after.contents("a").expect("file"), b"synced");
    }

    #[test]
    fn a_crash_can_tear_the_next_unsynced_write() {
        let storage = FaultStorage::new();
        let file = file_with(&storage, "a");
        file.write_at(0, b"one").expect("write");
        file.write_at(3, b"two").expect("write");
        let after = storage.crash(CrashPlan {
            kept_ops: 1,
            torn_bytes: 2,
        });
        assert_eq!(after.contents("a").expect("file"), b"onetw");
    }

    #[test]
    fn a_file_whose_directory_entry_was_never_synced_vanishes() {
        let storage = FaultStorage::new();
        let file = storage.create("new").expect("create");
        file.write_at(0, b"data").expect("write");
        file.sync_data().expect("sync");
        assert!(
            storage
                .crash(CrashPlan::default())
                .contents("new")
                .is_none()
        );
    }

    #[test]
    fn a_fresh_directory_vanishes_whole_until_its_own_entry_is_synced() {
        let storage = FaultStorage::fresh_directory();
        let file = file_with(&storage, "a");
        file.write_at(0, b"data").expect("write");
        file.sync_data().expect("sync");
        let lost = storage.crash(CrashPlan::default());
        assert!(lost.list().expect("list").is_empty());
        storage.sync_parent_dir().expect("sync parent");
        let kept = storage.crash(CrashPlan::default());
        assert_eq!(kept.contents("a").expect("file"), b"data");
    }

    #[test]
    fn injected_create_remove_and_rename_failures_change_nothing() {
        let storage = FaultStorage::new();
        file_with(&storage, "a");
        storage.fail_next_creates(1);
        storage.fail_next_removes(1);
        storage.fail_next_renames(1);
        assert!(storage.create("b").is_err());
        assert!(storage.remove("a").is_err());
        assert!(storage.rename("a", "c").is_err());
        assert_eq!(storage.list().expect("list"), vec!["a".to_owned()]);
        storage.create("b").expect("only one create fails");
        storage.rename("b", "c").expect("only one rename fails");
        storage.remove("a").expect("only one remove fails");
        assert_eq!(storage.list().expect("list"), vec!["c".to_owned()]);
    }

    #[test]
    fn a_crash_can_keep_a_later_unsynced_page_and_lose_an_earlier_one() {
        let storage = FaultStorage::new();
        let file = file_with(&storage, "a");
        file.write_at(0, b"synced").expect("write");
        file.sync_data().expect("sync");
        // One write over three pages: page 0 (after the synced bytes), 1 and 2.
        let pages = vec![7u8; 2 * PAGE_BYTES as usize + 10];
        file.write_at(6, &pages).expect("write");
        assert_eq!(storage.unsynced_pages()["a"], vec![0, 1, 2]);
        let after = storage.crash_keeping_pages(&|name, page| name == "a" && page == 1);
        let image = after.contents("a").expect("file");
        assert_eq!(
            image.len(),
            2 * PAGE_BYTES as usize,
            "ends after the kept page"
        );
        assert_eq!(&image[..6], b"synced");
        assert!(
            image[6..PAGE_BYTES as usize].iter().all(|b| *b == 0),
            "page 0 lost"
        );
        assert!(
            image[PAGE_BYTES as usize..].iter().all(|b| *b == 7),
            "page 1 kept"
        );
        let none = storage.crash_keeping_pages(&|_, _| false);
        assert_eq!(none.contents("a").expect("file"), b"synced");
    }

    #[test]
    fn writes_fail_past_the_budget_after_writing_a_prefix() {
        let storage = FaultStorage::new();
        let file = file_with(&storage, "a");
        storage.set_write_budget(Some(3));
        let err = file.write_at(0, b"abcdef").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(storage.contents("a").expect("file"), b"abc");
    }
}
