//! rstmdb: a state machine database.
//!
//! The layers, top to bottom. A module may import only the ones below it (checked by the
//! `layers` tests); the wire vocabulary, `rstmdb_protocol`, is usable from any of them.
//! `docs/architecture.md` tells the whole story.
//!
//! ```text
//!  cli (the binary) ──► assemble ──► config
//!        │                 │
//!        ▼                 ▼
//!     metrics ──────────► server     network: listener, sessions, auth, TLS, framing
//!        │                 │
//!        │                 ▼
//!        ├──────────────► service    requests: dispatch, watch hub, value limits, STATS
//!        │                 │
//!        │                 ▼
//!        └──────────────► database   commit pipeline: sequencer, group commit, reads
//!                          │
//!              ┌───────────┼─────────────┐
//!              ▼           ▼             ▼
//!            engine       wal        checkpoint
//!              │
//!              ▼
//!             dsl
//! ```
//!
//! - [`dsl`]: machine definitions and the guard language — parse, validate, evaluate. Every
//!   error carries a byte span or a JSON pointer. Start reading at `dsl::definition`.
//! - [`engine`]: the deterministic state (machines, instances, idempotency table). Pure: no
//!   I/O, no clock reads, no tokio; `now_ms` is an argument.
//! - [`wal`]: segment files, the record codec, the writer (fsync policies, group commit), the
//!   reader, recovery and repair. Reports fsyncs through `wal::sync::FsyncObserver`.
//! - [`data_files`]: how `wal` and `checkpoint` create and open files — owner-only modes,
//!   never through a symlink.
//! - [`checkpoint`]: whole-state checkpoint files (COMPACT, recovery) and per-instance
//!   snapshots; opaque payloads, durable writes. See `docs/checkpoint-format.md`.
//! - [`cluster`]: cluster mode, being built (`docs/cluster.md`); so far the durable files of
//!   `raft/` and openraft's log storage on the WAL.
//! - [`database`]: the commit pipeline tying engine, WAL and checkpoints together (sequencer,
//!   group commit, durability-gated reads, compaction). See `docs/commit-pipeline.md`.
//! - [`service`]: what handles a request — the `OpHandler` boundary, op dispatch, the watch
//!   hub, value limits, STATS.
//! - [`server`]: the network layer only — listener, TLS, sessions, auth, framing, writer.
//!   Reports through `server::ServerObserver`.
//! - [`metrics`]: Prometheus metrics; implements the observer traits of the layers below and
//!   serves `/metrics` and `/health`.
//! - [`config`]: the configuration model (TOML file < env vars < flags) and every default;
//!   imports nothing else from this crate. [`assemble`] turns it into the layers' plain options.
//! - `cli` (in the binary): one file per subcommand.
//!
//! Features: `server` (on by default) compiles `server`, `service` and `metrics` and their
//! dependencies (TLS, HTTP, Prometheus); without it the library is the storage core, which is
//! what the fuzz targets build. `cli` (on by default) is the binary's own dependencies;
//! `testing` adds the test doubles (the echo handler, the fault storages).
#![forbid(unsafe_code)]

// The storage core, its configuration model and its assembly.
pub mod assemble;
pub mod checkpoint;
pub mod cluster;
pub mod config;
pub mod data_files;
pub mod database;
pub mod dsl;
pub mod engine;
pub mod wal;

// The server around it (feature `server`, on by default).
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod service;

#[cfg(test)]
mod layers;
