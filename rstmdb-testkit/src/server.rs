//! The one owner of how an in-process test server is set up: the loopback settings, the auth
//! the tests configure, the task a server runs in, and a database in a temporary directory
//! served by the real service.
//!
//! Tests change what they exercise on top of these (`ServerSettings { max_connections: 2,
//! ..loopback_settings() }`, a [`DbSetup`] with another fsync policy); what they share is set
//! here once.

use crate::TOKEN_HASH;
use rstmdb::config::NetworkConfig;
use rstmdb::database::{Database, DatabaseOptions, OpenReport};
use rstmdb::engine::EngineConfig;
use rstmdb::server::{AuthSettings, Server, ServerObserver, ServerSettings};
use rstmdb::service::watch::WatchLimits;
use rstmdb::service::{DatabaseHandler, OpHandler};
use rstmdb::wal::{FsyncPolicy, Storage, WalConfig};
use rstmdb_client::limits::MAX_PAYLOAD_BYTES;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 127.0.0.1 port 0, no idle or write timeout, 1,000 connections, 16 MiB frames, the default
/// byte budget, no auth, no TLS.
pub fn loopback_settings() -> ServerSettings {
    ServerSettings {
        bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        idle_timeout: None,
        max_connections: 1000,
        max_frame_bytes: MAX_PAYLOAD_BYTES,
        write_timeout: None,
        max_pending_bytes: NetworkConfig::default().max_pending_response_bytes as usize,
        max_inflight_bytes: None,
        auth: AuthSettings::default(),
        tls: None,
    }
}

/// Auth required, accepting [`TOKEN`](crate::TOKEN).
pub fn auth_required() -> AuthSettings {
    AuthSettings {
        required: true,
        token_hashes: vec![TOKEN_HASH.to_owned()],
        ..AuthSettings::default()
    }
}

/// [`loopback_settings`] with auth required.
pub fn loopback_settings_with_auth() -> ServerSettings {
    ServerSettings {
        auth: auth_required(),
        ..loopback_settings()
    }
}

/// A server running as a task of the current tokio runtime until it is told to stop.
#[derive(Debug)]
pub struct ServerTask {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl ServerTask {
    /// Binds `settings` with `handler` and starts serving.
    pub async fn start(settings: ServerSettings, handler: Arc<dyn OpHandler>) -> ServerTask {
        let server = Server::bind(settings, handler)
            .await
            .expect("the test server binds");
        ServerTask::run(server)
    }

    /// Starts serving an already bound server (one with an observer, say).
    pub fn run(server: Server) -> ServerTask {
        let addr = server.local_addr().expect("the bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        ServerTask {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Asks for a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits until `run_until` returned; panics if that takes longer than
    /// `within` or the server task panicked.
    pub async fn stop(mut self, within: Duration) {
        self.begin_shutdown();
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("the server did not stop within {within:?}"))
            .expect("the server task does not panic");
    }

    /// Shuts down and waits up to `within`, whatever the outcome.
    pub async fn stop_quietly(mut self, within: Duration) {
        self.begin_shutdown();
        let _ = tokio::time::timeout(within, self.task).await;
    }
}

/// How a database server is set up. `Default`: [`loopback_settings`], 64 MiB segments,
/// `every_write`, the default engine rules and watch limits, the WAL in files of the data
/// directory.
#[derive(Debug, Clone)]
pub struct DbSetup {
    pub settings: ServerSettings,
    pub wal: WalConfig,
    pub engine: EngineConfig,
    pub watch_limits: WatchLimits,
    /// WAL segments in this storage (in memory, with injectable faults) instead of files.
    pub wal_storage: Option<Arc<dyn Storage>>,
    /// Told about every connection, request and error (the metrics).
    pub observer: Option<Arc<dyn ServerObserver>>,
}

impl Default for DbSetup {
    fn default() -> Self {
        DbSetup {
            settings: loopback_settings(),
            wal: WalConfig {
                segment_size_bytes: 64 << 20,
                fsync_policy: FsyncPolicy::EveryWrite,
            },
            engine: EngineConfig::default(),
            watch_limits: WatchLimits::default(),
            wal_storage: None,
            observer: None,
        }
    }
}

/// A database opened in a directory and served by the real service ([`DatabaseHandler`]).
#[derive(Debug)]
pub struct DbServer {
    pub addr: SocketAddr,
    pub db: Arc<Database>,
    pub handler: Arc<DatabaseHandler>,
    /// What opening the database found (recovery).
    pub report: OpenReport,
    task: ServerTask,
}

impl DbServer {
    /// Opens (or reopens) the database in `data_dir` and serves it as `setup` says.
    pub async fn start(data_dir: &Path, setup: &DbSetup) -> DbServer {
        let mut options = DatabaseOptions::new(data_dir, setup.wal);
        options.engine = setup.engine.clone();
        options.wal_storage = setup.wal_storage.clone();
        let (db, report) = tokio::task::spawn_blocking(move || Database::open(options))
            .await
            .expect("opening the database does not panic")
            .expect("the database opens");
        let db = Arc::new(db);
        let handler = Arc::new(DatabaseHandler::with_watch_limits(
            Arc::clone(&db),
            setup.watch_limits,
        ));
        let mut server = Server::bind(
            setup.settings.clone(),
            Arc::clone(&handler) as Arc<dyn OpHandler>,
        )
        .await
        .expect("the test server binds");
        if let Some(observer) = &setup.observer {
            server = server.with_observer(Arc::clone(observer));
        }
        DbServer {
            addr: server.local_addr().expect("the bound address"),
            db,
            handler,
            report,
            task: ServerTask::run(server),
        }
    }

    /// Graceful shutdown (the database syncs and closes); panics unless it finishes within
    /// `within`.
    pub async fn stop(self, within: Duration) {
        self.task.stop(within).await;
    }

    /// Graceful shutdown, waiting up to `within` whatever the outcome.
    pub async fn stop_quietly(self, within: Duration) {
        self.task.stop_quietly(within).await;
    }
}
