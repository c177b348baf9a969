//! The calling side of node-to-node RPC: openraft's `RaftNetworkFactory` (`docs/cluster.md`
//! section 9). One connection per openraft client, opened on first use with a hello, dropped on
//! any error and opened again on the next call.

use super::client_addrs::{ClientAddrs, FsyncPolicies, PeerContacts, ReplicationCounters};
use super::identity::NodeIdentity;
use super::incarnation::{self, Incarnations};
use super::peer_connection::{PeerConnection, PeerError, tuned};
use super::peer_tls::PeerTls;
use super::rpc::{Hello, HelloReply, PROTOCOL_VERSION, Proof, RaftRequest, RaftResponse};
use super::secret::ClusterSecret;
use super::types::{NodeAddr, NodeId, RaftTypes, Vote};
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, Snapshot};
use std::future::Future;
use tokio::net::TcpStream;

type RpcError = RPCError<NodeId, NodeAddr, RaftError<NodeId>>;

/// Makes a client for each peer openraft talks to.
#[derive(Debug, Clone)]
pub struct PeerNetwork {
    pub me: NodeId,
    pub segment_size_bytes: u64,
    /// `cluster.secret_file`: proved to every peer, and required of it.
    pub secret: Option<ClusterSecret>,
    /// Mutual TLS to every peer, when `[tls]` is on.
    pub tls: Option<PeerTls>,
    /// Told to every peer in the hello (`cluster.client_addr`).
    pub client_addr: Option<String>,
    /// Where the peers say clients reach them, as they welcome this node.
    pub client_addrs: ClientAddrs,
    /// When each peer last answered.
    pub contacts: PeerContacts,
    /// This node's data directory, and those the peers presented.
    pub incarnations: Incarnations,
    /// Entries sent, and replication calls that failed or were abandoned.
    pub counters: ReplicationCounters,
    /// This node's cluster.
    pub identity: NodeIdentity,
    /// This node's `storage.fsync_policy`, told to every peer, and the peers'.
    pub fsync_policy: Option<String>,
    pub fsync_policies: FsyncPolicies,
}

impl RaftNetworkFactory<RaftTypes> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerClient {
        PeerClient {
            hello: Hello {
                protocol: PROTOCOL_VERSION,
                from: self.me,
                to: target,
                segment_size_bytes: self.segment_size_bytes,
                nonce: None,
                client_addr: self.client_addr.clone(),
                incarnation: Some(self.identity.incarnation().to_owned()),
                to_incarnation: node.incarnation.clone(),
                cluster_id: None,
                fsync_policy: self.fsync_policy.clone(),
            },
            secret: self.secret.clone(),
            tls: self.tls.clone(),
            addr: node.raft_addr.clone(),
            connection: None,
            client_addrs: self.client_addrs.clone(),
            contacts: self.contacts.clone(),
            incarnations: self.incarnations.clone(),
            counters: self.counters.clone(),
            identity: self.identity.clone(),
            fsync_policies: self.fsync_policies.clone(),
        }
    }
}

/// Why a forwarded write got no answer.
#[derive(Debug)]
pub enum ForwardError {
    /// It never reached the peer: nothing ran.
    NotSent(String),
    /// The connection failed after it was sent: it may have run.
    Lost(String),
}

/// One peer, as openraft sees it.
#[derive(Debug)]
pub struct PeerClient {
    /// Sent on each new connection, with a fresh nonce when there is a secret.
    hello: Hello,
    secret: Option<ClusterSecret>,
    tls: Option<PeerTls>,
    addr: String,
    connection: Option<PeerConnection>,
    client_addrs: ClientAddrs,
    contacts: PeerContacts,
    incarnations: Incarnations,
    counters: ReplicationCounters,
    identity: NodeIdentity,
    fsync_policies: FsyncPolicies,
}

/// Counts a replication call as dropped unless it is disarmed: openraft abandons a call at
/// its deadline by dropping its future, and the call's connection goes with it.
struct DroppedCall(Option<ReplicationCounters>);

impl Drop for DroppedCall {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take() {
            counters.dropped();
        }
    }
}

impl PeerClient {
    async fn connect(&self) -> Result<PeerConnection, PeerError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|source| PeerError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        let mut connection = match &self.tls {
            None => PeerConnection::new(stream),
            Some(tls) => {
                let stream = tls
                    .connect(&self.addr, tuned(stream))
                    .await
                    .map_err(|source| PeerError::Tls {
                        addr: self.addr.clone(),
                        source,
                    })?;
                PeerConnection::over(stream)
            }
        };
        let nonce = self.secret.as_ref().map(|_| ClusterSecret::nonce());
        // The cluster id as of now: a node that had none may have joined since.
        let hello = Hello {
            nonce: nonce.clone(),
            cluster_id: self.identity.cluster_id(),
            ..self.hello.clone()
        };
        connection.send(&hello).await?;
        let mut reply = connection.receive::<HelloReply>().await?;
        if let HelloReply::Challenge {
            node_id,
            proof,
            nonce: theirs,
        } = &reply
        {
            let (Some(secret), Some(ours)) = (&self.secret, &nonce) else {
                return Err(PeerError::Unexpected(
                    "a challenge, though this node offered no secret".to_owned(),
                ));
            };
            if !secret.verify(*node_id, ours, proof) {
                return Err(self.unproved());
            }
            let proof = Proof {
                proof: secret.prove(hello.from, theirs),
            };
            connection.send(&proof).await?;
            reply = connection.receive::<HelloReply>().await?;
        } else if self.secret.is_some() && matches!(reply, HelloReply::Welcome { .. }) {
            // A node that lets us in without proving the secret is not one of ours.
            return Err(self.unproved());
        }
        match reply {
            HelloReply::Welcome {
                node_id,
                client_addr,
                incarnation: presented,
                cluster_id,
                fsync_policy,
            } if node_id == hello.to => {
                // The callee checks these too; a node that does not is still not counted.
                let bound = hello.to_incarnation.as_deref();
                let refusal = self
                    .identity
                    .refusal(node_id, cluster_id.as_deref())
                    .or_else(|| incarnation::mismatch(node_id, bound, presented.as_deref()));
                if let Some(reason) = refusal {
                    self.incarnations.log_refusal(node_id, &reason);
                    return Err(PeerError::Refused(reason));
                }
                if let Err(err) = self.identity.adopt(node_id, cluster_id.as_deref()) {
                    return Err(PeerError::Refused(format!(
                        "cannot record the cluster id of node {node_id}: {err}"
                    )));
                }
                if let Some(client_addr) = &client_addr {
                    self.client_addrs.record(node_id, client_addr);
                }
                if let Some(policy) = &fsync_policy {
                    self.fsync_policies.record(node_id, policy);
                }
                if let Some(presented) = &presented {
                    self.incarnations.record(node_id, presented);
                }
                connection.handshake_done();
                Ok(connection)
            }
            HelloReply::Welcome { node_id, .. } => Err(PeerError::Refused(format!(
                "{} is node {node_id}, not node {}",
                self.addr, hello.to
            ))),
            HelloReply::Challenge { .. } => {
                Err(PeerError::Unexpected("a second challenge".to_owned()))
            }
            HelloReply::Refused { reason } => {
                self.incarnations.log_refusal(hello.to, &reason);
                Err(PeerError::Refused(reason))
            }
        }
    }

    fn unproved(&self) -> PeerError {
        PeerError::Refused(format!(
            "{} (node {}) did not prove the shared secret",
            self.addr, self.hello.to
        ))
    }

    /// One request and its response. The connection is taken out while the call runs: if
    /// openraft drops the call at its deadline, a half-written exchange is never reused.
    async fn call(&mut self, request: RaftRequest) -> Result<RaftResponse, RpcError> {
        let entries = match &request {
            RaftRequest::AppendEntries(append) => Some(append.entries.len()),
            _ => None,
        };
        let mut dropped = DroppedCall(entries.map(|_| self.counters.clone()));
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            // A peer that is down or refuses is unreachable: openraft backs off.
            None => self.connect().await.map_err(|e| {
                if matches!(e, PeerError::Connect { .. }) {
                    // Nobody listens there: nothing was dropped.
                    dropped.0 = None;
                }
                RPCError::Unreachable(Unreachable::new(&e))
            })?,
        };
        let exchange = async {
            connection.send(&request).await?;
            connection.receive::<RaftResponse>().await
        };
        let response = exchange
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        dropped.0 = None;
        if let Some(entries) = entries {
            self.counters.sent(entries);
        }
        self.connection = Some(connection);
        self.contacts.touch(self.hello.to);
        Ok(response)
    }

    /// One request and its answer on this peer's connection, which stays open for the next
    /// (forwarded writes and read indexes, `super::forward`).
    pub async fn exchange(&mut self, request: RaftRequest) -> Result<RaftResponse, ForwardError> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self
                .connect()
                .await
                .map_err(|e| ForwardError::NotSent(e.to_string()))?,
        };
        connection
            .send(&request)
            .await
            .map_err(|e| ForwardError::Lost(e.to_string()))?;
        match connection.receive::<RaftResponse>().await {
            // Refused unread: the peer does not serve it (yet).
            Ok(RaftResponse::Refused { reason }) => Err(ForwardError::NotSent(reason)),
            Ok(response) => {
                self.connection = Some(connection);
                self.contacts.touch(self.hello.to);
                Ok(response)
            }
            Err(err) => Err(ForwardError::Lost(err.to_string())),
        }
    }

    fn remote(&self, error: RaftError<NodeId>) -> RpcError {
        RPCError::RemoteError(RemoteError::new(self.hello.to, error))
    }
}

fn unexpected(response: RaftResponse) -> RpcError {
    let reason = match response {
        RaftResponse::Refused { reason } => reason,
        other => format!("{other:?}"),
    };
    RPCError::Network(NetworkError::new(&PeerError::Unexpected(reason)))
}

impl RaftNetwork<RaftTypes> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<RaftTypes>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        match self.call(RaftRequest::AppendEntries(request)).await? {
            RaftResponse::AppendEntries(Ok(response)) => Ok(response),
            RaftResponse::AppendEntries(Err(error)) => Err(self.remote(error)),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        match self.call(RaftRequest::Vote(request)).await? {
            RaftResponse::Vote(Ok(response)) => Ok(response),
            RaftResponse::Vote(Err(error)) => Err(self.remote(error)),
            other => Err(unexpected(other)),
        }
    }

    /// Snapshots are checkpoints streamed in frames (`docs/cluster.md` section 7), which are
    /// not built yet: until then a peer that needs one is reported unreachable, and keeps
    /// being retried, rather than handed something incomplete.
    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot<RaftTypes>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<RaftTypes, Fatal<NodeId>>> {
        Err(StreamingError::Unreachable(Unreachable::new(
            &PeerError::Unexpected("snapshot transfer is not built yet".to_owned()),
        )))
    }
}
