//! `rstmdb serve`: loads the configuration (defaults < file < env < flags), starts the server
//! and runs until SIGINT or SIGTERM, then shuts down gracefully and exits 0. With
//! `[metrics] enabled`, the metrics endpoint starts first, so `/health` answers 503 during
//! recovery and after the signal.

use clap::{Args, ValueEnum};
use rstmdb::assemble;
use rstmdb::cluster::node::ClusterNode;
use rstmdb::config::{Config, ConfigError, FsyncPolicySetting, ResolvedAuth, apply_env};
use rstmdb::database::{Database, OpenError, OpenReport};
use rstmdb::metrics::{Health, HealthState, Metrics, MetricsServer};
use rstmdb::server::{Server, ServerSettings};
use rstmdb::service::DatabaseHandler;
use rstmdb::wal::WalError;
use rstmdb_client::limits::{MAX_PAYLOAD_BYTES, MIN_MAX_FRAME_BYTES};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    #[arg(long, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(MIN_MAX_FRAME_BYTES as u64..=MAX_PAYLOAD_BYTES as u64))]
    max_frame_bytes: Option<u64>,
    /// Log line format on stderr: human-readable text, or one JSON object per line for log
    /// aggregation. The level filter is RUST_LOG (default info).
    #[arg(long, value_enum, value_name = "FORMAT", env = "RSTMDB_LOG_FORMAT", ignore_case = true,
          default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
    init_logging(args.log_format);
    // Before the runtime and the database open anything.
    match super::fd_limit::raise_and_check(config.network.max_connections) {
        Ok(limit) if limit.before != limit.now => tracing::info!(
            before = ?limit.before,
            now = ?limit.now,
            "raised the open-file limit to the hard limit"
        ),
        Ok(_) => {}
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match super::async_runtime(None) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(serve(config, auth))
}

/// The metrics endpoint first (so `/health` answers 503 during recovery), then recovery, then
/// the RCP server until a termination signal.
async fn serve(config: Config, auth: ResolvedAuth) -> ExitCode {
    let health = Arc::new(Health::default());
    let metrics = if config.metrics.enabled {
        match start_metrics(&config, &health).await {
            Ok(metrics) => Some(metrics),
            Err(err) => {
                tracing::error!(%err, "cannot start the metrics endpoint");
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let options = assemble::database_options(&config);
    let node_settings = match assemble::node_settings(&config) {
        Ok(settings) => settings,
        Err(err) => {
            tracing::error!(%err, "cannot start the cluster node");
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (db, report, node) = match node_settings {
        Some(settings) => match ClusterNode::start(options, settings).await {
            Ok((db, report, node)) => (db, report, Some(node)),
            Err(err) => {
                tracing::error!(%err, "cannot start the cluster node");
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => match tokio::task::spawn_blocking(move || Database::open(options)).await {
            Ok(Ok((db, report))) => (Arc::new(db), report, None),
            Ok(Err(err)) => return open_failed(&config, err),
            Err(err) => {
                eprintln!("error: opening the data directory panicked: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    log_recovery(&report);
    if let Some(metrics) = &metrics {
        metrics.record_recovery(&report);
        metrics.attach_database(Arc::clone(&db));
    }
    let settings = assemble::server_settings(&config, auth);
    let mut handler =
        DatabaseHandler::with_watch_limits(Arc::clone(&db), assemble::watch_limits(&config.watch));
    if let Some(node) = node {
        if let Some(metrics) = &metrics {
            let max_lag = config.cluster.as_ref().map_or(0, |c| c.max_lag_entries);
            if let Err(err) = metrics.attach_cluster(node.observer().clone(), max_lag) {
                tracing::warn!(%err, "the cluster metrics could not be registered");
            }
        }
        handler = handler.with_cluster(node);
    }
    if let Some(metrics) = &metrics {
        metrics.attach_watch(handler.watch_hub().clone());
        handler = handler.with_counters(Arc::clone(metrics) as _);
    }
    let handler = Arc::new(handler);
    handler.serve_cluster();
    let mut server = match Server::bind(settings.clone(), handler).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!(%err, "cannot start the server");
            eprintln!("error: {err}");
            close_database(db).await;
            return ExitCode::FAILURE;
        }
    };
    if let Some(metrics) = metrics {
        server = server.with_observer(metrics);
    }
    // A cluster node keeps its log whole until checkpoints are Raft snapshots
    // (docs/cluster.md section 7): deleting segments would delete entries.
    if config.cluster.is_none() {
        tokio::spawn(Database::run_auto_compaction(
            Arc::clone(&db),
            assemble::auto_compaction(&config.compaction),
        ));
    }
    // Before the "listening" line, so whoever waits for that line finds /health at 200; the
    // socket is bound, and connections made now wait in its backlog for the accept loop.
    health.set(HealthState::Serving);
    log_start(&server, &config, &settings);
    // The handler's shutdown hook syncs the WAL and closes the database.
    server
        .run_until(async move {
            termination_signal().await;
            health.set(HealthState::ShuttingDown);
        })
        .await;
    ExitCode::SUCCESS
}

/// Binds `metrics.bind_addr` and serves `/metrics` and `/health` until the process exits.
async fn start_metrics(config: &Config, health: &Arc<Health>) -> Result<Arc<Metrics>, String> {
    let max_state_series = usize::try_from(config.metrics.max_state_series).unwrap_or(usize::MAX);
    let metrics = Metrics::new(max_state_series).map_err(|err| err.to_string())?;
    let endpoint = MetricsServer::bind(
        config.metrics.bind_addr,
        Arc::clone(&metrics),
        Arc::clone(health),
    )
    .await
    .map_err(|err| err.to_string())?;
    match endpoint.local_addr() {
        Ok(addr) => tracing::info!(%addr, "metrics endpoint listening"),
        Err(err) => tracing::warn!(%err, "metrics endpoint bound, address unknown"),
    }
    tokio::spawn(endpoint.run(CancellationToken::new()));
    Ok(metrics)
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

/// `RUST_LOG` controls the level (default `info`, spec §9.1; openraft's own at `warn`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // openraft narrates every election and replication step at INFO.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            // Colour codes only for a person at a terminal; log files and pipes get plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).try_init()
        }
        // One object per line: timestamp, level, target, message and the event's fields at the
        // top level, and the enclosing span (e.g. a request's op and connection) under "span".
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// One line each: address, data dir, fsync policy, auth, TLS. Token hashes are never logged.
fn log_start(server: &Server, config: &Config, settings: &ServerSettings) {
    match server.local_addr() {
        Ok(addr) => tracing::info!(%addr, "rstmdb listening"),
        Err(err) => tracing::warn!(%err, "listening, but the bound address is unknown"),
    }
    tracing::info!(data_dir = %config.storage.data_dir.display(), "data directory");
    let fsync_policy = assemble::fsync_policy(config.storage.fsync_policy);
    tracing::info!(%fsync_policy, "WAL fsync policy");
    tracing::info!(
        required = settings.auth.required,
        token_hashes = settings.auth.token_hashes.len(),
        "authentication"
    );
    if !settings.auth.required && !settings.bind_addr.ip().is_loopback() {
        tracing::warn!(
            bind_addr = %settings.bind_addr,
            "authentication is off and the server listens beyond loopback: anyone who can \
             reach this address can read and change every instance; set auth.required = true \
             (RSTMDB_AUTH_REQUIRED) with a token hash, or bind to 127.0.0.1"
        );
    }
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
