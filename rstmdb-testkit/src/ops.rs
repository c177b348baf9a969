//! A real server (network layer, `DatabaseHandler`, database core) over a temporary data
//! directory, driven through `rstmdb_client::Client`, and assertions on error codes and
//! `details` (§4, §5.3). The `server_ops_*` tests, and others that need the whole server in
//! this process.

pub use crate::machines::{FIRST_OFFSET, ORDER_CHECKSUM, order_definition};
pub use crate::{TOKEN, TOKEN_HASH};

use crate::server::{DbServer, DbSetup, auth_required, loopback_settings};
use rstmdb::engine::EngineConfig;
use rstmdb::server::ServerSettings;
use rstmdb::wal::fault::FaultStorage;
use rstmdb::wal::{FsyncPolicy, Storage, WalConfig};
use rstmdb_client::params::{BatchMode, BatchOp};
use rstmdb_client::{
    Client, ClientError, ClientOptions, ErrorCode, Op, RawResult, RcpError, ReconnectPolicy,
};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// How a test server is configured; every field defaults to the spec's defaults except the
/// fsync policy, which stays `every_write` (the default) so durability rules are exercised.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub engine: EngineConfig,
    pub wal: WalConfig,
    pub auth_required: bool,
    /// Inbound payload limit (spec §2.4), 16 MiB unless a test lowers it.
    pub max_frame_bytes: usize,
    /// WAL segments in memory, with injectable faults, instead of files in the data dir.
    pub wal_storage: Option<Arc<FaultStorage>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let setup = DbSetup::default();
        Self {
            engine: setup.engine,
            wal: setup.wal,
            auth_required: false,
            max_frame_bytes: setup.settings.max_frame_bytes,
            wal_storage: None,
        }
    }
}

impl ServerConfig {
    pub fn with_engine(mut self, edit: impl FnOnce(&mut EngineConfig)) -> Self {
        edit(&mut self.engine);
        self
    }

    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.wal.segment_size_bytes = bytes;
        self
    }

    pub fn fsync_policy(mut self, policy: FsyncPolicy) -> Self {
        self.wal.fsync_policy = policy;
        self
    }

    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame_bytes = bytes;
        self
    }

    pub fn wal_storage(mut self, storage: Arc<FaultStorage>) -> Self {
        self.wal_storage = Some(storage);
        self
    }

    pub fn auth_required(mut self) -> Self {
        self.auth_required = true;
        self
    }

    fn setup(&self) -> DbSetup {
        let mut settings = ServerSettings {
            max_frame_bytes: self.max_frame_bytes,
            ..loopback_settings()
        };
        if self.auth_required {
            settings.auth = auth_required();
        }
        DbSetup {
            settings,
            wal: self.wal,
            engine: self.engine.clone(),
            wal_storage: self
                .wal_storage
                .clone()
                .map(|storage| storage as Arc<dyn Storage>),
            ..DbSetup::default()
        }
    }
}

/// A running server over its own data directory.
#[derive(Debug)]
pub struct OpsServer {
    pub addr: SocketAddr,
    pub config: ServerConfig,
    dir: Arc<TempDir>,
    server: DbServer,
}

impl OpsServer {
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        let dir = Arc::new(TempDir::new().expect("temp data dir"));
        Self::start_in(dir, config).await
    }

    /// Opens (or reopens) the database in `dir` and serves it (a test may place `dir` on a
    /// file system of its choosing, e.g. a small tmpfs).
    pub async fn start_in(dir: Arc<TempDir>, config: ServerConfig) -> Self {
        let server = DbServer::start(dir.path(), &config.setup()).await;
        Self {
            addr: server.addr,
            config,
            dir,
            server,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client connected with HELLO (and AUTH when the server requires it); it does not
    /// reconnect, so a dropped connection shows up as an error instead of being hidden.
    pub async fn client(&self) -> Client {
        let mut options = self.client_options();
        if self.config.auth_required {
            options = options.token(TOKEN);
        }
        Client::connect(options).await.expect("client connects")
    }

    pub fn client_options(&self) -> ClientOptions {
        ClientOptions::new(self.addr.to_string())
            .reconnect(ReconnectPolicy::disabled())
            .request_timeout(Duration::from_secs(20))
    }

    /// The rule: after every scenario a fresh connection still works.
    pub async fn assert_fresh_connection_works(&self) {
        let client = self.client().await;
        assert!(
            client
                .ping()
                .await
                .expect("PING on a fresh connection")
                .pong
        );
        client
            .wal_stats()
            .await
            .expect("a data op on a fresh connection");
        client.close().await.expect("close");
    }

    /// Graceful shutdown (the database syncs and closes), keeping the data directory.
    pub async fn stop(self) -> StoppedServer {
        self.server.stop(Duration::from_secs(40)).await;
        StoppedServer {
            dir: self.dir,
            config: self.config,
        }
    }
}

/// A data directory whose server stopped; `restart` serves it again.
#[derive(Debug)]
pub struct StoppedServer {
    dir: Arc<TempDir>,
    config: ServerConfig,
}

impl StoppedServer {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub async fn restart(self) -> OpsServer {
        OpsServer::start_in(self.dir, self.config).await
    }
}

/// Sends `op` with raw JSON params through the client's escape hatch, so the test sees
/// `meta` and can send params the typed methods would never produce.
pub async fn call(client: &Client, op: Op, params: Value) -> Result<RawResult, RcpError> {
    let params = match params {
        Value::Object(map) => map,
        other => panic!("test params must be an object, not {other}"),
    };
    client.request(op, params).await.map_err(server_error)
}

/// Like [`call`], but the request must succeed.
pub async fn ok(client: &Client, op: Op, params: Value) -> RawResult {
    match call(client, op, params.clone()).await {
        Ok(raw) => raw,
        Err(err) => panic!("{op} {params} failed: {err:?}"),
    }
}

/// The server's error inside a client error; anything else (a lost connection, a timeout)
/// fails the test.
pub fn server_error(err: ClientError) -> RcpError {
    match err {
        ClientError::Server(error) => error,
        other => panic!("expected a server error response, got {other:?}"),
    }
}

/// Asserts a failed call's code, its `retryable` flag (a function of the code, §5.1) and its
/// complete `details` object (§5.3): every key the spec lists, and no other.
pub fn assert_error<T: std::fmt::Debug>(
    outcome: Result<T, RcpError>,
    code: ErrorCode,
    details: Value,
) -> RcpError {
    let error = match outcome {
        Ok(value) => panic!("expected {code}, got success {value:?}"),
        Err(error) => error,
    };
    assert_eq!(error.code, code, "code of {error:?}");
    assert_eq!(error.retryable, code.retryable(), "retryable of {error:?}");
    let expected = match details {
        Value::Object(map) => Some(map),
        Value::Null => None,
        other => panic!("details must be an object or null, not {other}"),
    };
    assert_eq!(error.details, expected, "details of {error:?}");
    error
}

/// The same, for a typed client call.
pub fn assert_client_error<T: std::fmt::Debug>(
    outcome: Result<T, ClientError>,
    code: ErrorCode,
    details: Value,
) -> RcpError {
    assert_error(outcome.map_err(server_error), code, details)
}

/// `meta.wal_offset` of a response, if it carried `meta` (§3.4).
pub fn meta_offset(raw: &RawResult) -> Option<u64> {
    raw.meta.as_ref().map(|meta| meta.wal_offset)
}

pub fn u64_field(result: &Map<String, Value>, key: &str) -> u64 {
    result
        .get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{key} is a u64 in {result:?}"))
}

pub fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

/// Registers `order` version 1 and returns the client.
pub async fn client_with_order(server: &OpsServer) -> Client {
    let client = server.client().await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE order v1");
    client
}

/// Creates instance `id` of `order` v1 with the given ctx; returns its `wal_offset`.
pub async fn create_order(client: &Client, id: &str, ctx: Value) -> u64 {
    let raw = ok(
        client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": id, "initial_ctx": ctx}),
    )
    .await;
    u64_field(&raw.result, "wal_offset")
}

/// WAL_STATS' `latest_offset`: where the next record goes.
pub async fn latest_offset(client: &Client) -> u64 {
    client.wal_stats().await.expect("WAL_STATS").latest_offset
}

/// Writes `count` create_instance records of `order` v1 (ids `i-00000`, ...) in atomic
/// batches of 100.
pub async fn create_many(client: &Client, count: usize) {
    for chunk_start in (0..count).step_by(100) {
        let ops = (chunk_start..count.min(chunk_start + 100))
            .map(|i| BatchOp {
                op: Op::CreateInstance,
                params: obj(json!({"machine": "order", "version": 1,
                    "instance_id": format!("i-{i:05}")})),
            })
            .collect();
        client.batch(BatchMode::Atomic, ops).await.expect("BATCH");
    }
}
