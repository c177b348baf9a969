//! The listener: accepts TCP connections, runs the optional TLS handshake, enforces the
//! connection limit (spec §8.4) and drives graceful shutdown.

use super::auth::TokenVerifier;
use super::connection::{self, CLOSING_DRAIN, ConnectionEnv};
use super::observer::{NoObserver, OpenConnection, ServerObserver};
use super::session::SessionShared;
use super::settings::ServerSettings;
use super::tls::{TLS_HANDSHAKE_TIMEOUT, TlsError};
use crate::service::{ConnectionContext, OpHandler};
use bytes::BytesMut;
use rstmdb_protocol::ErrorCode;
use rstmdb_protocol::error::RcpError;
use rstmdb_protocol::frame::FrameCodec;
use rstmdb_protocol::message::{Response, encode_response};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

/// How long graceful shutdown waits for connections to answer what they have in flight before
/// it drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Refused (over-limit) connections that may be served at once: TLS handshake, the
/// `RATE_LIMITED` frame and the Closing drain take up to seconds each. Beyond this a refused
/// connection gets the frame only if the socket takes it at once, and is closed right away, so a
/// connection flood cannot pile up tasks and sockets.
pub const MAX_LINGERING_REFUSALS: usize = 64;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    env: Arc<ConnectionEnv>,
    next_connection_id: AtomicU64,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the TLS material (if any) and binds the listening socket.
    pub async fn bind(
        settings: ServerSettings,
        handler: Arc<dyn OpHandler>,
    ) -> Result<Server, ServerError> {
        let tls = settings
            .tls
            .as_ref()
            .map(|tls| tls.acceptor())
            .transpose()?;
        let listener = TcpListener::bind(settings.bind_addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: settings.bind_addr,
                source,
            })?;
        let session = SessionShared {
            verifier: TokenVerifier::new(&settings.auth),
            max_frame_bytes: settings.max_frame_bytes,
        };
        let env = ConnectionEnv {
            session: Arc::new(session),
            handler,
            idle_timeout: settings.idle_timeout,
            write_timeout: settings.write_timeout,
            shutdown: CancellationToken::new(),
            observer: Arc::new(NoObserver),
        };
        Ok(Server {
            listener,
            tls,
            max_connections: settings.max_connections,
            env: Arc::new(env),
            next_connection_id: AtomicU64::new(1),
        })
    }

    /// Reports connections, requests and errors to `observer` (the metrics, spec §10).
    pub fn with_observer(mut self, observer: Arc<dyn ServerObserver>) -> Server {
        let mut env = ConnectionEnv::clone(&self.env);
        env.observer = observer;
        self.env = Arc::new(env);
        self
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets every connection answer
    /// what it has in flight (at most [`SHUTDOWN_GRACE`]), and calls the handler's shutdown hook.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let limit = Arc::new(Semaphore::new(
            self.max_connections.min(Semaphore::MAX_PERMITS),
        ));
        let lingering_refusals = Arc::new(Semaphore::new(MAX_LINGERING_REFUSALS));
        let mut connections = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        // Responses are written whole; Nagle would only delay them.
                        let _ = tcp.set_nodelay(true);
                        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
                        let permit = limit.clone().try_acquire_owned().ok();
                        let refusal = match permit {
                            Some(_) => None,
                            None => match lingering_refusals.clone().try_acquire_owned() {
                                Ok(refusal) => Some(refusal),
                                Err(_) => {
                                    self.refuse_at_once(tcp, id, peer);
                                    continue;
                                }
                            },
                        };
                        let accepted = Accepted {
                            id,
                            peer,
                            permit,
                            _refusal: refusal,
                            max_connections: self.max_connections,
                            env: self.env.clone(),
                        };
                        connections.spawn(accepted.run(tcp, self.tls.clone()));
                    }
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.listener);
        tracing::info!(
            connections = connections.len(),
            "shutting down: no longer accepting; finishing requests in flight"
        );
        self.env.shutdown.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                connections = connections.len(),
                "shutdown grace period over; dropping the remaining connections"
            );
            connections.shutdown().await;
        }
        self.env.handler.shutdown().await;
        tracing::info!("shutdown complete");
    }

    /// A refusal while [`MAX_LINGERING_REFUSALS`] others are under way: the `RATE_LIMITED`
    /// frame if the socket buffer takes it now (never with TLS, which needs a handshake), then
    /// an immediate close, without a task.
    fn refuse_at_once(&self, tcp: TcpStream, id: u64, peer: SocketAddr) {
        let sent = self.tls.is_none()
            && refusal_frame(self.max_connections)
                .is_some_and(|frame| matches!(tcp.try_write(&frame), Ok(n) if n == frame.len()));
        if sent {
            self.env.observer.error_sent(&ErrorCode::RateLimited);
        }
        tracing::debug!(
            conn = id,
            %peer,
            limit = self.max_connections,
            sent,
            "connection limit reached and refusals backed up; closed at once"
        );
    }
}

/// A freshly accepted socket and what it needs.
struct Accepted {
    id: u64,
    peer: SocketAddr,
    /// `None` when the connection limit is reached.
    permit: Option<OwnedSemaphorePermit>,
    /// Held while a refused connection is served (one of [`MAX_LINGERING_REFUSALS`]).
    _refusal: Option<OwnedSemaphorePermit>,
    max_connections: usize,
    env: Arc<ConnectionEnv>,
}

impl Accepted {
    async fn run(self, tcp: TcpStream, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve(tcp).await;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => self.serve(stream).await,
            Ok(Err(err)) => {
                tracing::debug!(conn = self.id, peer = %self.peer, %err, "TLS handshake failed");
            }
            Err(_) => {
                tracing::debug!(conn = self.id, peer = %self.peer, "TLS handshake timed out");
            }
        }
    }

    async fn serve<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(permit) = self.permit else {
            tracing::warn!(
                conn = self.id,
                peer = %self.peer,
                limit = self.max_connections,
                "connection limit reached; refusing"
            );
            return refuse_over_limit(stream, self.max_connections, &*self.env.observer).await;
        };
        // Dropped on every way out of here, including this task being aborted at shutdown.
        let _counted = OpenConnection::new(&self.env.observer);
        tracing::debug!(conn = self.id, peer = %self.peer, "connection opened");
        let (context, outbound) = ConnectionContext::new(self.id, self.peer);
        connection::serve(stream, context, outbound, self.env).await;
        tracing::debug!(conn = self.id, "connection closed");
        drop(permit);
    }
}

/// One binary `RATE_LIMITED` frame, then the Closing procedure (§8.4, §2.8).
async fn refuse_over_limit<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    limit: usize,
    observer: &dyn ServerObserver,
) {
    let Some(frame) = refusal_frame(limit) else {
        return;
    };
    observer.error_sent(&ErrorCode::RateLimited);
    if stream.write_all(&frame).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(CLOSING_DRAIN, async {
        while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The binary `RATE_LIMITED` frame of §8.4 (`None` only if encoding fails, which is a bug).
fn refusal_frame(limit: usize) -> Option<BytesMut> {
    // The exact configured limit: the protocol crate's constructor takes a u32, the config a u64.
    let error = RcpError::connection_limit(u32::try_from(limit).unwrap_or(u32::MAX))
        .with_detail("limit", limit);
    let mut frame = BytesMut::new();
    let payload = encode_response(&Response::error("", error));
    FrameCodec::default().encode(payload, &mut frame).ok()?;
    Some(frame)
}
