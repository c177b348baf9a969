//! Tests that bound the resident memory of this process, where the server runs: a client that
//! never reads, stalled frames, a 10 MB context, a watch flood and a slow watcher.
//!
//! Kept out of the other binaries because `cargo test` runs a binary's tests as threads of one
//! process: another test's allocations would count in the measurement. Here, each measuring
//! test holds `rstmdb_testkit::memory::measuring_resident_memory()` and every other test
//! `sharing_resident_memory()`, so nothing else of this binary runs while one measures.
//! (`cargo nextest` runs every test in a process of its own anyway.)

mod hostile_connections;
mod hostile_payloads;
mod hostile_watch_flood;
mod watch_slow_consumer;
