//! The crash loop's machinery (issue 9, item 1): the real server as a child process killed
//! with SIGKILL, the client workload that records every call, and the checks after a restart.
//!
//! - `cycle`: one kill-restart-verify cycle, [`cycle::run_cycle`]; `cluster_cycle`: the same
//!   on a cluster of three nodes, [`cluster_cycle::run_cluster_cycle`].
//! - `process`: [`ServerProcess`] start / kill, [`server_binary`].
//! - `workload`: the machine, [`execute`] (one recorded call), [`run_client`], [`run_compactor`].
//! - `window`: after a restart, resolving and checking the window ([`window::verify_window`]).
//! - `verify`: reading the log, its shape ([`LogShape`]), retries and final reads.
//!
//! Every random choice comes from one seeded [`Rng`] (`rstmdb_testkit::rng`).

pub mod cluster_cycle;
pub mod cycle;
pub mod process;
pub mod verify;
pub mod window;
pub mod workload;

pub use process::{ServerProcess, ServerSetup, server_binary};
pub use rstmdb_testkit::rng::Rng;

use rstmdb_client::{Client, ClientOptions, ReconnectPolicy};
use std::net::SocketAddr;
use std::time::Duration;

/// A client that never reconnects: once the server dies, every call fails at once and its
/// outcome is recorded as unknown.
pub async fn connect(addr: SocketAddr) -> Result<Client, String> {
    let options = ClientOptions::new(addr.to_string())
        .reconnect(ReconnectPolicy::disabled())
        .request_timeout(Duration::from_secs(30));
    Client::connect(options)
        .await
        .map_err(|err| format!("connect to {addr}: {err}"))
}
