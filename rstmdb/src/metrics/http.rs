//! The metrics HTTP endpoint (spec §10): `GET /metrics`, `/health` and `/healthz`, a small
//! index page at `/`, 404 for anything else. HTTP/1.1 through hyper; one task per connection.

use super::{Health, HealthState, Metrics, MetricsError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A slow or idle scraper may not hold a connection open for ever: the request headers must
/// arrive within this long...
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// ...and the whole connection, keep-alive requests and writing the answers included, ends
/// after this long (a scraper reconnects for its next scrape; Prometheus's default interval is
/// 15 s, and a scrape must fit well within it).
pub const HTTP_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Simultaneous HTTP connections served in full. Prometheus needs one per scraper.
pub const MAX_HTTP_CONNECTIONS: usize = 64;

/// Connections beyond [`MAX_HTTP_CONNECTIONS`] that are still answered on `/health` (and
/// only there, with a short deadline), so a load balancer's health check is never starved by
/// connections that hog the endpoint. Beyond these, a connection is closed at once.
pub const HEALTH_ONLY_CONNECTIONS: usize = 16;

/// How long a health-only connection may take, request and answer.
const HEALTH_ONLY_LIFETIME: Duration = Duration::from_secs(2);

const INDEX_HTML: &str = "<!DOCTYPE html>\n<html><head><title>rstmdb</title></head><body>\
<h1>rstmdb</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
<li><a href=\"/health\">/health</a></li>\
<li><a href=\"/ready\">/ready</a></li></ul></body></html>\n";

/// A bound metrics endpoint, ready to serve.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
}

#[derive(Debug)]
struct Endpoint {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl MetricsServer {
    pub async fn bind(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<MetricsServer, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(MetricsServer {
            listener,
            endpoint: Arc::new(Endpoint { metrics, health }),
        })
    }

    /// The address actually bound (tests bind port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let limit = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
        let health_only = Arc::new(Semaphore::new(HEALTH_ONLY_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                _ = stop.cancelled() => return,
                accepted = self.listener.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    tracing::warn!(%err, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (permit, scope, lifetime) = match Arc::clone(&limit).try_acquire_owned() {
                Ok(permit) => (permit, Scope::Everything, HTTP_CONNECTION_LIFETIME),
                Err(_) => match Arc::clone(&health_only).try_acquire_owned() {
                    Ok(permit) => (permit, Scope::HealthOnly, HEALTH_ONLY_LIFETIME),
                    Err(_) => {
                        tracing::debug!("metrics endpoint: connection limit reached; closing");
                        continue;
                    }
                },
            };
            let endpoint = Arc::clone(&self.endpoint);
            let stop = stop.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = service_fn(move |request| {
                    let endpoint = Arc::clone(&endpoint);
                    async move { Ok::<_, Infallible>(endpoint.answer(&request, scope).await) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT.min(lifetime))
                    .keep_alive(scope == Scope::Everything);
                let connection = builder.serve_connection(TokioIo::new(tcp), service);
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(lifetime) => {
                        tracing::debug!(?lifetime, "metrics endpoint: connection lifetime over");
                    }
                    served = connection => if let Err(err) = served {
                        tracing::debug!(%err, "metrics endpoint: connection error");
                    },
                }
            });
        }
    }
}

/// What a connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Everything,
    /// Over the connection limit: `/health` only, everything else 503.
    HealthOnly,
}

impl Endpoint {
    async fn answer(&self, request: &Request<Incoming>, scope: Scope) -> Response<Full<Bytes>> {
        let path = request.uri().path();
        if scope == Scope::HealthOnly && !matches!(path, "/health" | "/healthz") {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "busy: too many connections",
            );
        }
        match path {
            "/metrics" => {
                let body = self.metrics.scrape().await;
                reply(StatusCode::OK, prometheus::TEXT_FORMAT, body)
            }
            "/health" | "/healthz" => match self.health.get() {
                HealthState::Serving => reply(StatusCode::OK, "text/plain", "OK"),
                other => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    other.as_str().to_owned(),
                ),
            },
            // Readiness (spec §12.5): serving, and on a cluster node led and caught up.
            "/ready" => match (self.health.get(), self.metrics.readiness()) {
                (HealthState::Serving, Ok(())) => reply(StatusCode::OK, "text/plain", "OK"),
                (HealthState::Serving, Err(why)) => {
                    reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", why)
                }
                (other, _) => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    other.as_str().to_owned(),
                ),
            },
            "/" => reply(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "Not Found"),
        }
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
