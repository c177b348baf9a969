//! The way from a node to its leader: writes relayed there, and linearizable reads confirmed
//! there ([`Forwarder::linearize`]).
//!
//! Writes sent to a node that does not lead are relayed to the leader (`docs/cluster.md`
//! section 9, spec §12.2): the public clients know nothing of leaders, so any node takes a
//! write. The follower waits for a leader (an election may be under way) up to
//! `write_timeout_ms` from the request's start, sends the request over a node-to-node
//! connection, and relays the leader's response unchanged.
//!
//! What a client may be told:
//!
//! - the leader's response, success or error, as the leader gave it;
//! - `REPLICATION_TIMEOUT` `no_leader` when no leader could be reached in time: the request
//!   never reached one, so nothing was applied;
//! - `REPLICATION_TIMEOUT` `commit_unknown` when the connection failed after the request was
//!   sent: the leader may have applied it, and a retry with its idempotency key resolves it.
//!
//! A leader that lost its lead while the request travelled answers `READ_ONLY_MODE` or
//! `no_leader` without applying it; the follower then tries the new leader, within the same
//! deadline.

use super::peer_client::{ForwardError, PeerClient, PeerNetwork};
use super::read_floor::ReadFloor;
use super::rpc::{ForwardedRequest, ForwardedResponse, RaftRequest, RaftResponse};
use super::types::{NodeAddr, NodeId, RaftTypes};
use openraft::Raft;
use openraft::network::RaftNetworkFactory;
use rstmdb_protocol::{ErrorCode, RcpError};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Forwarded requests in flight from one node at once (each holds a node-to-node connection
/// for its round trip); more wait. The leader serves at most 64 peer connections, replication
/// and votes included.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 32;

/// How long a follower waits between two looks for a leader.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// Most writes of one connection relayed in one message: a lane's queue is sent whole, so
/// a pipelining client's writes share the leader's groups instead of waiting one by one.
pub const MAX_FORWARD_BATCH: usize = 64;

/// Runs requests relayed by followers, on the leader: the service's dispatcher.
pub trait ForwardTarget: Send + Sync + 'static {
    /// Queues every request now, in order (as a client connection's would be), and answers
    /// each, in order.
    fn run(
        &self,
        requests: Vec<ForwardedRequest>,
    ) -> Pin<Box<dyn Future<Output = Vec<ForwardedResponse>> + Send>>;
}

/// Where the peer listener finds the [`ForwardTarget`]; set once the service exists.
pub type ForwardSlot = Arc<OnceLock<Arc<dyn ForwardTarget>>>;

/// Where a write goes.
#[derive(Debug)]
pub enum Route {
    /// This node leads (now): run it here.
    Local,
    /// The leader's response.
    Relayed(ForwardedResponse),
}

/// A follower's way to the leader.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft<RaftTypes>,
    me: NodeId,
    network: PeerNetwork,
    write_timeout: Duration,
    idle: Mutex<HashMap<NodeId, Vec<PeerClient>>>,
    in_flight: Semaphore,
    read_rounds: ReadRounds,
    /// The read indexes this node hands out while it leads.
    read_floor: ReadFloor,
}

/// Linearizable reads waiting for a read index: one fetch at a time, shared by every read
/// that arrived before it started.
#[derive(Default)]
struct ReadRounds {
    /// The round that the next fetch serves.
    waiting: Mutex<Arc<ReadRound>>,
    /// Held by the read fetching its round's index.
    sending: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct ReadRound {
    result: OnceLock<Result<Option<u64>, String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("me", &self.inner.me)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended.
enum Attempt {
    /// One response per request, in order.
    Answered(Vec<ForwardedResponse>),
    /// Not delivered (no connection): nothing ran.
    NotSent(String),
    /// Sent, and the connection failed before the answer.
    Lost(String),
}

impl Forwarder {
    pub fn new(
        raft: Raft<RaftTypes>,
        me: NodeId,
        network: PeerNetwork,
        write_timeout: Duration,
        read_floor: ReadFloor,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft,
                me,
                network,
                write_timeout,
                read_floor,
                idle: Mutex::new(HashMap::new()),
                in_flight: Semaphore::new(MAX_FORWARDS_IN_FLIGHT),
                read_rounds: ReadRounds::default(),
            }),
        }
    }

    /// How long a request may wait for a leader and its answer (`cluster.write_timeout_ms`).
    pub fn write_timeout(&self) -> Duration {
        self.inner.write_timeout
    }

    /// Whether this node is the leader now (a write should then run here).
    pub fn leads(&self) -> bool {
        self.inner.raft.metrics().borrow().current_leader == Some(self.inner.me)
    }

    /// Sends `requests` (one connection's writes, in order) to the leader in one message,
    /// or says that this node leads; within `write_timeout` from `started`. One answer per
    /// request, in order. Requests the leader did not run because it lost its lead are sent
    /// again, in order, to the next leader.
    pub async fn forward(
        &self,
        requests: Vec<ForwardedRequest>,
        started: Instant,
    ) -> Vec<Result<Route, RcpError>> {
        let deadline = started + self.inner.write_timeout;
        let mut answers: Vec<Option<Result<Route, RcpError>>> =
            requests.iter().map(|_| None).collect();
        // Positions still to send, in order.
        let mut waiting: Vec<usize> = (0..requests.len()).collect();
        let settle_all = |answers: &mut Vec<Option<Result<Route, RcpError>>>,
                          waiting: &[usize],
                          error: RcpError| {
            for &i in waiting {
                answers[i] = Some(Err(error.clone()));
            }
        };
        while !waiting.is_empty() {
            let Some((leader, leader_node)) = self.wait_for_leader(deadline).await else {
                let error = RcpError::no_leader(format!(
                    "no leader was reachable within {} ms; the write was not applied",
                    self.inner.write_timeout.as_millis()
                ));
                settle_all(&mut answers, &waiting, error);
                break;
            };
            if leader == self.inner.me {
                for &i in &waiting {
                    answers[i] = Some(Ok(Route::Local));
                }
                break;
            }
            let batch = waiting.iter().map(|&i| requests[i].clone()).collect();
            let attempt =
                tokio::time::timeout_at(deadline, self.attempt(leader, &leader_node, batch)).await;
            let retry = match attempt {
                Ok(Attempt::Answered(responses)) if responses.len() == waiting.len() => {
                    let mut again = Vec::new();
                    for (&i, response) in waiting.iter().zip(responses) {
                        if not_applied_elsewhere(&response) {
                            again.push(i);
                        } else {
                            answers[i] = Some(Ok(Route::Relayed(response)));
                        }
                    }
                    waiting = again;
                    !waiting.is_empty()
                }
                Ok(Attempt::Answered(responses)) => {
                    let error = RcpError::commit_unknown(format!(
                        "the leader (node {leader}) answered {} of {} writes; they may still \
                         commit, and a retry with their idempotency keys resolves it",
                        responses.len(),
                        waiting.len()
                    ));
                    settle_all(&mut answers, &waiting, error);
                    break;
                }
                // Unreachable: nothing ran there.
                Ok(Attempt::NotSent(why)) => {
                    tracing::debug!(leader, %why, "forwarded writes did not reach the leader");
                    true
                }
                Ok(Attempt::Lost(why)) => {
                    let error = RcpError::commit_unknown(format!(
                        "the connection to the leader (node {leader}) failed after the write \
                         was sent ({why}); it may still commit, and a retry with its \
                         idempotency key resolves it"
                    ));
                    settle_all(&mut answers, &waiting, error);
                    break;
                }
                Err(_) => {
                    let error = RcpError::commit_unknown(format!(
                        "the leader (node {leader}) did not answer within {} ms; the write may \
                         still commit, and a retry with its idempotency key resolves it",
                        self.inner.write_timeout.as_millis()
                    ));
                    settle_all(&mut answers, &waiting, error);
                    break;
                }
            };
            if retry {
                if Instant::now() + LEADER_POLL >= deadline {
                    let error = RcpError::no_leader(
                        "the leader changed and no new one took the write in time; it was not \
                         applied",
                    );
                    settle_all(&mut answers, &waiting, error);
                    break;
                }
                tokio::time::sleep(LEADER_POLL).await;
            }
        }
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| Err(RcpError::internal("a forwarded write got no answer")))
            })
            .collect()
    }

    /// The leader and its addresses, once one is known; `None` at the deadline.
    async fn wait_for_leader(&self, deadline: Instant) -> Option<(NodeId, NodeAddr)> {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let found = {
                let m = metrics.borrow_and_update();
                m.current_leader.and_then(|leader| {
                    m.membership_config
                        .membership()
                        .get_node(&leader)
                        .map(|node| (leader, node.clone()))
                })
            };
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// One request to the leader over a pooled connection.
    async fn exchange(
        &self,
        leader: NodeId,
        leader_node: &NodeAddr,
        request: RaftRequest,
    ) -> Result<RaftResponse, ForwardError> {
        let Ok(_permit) = self.inner.in_flight.acquire().await else {
            return Err(ForwardError::NotSent(
                "the node is shutting down".to_owned(),
            ));
        };
        let mut client = match self.take_idle(leader) {
            Some(client) => client,
            None => {
                self.inner
                    .network
                    .clone()
                    .new_client(leader, leader_node)
                    .await
            }
        };
        let response = client.exchange(request).await?;
        self.put_idle(leader, client);
        Ok(response)
    }

    async fn attempt(
        &self,
        leader: NodeId,
        leader_node: &NodeAddr,
        requests: Vec<ForwardedRequest>,
    ) -> Attempt {
        match self
            .exchange(leader, leader_node, RaftRequest::Forward(requests))
            .await
        {
            Ok(RaftResponse::Forward(responses)) => Attempt::Answered(responses),
            Ok(other) => Attempt::Lost(format!("unexpected answer {other:?}")),
            Err(ForwardError::NotSent(why)) => Attempt::NotSent(why),
            Err(ForwardError::Lost(why)) => Attempt::Lost(why),
        }
    }

    /// Waits until this node has applied every entry committed before the call, as the
    /// leader confirms it with a quorum: what a linearizable read needs (`docs/cluster.md`
    /// section 8). The read index comes from the leader (`super::read_floor`), this node or
    /// another; reads that arrive while one is being fetched share the next
    /// fetch. Within `write_timeout` from `started`.
    pub async fn linearize(&self, started: Instant) -> Result<(), RcpError> {
        let deadline = started + self.inner.write_timeout;
        let unconfirmed = |why: &str| {
            RcpError::no_leader(format!(
                "the read could not be confirmed by a leader within {} ms ({why})",
                self.inner.write_timeout.as_millis()
            ))
        };
        loop {
            let read = tokio::time::timeout_at(deadline, self.read_index(deadline)).await;
            match read {
                Ok(Ok(read)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let applied = self
                        .inner
                        .raft
                        .wait(Some(left))
                        .applied_index_at_least(read, "read index")
                        .await;
                    return applied
                        .map(|_| ())
                        .map_err(|_| unconfirmed("this node did not catch up in time"));
                }
                Ok(Err(why)) if Instant::now() + LEADER_POLL < deadline => {
                    tracing::debug!(%why, "no read index; asking again");
                    tokio::time::sleep(LEADER_POLL).await;
                }
                Ok(Err(why)) => return Err(unconfirmed(&why)),
                Err(_) => return Err(unconfirmed("no quorum answered")),
            }
        }
    }

    /// The index a read arriving now must wait for, or why there is none (retry). A read
    /// joins the round that is not sent yet: the round's fetch starts after it arrived.
    async fn read_index(&self, deadline: Instant) -> Result<Option<u64>, String> {
        let rounds = &self.inner.read_rounds;
        let round = Arc::clone(&lock(&rounds.waiting));
        let _sending = rounds.sending.lock().await;
        if let Some(result) = round.result.get() {
            return result.clone();
        }
        // Reads arriving from now on wait for the next fetch.
        *lock(&rounds.waiting) = Arc::default();
        let result = self.fetch_read_index(deadline).await;
        let _ = round.result.set(result.clone());
        result
    }

    async fn fetch_read_index(&self, deadline: Instant) -> Result<Option<u64>, String> {
        let Some((leader, leader_node)) = self.wait_for_leader(deadline).await else {
            return Err("no leader".to_owned());
        };
        if leader == self.inner.me {
            return self
                .inner
                .read_floor
                .leader_read_index(&self.inner.raft)
                .await;
        }
        match self
            .exchange(leader, &leader_node, RaftRequest::ReadIndex)
            .await
        {
            Ok(RaftResponse::ReadIndex(answer)) => answer,
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(ForwardError::NotSent(why) | ForwardError::Lost(why)) => Err(why),
        }
    }

    fn take_idle(&self, leader: NodeId) -> Option<PeerClient> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&leader)
            .and_then(Vec::pop)
    }

    fn put_idle(&self, leader: NodeId, client: PeerClient) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Connections to a node that no longer leads are dropped.
        idle.retain(|node, _| *node == leader);
        let clients = idle.entry(leader).or_default();
        if clients.len() < MAX_FORWARDS_IN_FLIGHT {
            clients.push(client);
        }
    }
}

/// Whether the leader answered that it did not run the request because it does not lead
/// (any more): `READ_ONLY_MODE`, or `REPLICATION_TIMEOUT` `no_leader`.
fn not_applied_elsewhere(response: &ForwardedResponse) -> bool {
    match &response.error {
        Some(ErrorCode::ReadOnlyMode) => true,
        Some(ErrorCode::ReplicationTimeout) => {
            serde_json::from_str::<serde_json::Value>(&response.payload)
                .is_ok_and(|payload| payload["error"]["details"]["reason"] == "no_leader")
        }
        _ => false,
    }
}
