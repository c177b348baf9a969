//! Cluster mode (issue 17, `docs/cluster.md`): several servers keep one database with Raft,
//! through openraft. Being built piece by piece (`docs/cluster.md` says what is built).
//!
//! - [`raft_files`]: the small durable files of `<data_dir>/raft/` (identity, vote, state).
//! - [`types`]: what an entry carries, and openraft's type configuration.
//! - [`entry_record`]: an entry as a unit of WAL records (a header record, kind 6, then data).
//! - [`log_index`]: where each retained entry starts in the WAL.
//! - [`log_store`]: openraft's `RaftLogStorage` on the WAL, with the newest entries kept in
//!   memory for replication ([`entry_cache`]).
//! - [`committed_replay`]: what start-up replays (committed entries only);
//!   [`state_machine`]: openraft's state machine on the engine; [`group_log`]: the leader's
//!   sequencer groups as entries; [`node`]: a node assembled and bootstrapped; [`status`]:
//!   CLUSTER_STATUS; [`membership`]: the membership ops; [`identity`]: `raft/identity`, and
//!   the cluster id that keeps another cluster's nodes out; [`incarnation`]: which data
//!   directory each member is, so that a wiped one is refused; [`transfer`]: a leader hands its lead
//!   to another voter; [`read_floor`]: the read index a leader hands out.
//! - [`rpc`], [`peer_connection`], [`peer_client`], [`peer_server`]: node-to-node RPC over RCP
//!   frames (openraft's `RaftNetworkFactory`, and the listener that answers it), which also
//!   tells each node where clients reach the others ([`client_addrs`]) and carries the
//!   writes a follower relays to the leader ([`forward`]); [`secret`]:
//!   the shared secret nodes prove to each other; [`peer_tls`]: mutual TLS between nodes.

#[cfg(feature = "server")]
pub mod client_addrs;
#[cfg(feature = "server")]
pub mod committed_replay;
#[cfg(feature = "server")]
pub mod entry_cache;
#[cfg(feature = "server")]
pub mod entry_record;
#[cfg(feature = "server")]
pub mod forward;
#[cfg(feature = "server")]
pub mod group_log;
#[cfg(feature = "server")]
pub mod identity;
#[cfg(feature = "server")]
pub mod incarnation;
#[cfg(feature = "server")]
pub mod log_index;
#[cfg(feature = "server")]
pub mod log_store;
#[cfg(feature = "server")]
pub mod membership;
#[cfg(feature = "server")]
pub mod node;
#[cfg(feature = "server")]
pub mod peer_client;
#[cfg(feature = "server")]
pub mod peer_connection;
#[cfg(feature = "server")]
pub mod peer_server;
#[cfg(feature = "server")]
pub mod peer_tls;
pub mod raft_files;
#[cfg(feature = "server")]
pub mod read_floor;
#[cfg(feature = "server")]
pub mod rpc;
#[cfg(feature = "server")]
pub mod secret;
#[cfg(feature = "server")]
pub mod state_machine;
#[cfg(feature = "server")]
pub mod status;
#[cfg(feature = "server")]
pub mod transfer;
#[cfg(feature = "server")]
pub mod types;

pub use raft_files::{RaftFile, RaftFiles, RaftFilesError};
