//! `rstmdb bench`: a load generator in the spirit of redis-benchmark and etcd's benchmark tool.
//!
//! Module map:
//! - this file: the flags ([`BenchArgs`]) and the run: target, set-up, load, report, exit code;
//! - `target`: which server to load — a remote one (`--server`) or an in-process one on a
//!   temporary data directory (`--embedded`, the default when no server is given);
//! - `workload`: the workloads, their set-up and one checked operation each;
//! - `runner`: connections × pipeline depth concurrent callers, stop conditions, progress;
//! - `report`: HDR latency histograms, errors by code, CPU time, the text and `--json` output;
//! - `lists`: the background LIST_INSTANCES of `--list-pipeline`;
//! - `cpu`: CPU seconds of a process from `/proc/<pid>/stat`.
//!
//! Every response is checked: a server error, a transport failure or a result that is not what
//! the workload expects is counted under its code and reported, and the exit code is 1 when
//! any error occurred.

mod cpu;
mod lists;
mod report;
mod runner;
mod target;
mod workload;

use clap::Args;
use rstmdb::config::FsyncPolicySetting;
use std::process::ExitCode;
use std::time::Duration;

use lists::{ListFilter, ListLoad};
use report::{Report, RunShape};
use runner::{RunPlan, StopAt};
use target::{ConnectFlags, Target};
use workload::{Mix, Workload, WorkloadSpec};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to run: apply, create, get, mixed, batch or watch.
    #[arg(long, short = 'w', value_enum, default_value_t = Workload::Apply)]
    workload: Workload,
    /// Connections (one client each).
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Requests in flight on each connection (pipeline depth).
    #[arg(long, short = 'P', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// How long to run, e.g. `500ms`, `10s`, `2m` (ignored when --requests is given).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many operations instead of after --duration.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Instances created before the run (the targets of apply, get, mixed, batch and watch).
    #[arg(long, short = 'i', default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    instances: u64,
    /// Bytes of payload per APPLY_EVENT (merged into ctx) and of initial ctx per CREATE_INSTANCE.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    payload_bytes: u64,
    /// Ratios of the mixed workload, e.g. `get=8,apply=2` or `get=6,apply=3,create=1`.
    #[arg(long, default_value = "get=8,apply=2")]
    mix: Mix,
    /// Sub-ops per BATCH request in the batch workload (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    batch_size: u32,
    /// Run batches atomically instead of best effort.
    #[arg(long)]
    batch_atomic: bool,
    /// WATCH_ALL subscribers of the watch workload, each on its own connection.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    watchers: u32,
    /// Make every Nth APPLY_EVENT send an event the machine does not have (error injection:
    /// those requests must come back as INVALID_TRANSITION and be counted as errors).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    invalid_event_every: Option<u64>,
    /// Keep this many LIST_INSTANCES in flight on one more connection during the run, to see
    /// what expensive reads do to the workload's latency (0: none).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1024))]
    list_pipeline: u32,
    /// `offset` of the background lists.
    #[arg(long, default_value_t = 900_000)]
    list_offset: u32,
    /// Filter of the background lists: `rare` (a machine and state with 10 instances) or `none`.
    #[arg(long, value_enum, default_value_t = ListFilter::Rare)]
    list_filter: ListFilter,
    #[command(flatten)]
    connect: ConnectFlags,
    /// Start an in-process server on a temporary data directory (the default without --server).
    #[arg(long, conflicts_with = "server")]
    embedded: bool,
    /// fsync policy of the embedded server: every_write, never, every_n:N or every_ms:N.
    /// A remote server's policy is its own, so this conflicts with --server.
    #[arg(long, default_value = "every_write", value_parser = FsyncPolicySetting::parse_flag, conflicts_with = "server")]
    fsync: FsyncPolicySetting,
    /// Also report the CPU time this process (for example a separate `rstmdb serve`) used
    /// during the run, read from /proc/<PID>/stat.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Print one JSON line instead of the text report.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> ExitCode {
    let runtime = match super::async_runtime(None) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(bench(args)) {
        Ok(report) if report.errors.total() == 0 => ExitCode::SUCCESS,
        // The report is already printed; errors never pass as success.
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(args: BenchArgs) -> Result<Report, BenchError> {
    let target = if args.connect.server.is_some() {
        Target::Remote
    } else {
        Target::Embedded(args.fsync)
    };
    let running = target::start(target, &args.connect).await?;
    let spec = WorkloadSpec {
        workload: args.workload,
        instances: args.instances,
        payload_bytes: args.payload_bytes,
        mix: args.mix.clone(),
        batch_size: args.batch_size,
        batch_atomic: args.batch_atomic,
        invalid_event_every: args.invalid_event_every,
        lists: (args.list_pipeline > 0).then_some(ListLoad {
            pipeline: args.list_pipeline,
            offset: args.list_offset,
            filter: args.list_filter,
        }),
    };
    let plan = RunPlan {
        connections: args.connections,
        pipeline: args.pipeline,
        watchers: args.watchers,
        stop: match args.requests {
            Some(count) => StopAt::Count(count),
            None => StopAt::Elapsed(args.duration),
        },
        progress: !args.json,
    };
    let outcome = runner::run(&running.options, &spec, &plan, args.server_pid).await;
    let (target_description, fsync) = (running.description.clone(), running.fsync);
    running.stop().await;
    let outcome = outcome?;
    let shape = RunShape {
        workload: args.workload,
        connections: args.connections,
        pipeline: args.pipeline,
        instances: args.instances,
        payload_bytes: args.payload_bytes,
        batch_size: (args.workload == Workload::Batch).then_some(args.batch_size),
        watchers: (args.workload == Workload::Watch).then_some(args.watchers),
        lists: spec.lists,
        target: target_description,
        fsync: fsync.map(|policy| policy.to_string()),
    };
    let report = Report::new(shape, outcome);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(report)
}

/// Why a bench could not run at all (errors during the run are counted, not raised).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start the embedded server: {0}")]
    Embedded(String),
    #[error("cannot connect: {0}")]
    Connect(#[from] rstmdb_client::ClientError),
    #[error(transparent)]
    Token(#[from] crate::cli::connect::TokenError),
    #[error("set-up failed: {0}")]
    Setup(String),
    #[error("a bench task failed: {0}")]
    Task(String),
}

/// `500ms`, `10s`, `2m`, `1m30s` (humantime's forms) or a plain number of seconds (`1.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|err| err.to_string())
        }
        Ok(_) => Err("it is negative".to_owned()),
        Err(_) => humantime::parse_duration(text).map_err(|err| err.to_string()),
    };
    match parsed {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!(
            "`{text}` is zero; the bench needs a positive duration"
        )),
        Err(reason) => Err(format!(
            "`{text}` is not a duration ({reason}); use e.g. 500ms, 10s, 2m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_accept_milliseconds_seconds_minutes_and_plain_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn durations_reject_zero_negative_and_words() {
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
