//! `rstmdb snapshot`: offline inspection of checkpoints and instance snapshots in a data
//! directory (`docs/checkpoint-format.md`).
//!
//! Exit status: 0 when everything asked about is valid; 1 when `verify` finds a fault, `inspect`
//! shows an invalid item or names nothing; 2 when the data directory cannot be read or `create`
//! cannot run.

use clap::{Args, Subcommand};
use rstmdb::checkpoint::{
    CheckpointEntry, CheckpointFault, CheckpointInfo, CheckpointName, CheckpointStore,
    SnapshotFault, SnapshotStore, StoredSnapshot, validate_snapshot_id,
};
use rstmdb::database::{Database, DatabaseOptions};
use rstmdb::wal::WalConfig;
use std::collections::HashMap;
use std::error::Error;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The server's data directory.
    #[arg(long, global = true, env = "RSTMDB_DATA", default_value = "./data")]
    data_dir: PathBuf,

    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List checkpoints and instance snapshots, each with its size, creation time and validity.
    List,
    /// Show one checkpoint (file name, or decimal checkpoint_offset) or instance snapshot (id).
    Inspect {
        /// `checkpoint-….ckpt`, a checkpoint_offset in decimal, or a `snap-…` id.
        id: String,
    },
    /// Check every checksum; exit 1 naming each fault.
    Verify,
    /// Write a checkpoint from the WAL of a stopped server, then apply retention.
    Create {
        /// Keep the previous checkpoint as well as the new one.
        #[arg(long)]
        keep_previous: bool,
    },
}

/// A failure that stops the command (exit 2), as opposed to a fault it reports (exit 1).
type Failure = Box<dyn Error + Send + Sync>;

pub fn run(args: SnapshotArgs) -> ExitCode {
    if !args.data_dir.is_dir() {
        eprintln!(
            "error: data directory {} does not exist (use --data-dir)",
            args.data_dir.display()
        );
        return ExitCode::from(2);
    }
    let outcome = match args.action {
        Action::List => list(&args.data_dir),
        Action::Inspect { id } => inspect(&args.data_dir, &id),
        Action::Verify => verify(&args.data_dir),
        Action::Create { keep_previous } => create(&args.data_dir, keep_previous),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(2)
        }
    }
}

/// Recovers the data directory of a stopped server (the directory lock refuses a running one),
/// writes a checkpoint of its whole state, then applies retention. WAL segments are left alone:
/// deleting them is COMPACT's job.
fn create(data_dir: &Path, keep_previous: bool) -> Result<bool, Failure> {
    let options = DatabaseOptions::new(data_dir, WalConfig::default());
    let (db, report) = Database::open(options)?;
    let written = db.checkpoint_now(true);
    let closed = db.shutdown();
    drop(db);
    let written = written?;
    closed?;
    let store = CheckpointStore::open(data_dir)?;
    let removed = store.remove_older_than_newest(keep_previous)?;
    let newest = store.load_newest_valid()?.loaded.map(|c| c.info);
    let Some(info) = newest else {
        return Err("the checkpoint just written cannot be read back".into());
    };
    println!(
        "wrote {} ({} bytes, checkpoint_offset {}, {} instances, {} records replayed); \
         removed {removed} older checkpoint(s)",
        info.file_name,
        info.file_size_bytes(),
        written.checkpoint_offset,
        report.instances,
        report.records_replayed,
    );
    Ok(true)
}

fn list(data_dir: &Path) -> Result<bool, Failure> {
    let checkpoints = CheckpointStore::open_read_only(data_dir);
    let entries = checkpoints.list()?;
    println!("checkpoints ({}):", entries.len());
    if !entries.is_empty() {
        println!(
            "  {:<16} {:>10} {:>12}  {:<24}  {:<8} FILE",
            "OFFSET", "LAST_SEQ", "SIZE", "CREATED", "STATUS"
        );
    }
    for entry in &entries {
        let status = checkpoint_status(&checkpoints, entry)?;
        let (last_sequence, created) = match &entry.header {
            Ok(info) => (
                info.meta.last_sequence.to_string(),
                format_epoch_ms(info.meta.created_at_ms),
            ),
            Err(_) => ("?".to_owned(), "?".to_owned()),
        };
        println!(
            "  {:<16} {:>10} {:>12}  {:<24}  {:<8} {}",
            entry.name.checkpoint_offset,
            last_sequence,
            entry.file_size_bytes,
            created,
            status_word(&status),
            entry.name.file_name()
        );
    }

    let snapshots = SnapshotStore::open_read_only(data_dir);
    let report = snapshots.verify()?;
    let faults: HashMap<&str, &SnapshotFault> = report
        .faults
        .iter()
        .filter_map(|f| snapshot_fault_id(f).map(|id| (id, f)))
        .collect();
    let indexed = snapshots.list()?;
    println!("instance snapshots ({}):", indexed.len());
    if !indexed.is_empty() {
        println!(
            "  {:<41} {:<16} {:>16} {:>8}  {:<24}  STATUS",
            "ID", "INSTANCE", "WAL_OFFSET", "SIZE", "CREATED"
        );
    }
    for entry in &indexed {
        let status = match faults.get(entry.snapshot_id.as_str()) {
            None => "valid".to_owned(),
            Some(fault) => format!("INVALID: {fault}"),
        };
        println!(
            "  {:<41} {:<16} {:>16} {:>8}  {:<24}  {status}",
            entry.snapshot_id,
            entry.instance_id,
            entry.wal_offset,
            entry.size_bytes,
            format_epoch_ms(entry.created_at)
        );
    }
    Ok(true)
}

fn checkpoint_status(
    store: &CheckpointStore,
    entry: &CheckpointEntry,
) -> Result<Result<CheckpointInfo, CheckpointFault>, Failure> {
    match &entry.header {
        Ok(_) => Ok(store.verify(&entry.name.file_name())?),
        Err(fault) => Ok(Err(fault.clone())),
    }
}

fn status_word(status: &Result<CheckpointInfo, CheckpointFault>) -> &'static str {
    if status.is_ok() { "valid" } else { "INVALID" }
}

fn snapshot_fault_id(fault: &SnapshotFault) -> Option<&str> {
    match fault {
        SnapshotFault::MissingFile { snapshot_id }
        | SnapshotFault::ChecksumMismatch { snapshot_id, .. }
        | SnapshotFault::SizeMismatch { snapshot_id, .. }
        | SnapshotFault::BadContent { snapshot_id, .. } => Some(snapshot_id),
        SnapshotFault::BadIndexLine { .. } => None,
    }
}

fn inspect(data_dir: &Path, id: &str) -> Result<bool, Failure> {
    let checkpoints = CheckpointStore::open_read_only(data_dir);
    let entries = checkpoints.list()?;
    let by_name = CheckpointName::parse(id);
    let by_offset = id.parse::<u64>().ok();
    // For an offset shared by a forced checkpoint, the newest (last listed) is meant.
    let chosen = entries
        .iter()
        .rev()
        .find(|e| Some(e.name) == by_name || Some(e.name.checkpoint_offset) == by_offset);
    if let Some(entry) = chosen {
        return inspect_checkpoint(&checkpoints, entry);
    }
    if validate_snapshot_id(id).is_ok() {
        let snapshots = SnapshotStore::open_read_only(data_dir);
        match snapshots.get(id) {
            Ok(stored) => return Ok(inspect_snapshot(&stored)),
            Err(rstmdb::checkpoint::SnapshotError::NotFound(_)) => {}
            Err(other) => return Err(other.into()),
        }
    }
    eprintln!(
        "error: no checkpoint or instance snapshot matches {id:?} (see `rstmdb snapshot list`)"
    );
    Ok(false)
}

fn inspect_checkpoint(store: &CheckpointStore, entry: &CheckpointEntry) -> Result<bool, Failure> {
    let file_name = entry.name.file_name();
    println!("checkpoint {file_name}");
    field("path", store.dir().join(&file_name).display());
    field("file size", format!("{} bytes", entry.file_size_bytes));
    let status = checkpoint_status(store, entry)?;
    if let Ok(info) = &entry.header {
        let offset = info.meta.checkpoint_offset;
        field("format version", rstmdb::checkpoint::FORMAT_VERSION);
        field(
            "checkpoint_offset",
            format!(
                "{offset} (segment {}, byte {}; exclusive bound)",
                offset >> 40,
                offset & ((1 << 40) - 1)
            ),
        );
        field("last_sequence", info.meta.last_sequence);
        field("generation", info.generation);
        field(
            "created_at",
            format!(
                "{} ({} ms)",
                format_epoch_ms(info.meta.created_at_ms),
                info.meta.created_at_ms
            ),
        );
        field("payload", format!("{} bytes", info.payload_len));
        field("payload crc32c", format!("{:08x}", info.payload_crc32c));
    }
    match &status {
        Ok(_) => field("status", "valid (header and payload CRC match)"),
        Err(fault) => field("status", format!("INVALID: {fault}")),
    }
    Ok(status.is_ok())
}

fn inspect_snapshot(stored: &StoredSnapshot) -> bool {
    let snapshot = &stored.snapshot;
    println!("instance snapshot {}", snapshot.snapshot_id);
    field("instance_id", &snapshot.instance_id);
    field(
        "machine",
        format!("{} v{}", snapshot.machine, snapshot.version),
    );
    field("state", &snapshot.state);
    field("wal_offset", snapshot.wal_offset);
    field(
        "created_at",
        format!(
            "{} ({} ms)",
            format_epoch_ms(snapshot.created_at),
            snapshot.created_at
        ),
    );
    field("size", format!("{} bytes", stored.size_bytes));
    field("checksum", &stored.checksum);
    field("ctx", &snapshot.ctx);
    // An unindexed file is a warning only; a mismatch with the index is a fault.
    match &stored.index_entry {
        None => {
            field(
                "index",
                "not indexed (left by an interrupted write; never acknowledged)",
            );
            true
        }
        Some(entry)
            if entry.checksum == stored.checksum && entry.size_bytes == stored.size_bytes =>
        {
            field("index", "matches");
            true
        }
        Some(entry) => {
            field(
                "index",
                format!(
                    "MISMATCH: index says {} bytes, checksum {}",
                    entry.size_bytes, entry.checksum
                ),
            );
            false
        }
    }
}

fn field(name: &str, value: impl Display) {
    println!("  {:<18} {value}", format!("{name}:"));
}

fn verify(data_dir: &Path) -> Result<bool, Failure> {
    let checkpoints = CheckpointStore::open_read_only(data_dir);
    let entries = checkpoints.list()?;
    let mut faults = 0usize;
    for entry in &entries {
        let file_name = entry.name.file_name();
        match checkpoint_status(&checkpoints, entry)? {
            Ok(_) => println!("ok     checkpoints/{file_name}"),
            Err(fault) => {
                faults += 1;
                eprintln!("fault: checkpoints/{file_name}: {fault}");
            }
        }
    }
    let snapshots = SnapshotStore::open_read_only(data_dir);
    let report = snapshots.verify()?;
    let faulty: Vec<&str> = report.faults.iter().filter_map(snapshot_fault_id).collect();
    for entry in snapshots.list()? {
        if !faulty.contains(&entry.snapshot_id.as_str()) {
            println!("ok     snapshots/{}.json", entry.snapshot_id);
        }
    }
    for fault in &report.faults {
        faults += 1;
        eprintln!("fault: snapshots/{fault}");
    }
    for file in &report.unindexed_files {
        eprintln!(
            "warning: snapshots/{file} has no index entry (left by an interrupted \
             SNAPSHOT_INSTANCE, never acknowledged)"
        );
    }
    println!(
        "checked {} checkpoint(s) and {} instance snapshot(s): {faults} fault(s)",
        entries.len(),
        report.checked
    );
    Ok(faults == 0)
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds, e.g. `2026-01-01T00:00:07.500Z`. A value
/// before 1970 or after 9999 (only a damaged file could hold one) is shown as the plain number.
fn format_epoch_ms(epoch_ms: i64) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    let formatted = u64::try_from(epoch_ms)
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .is_some_and(|time| write!(text, "{}", humantime::format_rfc3339_millis(time)).is_ok());
    if formatted {
        text
    } else {
        format!("{epoch_ms} ms after the Unix epoch")
    }
}

#[cfg(test)]
mod tests {
    use super::format_epoch_ms;

    #[test]
    fn epoch_milliseconds_format_as_rfc3339_utc() {
        assert_eq!(format_epoch_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_epoch_ms(1_767_225_607_500),
            "2026-01-01T00:00:07.500Z"
        );
        assert_eq!(format_epoch_ms(951_825_600_001), "2000-02-29T12:00:00.001Z");
    }

    #[test]
    fn a_timestamp_outside_the_calendar_range_is_shown_as_a_number() {
        assert_eq!(format_epoch_ms(-1), "-1 ms after the Unix epoch");
        assert_eq!(
            format_epoch_ms(i64::MAX),
            format!("{} ms after the Unix epoch", i64::MAX)
        );
    }
}
