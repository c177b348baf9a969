//! What a [`crate::client::Client`] connects to and how it behaves: address, token, TLS,
//! timeouts, limits and the reconnect policy.

use std::path::PathBuf;
use std::time::Duration;

use crate::limits::MAX_PAYLOAD_BYTES;

use super::reconnect::ReconnectPolicy;

/// Connection options. Build with [`ClientOptions::new`] and the chained setters.
#[derive(Clone)]
pub struct ClientOptions {
    /// `host:port` of the server (default port 7401, §2.7).
    pub addr: String,
    /// Bearer token sent with AUTH on every connection (§4.2); `None` skips AUTH.
    pub token: Option<String>,
    /// TLS settings; `None` connects in plaintext (§8.2 has no STARTTLS, so this must match
    /// the server).
    pub tls: Option<TlsOptions>,
    /// Sent as HELLO `client_name` (informational).
    pub client_name: String,
    /// Limit for one call, from the moment it is made to its response, including any wait for
    /// a reconnect and for an in-flight slot.
    pub request_timeout: Duration,
    /// Limit for opening one connection: TCP, TLS, HELLO, AUTH and re-subscribing.
    pub connect_timeout: Duration,
    /// Most requests outstanding on one connection; further calls wait for a slot. The spec
    /// asks clients to bound pipelining (§3.7).
    pub max_in_flight_requests: usize,
    /// Events buffered per subscription before the connection's reader waits for the
    /// application to take some (backpressure instead of a silent drop).
    pub subscription_buffer_events: usize,
    /// Largest inbound payload accepted (§2.4).
    pub max_frame_bytes: usize,
    /// What to do when the connection breaks.
    pub reconnect: ReconnectPolicy,
}

impl ClientOptions {
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 1024;
    pub const DEFAULT_SUBSCRIPTION_BUFFER_EVENTS: usize = 4096;

    /// Options for `addr` with every default: plaintext, no token, 30 s per call, 1,024
    /// requests in flight, reconnect with exponential backoff.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            token: None,
            tls: None,
            client_name: concat!("rstmdb-client-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            max_in_flight_requests: Self::DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            subscription_buffer_events: Self::DEFAULT_SUBSCRIPTION_BUFFER_EVENTS,
            max_frame_bytes: MAX_PAYLOAD_BYTES,
            reconnect: ReconnectPolicy::default(),
        }
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn max_in_flight_requests(mut self, max: usize) -> Self {
        self.max_in_flight_requests = max;
        self
    }

    pub fn subscription_buffer_events(mut self, events: usize) -> Self {
        self.subscription_buffer_events = events;
        self
    }

    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// The host part of `addr`, used as the default TLS server name.
    pub(crate) fn host(&self) -> &str {
        let addr = self.addr.as_str();
        if let Some(rest) = addr.strip_prefix('[') {
            // `[::1]:7401`
            return rest.split(']').next().unwrap_or(rest);
        }
        match addr.rsplit_once(':') {
            Some((host, _port)) if !host.contains(':') => host,
            _ => addr,
        }
    }
}

/// Keeps the token out of logs.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("client_name", &self.client_name)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_in_flight_requests", &self.max_in_flight_requests)
            .field(
                "subscription_buffer_events",
                &self.subscription_buffer_events,
            )
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("reconnect", &self.reconnect)
            .finish()
    }
}

/// PEM data, given inline or as a file read when the client connects.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// Inline PEM shows only its length: it may be a private key, and options get logged.
impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Bytes(bytes) => write!(f, "Bytes(<{} bytes redacted>)", bytes.len()),
        }
    }
}

impl PemSource {
    pub(crate) fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Self::File(path) => std::fs::read(path),
            Self::Bytes(bytes) => Ok(bytes.clone()),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Bytes(_) => "inline PEM".to_owned(),
        }
    }
}

/// Client-side TLS options, as the CLI and Python clients offer them (§8.2).
///
/// The server certificate is verified against `ca_cert` (a PEM bundle). There are no built-in
/// web roots: a server with a publicly issued certificate needs its CA bundle given here.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// CA certificates (PEM) that the server's chain must lead to.
    pub ca_cert: Option<PemSource>,
    /// Client certificate chain and key (PEM) for mutual TLS.
    pub client_cert: Option<(PemSource, PemSource)>,
    /// Accept any server certificate. Only for tests and development: it gives no protection
    /// against an active attacker.
    pub insecure: bool,
    /// Name to verify the certificate against and send as SNI; defaults to the host of `addr`.
    pub server_name: Option<String>,
}

impl TlsOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ca_cert(mut self, pem: PemSource) -> Self {
        self.ca_cert = Some(pem);
        self
    }

    pub fn client_cert(mut self, cert_chain: PemSource, key: PemSource) -> Self {
        self.client_cert = Some((cert_chain, key));
        self
    }

    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_the_address_without_its_port() {
        assert_eq!(ClientOptions::new("db.example:7401").host(), "db.example");
        assert_eq!(ClientOptions::new("127.0.0.1:7401").host(), "127.0.0.1");
        assert_eq!(ClientOptions::new("[::1]:7401").host(), "::1");
        assert_eq!(ClientOptions::new("localhost").host(), "localhost");
    }

    #[test]
    fn debug_output_hides_the_token() {
        let options = ClientOptions::new("h:1").token("s3cret");
        assert!(!format!("{options:?}").contains("s3cret"));
    }

    #[test]
    fn debug_output_hides_inline_key_material() {
        let key = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKEY\n".to_vec();
        let tls = TlsOptions::new()
            .ca_cert(PemSource::Bytes(b"CA-PEM-TEXT".to_vec()))
            .client_cert(PemSource::File("client.pem".into()), PemSource::Bytes(key));
        let shown = format!("{:?}", ClientOptions::new("h:1").tls(tls));
        // Debug of a Vec<u8> would list the bytes as numbers: 77 is the 'M' the key starts with.
        for leak in ["PRIVATE", "KEY", "CA-PEM", "77, 67"] {
            assert!(!shown.contains(leak), "{leak} in {shown}");
        }
        assert!(shown.contains("client.pem"), "{shown}");
        assert!(shown.contains("bytes redacted"), "{shown}");
    }
}
