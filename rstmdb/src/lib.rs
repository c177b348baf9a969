//! rstmdb: a state machine database.
//!
//! Module map (dependency arrows point down; see `docs/architecture.md`):
//! - [`checkpoint`]: whole-state checkpoint files (COMPACT, recovery) and per-instance snapshots;
//!   opaque payloads, durable writes, fault-injectable storage. See `docs/checkpoint-format.md`.
//! - [`config`]: the server configuration (TOML file < env vars < flags) with miette diagnostics.
//! - [`dsl`]: machine definitions and the guard language — parse, validate, evaluate. Every error
//!   carries a byte span or a JSON pointer. Start reading at `dsl::definition`.
//! - [`engine`]: the deterministic state (machines, instances, idempotency table). Pure: no I/O,
//!   no clock reads, no tokio; `now_ms` is an argument.
//! - [`wal`]: segment files, the record codec, the writer (fsync policies, group commit), the
//!   reader, recovery and repair.
//! - [`database`]: the commit pipeline tying engine, WAL and checkpoints together (sequencer,
//!   group commit, durability-gated reads, compaction). See `docs/commit-pipeline.md`.
//! - [`metrics`]: Prometheus metrics, the `/metrics` and `/health` endpoint.
//! - [`server`]: listener, TLS, sessions, auth, limits; data ops go to an `OpHandler`.
//! - `cli` (in the binary): one file per subcommand.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod config;
pub mod database;
pub mod dsl;
pub mod engine;
pub mod metrics;
pub mod server;
pub mod wal;
