//! The async client.
//!
//! Module map:
//! - [`options`]: [`ClientOptions`], [`TlsOptions`]: what to connect to and how.
//! - `connection`: one TCP/TLS connection — writer task, reader task, pending requests by id.
//! - `reconnect`: opening a connection (HELLO, AUTH, re-subscribe) and the supervisor that
//!   re-opens it with [`ReconnectPolicy`] backoff.
//! - [`subscription`]: [`Subscription`], a `Stream` of events that resumes after reconnects.
//! - `ops`: one typed method per operation on [`Client`].
//! - `tls`: the rustls configuration.
//! - [`error`]: [`ClientError`], what every call can fail with.
//!
//! A [`Client`] is cheap to clone; every clone shares one connection and pipelines over it.

mod connection;
pub mod error;
mod ops;
pub mod options;
mod reconnect;
pub mod subscription;
mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::message::{RawResponse, ResultError};
use crate::ops::Op;

pub use error::ClientError;
pub use ops::{ApplyEventOptions, CreateInstanceOptions, RawResult};
pub use options::{ClientOptions, PemSource, TlsOptions};
pub use reconnect::ReconnectPolicy;
pub use subscription::{Subscription, WatchStart};

use connection::Connection;
use subscription::SubEntry;
use tls::TlsSetup;

/// The state of the client's link to the server, as calls see it.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Up(Arc<Connection>),
    /// Between a break and the next ready connection; calls wait (within their timeout).
    Connecting,
    /// For good; calls fail with [`ClientError::Closed`].
    Closed(String),
}

/// What the client handles and the supervisor task share.
#[derive(Debug)]
pub(crate) struct ClientShared {
    pub(crate) options: ClientOptions,
    pub(crate) tls: Option<TlsSetup>,
    link: watch::Sender<Link>,
    subscriptions: Mutex<HashMap<u64, Arc<SubEntry>>>,
    next_subscription_key: AtomicU64,
    pub(crate) shutdown: CancellationToken,
}

impl ClientShared {
    pub(crate) fn publish(&self, link: Link) {
        self.link.send_replace(link);
    }

    fn subscriptions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<SubEntry>>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn subscriptions_snapshot(&self) -> Vec<Arc<SubEntry>> {
        let mut entries: Vec<Arc<SubEntry>> = self.subscriptions().values().cloned().collect();
        entries.sort_by_key(|entry| entry.key);
        entries
    }

    pub(crate) fn forget_subscription(&self, key: u64) {
        self.subscriptions().remove(&key);
    }

    /// Closes the client for good: calls fail and every subscription ends with `reason`.
    pub(crate) fn close(&self, reason: &str) {
        self.publish(Link::Closed(reason.to_owned()));
        let entries: Vec<Arc<SubEntry>> = self.subscriptions().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.end_in_background(ClientError::Closed {
                reason: reason.to_owned(),
            });
        }
    }

    /// The ready connection, waiting through a reconnect if one is under way.
    async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut link = self.link.subscribe();
        loop {
            match &*link.borrow_and_update() {
                Link::Up(connection) if !connection.is_closed() => return Ok(connection.clone()),
                Link::Closed(reason) => {
                    return Err(ClientError::Closed {
                        reason: reason.clone(),
                    });
                }
                Link::Up(_) | Link::Connecting => {}
            }
            if link.changed().await.is_err() {
                return Err(ClientError::Closed {
                    reason: "client dropped".to_owned(),
                });
            }
        }
    }
}

/// Stops the supervisor when the last handle goes away.
#[derive(Debug)]
struct ClientHandle {
    shared: Arc<ClientShared>,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// An rstmdb client over one pipelined connection. Clones share the connection.
///
/// [`Client::connect`] opens it and runs HELLO (and AUTH when a token is set). Every method
/// has the options' request timeout. When the connection breaks, calls outstanding at that
/// moment fail with [`ClientError::ConnectionLost`] — they may or may not have executed, so
/// retry writes with an idempotency key — and the client reconnects in the background per its
/// [`ReconnectPolicy`], authenticates again and resumes its subscriptions without a gap.
/// Calls made while it reconnects wait for the new connection (within their timeout); a call
/// made just after a break, before the client noticed it, fails with `ConnectionLost` too.
#[derive(Debug, Clone)]
pub struct Client {
    handle: Arc<ClientHandle>,
    /// This handle's limit per call (see [`Client::with_request_timeout`]).
    request_timeout: Duration,
}

impl Client {
    /// Connects, says HELLO and authenticates. Errors here are not retried: a wrong address,
    /// token or TLS setting is reported at once.
    pub async fn connect(options: ClientOptions) -> Result<Self, ClientError> {
        let tls = match &options.tls {
            Some(tls) => Some(TlsSetup::new(tls, options.host())?),
            None => None,
        };
        let (link, _) = watch::channel(Link::Connecting);
        let shared = Arc::new(ClientShared {
            options,
            tls,
            link,
            subscriptions: Mutex::new(HashMap::new()),
            next_subscription_key: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        });
        let connection = reconnect::establish(&shared).await?;
        shared.publish(Link::Up(connection.clone()));
        let request_timeout = shared.options.request_timeout;
        tokio::spawn(reconnect::supervise(shared.clone(), connection));
        Ok(Self {
            handle: Arc::new(ClientHandle { shared }),
            request_timeout,
        })
    }

    /// A handle on the same connection whose calls have another timeout, for example for a
    /// COMPACT that may take longer than ordinary calls.
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        Self {
            handle: self.handle.clone(),
            request_timeout: timeout,
        }
    }

    fn shared(&self) -> &ClientShared {
        &self.handle.shared
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.shared().options
    }

    /// Whether a connection is up right now (false while reconnecting and after close).
    pub fn is_connected(&self) -> bool {
        matches!(&*self.shared().link.borrow(), Link::Up(c) if !c.is_closed())
    }

    /// Says BYE (when connected: it does not wait for a reconnect), closes the connection and
    /// stops reconnecting. Subscriptions end with [`ClientError::Closed`]; later calls fail
    /// with it.
    pub async fn close(&self) -> Result<(), ClientError> {
        let bye = if self.is_connected() {
            self.call::<crate::results::ByeResult>(Op::Bye, Map::new())
                .await
                .map(|_| ())
        } else {
            Ok(())
        };
        self.shared().shutdown.cancel();
        self.shared().close("client closed");
        bye
    }

    /// Sends one request and waits for its response, all within the request timeout.
    async fn send(
        &self,
        op: Op,
        params: Map<String, Value>,
        watch: Option<Arc<SubEntry>>,
    ) -> Result<RawResponse, ClientError> {
        let timeout = self.request_timeout;
        let exchange = async {
            let connection = self.shared().connection().await?;
            connection.request(op, params, watch).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::timeout(op, timeout))?
    }

    /// Sends one request and decodes its typed result.
    async fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        params: Map<String, Value>,
    ) -> Result<T, ClientError> {
        typed(self.send(op, params, None).await?)
    }

    fn new_subscription_key(&self) -> u64 {
        self.shared()
            .next_subscription_key
            .fetch_add(1, Ordering::Relaxed)
    }

    fn register_subscription(&self, entry: Arc<SubEntry>) {
        self.shared().subscriptions().insert(entry.key, entry);
    }

    pub(crate) fn forget_subscription(&self, key: u64) {
        self.shared().forget_subscription(key);
    }

    /// Stops routing events of `server_id` on the current connection.
    fn forget_route(&self, server_id: &str) {
        if let Link::Up(connection) = &*self.shared().link.borrow() {
            connection.forget_route(server_id);
        }
    }
}

/// A response's typed result, or the server's error.
pub(crate) fn typed<T: DeserializeOwned>(response: RawResponse) -> Result<T, ClientError> {
    response.into_typed().map_err(|error| match error {
        ResultError::Server(error) => ClientError::Server(error),
        ResultError::UnexpectedShape(e) => {
            ClientError::Protocol(format!("unexpected result shape: {e}"))
        }
    })
}
