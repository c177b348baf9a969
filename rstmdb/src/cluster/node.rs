//! A cluster node assembled (`docs/cluster.md` sections 1, 10 and 11): the database opened on
//! its committed entries, the WAL as openraft's log, the engine as its state machine, the
//! node-to-node listener, and the bootstrap of a new cluster.

use super::client_addrs::{ClientAddrs, FsyncPolicies, PeerContacts, ReplicationCounters};
use super::committed_replay::CommittedReplay;
use super::forward::{ForwardSlot, ForwardTarget, Forwarder};
use super::group_log::RaftGroupLog;
use super::identity::{IdentityError, NodeIdentity};
use super::incarnation::{Binder, Incarnations};
use super::log_store::{IndexBuilder, WalLogStore};
use super::membership::ClusterAdmin;
use super::peer_client::PeerNetwork;
use super::peer_server::PeerService;
use super::peer_tls::PeerTls;
use super::raft_files::{RaftFiles, RaftFilesError};
use super::read_floor::ReadFloor;
use super::secret::ClusterSecret;
use super::state_machine::EngineStateMachine;
use super::status::ClusterObserver;
use super::transfer::LeaderTransfer;
use super::types::{NodeAddr, NodeId, RaftTypes};
use crate::database::{ClusterOpen, Database, DatabaseOptions, OpenError, OpenReport};
use openraft::{Raft, SnapshotPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Files(#[from] RaftFilesError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("openraft refused the configuration: {0}")]
    RaftConfig(String),
    #[error("openraft could not start: {0}")]
    Raft(String),
    #[error("cannot listen on cluster.raft_addr {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("opening the data directory panicked: {0}")]
    Panicked(String),
}

/// What a node needs besides the database's own options (from `[cluster]`, spec §12.4).
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_id: NodeId,
    pub raft_addr: String,
    /// The address clients reach this node at (`cluster.client_addr`, else the bind address).
    pub client_addr: String,
    /// `cluster.members`: the initial voters and their node-to-node addresses.
    pub members: BTreeMap<NodeId, String>,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub write_timeout_ms: u64,
    /// `cluster.forward_writes`: a follower relays writes to the leader.
    pub forward_writes: bool,
    /// `cluster.read_consistency = "linearizable"`: reads are confirmed with the leader.
    pub linearizable_reads: bool,
    pub secret: Option<ClusterSecret>,
    pub tls: Option<PeerTls>,
}

/// A running cluster node. Stop it with [`ClusterNode::shutdown`] before the database.
pub struct ClusterNode {
    raft: Raft<RaftTypes>,
    listener: JoinHandle<()>,
    /// Binds the members' data directories into the membership while this node leads.
    binder: JoinHandle<()>,
    /// The way to the leader, for relayed writes and linearizable reads.
    forwarder: Forwarder,
    forward_writes: bool,
    linearizable_reads: bool,
    /// Where the listener finds who runs forwarded writes.
    forward_target: ForwardSlot,
    observer: ClusterObserver,
    admin: ClusterAdmin,
    /// Held for the log store's purge gate: no checkpoint covers any entry yet.
    _purge_gate: watch::Sender<Option<super::types::LogId>>,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode").finish_non_exhaustive()
    }
}

/// openraft's configuration from `[cluster]`.
pub fn raft_config(settings: &NodeSettings) -> Result<Arc<openraft::Config>, NodeError> {
    let config = openraft::Config {
        cluster_name: "rstmdb".to_owned(),
        heartbeat_interval: settings.heartbeat_interval_ms,
        election_timeout_min: settings.election_timeout_min_ms,
        election_timeout_max: settings.election_timeout_max_ms,
        // Checkpoints are not snapshots yet: the log is kept whole (docs/cluster.md section 7).
        snapshot_policy: SnapshotPolicy::Never,
        ..openraft::Config::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|err| NodeError::RaftConfig(err.to_string()))
}

impl ClusterNode {
    /// Opens the data directory as node `settings.node_id` and starts it: the
    /// database (replaying committed entries only), openraft, and the node-to-node listener.
    /// A node with no Raft state that has the lowest id in `cluster.members` initialises the
    /// cluster; the others wait to be contacted.
    pub async fn start(
        options: DatabaseOptions,
        settings: NodeSettings,
    ) -> Result<(Arc<Database>, OpenReport, ClusterNode), NodeError> {
        let me = settings.node_id;
        let segment_size_bytes = options.wal.segment_size_bytes;
        let fsync_policy = options.wal.fsync_policy.to_string();
        let files = RaftFiles::open(&options.data_dir)?;
        let identity = NodeIdentity::load(files.clone(), me)?;
        let incarnations = Incarnations::default();
        let replay = CommittedReplay::new(IndexBuilder::new(&files)?);
        let write_timeout = Duration::from_millis(settings.write_timeout_ms);
        let (db, report, replay) = tokio::task::spawn_blocking(move || {
            let mut replay = replay;
            let mut filter = |view: &crate::wal::RecordView<'_>| replay.step(view);
            let opened = Database::open_for_cluster(
                options,
                ClusterOpen {
                    filter: &mut filter,
                    write_timeout,
                },
            );
            opened.map(|(db, report)| (db, report, replay))
        })
        .await
        .map_err(|err| NodeError::Panicked(err.to_string()))??;
        let db = Arc::new(db);
        let (index, last_applied, membership) = replay.finish();
        let (purge_gate, purge_gate_rx) = watch::channel(None);
        let log = WalLogStore::open(db.wal(), files, index, purge_gate_rx, last_applied);
        let entry_offsets = log.entry_offsets();
        let state_machine = EngineStateMachine::new(
            Arc::clone(&db),
            entry_offsets.clone(),
            segment_size_bytes,
            last_applied,
            membership,
        );
        let client_addrs = ClientAddrs::default();
        let contacts = PeerContacts::default();
        let counters = ReplicationCounters::default();
        let read_floor = ReadFloor::default();
        client_addrs.record(me, &settings.client_addr);
        let fsync_policies = FsyncPolicies::default();
        fsync_policies.record(me, &fsync_policy);
        let network = PeerNetwork {
            me,
            segment_size_bytes,
            secret: settings.secret.clone(),
            tls: settings.tls.clone(),
            client_addr: Some(settings.client_addr.clone()),
            client_addrs: client_addrs.clone(),
            contacts: contacts.clone(),
            incarnations: incarnations.clone(),
            counters: counters.clone(),
            identity: identity.clone(),
            fsync_policy: Some(fsync_policy.clone()),
            fsync_policies: fsync_policies.clone(),
        };
        let forward_network = network.clone();
        let transfer_network = network.clone();
        let raft = Raft::new(me, raft_config(&settings)?, network, log, state_machine)
            .await
            .map_err(|err| NodeError::Raft(err.to_string()))?;
        db.attach_group_log(Arc::new(RaftGroupLog::new(
            raft.clone(),
            me,
            tokio::runtime::Handle::current(),
            client_addrs.clone(),
            write_timeout,
            entry_offsets.clone(),
        )));
        let observer = ClusterObserver {
            raft: raft.clone(),
            me,
            client_addrs: client_addrs.clone(),
            contacts: contacts.clone(),
            log: entry_offsets,
            database: Arc::clone(&db),
            elections: Arc::default(),
            counters,
            identity: identity.clone(),
            fsync_policies: fsync_policies.clone(),
        };
        tokio::spawn(observer.clone().count_elections());
        let admin = ClusterAdmin::new(
            raft.clone(),
            Arc::clone(&db),
            observer.clone(),
            tokio::runtime::Handle::current(),
            LeaderTransfer {
                raft: raft.clone(),
                me,
                network: transfer_network,
                lease: Duration::from_millis(settings.election_timeout_max_ms),
                timeout: write_timeout,
            },
        );
        let binder = tokio::spawn(
            Binder {
                raft: raft.clone(),
                me,
                admin: admin.clone(),
                incarnations: incarnations.clone(),
                client_addrs: client_addrs.clone(),
                identity: identity.clone(),
            }
            .run(),
        );
        let listener = TcpListener::bind(&settings.raft_addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: settings.raft_addr.clone(),
                source,
            })?;
        let service = PeerService {
            raft: raft.clone(),
            me,
            segment_size_bytes,
            secret: settings.secret.clone(),
            tls: settings.tls.clone(),
            client_addrs,
            client_addr: Some(settings.client_addr.clone()),
            contacts,
            incarnations: incarnations.clone(),
            identity: identity.clone(),
            read_floor: read_floor.clone(),
            fsync_policy: Some(fsync_policy),
            fsync_policies,
            forward_target: ForwardSlot::default(),
        };
        let forward_target = Arc::clone(&service.forward_target);
        let listener = tokio::spawn(service.serve(listener));
        let forwarder =
            Forwarder::new(raft.clone(), me, forward_network, write_timeout, read_floor);
        let node = ClusterNode {
            raft,
            listener,
            binder,
            forwarder,
            forward_writes: settings.forward_writes,
            linearizable_reads: settings.linearizable_reads,
            forward_target,
            observer,
            admin,
            _purge_gate: purge_gate,
        };
        node.bootstrap(&settings, &identity).await?;
        Ok((db, report, node))
    }

    /// The first start of the cluster: the lowest id in `members` initialises it with every
    /// member as a voter (itself bound to `incarnation`, the others once they call). Any node
    /// with Raft state, or any other member, does nothing.
    async fn bootstrap(
        &self,
        settings: &NodeSettings,
        identity: &NodeIdentity,
    ) -> Result<(), NodeError> {
        let me = settings.node_id;
        let voters = settings.members.clone();
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|err| NodeError::Raft(err.to_string()))?;
        if initialized || voters.keys().next() != Some(&me) {
            return Ok(());
        }
        let members: BTreeMap<NodeId, NodeAddr> = voters
            .into_iter()
            .map(|(id, raft_addr)| {
                let node = if id == me {
                    NodeAddr {
                        raft_addr,
                        client_addr: settings.client_addr.clone(),
                        incarnation: Some(identity.incarnation().to_owned()),
                    }
                } else {
                    NodeAddr {
                        raft_addr,
                        ..NodeAddr::default()
                    }
                };
                (id, node)
            })
            .collect();
        let cluster_id = identity.found_cluster()?;
        tracing::info!(node_id = me, %cluster_id, members = ?members.keys(), "initialising the cluster");
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another start got there first (a restart during the first election).
            Err(openraft::error::RaftError::APIError(
                openraft::error::InitializeError::NotAllowed(_),
            )) => Ok(()),
            Err(err) => Err(NodeError::Raft(err.to_string())),
        }
    }

    /// How a follower relays writes to the leader; `None` when `forward_writes` is off.
    pub fn write_forwarder(&self) -> Option<&Forwarder> {
        self.forward_writes.then_some(&self.forwarder)
    }

    /// How reads are confirmed with the leader; `None` when reads are local.
    pub fn read_linearizer(&self) -> Option<&Forwarder> {
        self.linearizable_reads.then_some(&self.forwarder)
    }

    /// Who runs the writes that followers relay to this node (once, when the service is up).
    pub fn take_forwarded_writes(&self, target: Arc<dyn ForwardTarget>) {
        if self.forward_target.set(target).is_err() {
            tracing::warn!("the forwarded writes' target was set twice; the first one stays");
        }
    }

    /// The membership ops.
    pub fn admin(&self) -> &ClusterAdmin {
        &self.admin
    }

    /// CLUSTER_STATUS's source.
    pub fn observer(&self) -> &ClusterObserver {
        &self.observer
    }

    /// openraft's handle, for status and membership.
    pub fn raft(&self) -> &Raft<RaftTypes> {
        &self.raft
    }

    /// Stops Raft and the listener. The database is closed after this.
    pub async fn shutdown(self) {
        self.listener.abort();
        self.binder.abort();
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(%err, "openraft did not stop cleanly");
        }
    }
}
