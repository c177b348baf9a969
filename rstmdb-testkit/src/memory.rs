//! This process's resident memory, for tests that bound how much a server running in the test
//! process may grow.
//!
//! A test binary runs its tests as threads of one process under `cargo test`, so another test's
//! allocations would count in such a measurement. The tests that measure take
//! [`measuring_resident_memory`]; the other tests of their binary take
//! [`sharing_resident_memory`], so none of them runs while a measurement is going on (under
//! `cargo nextest`, one process per test, the lock is never contended).

/// Resident memory of this process in bytes, from `/proc/self/statm` (0 where it is missing).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident memory of another process (a server binary a test started), from
/// `/proc/PID/status`: `(now, peak)` in bytes (`VmRSS`, `VmHWM`).
pub fn process_resident_bytes(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(feature = "rstmdb")]
static RESIDENT_MEMORY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Waits until no other test of this binary holds either guard, then keeps them all out until
/// the guard is dropped: for a test that measures [`resident_bytes`].
#[cfg(feature = "rstmdb")]
pub async fn measuring_resident_memory() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    RESIDENT_MEMORY.write().await
}

/// Keeps measuring tests out while held; tests that only share the process take it, and run
/// beside each other.
#[cfg(feature = "rstmdb")]
pub async fn sharing_resident_memory() -> tokio::sync::RwLockReadGuard<'static, ()> {
    RESIDENT_MEMORY.read().await
}
