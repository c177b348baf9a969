//! `rstmdb serve`: loads the configuration (defaults < file < env < flags), starts the server
//! and runs until SIGINT or SIGTERM, then shuts down gracefully and exits 0.

use clap::Args;
use rstmdb::config::{Config, ConfigError, FsyncPolicySetting, apply_env};
use rstmdb::database::{Database, DatabaseOptions, OpenError, OpenReport};
use rstmdb::server::watch::WatchLimits;
use rstmdb::server::{DatabaseHandler, Server, ServerSettings};
use rstmdb::wal::WalError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (default: $RSTMDB_CONFIG when set).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (network.bind_addr).
    #[arg(long, value_name = "IP:PORT")]
    bind: Option<SocketAddr>,
    /// Data directory (storage.data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// fsync policy (storage.fsync_policy): every_write, never, every_n:N or every_ms:N.
    #[arg(long, value_name = "POLICY", value_parser = FsyncPolicySetting::parse_flag)]
    fsync: Option<FsyncPolicySetting>,
    /// Maximum simultaneous connections (network.max_connections).
    #[arg(long, value_name = "N")]
    max_connections: Option<u64>,
    /// Seconds without a byte before an idle connection is closed; 0 disables
    /// (network.idle_timeout_secs).
    #[arg(long, value_name = "SECS")]
    idle_timeout_secs: Option<u64>,
    /// Inbound frame / JSONL line limit in bytes (network.max_frame_bytes).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(65_536..=16_777_216))]
    max_frame_bytes: Option<u64>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            return ExitCode::FAILURE;
        }
    };
    let auth = match config.resolve() {
        Ok(auth) => auth,
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            return ExitCode::FAILURE;
        }
    };
    init_logging();
    let (db, report) = match Database::open(DatabaseOptions::from_config(&config)) {
        Ok(opened) => opened,
        Err(err) => return open_failed(&config, err),
    };
    log_recovery(&report);
    let db = Arc::new(db);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let settings = ServerSettings::from_config(&config, auth);
    let compaction = config.compaction.clone();
    let watch_limits = WatchLimits::from_config(&config.watch);
    runtime.block_on(async move {
        let handler = Arc::new(DatabaseHandler::with_watch_limits(
            Arc::clone(&db),
            watch_limits,
        ));
        let server = match Server::bind(settings.clone(), handler).await {
            Ok(server) => server,
            Err(err) => {
                tracing::error!(%err, "cannot start the server");
                eprintln!("error: {err}");
                close_database(db).await;
                return ExitCode::FAILURE;
            }
        };
        log_start(&server, &config, &settings);
        tokio::spawn(Database::run_auto_compaction(Arc::clone(&db), compaction));
        // The handler's shutdown hook syncs the WAL and closes the database.
        server.run_until(termination_signal()).await;
        ExitCode::SUCCESS
    })
}

/// Built-in defaults < file (`--config`, else `RSTMDB_CONFIG`) < `RSTMDB_*` env < flags.
fn load_config(args: &ServeArgs) -> Result<Config, ConfigError> {
    let file = args
        .config
        .clone()
        .or_else(|| std::env::var_os("RSTMDB_CONFIG").map(PathBuf::from));
    let mut config = match file {
        Some(path) => Config::from_file(&path)?,
        None => Config::default(),
    };
    apply_env(&mut config, |name| std::env::var(name).ok())?;
    if let Some(bind) = args.bind {
        config.network.bind_addr = bind;
    }
    if let Some(dir) = &args.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(policy) = args.fsync {
        config.storage.fsync_policy = policy;
    }
    if let Some(n) = args.max_connections {
        config.network.max_connections = n;
    }
    if let Some(secs) = args.idle_timeout_secs {
        config.network.idle_timeout_secs = secs;
    }
    if let Some(bytes) = args.max_frame_bytes {
        config.network.max_frame_bytes = bytes;
    }
    Ok(config)
}

/// `RUST_LOG` controls the level (default `info`, spec §9.1).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal; log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// One line each: address, data dir, fsync policy, auth, TLS. Token hashes are never logged.
fn log_start(server: &Server, config: &Config, settings: &ServerSettings) {
    match server.local_addr() {
        Ok(addr) => tracing::info!(%addr, "rstmdb listening"),
        Err(err) => tracing::warn!(%err, "listening, but the bound address is unknown"),
    }
    tracing::info!(data_dir = %config.storage.data_dir.display(), "data directory");
    tracing::info!(fsync_policy = %config.storage.fsync_policy, "WAL fsync policy");
    tracing::info!(
        required = settings.auth.required,
        token_hashes = settings.auth.token_hashes.len(),
        "authentication"
    );
    match &settings.tls {
        Some(tls) => tracing::info!(
            cert = %tls.cert_path.display(),
            mutual = tls.client_ca_path.is_some(),
            "TLS enabled"
        ),
        None => tracing::info!("TLS disabled"),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("termination signal received");
}

/// The start-up summary of what recovery found (spec §6.1: every cut is a warning that names
/// the segment and the bytes cut).
fn log_recovery(report: &OpenReport) {
    for skipped in &report.skipped_checkpoints {
        tracing::warn!(file = %skipped.file_name, fault = %skipped.fault, "invalid checkpoint skipped");
    }
    for cut in &report.recovery.cuts {
        tracing::warn!(
            segment = %cut.segment,
            bytes_cut = cut.bytes_cut,
            segment_deleted = cut.deleted,
            reason = %cut.reason,
            "WAL cut during recovery"
        );
    }
    tracing::info!(
        checkpoint_offset = report.checkpoint.as_ref().map(|c| c.meta.checkpoint_offset),
        records_replayed = report.records_replayed,
        instances = report.instances,
        machines = report.machines,
        duration_ms = report.duration.as_millis() as u64,
        "recovered"
    );
}

/// Why the data directory could not be opened, as a diagnostic; corruption exits with code 2
/// (spec §6.1) and names the repair command.
fn open_failed(config: &Config, err: OpenError) -> ExitCode {
    let corrupt = matches!(err, OpenError::Wal(WalError::Corrupt(_)));
    let hint = match &err {
        OpenError::Wal(wal) => wal.hint().map(str::to_owned),
        _ => None,
    };
    let data_dir = config.storage.data_dir.display().to_string();
    let report = match hint {
        Some(hint) => miette::miette!(
            help = hint,
            "cannot open the data directory {data_dir}: {err}"
        ),
        None => miette::miette!("cannot open the data directory {data_dir}: {err}"),
    };
    tracing::error!(%err, data_dir, "start-up stopped");
    eprintln!("{report:?}");
    if corrupt {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

async fn close_database(db: Arc<Database>) {
    let _ = tokio::task::spawn_blocking(move || db.shutdown()).await;
}
