//! Three openraft nodes in this process, each with its own WAL-backed log and node-to-node
//! listener on 127.0.0.1 (cluster mode's log and network, `docs/cluster.md` sections 5 and 9):
//! they elect a leader, replicate writes into byte-identical WALs (same records at the same
//! offsets with the same sequences), elect another leader when the first stops, and refuse a
//! peer that reaches the wrong node or writes other segment sizes.
//!
//! The state machine is a stand-in that records what it applies: the engine's is not built.

use openraft::storage::RaftStateMachine;
use openraft::{
    Config, EntryPayload, LogId, Raft, RaftSnapshotBuilder, ServerState, Snapshot, SnapshotMeta,
    SnapshotPolicy, StoredMembership,
};
use rstmdb::cluster::identity::NodeIdentity;
use rstmdb::cluster::incarnation::Incarnations;
use rstmdb::cluster::log_store::{IndexBuilder, WalLogStore};
use rstmdb::cluster::peer_client::PeerNetwork;
use rstmdb::cluster::peer_connection::PeerConnection;
use rstmdb::cluster::peer_server::PeerService;
use rstmdb::cluster::peer_tls::PeerTls;
use rstmdb::cluster::rpc::{Hello, HelloReply, PROTOCOL_VERSION, Proof};
use rstmdb::cluster::secret::ClusterSecret;
use rstmdb::cluster::types::{
    CommandRecord, Entry, NodeAddr, NodeId, RaftCommand, RaftReply, RaftTypes, SnapshotFile,
    StorageError,
};
use rstmdb::cluster::{RaftFile, RaftFiles};
use rstmdb::wal::{DirStorage, FsyncPolicy, Storage, Wal, WalConfig};
use rstmdb_testkit::tls::TestCa;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Small segments, so replication crosses segment boundaries.
const SEGMENT_BYTES: u64 = 4096;

struct Node {
    id: NodeId,
    raft: Raft<RaftTypes>,
    wal: Arc<Wal>,
    applied: Arc<Mutex<Vec<Entry>>>,
    listener: JoinHandle<()>,
    _purge_gate: watch::Sender<Option<LogId<NodeId>>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn stop(self) {
        self.raft.shutdown().await.expect("shutdown");
        self.listener.abort();
    }
}

fn raft_config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        // The stand-in state machine cannot build snapshots.
        snapshot_policy: SnapshotPolicy::Never,
        ..Config::default()
    };
    Arc::new(config.validate().expect("valid raft config"))
}

/// How the nodes of a test cluster reach each other.
#[derive(Clone, Default)]
struct Links {
    secret: Option<ClusterSecret>,
    tls: Option<Arc<TestCa>>,
}

impl Links {
    /// A node's TLS: its own certificate for 127.0.0.1, from the cluster's CA.
    fn node_tls(&self) -> Option<PeerTls> {
        let ca = self.tls.as_ref()?;
        let leaf = ca.node_leaf(&["127.0.0.1"]);
        let tls = PeerTls::new(
            vec![leaf.cert_der.clone()],
            leaf.private_key_der(),
            vec![ca.der()],
        );
        Some(tls.expect("node TLS"))
    }
}

async fn start_node(id: NodeId, listener: TcpListener, links: &Links) -> Node {
    let secret = links.secret.clone();
    let tls = links.node_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let files = RaftFiles::open(dir.path()).expect("raft files");
    let identity = identity_with_incarnation(&files, id);
    let mut index = IndexBuilder::new(&files).expect("index");
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(dir.path().join("wal")).expect("wal dir"));
    let config = WalConfig {
        segment_size_bytes: SEGMENT_BYTES,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let (wal, _) = Wal::open(storage, config, None, &mut |record| {
        Ok(index.observe(&record)?)
    })
    .expect("wal");
    let wal = Arc::new(wal);
    let (purge_gate, gate) = watch::channel(None);
    let log = WalLogStore::open(Arc::clone(&wal), files, index, gate, None);
    let applied = Arc::new(Mutex::new(Vec::new()));
    let state_machine = RecordingStateMachine {
        applied: Arc::clone(&applied),
        last: None,
        membership: StoredMembership::default(),
    };
    let network = PeerNetwork {
        me: id,
        client_addrs: Default::default(),
        contacts: Default::default(),
        client_addr: None,
        segment_size_bytes: SEGMENT_BYTES,
        secret: secret.clone(),
        tls: tls.clone(),
        incarnations: Incarnations::default(),
        counters: Default::default(),
        identity: identity.clone(),
        fsync_policy: None,
        fsync_policies: Default::default(),
    };
    let raft = Raft::new(id, raft_config(), network, log, state_machine)
        .await
        .expect("raft");
    let service = PeerService {
        raft: raft.clone(),
        client_addrs: Default::default(),
        contacts: Default::default(),
        forward_target: Default::default(),
        client_addr: None,
        me: id,
        segment_size_bytes: SEGMENT_BYTES,
        secret,
        tls,
        incarnations: Incarnations::default(),
        identity,
        read_floor: Default::default(),
        fsync_policy: None,
        fsync_policies: Default::default(),
    };
    let listener = tokio::spawn(service.serve(listener));
    Node {
        id,
        raft,
        wal,
        applied,
        listener,
        _purge_gate: purge_gate,
        _dir: dir,
    }
}

async fn start_cluster(size: u64, links: Links) -> Vec<Node> {
    let mut listeners = Vec::new();
    for _ in 0..size {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let members: BTreeMap<NodeId, NodeAddr> = listeners
        .iter()
        .enumerate()
        .map(|(i, listener)| {
            let addr = listener.local_addr().expect("addr").to_string();
            let node = NodeAddr {
                raft_addr: addr,
                client_addr: String::new(),
                incarnation: None,
            };
            (i as u64 + 1, node)
        })
        .collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        nodes.push(start_node(i as u64 + 1, listener, &links).await);
    }
    nodes[0].raft.initialize(members).await.expect("initialize");
    nodes
}

async fn leader_of(nodes: &[Node]) -> NodeId {
    let metrics = nodes[0]
        .raft
        .wait(Some(Duration::from_secs(10)))
        .metrics(
            |m| {
                m.current_leader
                    .is_some_and(|leader| nodes.iter().any(|node| node.id == leader))
            },
            "a leader among the running nodes",
        )
        .await
        .expect("a leader is elected");
    metrics.current_leader.expect("leader")
}

fn command(n: u64) -> RaftCommand {
    let payload = format!(r#"{{"type":"create_instance","instance_id":"i-{n}","n":{n}}}"#);
    RaftCommand {
        origin: n,
        records: vec![CommandRecord {
            kind: 2,
            timestamp_ms: 1_767_225_600_000 + n as i64,
            payload: RawValue::from_string(payload).expect("json"),
        }],
    }
}

/// Every record of a node's WAL: (offset, sequence, kind, payload).
fn wal_records(wal: &Wal) -> Vec<(u64, u64, u8, Vec<u8>)> {
    wal.reader_written(0)
        .map(|record| {
            let record = record.expect("record");
            (record.offset, record.sequence, record.kind, record.payload)
        })
        .collect()
}

async fn wait_applied(nodes: &[&Node], index: u64) {
    for node in nodes {
        node.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "caught up")
            .await
            .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", node.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_into_identical_wals_and_survive_the_loss_of_the_leader() {
    // The nodes prove a shared secret to each other on every connection.
    let links = Links {
        secret: Some(secret()),
        tls: None,
    };
    let nodes = start_cluster(3, links).await;
    let leader = leader_of(&nodes).await;
    let leader_node = &nodes[(leader - 1) as usize];
    let mut last = None;
    for n in 0..40 {
        let written = leader_node
            .raft
            .client_write(command(n))
            .await
            .expect("write through the leader");
        last = Some(written.log_id.index);
    }
    let last = last.expect("writes");
    wait_applied(&nodes.iter().collect::<Vec<_>>(), last).await;

    let reference = wal_records(&nodes[0].wal);
    assert!(
        reference.iter().filter(|r| r.2 == 2).count() == 40,
        "every write is in the WAL once"
    );
    assert!(
        nodes[0].wal.stats().segment_count > 1,
        "the records span several segments"
    );
    for node in &nodes[1..] {
        assert_eq!(
            wal_records(&node.wal),
            reference,
            "node {} has the same records at the same offsets",
            node.id
        );
    }
    for node in &nodes {
        let applied = node.applied.lock().expect("applied");
        let commands: Vec<u64> = applied
            .iter()
            .filter_map(|entry| match &entry.payload {
                EntryPayload::Normal(command) => Some(command.origin),
                _ => None,
            })
            .collect();
        assert_eq!(commands, (0..40).collect::<Vec<_>>(), "node {}", node.id);
    }

    // The leader stops; the two others elect one of themselves and go on.
    let mut nodes = nodes;
    let stopped = nodes.remove((leader - 1) as usize);
    stopped.stop().await;
    let survivors: Vec<&Node> = nodes.iter().collect();
    let new_leader = leader_of(&nodes).await;
    assert_ne!(new_leader, leader);
    let new_leader_node = survivors
        .iter()
        .find(|node| node.id == new_leader)
        .expect("the new leader runs");
    let written = new_leader_node
        .raft
        .client_write(command(40))
        .await
        .expect("a write after the failover");
    wait_applied(&survivors, written.log_id.index).await;
    assert_eq!(
        wal_records(&survivors[0].wal),
        wal_records(&survivors[1].wal)
    );
    for node in nodes {
        node.stop().await;
    }
}

fn secret() -> ClusterSecret {
    ClusterSecret::from_bytes(b"the cluster's shared secret")
}

fn hello(to: NodeId, segment_size_bytes: u64, nonce: Option<String>) -> Hello {
    Hello {
        client_addr: None,
        protocol: PROTOCOL_VERSION,
        from: 9,
        to,
        segment_size_bytes,
        nonce,
        incarnation: None,
        to_incarnation: None,
        cluster_id: None,
        fsync_policy: None,
    }
}

/// Node `id`'s identity in `files`, with the incarnation `node-<id>` the assertions name.
fn identity_with_incarnation(files: &RaftFiles, id: NodeId) -> NodeIdentity {
    files
        .save(
            RaftFile::Identity,
            &serde_json::json!({"node_id": id, "incarnation": format!("node-{id}")}),
        )
        .expect("identity file");
    NodeIdentity::load(files.clone(), id).expect("identity")
}

/// A node identity in a directory of its own (kept as long as the identity is used).
fn identity_in_temp_dir(id: NodeId) -> (tempfile::TempDir, NodeIdentity) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = RaftFiles::open(dir.path()).expect("raft files");
    let identity = identity_with_incarnation(&files, id);
    (dir, identity)
}

/// The raft address of the one node of `nodes`, once it leads.
async fn single_node_addr(nodes: &[Node]) -> String {
    leader_of(nodes).await;
    let metrics = nodes[0].raft.metrics().borrow().clone();
    let node = metrics.membership_config.membership().get_node(&1).cloned();
    node.expect("node 1").raft_addr
}

async fn say_hello(addr: &str, hello: &Hello) -> (PeerConnection, HelloReply) {
    let mut connection = PeerConnection::new(TcpStream::connect(addr).await.expect("connect"));
    connection.send(hello).await.expect("hello");
    let reply = connection.receive::<HelloReply>().await.expect("reply");
    (connection, reply)
}

fn assert_refused(reply: HelloReply, expected: &str) {
    match reply {
        HelloReply::Refused { reason } => assert!(reason.contains(expected), "{reason}"),
        other => panic!("expected a refusal ({expected}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_is_refused_when_it_reaches_the_wrong_node_or_writes_other_segments() {
    let nodes = start_cluster(1, Links::default()).await;
    let addr = single_node_addr(&nodes).await;
    let mut wrong_protocol = hello(1, SEGMENT_BYTES, None);
    wrong_protocol.protocol += 1;
    for (hello, expected) in [
        (hello(2, SEGMENT_BYTES, None), "meant to reach node 2"),
        (hello(1, 64 << 20, None), "offsets would differ"),
        (wrong_protocol, "node protocol"),
        (
            hello(1, SEGMENT_BYTES, Some(ClusterSecret::nonce())),
            "this node has none",
        ),
    ] {
        assert_refused(say_hello(&addr, &hello).await.1, expected);
    }
    assert_eq!(
        nodes[0].raft.metrics().borrow().state,
        ServerState::Leader,
        "the refused peers changed nothing"
    );
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_talks_only_with_the_data_directories_the_membership_knows() {
    let nodes = start_cluster(1, Links::default()).await;
    let addr = single_node_addr(&nodes).await;

    // A caller that knows node 1 by another data directory: node 1 was wiped, and says so.
    let mut stale = hello(1, SEGMENT_BYTES, None);
    stale.to_incarnation = Some("node-1-before-the-wipe".to_owned());
    let (_, reply) = say_hello(&addr, &stale).await;
    assert_refused(reply, "node 9 refuses this node");
    let (_, reply) = say_hello(&addr, &stale).await;
    assert_refused(reply, "incarnation node-1-before-the-wipe, this one node-1");

    // Node 9, once the membership knows its directory, is let in with that one only.
    let nine = NodeAddr {
        raft_addr: "127.0.0.1:9".to_owned(),
        client_addr: String::new(),
        incarnation: Some("nine".to_owned()),
    };
    nodes[0]
        .raft
        .change_membership(
            openraft::ChangeMembers::SetNodes(BTreeMap::from([(9, nine)])),
            false,
        )
        .await
        .expect("node 9 joins as a learner");
    // The hello is checked against the membership openraft publishes, a moment later.
    nodes[0]
        .raft
        .wait(Some(Duration::from_secs(5)))
        .metrics(
            |m| m.membership_config.membership().get_node(&9).is_some(),
            "node 9 in the published membership",
        )
        .await
        .expect("node 9 published");
    let mut wiped = hello(1, SEGMENT_BYTES, None);
    wiped.incarnation = Some("nine-after-the-wipe".to_owned());
    assert_refused(
        say_hello(&addr, &wiped).await.1,
        "node 9's data directory is not the one the cluster knows (incarnation nine, \
         this one nine-after-the-wipe)",
    );
    let mut unnamed = hello(1, SEGMENT_BYTES, None);
    unnamed.incarnation = None;
    assert_refused(say_hello(&addr, &unnamed).await.1, "this one none");
    let mut same = hello(1, SEGMENT_BYTES, None);
    same.incarnation = Some("nine".to_owned());
    same.to_incarnation = Some("node-1".to_owned());
    match say_hello(&addr, &same).await.1 {
        HelloReply::Welcome { incarnation, .. } => {
            assert_eq!(incarnation.as_deref(), Some("node-1"));
        }
        other => panic!("node 9 with its own directory is welcome, got {other:?}"),
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_larger_than_the_handshake_limit_is_dropped_unread() {
    use rstmdb::cluster::peer_connection::MAX_HANDSHAKE_FRAME_BYTES;
    use rstmdb_testkit::raw::{Client, frame};

    let nodes = start_cluster(1, Links::default()).await;
    let addr = single_node_addr(&nodes).await;
    let valid = serde_json::to_string(&hello(1, SEGMENT_BYTES, None)).expect("hello");
    // A valid hello, padded with JSON whitespace: only its size is wrong.
    for (padding, answered) in [(1_000, true), (MAX_HANDSHAKE_FRAME_BYTES, false)] {
        let padded = format!("{valid}{}", " ".repeat(padding));
        let mut stranger = Client::new(TcpStream::connect(&addr).await.expect("connect"));
        stranger.send_raw(&frame(padded.as_bytes())).await;
        if answered {
            let reply = stranger.read_frame().await;
            assert_eq!(reply["welcome"]["node_id"], 1, "{reply}");
        } else {
            stranger.expect_closed().await;
        }
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_must_prove_the_shared_secret_and_the_node_proves_it_back() {
    let links = Links {
        secret: Some(secret()),
        tls: None,
    };
    let nodes = start_cluster(1, links).await;
    let addr = single_node_addr(&nodes).await;

    let (_, reply) = say_hello(&addr, &hello(1, SEGMENT_BYTES, None)).await;
    assert_refused(reply, "offers no proof of the shared secret");

    for (answer_with, welcomed) in [
        (
            ClusterSecret::from_bytes(b"a guess at the shared secret"),
            false,
        ),
        (secret(), true),
    ] {
        let ours = ClusterSecret::nonce();
        let (mut connection, reply) =
            say_hello(&addr, &hello(1, SEGMENT_BYTES, Some(ours.clone()))).await;
        let HelloReply::Challenge {
            node_id,
            proof,
            nonce,
        } = reply
        else {
            panic!("expected a challenge, got {reply:?}");
        };
        assert!(
            secret().verify(node_id, &ours, &proof),
            "the node proves the secret"
        );
        let answer = Proof {
            proof: answer_with.prove(9, &nonce),
        };
        connection.send(&answer).await.expect("proof");
        let reply = connection.receive::<HelloReply>().await.expect("reply");
        if welcomed {
            assert_eq!(
                reply,
                HelloReply::Welcome {
                    node_id: 1,
                    client_addr: None,
                    incarnation: Some("node-1".to_owned()),
                    cluster_id: None,
                    fsync_policy: None,
                }
            );
        } else {
            assert_refused(reply, "node 9 did not prove the shared secret");
        }
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_secret_sends_nothing_to_a_peer_that_lets_it_in_without_proof() {
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::VoteRequest;

    // An impostor on a node's address: it welcomes anyone, and records what it is sent.
    let impostor = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = impostor.local_addr().expect("addr").to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&received);
    let serving = tokio::spawn(async move {
        loop {
            let (stream, _) = impostor.accept().await.expect("accept");
            let mut connection = PeerConnection::new(stream);
            let hello: Hello = connection.receive().await.expect("hello");
            connection
                .send(&HelloReply::Welcome {
                    node_id: hello.to,
                    client_addr: None,
                    incarnation: None,
                    cluster_id: None,
                    fsync_policy: None,
                })
                .await
                .expect("welcome");
            while let Ok(message) = connection.receive::<serde_json::Value>().await {
                seen.lock().expect("seen").push(message);
            }
        }
    });
    let identity_dir = identity_in_temp_dir(1);
    let mut network = PeerNetwork {
        me: 1,
        client_addrs: Default::default(),
        contacts: Default::default(),
        client_addr: None,
        segment_size_bytes: SEGMENT_BYTES,
        secret: Some(secret()),
        tls: None,
        incarnations: Incarnations::default(),
        counters: Default::default(),
        identity: identity_dir.1.clone(),
        fsync_policy: None,
        fsync_policies: Default::default(),
    };
    let node = NodeAddr {
        raft_addr: addr,
        client_addr: String::new(),
        incarnation: None,
    };
    let mut client = network.new_client(2, &node).await;
    let vote = VoteRequest::new(openraft::Vote::new(5, 1), None);

    // The impostor never answers a request: a client that sent one would wait forever.
    let call = client.vote(vote, RPCOption::new(Duration::from_secs(1)));
    let err = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the client gave up at the hello")
        .expect_err("refused");

    assert!(
        err.to_string().contains("did not prove the shared secret"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        received.lock().expect("seen").is_empty(),
        "the vote was never sent"
    );
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_mutual_tls_replicate_into_identical_wals() {
    let links = Links {
        secret: Some(secret()),
        tls: Some(Arc::new(TestCa::new("cluster CA"))),
    };
    let nodes = start_cluster(3, links).await;
    let leader = leader_of(&nodes).await;
    let mut last = 0;
    for n in 0..10 {
        let written = nodes[(leader - 1) as usize]
            .raft
            .client_write(command(n))
            .await
            .expect("write through the leader");
        last = written.log_id.index;
    }
    wait_applied(&nodes.iter().collect::<Vec<_>>(), last).await;
    let reference = wal_records(&nodes[0].wal);
    assert_eq!(reference.iter().filter(|r| r.2 == 2).count(), 10);
    for node in &nodes[1..] {
        assert_eq!(wal_records(&node.wal), reference, "node {}", node.id);
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_node_and_a_plain_one_do_not_talk_and_the_caller_says_why() {
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::VoteRequest;

    let ca = Arc::new(TestCa::new("cluster CA"));
    let tls_links = Links {
        secret: None,
        tls: Some(Arc::clone(&ca)),
    };
    let tls_node = start_cluster(1, tls_links.clone()).await;
    let plain_node = start_cluster(1, Links::default()).await;
    let tls_addr = single_node_addr(&tls_node).await;
    let plain_addr = single_node_addr(&plain_node).await;

    for (links, addr, expected) in [
        (Links::default(), tls_addr, "closed"),
        (tls_links, plain_addr, "TLS handshake"),
    ] {
        let identity_dir = identity_in_temp_dir(7);
        let mut network = PeerNetwork {
            me: 7,
            client_addrs: Default::default(),
            contacts: Default::default(),
            client_addr: None,
            segment_size_bytes: SEGMENT_BYTES,
            secret: None,
            tls: links.node_tls(),
            incarnations: Incarnations::default(),
            counters: Default::default(),
            identity: identity_dir.1.clone(),
            fsync_policy: None,
            fsync_policies: Default::default(),
        };
        let node = NodeAddr {
            raft_addr: addr,
            client_addr: String::new(),
            incarnation: None,
        };
        let mut client = network.new_client(1, &node).await;
        let vote = VoteRequest::new(openraft::Vote::new(9, 7), None);
        let call = client.vote(vote, RPCOption::new(Duration::from_secs(1)));
        let err = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the call ends")
            .expect_err("no vote across TLS and plain");
        assert!(err.to_string().contains(expected), "{err}");
    }
    for node in tls_node.into_iter().chain(plain_node) {
        assert_eq!(
            node.raft.metrics().borrow().current_term,
            1,
            "no vote reached it"
        );
        node.stop().await;
    }
}

/// Records the entries it applies, in order; the engine's state machine is not built yet.
struct RecordingStateMachine {
    applied: Arc<Mutex<Vec<Entry>>>,
    last: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeAddr>,
}

const NO_SNAPSHOTS: &str = "the stand-in state machine builds no snapshots (policy Never)";

impl RaftSnapshotBuilder<RaftTypes> for RecordingStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<RaftTypes>, StorageError> {
        unreachable!("{NO_SNAPSHOTS}")
    }
}

impl RaftStateMachine<RaftTypes> for RecordingStateMachine {
    type SnapshotBuilder = RecordingStateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeAddr>), StorageError> {
        Ok((self.last, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<RaftReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        for entry in entries {
            self.last = Some(entry.log_id);
            if let EntryPayload::Membership(membership) = &entry.payload {
                self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
            self.applied.lock().expect("applied").push(entry);
            replies.push(RaftReply::default());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        unreachable!("{NO_SNAPSHOTS}")
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError> {
        unreachable!("{NO_SNAPSHOTS}")
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, NodeAddr>,
        _snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError> {
        unreachable!("{NO_SNAPSHOTS}")
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<RaftTypes>>, StorageError> {
        Ok(None)
    }
}
