//! The listener: accepts TCP connections, runs the optional TLS handshake, enforces the
//! connection limit (spec §8.4) and drives graceful shutdown.

use super::auth::TokenVerifier;
use super::budget::ByteBudget;
use super::connection::{self, CLOSING_DRAIN, ConnectionEnv};
use super::log_limit::LogLimit;
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
    /// Refusals are logged at most this often: a flood must not flood the log too.
    refusal_log: Arc<LogLimit>,
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
            handler_answers_replication_status: handler.answers_replication_status(),
        };
        let before_auth = settings
            .auth
            .required
            .then(|| settings.auth.before_auth.clone());
        let env = ConnectionEnv {
            session: Arc::new(session),
            handler,
            idle_timeout: settings.idle_timeout,
            write_timeout: settings.write_timeout,
            max_pending_bytes: settings.max_pending_bytes.max(1),
            inflight: settings
                .max_inflight_bytes
                .map(|limit| ByteBudget::new(limit.max(1))),
            shutdown: CancellationToken::new(),
            observer: Arc::new(NoObserver),
            before_auth,
            auth_failure_log: Arc::new(LogLimit::default()),
        };
        Ok(Server {
            listener,
            tls,
            max_connections: settings.max_connections,
            env: Arc::new(env),
            next_connection_id: AtomicU64::new(1),
            refusal_log: Arc::new(LogLimit::default()),
        })
    }

    /// Reports connections, requests and errors to `observer` (the metrics, spec §10).
    pub fn with_observer(mut self, observer: Arc<dyn ServerObserver>) -> Server {
        let mut env = ConnectionEnv::clone(&self.env);
        env.observer = observer;
        self.env = Arc::new(env);
        self
    }

    /// `auth.max_unauthenticated_connections`, while auth is required (§13).
    fn max_unauthenticated(&self) -> Option<usize> {
        Some(self.env.before_auth.as_ref()?.max_connections)
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
        let unauthenticated = self
            .max_unauthenticated()
            .map(|max| Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))));
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
                        let admission = self.admit(&limit, unauthenticated.as_ref());
                        let refusal = match &admission {
                            Admission::Admitted { .. } => None,
                            Admission::Refused(error) => {
                                match lingering_refusals.clone().try_acquire_owned() {
                                    Ok(refusal) => Some(refusal),
                                    Err(_) => {
                                        self.refuse_at_once(tcp, id, peer, error);
                                        continue;
                                    }
                                }
                            }
                        };
                        let accepted = Accepted {
                            id,
                            peer,
                            admission,
                            _refusal: refusal,
                            env: self.env.clone(),
                            refusal_log: self.refusal_log.clone(),
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

    /// Takes a slot under the connection limit and, while auth is required, one under the
    /// limit on unauthenticated connections (§8.4, §13); either one missing refuses it.
    fn admit(&self, limit: &Arc<Semaphore>, unauthenticated: Option<&Arc<Semaphore>>) -> Admission {
        let Ok(slot) = limit.clone().try_acquire_owned() else {
            return Admission::Refused(connection_limit(self.max_connections));
        };
        let Some(unauthenticated) = unauthenticated else {
            return Admission::Admitted {
                slot,
                unauthenticated_slot: None,
            };
        };
        match unauthenticated.clone().try_acquire_owned() {
            Ok(unauthenticated_slot) => Admission::Admitted {
                slot,
                unauthenticated_slot: Some(unauthenticated_slot),
            },
            Err(_) => Admission::Refused(RcpError::unauthenticated_limit(
                self.max_unauthenticated().unwrap_or_default() as u64,
            )),
        }
    }

    /// A refusal while [`MAX_LINGERING_REFUSALS`] others are under way: the `RATE_LIMITED`
    /// frame if the socket buffer takes it now (never with TLS, which needs a handshake), then
    /// an immediate close, without a task.
    fn refuse_at_once(&self, tcp: TcpStream, id: u64, peer: SocketAddr, error: &RcpError) {
        let sent = self.tls.is_none()
            && refusal_frame(error)
                .is_some_and(|frame| matches!(tcp.try_write(&frame), Ok(n) if n == frame.len()));
        if sent {
            self.env.observer.error_sent(&ErrorCode::RateLimited);
        }
        tracing::debug!(
            conn = id,
            %peer,
            reason = error.reason(),
            sent,
            "connection refused and refusals backed up; closed at once"
        );
    }
}

/// Whether an accepted socket is served.
enum Admission {
    Admitted {
        /// One of `network.max_connections`.
        slot: OwnedSemaphorePermit,
        /// One of `auth.max_unauthenticated_connections`, while auth is required.
        unauthenticated_slot: Option<OwnedSemaphorePermit>,
    },
    /// Over a limit: this error, then the Closing procedure.
    Refused(RcpError),
}

/// A freshly accepted socket and what it needs.
struct Accepted {
    id: u64,
    peer: SocketAddr,
    admission: Admission,
    /// Held while a refused connection is served (one of [`MAX_LINGERING_REFUSALS`]).
    _refusal: Option<OwnedSemaphorePermit>,
    env: Arc<ConnectionEnv>,
    refusal_log: Arc<LogLimit>,
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
        let (slot, unauthenticated_slot) = match self.admission {
            Admission::Admitted {
                slot,
                unauthenticated_slot,
            } => (slot, unauthenticated_slot),
            Admission::Refused(error) => {
                if let Some(suppressed) = self.refusal_log.admit() {
                    tracing::warn!(
                        conn = self.id,
                        peer = %self.peer,
                        reason = error.reason(),
                        limit = error.detail("limit").and_then(|limit| limit.as_u64()),
                        suppressed,
                        "connection refused"
                    );
                }
                return refuse_over_limit(stream, &error, &*self.env.observer).await;
            }
        };
        // Dropped on every way out of here, including this task being aborted at shutdown.
        let _counted = OpenConnection::new(&self.env.observer);
        tracing::debug!(conn = self.id, peer = %self.peer, "connection opened");
        let (context, outbound) = ConnectionContext::new(self.id, self.peer);
        connection::serve(stream, context, outbound, self.env, unauthenticated_slot).await;
        tracing::debug!(conn = self.id, "connection closed");
        drop(slot);
    }
}

/// One binary `RATE_LIMITED` frame, then the Closing procedure (§8.4, §2.8).
async fn refuse_over_limit<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    error: &RcpError,
    observer: &dyn ServerObserver,
) {
    let Some(frame) = refusal_frame(error) else {
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

/// The §8.4 refusal for the connection limit.
fn connection_limit(limit: usize) -> RcpError {
    // The exact configured limit: the protocol crate's constructor takes a u32, the config a u64.
    RcpError::connection_limit(u32::try_from(limit).unwrap_or(u32::MAX)).with_detail("limit", limit)
}

/// A refusal as a binary frame, the mode of a connection that has sent nothing (§8.4; `None`
/// only if encoding fails, which is a bug).
fn refusal_frame(error: &RcpError) -> Option<BytesMut> {
    let mut frame = BytesMut::new();
    let payload = encode_response(&Response::error("", error.clone()));
    FrameCodec::default().encode(payload, &mut frame).ok()?;
    Some(frame)
}
