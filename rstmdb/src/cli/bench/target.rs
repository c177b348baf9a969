//! Which server the bench loads: a remote one given with `--server`, or an in-process server
//! on 127.0.0.1:0 over a temporary data directory (`--embedded`, the default), so that
//! `rstmdb bench` works with no set-up.
//!
//! The connection flags are this command's own minimal set (`-s`, `-t`, TLS): the shared
//! `cli/connect.rs` did not exist when the bench was written.

use clap::Args;
use rstmdb::assemble;
use rstmdb::config::{Config, FsyncPolicySetting};
use rstmdb::database::Database;
use rstmdb::server::Server;
use rstmdb::service::DatabaseHandler;
use rstmdb_client::{ClientOptions, PemSource, ReconnectPolicy, TlsOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::BenchError;
use crate::cli::connect::resolve_token;

#[derive(Debug, Args)]
pub struct ConnectFlags {
    /// Server to load, host:port. Without it an embedded server is started.
    #[arg(long, short = 's', value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// Bearer token for AUTH. Prefer --token-file or RSTMDB_TOKEN: a token on the command line
    /// is visible to every user through `ps`.
    #[arg(long, short = 't')]
    pub token: Option<String>,
    /// Read the bearer token from this file (surrounding whitespace is ignored). Without
    /// --token or --token-file, the token comes from RSTMDB_TOKEN.
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Connect with TLS.
    #[arg(long, requires = "server")]
    pub tls: bool,
    /// CA certificate bundle (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    #[arg(long, requires = "tls")]
    pub tls_insecure: bool,
}

/// Where the load goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Remote,
    Embedded(FsyncPolicySetting),
}

/// A server ready to be loaded, and how to reach it.
#[derive(Debug)]
pub struct Running {
    pub options: ClientOptions,
    /// `embedded 127.0.0.1:PORT` or the remote address, for the report.
    pub description: String,
    /// The embedded server's policy; unknown for a remote server.
    pub fsync: Option<FsyncPolicySetting>,
    embedded: Option<Embedded>,
}

impl Running {
    /// Stops the embedded server (its shutdown hook closes the database) and removes its data
    /// directory. Nothing to do for a remote server.
    pub async fn stop(self) {
        if let Some(embedded) = self.embedded {
            let _ = embedded.stop.send(());
            if let Err(err) = embedded.task.await {
                eprintln!("warning: the embedded server did not stop cleanly: {err}");
            }
            drop(embedded.data_dir);
        }
    }
}

#[derive(Debug)]
struct Embedded {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// Deleted on drop, after the server stopped.
    data_dir: tempfile::TempDir,
}

pub async fn start(target: Target, flags: &ConnectFlags) -> Result<Running, BenchError> {
    // Read before any server starts, so a bad token file costs nothing.
    let token = resolve_token(flags.token.as_deref(), flags.token_file.as_deref())?;
    match target {
        Target::Remote => {
            let addr = flags.server.clone().unwrap_or_default();
            Ok(Running {
                options: client_options(&addr, flags, token),
                description: addr,
                fsync: None,
                embedded: None,
            })
        }
        Target::Embedded(policy) => start_embedded(policy, flags, token).await,
    }
}

fn client_options(addr: &str, flags: &ConnectFlags, token: Option<String>) -> ClientOptions {
    // A bench reports a broken connection as errors; it does not hide it behind reconnects.
    let mut options = ClientOptions::new(addr)
        .client_name(concat!("rstmdb-bench/", env!("CARGO_PKG_VERSION")))
        .request_timeout(Duration::from_secs(30))
        .reconnect(ReconnectPolicy::disabled());
    if let Some(token) = token {
        options = options.token(token);
    }
    if flags.tls {
        let mut tls = TlsOptions::new().insecure(flags.tls_insecure);
        if let Some(ca) = &flags.ca_cert {
            tls = tls.ca_cert(PemSource::File(ca.clone()));
        }
        options = options.tls(tls);
    }
    options
}

async fn start_embedded(
    policy: FsyncPolicySetting,
    flags: &ConnectFlags,
    token: Option<String>,
) -> Result<Running, BenchError> {
    let data_dir = tempfile::Builder::new()
        .prefix("rstmdb-bench-")
        .tempdir()
        .map_err(|err| BenchError::Embedded(format!("temporary directory: {err}")))?;
    let mut config = Config::default();
    config.storage.data_dir = data_dir.path().to_path_buf();
    config.storage.fsync_policy = policy;
    config.network.bind_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.network.idle_timeout_secs = 0;
    config.network.max_connections = 100_000;
    let auth = config
        .resolve()
        .map_err(|err| BenchError::Embedded(err.to_string()))?;
    let options = assemble::database_options(&config);
    // Opening recovers and starts the sequencer thread: blocking work.
    let (db, _report) = tokio::task::spawn_blocking(move || Database::open(options))
        .await
        .map_err(|err| BenchError::Embedded(err.to_string()))?
        .map_err(|err| BenchError::Embedded(err.to_string()))?;
    let handler = Arc::new(DatabaseHandler::new(Arc::new(db)));
    let settings = assemble::server_settings(&config, auth);
    let server = Server::bind(settings, handler)
        .await
        .map_err(|err| BenchError::Embedded(err.to_string()))?;
    let addr = server
        .local_addr()
        .map_err(|err| BenchError::Embedded(err.to_string()))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let addr = addr.to_string();
    Ok(Running {
        options: client_options(&addr, flags, token),
        description: format!("embedded {addr}"),
        fsync: Some(policy),
        embedded: Some(Embedded {
            stop,
            task,
            data_dir,
        }),
    })
}
