//! Several `rstmdb serve` processes forming one cluster on 127.0.0.1 (spec §12): each node has
//! its own data directory and configuration file, can be killed with SIGKILL (by its pid) and
//! started again on the same directory and ports.

use crate::binary::{clear_rstmdb_env, forward_lines};
use rstmdb_client::{Client, ClientOptions, ReconnectPolicy};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The timeouts the test clusters run with: elections settle quickly on loopback.
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 600;

/// `count` ports free at once: the probes stay open until all are picked, so none repeats.
fn distinct_free_ports(count: u64) -> Vec<u16> {
    let probes: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe socket"))
        .collect();
    probes
        .iter()
        .map(|probe| probe.local_addr().expect("the probe's address").port())
        .collect()
}

/// One node: its addresses and configuration, and its process while it runs.
#[derive(Debug)]
pub struct TestNode {
    pub id: u64,
    pub client_addr: String,
    pub raft_addr: String,
    /// `/metrics`, `/health` and `/ready`.
    pub metrics_addr: std::net::SocketAddr,
    config: PathBuf,
    process: Option<NodeProcess>,
    /// Stopped with SIGSTOP: it would take any request and never answer.
    frozen: bool,
}

#[derive(Debug)]
struct NodeProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for NodeProcess {
    /// A test that fails leaves no node behind (SIGKILL to this child's pid, which also ends
    /// a frozen one).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A cluster of `rstmdb serve` processes.
#[derive(Debug)]
pub struct TestCluster {
    binary: PathBuf,
    pub nodes: Vec<TestNode>,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// `size` nodes, every one a voter of the initial membership, with `extra` appended to
    /// each node's `[cluster]` table (writes are forwarded unless it says otherwise). Returns once every node listens for clients.
    pub fn start(binary: &Path, size: u64, extra: &str) -> TestCluster {
        TestCluster::start_with_spares(binary, size, 0, extra)
    }

    /// [`TestCluster::start`] with `spares` more nodes (ids after the members'), running
    /// with no Raft state and not in `members`: they wait to be added (CLUSTER_ADD_LEARNER).
    ///
    /// Ports are picked free, but another test may take one before its node binds it: a
    /// cluster whose node could not bind is stopped and started again on other ports.
    pub fn start_with_spares(binary: &Path, size: u64, spares: u64, extra: &str) -> TestCluster {
        const ATTEMPTS: usize = 5;
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match TestCluster::try_start(binary, size, spares, extra) {
                Ok(cluster) => return cluster,
                Err(why) => failures.push(why),
            }
        }
        panic!("the cluster did not start in {ATTEMPTS} attempts: {failures:#?}");
    }

    fn try_start(
        binary: &Path,
        size: u64,
        spares: u64,
        extra: &str,
    ) -> Result<TestCluster, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16, u16)> = distinct_free_ports(3 * (size + spares))
            .chunks(3)
            .map(|ports| (ports[0], ports[1], ports[2]))
            .collect();
        let members: Vec<String> = ports
            .iter()
            .take(usize::try_from(size).expect("a cluster size"))
            .enumerate()
            .map(|(i, (_, raft, _))| format!("\"{}=127.0.0.1:{raft}\"", i + 1))
            .collect();
        let mut nodes = Vec::new();
        for (i, (client, raft, metrics)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let data_dir = dir.path().join(format!("node{id}"));
            let config = dir.path().join(format!("node{id}.toml"));
            let toml = format!(
                "[network]\nbind_addr = \"127.0.0.1:{client}\"\n\
                 [metrics]\nenabled = true\nbind_addr = \"127.0.0.1:{metrics}\"\n\
                 [storage]\ndata_dir = \"{}\"\nfsync_policy = \"every_write\"\n\
                 [cluster]\nnode_id = {id}\nraft_addr = \"127.0.0.1:{raft}\"\n\
                 members = [{}]\n\
                 election_timeout_min_ms = 300\nelection_timeout_max_ms = {ELECTION_TIMEOUT_MAX_MS}\n\
                 heartbeat_interval_ms = 100\n\
                 {extra}\n",
                data_dir.display(),
                members.join(", "),
            );
            std::fs::write(&config, toml).expect("write the node's configuration");
            nodes.push(TestNode {
                id,
                client_addr: format!("127.0.0.1:{client}"),
                raft_addr: format!("127.0.0.1:{raft}"),
                metrics_addr: ([127, 0, 0, 1], *metrics).into(),
                config,
                process: None,
                frozen: false,
            });
        }
        let mut cluster = TestCluster {
            binary: binary.to_path_buf(),
            nodes,
            dir,
        };
        for id in 1..=size + spares {
            cluster.spawn(id);
        }
        for id in 1..=size + spares {
            cluster.try_wait_listening(id)?;
        }
        Ok(cluster)
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[usize::try_from(id - 1).expect("a node id")]
    }

    fn node_mut(&mut self, id: u64) -> &mut TestNode {
        &mut self.nodes[usize::try_from(id - 1).expect("a node id")]
    }

    /// Where node `id` keeps its data.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    fn spawn(&mut self, id: u64) {
        let binary = self.binary.clone();
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is already running");
        let mut command = Command::new(&binary);
        command.arg("serve").arg("--config").arg(&node.config);
        clear_rstmdb_env(&mut command);
        let mut child = command
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", binary.display()));
        let (send, lines) = mpsc::channel();
        forward_lines(child.stderr.take().expect("stderr is piped"), send.clone());
        forward_lines(child.stdout.take().expect("stdout is piped"), send);
        node.process = Some(NodeProcess {
            child,
            lines,
            seen: Vec::new(),
        });
    }

    fn wait_listening(&mut self, id: u64) {
        if let Err(why) = self.try_wait_listening(id) {
            panic!("{why}");
        }
    }

    /// Waits for node `id` to listen; what it said if it stopped or took too long.
    fn try_wait_listening(&mut self, id: u64) -> Result<(), String> {
        let process = self.node_mut(id).process.as_mut().expect("the node runs");
        loop {
            let Ok(line) = process.lines.recv_timeout(Duration::from_secs(20)) else {
                return Err(format!(
                    "node {id} never listened; it said {:#?}",
                    process.seen
                ));
            };
            let listening = line.contains("rstmdb listening");
            process.seen.push(line);
            if listening {
                return Ok(());
            }
        }
    }

    /// Kills node `id` with SIGKILL (by its pid): no shutdown, no final sync.
    pub fn kill(&mut self, id: u64) {
        let process = self.node_mut(id).process.take().expect("the node runs");
        drop(process);
    }

    /// Stops node `id` gracefully (SIGTERM by its pid) and waits for it to exit.
    pub fn stop(&mut self, id: u64) {
        self.signal(id, "-TERM");
        let mut process = self.node_mut(id).process.take().expect("the node runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while process.child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "node {id} did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes node `id` with SIGSTOP (by its pid): to the others it is cut off, as in a
    /// partition, and it keeps its state and believes what it believed.
    pub fn freeze(&mut self, id: u64) {
        self.signal(id, "-STOP");
        self.node_mut(id).frozen = true;
    }

    /// Lets a frozen node run again (SIGCONT).
    pub fn thaw(&mut self, id: u64) {
        self.signal(id, "-CONT");
        self.node_mut(id).frozen = false;
    }

    fn signal(&mut self, id: u64, signal: &str) {
        let pid = self
            .node(id)
            .process
            .as_ref()
            .expect("the node runs")
            .child
            .id();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Waits up to `within` for a line holding every one of `needles` in the output of one
    /// of the running nodes `ids` (lines said before the call count too); returns the node and
    /// the line.
    pub fn wait_for_log(
        &mut self,
        ids: &[u64],
        needles: &[&str],
        within: Duration,
    ) -> (u64, String) {
        let deadline = Instant::now() + within;
        loop {
            for &id in ids {
                let Some(process) = self.node_mut(id).process.as_mut() else {
                    continue;
                };
                while let Ok(line) = process.lines.try_recv() {
                    process.seen.push(line);
                }
                let found = process
                    .seen
                    .iter()
                    .find(|line| needles.iter().all(|needle| line.contains(needle)));
                if let Some(line) = found {
                    return (id, line.clone());
                }
            }
            assert!(
                Instant::now() < deadline,
                "no node of {ids:?} logged a line with {needles:?} within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `id` again on its data directory and ports; returns once it listens.
    pub fn restart(&mut self, id: u64) {
        self.spawn(id);
        self.wait_listening(id);
    }

    /// A client of node `id` that does not reconnect on its own.
    pub async fn client(&self, id: u64) -> Client {
        let options = ClientOptions::new(self.node(id).client_addr.clone())
            .reconnect(ReconnectPolicy::disabled())
            .request_timeout(Duration::from_secs(20));
        Client::connect(options).await.expect("client connects")
    }

    /// The leader, once a running node (not a frozen one) says it leads; waits up to
    /// `within`.
    pub async fn leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            for node in self
                .nodes
                .iter()
                .filter(|n| n.process.is_some() && !n.frozen)
            {
                let Ok(client) = Client::connect(
                    ClientOptions::new(node.client_addr.clone())
                        .reconnect(ReconnectPolicy::disabled())
                        .request_timeout(Duration::from_secs(5)),
                )
                .await
                else {
                    continue;
                };
                if let Ok(status) = client.cluster_status().await
                    && status.role == "leader"
                {
                    return node.id;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
