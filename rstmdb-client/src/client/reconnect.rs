//! Opening connections (TCP, TLS, HELLO, AUTH, re-subscribe) and the supervisor task that
//! re-opens them with exponential backoff when one breaks.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;
use tokio::net::TcpStream;

use crate::limits::PROTOCOL_VERSION;
use crate::message::to_object;
use crate::ops::Op;
use crate::params::{AuthParams, HelloParams};
use crate::results::{AuthResult, HelloResult};

use super::connection::Connection;
use super::error::ClientError;
use super::{ClientShared, Link, typed};

/// When and how often to reconnect after a connection breaks.
///
/// The n-th attempt (0-based) waits `min(initial_delay * 2^n, max_delay)`; with `jitter` the
/// wait is a random point in its upper half, so many clients of one restarted server do not
/// reconnect in lock step. Tests turn jitter off for exact timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub enabled: bool,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
    pub jitter: bool,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: None,
            jitter: true,
        }
    }
}

impl ReconnectPolicy {
    /// Never reconnect: a broken connection closes the client.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Exponential backoff from `initial_delay` up to `max_delay`, without jitter.
    pub fn exponential(initial_delay: Duration, max_delay: Duration) -> Self {
        Self {
            enabled: true,
            initial_delay,
            max_delay,
            max_attempts: None,
            jitter: false,
        }
    }

    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The wait before attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let capped = self
            .initial_delay
            .saturating_mul(factor)
            .min(self.max_delay);
        if !self.jitter {
            return capped;
        }
        // A random fraction without a random-number dependency: std's RandomState is seeded
        // randomly per instance.
        let random = RandomState::new().hash_one(attempt);
        let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
        capped.mul_f64(fraction)
    }
}

/// Opens one ready connection: TCP (+TLS), HELLO, AUTH when a token is set, then re-creates
/// every confirmed subscription from where it stopped. Bounded by `connect_timeout`.
pub(crate) async fn establish(shared: &ClientShared) -> Result<Arc<Connection>, ClientError> {
    let timeout = shared.options.connect_timeout;
    tokio::time::timeout(timeout, establish_unbounded(shared))
        .await
        .map_err(|_| ClientError::Connect {
            addr: shared.options.addr.clone(),
            reason: format!("not ready within {} ms", timeout.as_millis()),
        })?
}

async fn establish_unbounded(shared: &ClientShared) -> Result<Arc<Connection>, ClientError> {
    let options = &shared.options;
    let connect_error = |e: std::io::Error| ClientError::Connect {
        addr: options.addr.clone(),
        reason: e.to_string(),
    };
    let tcp = TcpStream::connect(&options.addr)
        .await
        .map_err(connect_error)?;
    // Requests are small and latency-bound; Nagle would hold pipelined frames back.
    tcp.set_nodelay(true).map_err(connect_error)?;
    let connection = match &shared.tls {
        Some(tls) => Connection::start(
            tls.handshake(tcp).await?,
            options.max_in_flight_requests,
            options.max_frame_bytes,
        ),
        None => Connection::start(tcp, options.max_in_flight_requests, options.max_frame_bytes),
    };

    let hello = HelloParams {
        protocol_version: PROTOCOL_VERSION,
        client_name: Some(options.client_name.clone()),
        wire_modes: vec!["binary_json".to_owned()],
        features: vec!["idempotency".to_owned(), "batch".to_owned()],
    };
    let _: HelloResult = typed(
        connection
            .request(Op::Hello, params_object(&hello)?, None)
            .await?,
    )?;
    if let Some(token) = &options.token {
        let auth = AuthParams {
            method: "bearer".to_owned(),
            token: token.clone(),
        };
        let _: AuthResult = typed(
            connection
                .request(Op::Auth, params_object(&auth)?, None)
                .await?,
        )?;
    }
    resubscribe(shared, &connection).await?;
    Ok(connection)
}

/// Re-creates each confirmed subscription. A subscription the server refuses (its history was
/// compacted, its instance deleted) ends with that error; a transport failure fails the whole
/// attempt so that it is retried.
async fn resubscribe(shared: &ClientShared, connection: &Connection) -> Result<(), ClientError> {
    for entry in shared.subscriptions_snapshot() {
        if !entry.is_resumable() {
            continue;
        }
        let response = connection
            .request(entry.op(), entry.resume_params()?, Some(entry.clone()))
            .await?;
        if let Err(error) = typed::<Map<String, serde_json::Value>>(response) {
            shared.forget_subscription(entry.key);
            entry.end_in_background(error);
        }
    }
    Ok(())
}

pub(crate) fn params_object<T: serde::Serialize>(
    params: &T,
) -> Result<Map<String, serde_json::Value>, ClientError> {
    to_object(params).map_err(|e| ClientError::Protocol(format!("cannot serialise params: {e}")))
}

/// Whether an error opening a connection is worth another attempt. A server that refuses the
/// handshake for a non-retryable reason (AUTH_FAILED, UNSUPPORTED_PROTOCOL) will refuse it
/// again, and so will a bad TLS or client configuration.
fn worth_retrying(error: &ClientError) -> bool {
    match error {
        ClientError::Server(error) => error.retryable,
        ClientError::Tls(_) | ClientError::Config(_) => false,
        _ => true,
    }
}

/// Watches the current connection; when it breaks, reconnects with backoff and publishes the
/// new one. Ends when the client is closed or dropped, or when reconnecting gives up.
pub(crate) async fn supervise(shared: Arc<ClientShared>, mut connection: Arc<Connection>) {
    loop {
        let reason = tokio::select! {
            reason = connection.closed() => reason,
            _ = shared.shutdown.cancelled() => {
                connection.shut_down("client closed");
                shared.close("client closed");
                return;
            }
        };
        drop(connection);
        let policy = shared.options.reconnect.clone();
        if !policy.enabled {
            shared.close(&format!("{reason}; reconnect is disabled"));
            return;
        }
        shared.publish(Link::Connecting);
        let mut attempt = 0u32;
        connection = loop {
            tokio::select! {
                _ = tokio::time::sleep(policy.delay(attempt)) => {}
                _ = shared.shutdown.cancelled() => {
                    shared.close("client closed");
                    return;
                }
            }
            match establish(&shared).await {
                Ok(connection) => break connection,
                Err(error) => {
                    attempt = attempt.saturating_add(1);
                    let exhausted = policy.max_attempts.is_some_and(|max| attempt >= max);
                    if exhausted || !worth_retrying(&error) {
                        shared.close(&format!(
                            "reconnect failed after {attempt} attempts: {error}"
                        ));
                        return;
                    }
                }
            }
        };
        if shared.shutdown.is_cancelled() {
            // Closed while this attempt was under way: do not resurrect the client.
            connection.shut_down("client closed");
            return;
        }
        shared.publish(Link::Up(connection.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_initial_delay_up_to_the_cap() {
        let policy =
            ReconnectPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u128> = (0..6).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_the_upper_half_of_the_delay() {
        let policy =
            ReconnectPolicy::exponential(Duration::from_millis(1000), Duration::from_secs(1))
                .jitter(true);
        for attempt in 0..50 {
            let delay = policy.delay(attempt);
            assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn a_refused_handshake_is_final_but_transport_trouble_is_retried() {
        let auth = crate::RcpError::auth_failed(crate::AuthFailure::InvalidToken);
        assert!(!worth_retrying(&ClientError::Server(auth)));
        assert!(worth_retrying(&ClientError::lost("eof")));
        let limit = crate::RcpError::new(crate::ErrorCode::RateLimited, "connection limit");
        assert!(worth_retrying(&ClientError::Server(limit)));
    }
}
