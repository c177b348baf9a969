//! Test support shared by the workspace's test binaries, written once.
//!
//! Always available (the client's tests use these):
//! - [`TOKEN`], [`TOKEN_HASH`]: the bearer token of the spec's worked example (§8.1) and its hash.
//! - [`tls`]: a CA made by rcgen and the server and client certificates it signs.
//! - [`rng`]: the seeded generator random tests draw from, and where its seed comes from.
//! - [`tmux`]: a private tmux server for tests of the interactive terminal programs.
//! - [`net`]: a free loopback port.
//! - [`memory`]: this process's resident memory, and the lock the tests that measure it take.
//!
//! With the `rstmdb` feature (the rstmdb crate's tests):
//! - [`machines`]: the order machine of the worked example, its checksum, the first offset.
//! - [`server`]: loopback settings, a server task, a database in a temporary directory.
//! - [`echo`]: the network layer over the echo handler; [`raw`]: a client that builds frames
//!   byte by byte.
//! - [`ops`]: a database server driven through `rstmdb_client`, and error assertions.
//! - [`watch`]: a database server for watch tests and a client that keeps pushes apart.
//! - [`metrics`]: a server with its metrics endpoint, HTTP GET and a scrape parser.
//! - [`binary`]: the real `rstmdb serve` as a child process, and a clean environment for it.
//! - [`hostile`]: a bystander client, live task counts, latency summaries.
//! - [`proptest_config`]: proptest settings that keep regressions beside the test file.
//!
//! Everything here is test code: it panics, with a message saying what failed, instead of
//! returning errors.

pub mod memory;
pub mod net;
pub mod rng;
pub mod tls;
pub mod tmux;

#[cfg(feature = "rstmdb")]
pub mod binary;
#[cfg(feature = "rstmdb")]
pub mod cluster;
#[cfg(feature = "rstmdb")]
pub mod echo;
#[cfg(feature = "rstmdb")]
pub mod hostile;
#[cfg(feature = "rstmdb")]
pub mod machines;
#[cfg(feature = "rstmdb")]
pub mod metrics;
#[cfg(feature = "rstmdb")]
pub mod ops;
#[cfg(feature = "rstmdb")]
pub mod raw;
#[cfg(feature = "rstmdb")]
pub mod server;
#[cfg(feature = "rstmdb")]
pub mod watch;

/// The bearer token of the spec's worked example (§8.1).
pub const TOKEN: &str = "my-secret-token";
/// The SHA-256 of [`TOKEN`] in lowercase hex, as a server is configured with it (§8.1).
pub const TOKEN_HASH: &str = "ea5add57437cbf20af59034d7ed17968dcc56767b41965fcc5b376d45db8b4a3";

/// proptest settings for `cases` cases that persist a failure's seed beside the test's source
/// file (`tests/<group>/<file>.proptest-regressions`), where the regression files live.
///
/// proptest's default looks for the nearest `main.rs` and writes to a `proptest-regressions/`
/// directory above it instead; every test file now sits next to its binary's `main.rs`, so the
/// default would no longer find the committed files.
#[cfg(feature = "rstmdb")]
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}
