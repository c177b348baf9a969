//! A real database server in this process with its metrics endpoint, a minimal HTTP GET, and
//! a parser for the Prometheus text format (§10).

use crate::raw::Client;
use crate::server::{DbServer, DbSetup, loopback_settings};
use rstmdb::config::MetricsConfig;
use rstmdb::metrics::{Health, HealthState, Metrics, MetricsServer};
use rstmdb::server::ServerSettings;
use rstmdb::wal::WalConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct MetricsServerUnderTest {
    pub rcp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    stop_http: CancellationToken,
    /// Dropped before the directory: dropping it stops the server.
    _server: DbServer,
    _dir: tempfile::TempDir,
}

impl MetricsServerUnderTest {
    /// A database in a fresh directory (fsync every write), served over RCP with metrics.
    pub async fn start() -> Self {
        Self::start_with(loopback_settings()).await
    }

    pub async fn start_with(settings: ServerSettings) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let max_state_series = MetricsConfig::default().max_state_series as usize;
        let metrics = Metrics::new(max_state_series).expect("metrics register");
        let health = Arc::new(Health::default());
        let http = MetricsServer::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Arc::clone(&metrics),
            Arc::clone(&health),
        )
        .await
        .expect("metrics endpoint binds");
        let http_addr = http.local_addr().expect("http address");
        let stop_http = CancellationToken::new();
        tokio::spawn(http.run(stop_http.clone()));

        let server = DbServer::start(
            dir.path(),
            &DbSetup {
                settings,
                wal: WalConfig::default(),
                observer: Some(Arc::clone(&metrics) as _),
                ..DbSetup::default()
            },
        )
        .await;
        metrics.record_recovery(&server.report);
        metrics.attach_database(Arc::clone(&server.db));
        metrics.attach_watch(server.handler.watch_hub().clone());
        health.set(HealthState::Serving);
        Self {
            rcp_addr: server.addr,
            http_addr,
            metrics,
            health,
            stop_http,
            _server: server,
            _dir: dir,
        }
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.rcp_addr).await.expect("connects"))
    }

    pub async fn scrape(&self) -> Scrape {
        let (status, body) = http_get(self.http_addr, "/metrics").await;
        assert_eq!(status, 200, "GET /metrics: {body}");
        Scrape::parse(&body)
    }

    /// Scrapes until `done` holds (closing a connection is observed asynchronously).
    pub async fn scrape_until(&self, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let scrape = self.scrape().await;
            if done(&scrape) || tokio::time::Instant::now() > deadline {
                return scrape;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for MetricsServerUnderTest {
    fn drop(&mut self) {
        self.stop_http.cancel();
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`; returns the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("http connects");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("http write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut raw))
        .await
        .expect("http answer in time")
        .expect("http read");
    let text = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

/// One scrape: series (name plus sorted labels) to value.
#[derive(Debug)]
pub struct Scrape {
    series: BTreeMap<(String, BTreeMap<String, String>), f64>,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut series = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (key, value) = line.rsplit_once(' ').expect("sample line: series value");
            let value: f64 = value.parse().expect("numeric sample value");
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (key, BTreeMap::new()),
            };
            series.insert((name.to_owned(), labels), value);
        }
        Scrape {
            series,
            text: text.to_owned(),
        }
    }

    /// The value of one series; `None` when it is absent.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.series.get(&(name.to_owned(), labels)).copied()
    }

    /// Like [`get`](Self::get), absent counting as 0 (a labelled counter not yet touched).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every series name in the scrape (histograms contribute `_bucket`, `_sum`, `_count`).
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.series.keys().map(|(name, _)| name.clone()).collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    // Our label values hold no commas or escaped quotes, so a plain split is enough here.
    text.split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("label pair");
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}
