//! The engine's reader-writer lock.
//!
//! A `parking_lot` lock rather than std's for one reason: `unlock_fair`, which hands the lock
//! straight to the threads waiting for it. A compaction's walk holds the engine a step at a
//! time, and without a fair hand-off it could take the lock again before a woken writer runs.
//! The hand-off has no unit test: parking_lot also hands the lock over by itself once a waiter
//! has waited about half a millisecond, so no timing a test can arrange tells the two apart.
//! `docs/benchmarks.md` measures it (the walk under load).
//!
//! `parking_lot` locks are not poisoned by a panic, so this one keeps std's rule itself: a
//! write that unwinds may have left the engine half-changed, and then no one may use it again
//! (a restart recovers from disk).

use crate::engine::Engine;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use rstmdb_protocol::RcpError;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
pub(crate) struct EngineLock {
    engine: RwLock<Engine>,
    /// Set when a writer unwound while holding the engine.
    poisoned: AtomicBool,
}

impl EngineLock {
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            engine: RwLock::new(engine),
            poisoned: AtomicBool::new(false),
        }
    }

    /// The engine for the sequencer or the compactor.
    ///
    /// # Panics
    ///
    /// If an earlier writer panicked while holding it: the state can no longer be trusted, so
    /// the process must restart and recover from disk.
    pub(crate) fn write(&self) -> EngineWriteGuard<'_> {
        let guard = self.engine.write();
        assert!(
            !self.poisoned.load(Ordering::Acquire),
            "the engine lock is poisoned: a write panicked; restart to recover"
        );
        EngineWriteGuard {
            poison_on_unwind: PoisonOnUnwind(&self.poisoned),
            guard,
        }
    }

    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, Engine>, RcpError> {
        let guard = self.engine.read();
        if self.poisoned.load(Ordering::Acquire) {
            return Err(RcpError::internal(
                "the database stopped after an internal error",
            ));
        }
        Ok(guard)
    }
}

/// Write access to the engine.
#[derive(Debug)]
pub(crate) struct EngineWriteGuard<'a> {
    // Declared first, so dropped first: the flag is set before the lock is released.
    poison_on_unwind: PoisonOnUnwind<'a>,
    guard: RwLockWriteGuard<'a, Engine>,
}

impl EngineWriteGuard<'_> {
    /// Releases the engine to the threads already waiting for it, if any, before anyone else
    /// (this thread included) can take it again.
    pub(crate) fn unlock_fair(self) {
        let Self {
            poison_on_unwind,
            guard,
        } = self;
        drop(poison_on_unwind);
        RwLockWriteGuard::unlock_fair(guard);
    }
}

impl Deref for EngineWriteGuard<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl DerefMut for EngineWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

/// Poisons the lock if dropped while the thread unwinds.
#[derive(Debug)]
struct PoisonOnUnwind<'a>(&'a AtomicBool);

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_that_panics_stops_every_later_reader_and_writer() {
        let lock = std::sync::Arc::new(EngineLock::new(Engine::new(Default::default())));
        let writer = std::sync::Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            let _engine = writer.write();
            panic!("a write fails half-way");
        })
        .join();
        assert!(panicked.is_err());

        let refused = lock.read().expect_err("a read after the panic");
        assert!(refused.to_string().contains("stopped"), "{refused}");
        let writer = std::sync::Arc::clone(&lock);
        assert!(
            std::thread::spawn(move || drop(writer.write()))
                .join()
                .is_err()
        );
    }
}
