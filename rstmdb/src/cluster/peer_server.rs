//! The answering side of node-to-node RPC (`docs/cluster.md` section 9): a listener on
//! `cluster.raft_addr` that checks each caller's hello, then hands its requests to the local
//! openraft node and sends back whatever it answers.

use super::client_addrs::{ClientAddrs, FsyncPolicies, PeerContacts};
use super::forward::{ForwardSlot, MAX_FORWARD_BATCH};
use super::identity::NodeIdentity;
use super::incarnation::{self, Incarnations};
use super::peer_connection::{PeerConnection, PeerError, tuned};
use super::peer_tls::PeerTls;
use super::read_floor::ReadFloor;
use super::rpc::{Hello, HelloReply, Proof, RaftRequest, RaftResponse};
use super::secret::ClusterSecret;
use super::types::{NodeId, RaftTypes};
use openraft::Raft;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Connections from peers served at once; more wait in the listen backlog. A cluster has a
/// handful of nodes, each opening a few connections (one per replication stream and vote).
pub const MAX_PEER_CONNECTIONS: usize = 64;

/// A caller that has not finished TLS and said hello by then is dropped: a stranger cannot hold
/// a connection.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// What every peer connection of a node needs.
#[derive(Clone)]
pub struct PeerService {
    pub raft: Raft<RaftTypes>,
    pub me: NodeId,
    pub segment_size_bytes: u64,
    /// `cluster.secret_file`: callers must prove it.
    pub secret: Option<ClusterSecret>,
    /// Mutual TLS with every caller, when `[tls]` is on.
    pub tls: Option<PeerTls>,
    /// Where the callers said clients reach them.
    pub client_addrs: ClientAddrs,
    /// Where clients reach this node, told to every caller.
    pub client_addr: Option<String>,
    /// When each caller last sent a request.
    pub contacts: PeerContacts,
    /// This node's data directory, and those the callers presented.
    pub incarnations: Incarnations,
    /// This node's cluster.
    pub identity: NodeIdentity,
    /// The read indexes this node hands out while it leads.
    pub read_floor: ReadFloor,
    /// This node's `storage.fsync_policy`, told to every caller, and the callers'.
    pub fsync_policy: Option<String>,
    pub fsync_policies: FsyncPolicies,
    /// Runs the writes followers relay here, once the service is up.
    pub forward_target: ForwardSlot,
}

impl std::fmt::Debug for PeerService {
    // openraft's handle has no Debug of its own.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerService")
            .field("me", &self.me)
            .field("segment_size_bytes", &self.segment_size_bytes)
            .field("secret", &self.secret)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PeerService {
    /// Why a caller that passed the hello's checks is still refused: one of the two data
    /// directories is not the one the other's membership knows (`super::incarnation`).
    fn identity_refusal(&self, hello: &Hello) -> Option<String> {
        if let Some(reason) = self
            .identity
            .refusal(hello.from, hello.cluster_id.as_deref())
        {
            return Some(reason);
        }
        let own = Some(self.identity.incarnation());
        if let Some(reason) = incarnation::mismatch(self.me, hello.to_incarnation.as_deref(), own) {
            return Some(format!("node {} refuses this node: {reason}", hello.from));
        }
        let bound = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&hello.from)
            .and_then(|node| node.incarnation.clone());
        incarnation::mismatch(hello.from, bound.as_deref(), hello.incarnation.as_deref())
    }

    /// Serves `listener` until the returned future is dropped, which ends every connection.
    pub async fn serve(self, listener: TcpListener) {
        let mut connections = JoinSet::new();
        loop {
            while connections.len() >= MAX_PEER_CONNECTIONS {
                connections.join_next().await;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let service = self.clone();
                        connections.spawn(async move {
                            if let Err(err) = service.serve_connection(stream, peer).await {
                                tracing::debug!(%peer, %err, "peer connection ended");
                            }
                        });
                    }
                    Err(err) => {
                        // Out of descriptors, say: wait rather than spin.
                        tracing::warn!(%err, "cannot accept a peer connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }

    async fn serve_connection(&self, stream: TcpStream, peer: SocketAddr) -> Result<(), PeerError> {
        let opening = async {
            let mut connection = match &self.tls {
                None => PeerConnection::new(stream),
                Some(tls) => {
                    let stream = tls.accept(tuned(stream)).await.map_err(|source| {
                        tracing::warn!(%peer, %source, "a peer failed the TLS handshake");
                        PeerError::Tls {
                            addr: peer.to_string(),
                            source,
                        }
                    })?;
                    PeerConnection::over(stream)
                }
            };
            let hello = connection.receive::<Hello>().await;
            if let Err(PeerError::Wire(_)) = &hello
                && self.tls.is_none()
            {
                tracing::warn!(
                    "a peer sent something other than a node hello: a node with TLS on? \
                     (cluster nodes use TLS all or none)"
                );
            }
            Ok::<_, PeerError>((connection, hello?))
        };
        let (mut connection, hello) = tokio::time::timeout(HELLO_TIMEOUT, opening)
            .await
            .map_err(|_| PeerError::Unexpected("no hello in time".to_owned()))??;
        let refusal = hello.refusal(self.me, self.segment_size_bytes, self.secret.is_some());
        if let Some(reason) = refusal {
            tracing::warn!(from = hello.from, %reason, "refused a peer");
            connection.send(&HelloReply::Refused { reason }).await?;
            return Ok(());
        }
        if let (Some(secret), Some(caller_nonce)) = (&self.secret, &hello.nonce) {
            let nonce = ClusterSecret::nonce();
            let challenge = HelloReply::Challenge {
                node_id: self.me,
                proof: secret.prove(self.me, caller_nonce),
                nonce: nonce.clone(),
            };
            connection.send(&challenge).await?;
            let proof: Proof = tokio::time::timeout(HELLO_TIMEOUT, connection.receive())
                .await
                .map_err(|_| PeerError::Unexpected("no proof in time".to_owned()))??;
            if !secret.verify(hello.from, &nonce, &proof.proof) {
                let reason = format!("node {} did not prove the shared secret", hello.from);
                tracing::warn!(from = hello.from, %reason, "refused a peer");
                connection.send(&HelloReply::Refused { reason }).await?;
                return Ok(());
            }
        }
        if let Some(reason) = self.identity_refusal(&hello) {
            self.incarnations.log_refusal(hello.from, &reason);
            connection.send(&HelloReply::Refused { reason }).await?;
            return Ok(());
        }
        if let Some(client_addr) = &hello.client_addr {
            self.client_addrs.record(hello.from, client_addr);
        }
        if let Some(policy) = &hello.fsync_policy {
            self.fsync_policies.record(hello.from, policy);
        }
        if let Some(presented) = &hello.incarnation {
            self.incarnations.record(hello.from, presented);
        }
        if let Err(err) = self.identity.adopt(hello.from, hello.cluster_id.as_deref()) {
            let reason = format!("node {} cannot record its cluster id: {err}", self.me);
            connection.send(&HelloReply::Refused { reason }).await?;
            return Ok(());
        }
        connection
            .send(&HelloReply::Welcome {
                node_id: self.me,
                client_addr: self.client_addr.clone(),
                incarnation: Some(self.identity.incarnation().to_owned()),
                cluster_id: self.identity.cluster_id(),
                fsync_policy: self.fsync_policy.clone(),
            })
            .await?;
        connection.handshake_done();
        loop {
            let request = match connection.receive::<RaftRequest>().await {
                Ok(request) => request,
                Err(PeerError::Closed) => return Ok(()),
                Err(PeerError::Decode(err)) => {
                    let reason = format!("not a request: {err}");
                    connection.send(&RaftResponse::Refused { reason }).await?;
                    return Err(PeerError::Decode(err));
                }
                Err(err) => return Err(err),
            };
            self.contacts.touch(hello.from);
            let response = match request {
                RaftRequest::AppendEntries(request) => {
                    RaftResponse::AppendEntries(self.raft.append_entries(request).await)
                }
                RaftRequest::Vote(request) => RaftResponse::Vote(self.raft.vote(request).await),
                RaftRequest::ReadIndex => {
                    RaftResponse::ReadIndex(self.read_floor.leader_read_index(&self.raft).await)
                }
                RaftRequest::TransferLeader => {
                    tracing::info!(
                        from = hello.from,
                        "campaigning: the leader hands over its lead"
                    );
                    RaftResponse::TransferLeader(
                        self.raft
                            .trigger()
                            .elect()
                            .await
                            .map_err(|err| err.to_string()),
                    )
                }
                RaftRequest::Forward(requests) if requests.len() > MAX_FORWARD_BATCH => {
                    RaftResponse::Refused {
                        reason: format!(
                            "{} forwarded writes in one message; at most {MAX_FORWARD_BATCH}",
                            requests.len()
                        ),
                    }
                }
                RaftRequest::Forward(requests) => match self.forward_target.get() {
                    Some(target) => RaftResponse::Forward(target.run(requests).await),
                    None => RaftResponse::Refused {
                        reason: "this node does not take forwarded writes yet (starting)"
                            .to_owned(),
                    },
                },
            };
            connection.send(&response).await?;
        }
    }
}
