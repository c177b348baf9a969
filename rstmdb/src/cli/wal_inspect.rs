//! `rstmdb wal-inspect`: offline inspection and repair of a data directory's WAL
//! (`list`, `dump`, `verify`, `repair`). Every command takes the data-dir lock, so it refuses
//! to touch a WAL that a running server owns. Only `repair --yes` opens anything for writing
//! (and takes the lock exclusively); the others open files read-only and take it shared, so
//! they work on a read-only copy of a data directory and cannot change what they inspect.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rstmdb::engine::RAFT_ENTRY_KIND;
use rstmdb::wal::repair::{self, RepairAction};
use rstmdb::wal::scan::{self, Tail};
use rstmdb::wal::segment::{offset_of, segment_file_name, segment_ids};
use rstmdb::wal::stats::IoCounters;
use rstmdb::wal::{DataDirLock, DirStorage, Storage, WalError, WalReader, WalRecord, wal_dir};
use rstmdb_client::terminal_text::escape_controls;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct WalInspectArgs {
    /// The data directory (its WAL is in `<DIR>/wal`).
    #[arg(long, value_name = "DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: WalCommand,
}

#[derive(Debug, Subcommand)]
enum WalCommand {
    /// One line per segment: size, logical length, first/last offset and sequence, records.
    List,
    /// Print records (a table, or JSON lines with --json).
    Dump(DumpArgs),
    /// Check every length, CRC and sequence; exit 1 naming the first fault.
    Verify,
    /// Cut the WAL at its first corruption (dry run unless --yes).
    Repair {
        /// Really cut: the cut bytes are kept in `<segment>.corrupt` files (`.corrupt.N` beside an
        /// earlier repair's, which is never replaced).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
struct DumpArgs {
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Only records whose entry has this `instance_id`.
    #[arg(long)]
    instance: Option<String>,
    /// Only records whose entry has this `machine`.
    #[arg(long)]
    machine: Option<String>,
    /// Only records with offset >= OFFSET.
    #[arg(long, value_name = "OFFSET", default_value_t = 0)]
    from: u64,
    /// At most N records (after filtering).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

/// A failure rendered by miette, with a hint.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
struct InspectError {
    message: String,
    #[help]
    help: Option<String>,
}

impl From<WalError> for InspectError {
    fn from(e: WalError) -> Self {
        let help = e.hint().map(str::to_owned);
        InspectError {
            message: e.to_string(),
            help,
        }
    }
}

pub fn run(args: WalInspectArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: WalInspectArgs) -> Result<ExitCode, InspectError> {
    let dir = wal_dir(&args.data_dir);
    if !dir.is_dir() {
        return Err(InspectError {
            message: format!("no WAL directory at {}", dir.display()),
            help: Some("pass the server's data directory with --data-dir".to_owned()),
        });
    }
    let writes = matches!(args.command, WalCommand::Repair { yes: true });
    let (_lock, storage) = if writes {
        (
            DataDirLock::acquire(&args.data_dir)?,
            DirStorage::open(&dir),
        )
    } else {
        (
            DataDirLock::acquire_shared(&args.data_dir)?,
            DirStorage::open_read_only(&dir),
        )
    };
    let storage = storage.map_err(|e| WalError::Io {
        action: format!("open {}", dir.display()),
        source: e,
    })?;
    match args.command {
        WalCommand::List => list(&storage),
        WalCommand::Dump(d) => dump(storage, &d),
        WalCommand::Verify => verify(&storage),
        WalCommand::Repair { yes } => repair_wal(&storage, yes),
    }
}

fn io_error(action: &str) -> impl FnOnce(std::io::Error) -> InspectError + '_ {
    move |e| {
        InspectError::from(WalError::Io {
            action: action.to_owned(),
            source: e,
        })
    }
}

/// A byte-progress bar on stderr, hidden when stderr is not a terminal.
fn progress(storage: &DirStorage) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total: u64 = storage
        .list()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| std::fs::metadata(storage.path().join(n)).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar
}

fn list(storage: &DirStorage) -> Result<ExitCode, InspectError> {
    let names = storage.list().map_err(io_error("list the WAL directory"))?;
    let counters = IoCounters::default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<22} {:>12} {:>12} {:>16} {:>16} {:>10} {:>10} {:>9}  tail",
        "segment",
        "size",
        "logical",
        "first_offset",
        "last_offset",
        "first_seq",
        "last_seq",
        "records"
    );
    let bar = progress(storage);
    for id in segment_ids(&names) {
        let name = segment_file_name(id);
        let file = storage.open(&name).map_err(io_error(&name))?;
        let s = scan::scan_segment(file.as_ref(), id, &counters, &mut |r| {
            bar.inc(r.header.record_len());
            Ok(())
        })?;
        let show = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
        let tail = match s.tail {
            Tail::Clean => "clean".to_owned(),
            Tail::Zeros => "zero-filled".to_owned(),
            Tail::Invalid(e) => format!("invalid ({e})"),
            Tail::InvalidThenValid {
                reason,
                valid_at,
                durable_when_written,
            } => {
                // Whether this is a hole in unsynced writes or damage depends on the sequence
                // expected there: `verify` gives the verdict.
                format!(
                    "INVALID at byte {} ({reason}; valid records from {valid_at}, written while \
                     sequences above {durable_when_written} were not durable)",
                    s.logical_len
                )
            }
        };
        // The bar is on stderr: hide it while a row goes to stdout so they do not interleave.
        let _ = bar.suspend(|| {
            writeln!(
                out,
                "{name:<22} {:>12} {:>12} {:>16} {:>16} {:>10} {:>10} {:>9}  {tail}",
                s.file_len,
                s.logical_len,
                show(s.first.map(|f| f.0)),
                show(s.last.map(|l| l.0)),
                show(s.first.map(|f| f.1)),
                show(s.last.map(|l| l.1)),
                s.records,
            )
        });
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

fn field<'v>(entry: &'v Value, key: &str) -> Option<&'v Value> {
    entry.get(key).filter(|v| !v.is_null())
}

/// A field for the table, control characters escaped: ids and names are whatever a client
/// stored, and must not drive the terminal the dump is read on. (`--json` needs no help.)
fn text(entry: &Value, key: &str) -> String {
    match field(entry, key) {
        Some(Value::String(s)) => escape_controls(s).into_owned(),
        Some(other) => escape_controls(&other.to_string()).into_owned(),
        None => "-".to_owned(),
    }
}

fn matches(entry: &Value, key: &str, wanted: &Option<String>) -> bool {
    wanted
        .as_ref()
        .is_none_or(|w| entry.get(key).and_then(Value::as_str) == Some(w.as_str()))
}

fn dump(storage: DirStorage, args: &DumpArgs) -> Result<ExitCode, InspectError> {
    // Records on a terminal are their own progress; the bar is for dumps redirected to a file.
    let bar = if std::io::stdout().is_terminal() {
        ProgressBar::hidden()
    } else {
        progress(&storage)
    };
    let reader = WalReader::new(
        Arc::new(storage),
        Arc::new(IoCounters::default()),
        args.from,
        u64::MAX,
    );
    let mut out = std::io::stdout().lock();
    if !args.json {
        let _ = writeln!(
            out,
            "{:>16} {:>8} {:<16} {:<20} {:<16} {:>4} {:<16} transition",
            "offset", "sequence", "type", "instance", "machine", "ver", "event"
        );
    }
    let mut shown = 0u64;
    for record in reader {
        let record = record?;
        bar.inc(record.end() - record.offset);
        if args.limit.is_some_and(|limit| shown >= limit) {
            break;
        }
        let entry: Value = serde_json::from_slice(&record.payload).unwrap_or(Value::Null);
        if !matches(&entry, "instance_id", &args.instance)
            || !matches(&entry, "machine", &args.machine)
        {
            continue;
        }
        shown += 1;
        let line = if args.json {
            json_line(&record, entry)
        } else {
            table_line(&record, &entry)
        };
        if writeln!(out, "{line}").is_err() {
            break; // stdout closed (e.g. piped into `head`)
        }
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

fn json_line(record: &WalRecord, entry: Value) -> String {
    let mut line = serde_json::json!({
        "offset": record.offset,
        "sequence": record.sequence,
        "kind": record.kind,
        "timestamp_ms": record.timestamp_ms,
        "size": record.end() - record.offset,
        "entry": entry,
    });
    if let (Some(u), Some(obj)) = (record.unit, line.as_object_mut()) {
        obj.insert(
            "unit".to_owned(),
            serde_json::json!({"index": u.index, "count": u.count}),
        );
    }
    line.to_string()
}

fn table_line(record: &WalRecord, entry: &Value) -> String {
    if record.kind == RAFT_ENTRY_KIND {
        // A cluster node's Raft entry header (docs/cluster.md section 2): its data records,
        // if any, follow as rows of their own.
        return format!(
            "{:>16} {:>8} {:<16} term {} index {}, {} records",
            record.offset,
            record.sequence,
            format!("raft_{}", text(entry, "payload")),
            text(entry, "term"),
            text(entry, "index"),
            text(entry, "records"),
        );
    }
    let transition = match (field(entry, "from_state"), field(entry, "to_state")) {
        (None, None) => String::new(),
        _ => format!(
            "{} -> {}",
            text(entry, "from_state"),
            text(entry, "to_state")
        ),
    };
    format!(
        "{:>16} {:>8} {:<16} {:<20} {:<16} {:>4} {:<16} {transition}",
        record.offset,
        record.sequence,
        text(entry, "type"),
        text(entry, "instance_id"),
        text(entry, "machine"),
        text(entry, "version"),
        text(entry, "event"),
    )
}

fn verify(storage: &DirStorage) -> Result<ExitCode, InspectError> {
    let bar = progress(storage);
    let counters = IoCounters::default();
    let result = repair::verify_with(storage, &counters, &mut |r| {
        bar.inc(r.header.record_len());
        Ok(())
    });
    bar.finish_and_clear();
    match result {
        Ok(analysis) => {
            let records: u64 = analysis.segments.iter().map(|s| s.records).sum();
            println!(
                "ok: {} segments, {records} records, last sequence {}",
                analysis.segments.len(),
                analysis.last_sequence
            );
            for cut in &analysis.cuts {
                if let rstmdb::wal::analyze::PlannedCut::Truncate {
                    id,
                    position,
                    file_len,
                    reason,
                } = cut
                {
                    println!(
                        "note: start-up recovery will cut {} bytes from {} at byte {position} ({reason})",
                        file_len - position,
                        segment_file_name(*id)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ WalError::Corrupt(_)) => {
            eprintln!("{:?}", miette::Report::new(InspectError::from(e)));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn describe(action: &RepairAction) -> String {
    match action {
        RepairAction::Truncate {
            segment,
            position,
            bytes_cut,
            aside,
        } => format!(
            "cut {bytes_cut} bytes from {segment} at byte {position} (WAL offset {}), saved to {aside}",
            offset_of(
                rstmdb::wal::segment::parse_segment_file_name(segment).unwrap_or(0),
                *position
            )
        ),
        RepairAction::SetAside {
            segment,
            bytes,
            aside,
        } => {
            format!("set aside {segment} ({bytes} bytes) as {aside}")
        }
    }
}

fn repair_wal(storage: &DirStorage, yes: bool) -> Result<ExitCode, InspectError> {
    let counters = IoCounters::default();
    // Each pass removes the first corruption; a pass can reveal the next one (bounded by the
    // number of segments and records, so the loop always ends).
    let mut passes = 0;
    loop {
        let Some(plan) = repair::plan(storage, &counters)? else {
            if passes == 0 {
                println!("nothing to repair: the WAL is valid");
            } else {
                println!("repaired: the WAL is valid now");
            }
            return Ok(ExitCode::SUCCESS);
        };
        println!("corruption: {}", plan.corruption);
        if !yes {
            for action in &plan.actions {
                println!("would {}", describe(action));
            }
            println!("dry run: nothing changed; run `rstmdb wal-inspect repair --yes` to cut");
            return Ok(ExitCode::SUCCESS);
        }
        repair::apply(storage, &plan)?;
        for action in &plan.actions {
            println!("did {}", describe(action));
        }
        passes += 1;
        if plan.actions.is_empty() {
            return Err(InspectError {
                message: "repair found corruption it cannot cut".to_owned(),
                help: None,
            });
        }
    }
}
