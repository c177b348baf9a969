//! `snapshots/index.jsonl`: one JSON line per stored snapshot, appended and fsynced after the
//! snapshot file is durable. A crash during an append can leave a partial last line; readers
//! ignore it and a read-write open cuts it off, so the next append starts on a fresh line.

use super::error::{SnapshotError, SnapshotFault};
use super::fs::StorageFs;
use super::snapshot::{file_exists, read_optional};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The index file's name inside the snapshot directory.
pub const INDEX_FILE: &str = "index.jsonl";

/// One index line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotIndexEntry {
    pub snapshot_id: String,
    pub instance_id: String,
    pub wal_offset: u64,
    pub size_bytes: u64,
    /// CRC32C of the snapshot file as 8 lowercase hex digits.
    pub checksum: String,
    /// When the snapshot was taken, epoch milliseconds.
    pub created_at: i64,
}

/// A parsed index: the good lines and the faults of the bad ones.
#[derive(Debug, Default)]
pub(crate) struct IndexContents {
    pub entries: Vec<SnapshotIndexEntry>,
    pub bad_lines: Vec<SnapshotFault>,
}

/// Parses the index. Only complete lines (ending in `\n`) count: text after the last newline is
/// a torn append, never acknowledged.
pub(crate) fn parse(bytes: &[u8]) -> IndexContents {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last_newline) => &bytes[..last_newline],
        None => &[][..],
    };
    let mut contents = IndexContents::default();
    for (index, line) in complete.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(entry) => contents.entries.push(entry),
            Err(e) => contents.bad_lines.push(SnapshotFault::BadIndexLine {
                line_number: index + 1,
                reason: e.to_string(),
            }),
        }
    }
    contents
}

/// The complete lines of `bytes` except the entries whose snapshot id is in `removed`; lines
/// that do not parse are kept as they are (`verify` still reports them).
pub(crate) fn without(bytes: &[u8], removed: &std::collections::HashSet<&str>) -> Vec<u8> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last_newline) => &bytes[..=last_newline],
        None => &[][..],
    };
    let mut kept = Vec::with_capacity(complete.len());
    for line in complete.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let drop = serde_json::from_slice::<SnapshotIndexEntry>(body)
            .is_ok_and(|entry| removed.contains(entry.snapshot_id.as_str()));
        if !drop {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// Appends `entry` as one line and fsyncs the index; fsyncs the directory too when this append
/// created the file.
pub(crate) fn append(
    fs: &dyn StorageFs,
    dir: &Path,
    entry: &SnapshotIndexEntry,
) -> Result<(), SnapshotError> {
    let path = dir.join(INDEX_FILE);
    let existed = file_exists(fs, &path)?;
    let mut line = serde_json::to_vec(entry).map_err(|source| SnapshotError::Encode {
        snapshot_id: entry.snapshot_id.clone(),
        source,
    })?;
    line.push(b'\n');
    fs.append_synced(&path, &line)
        .map_err(SnapshotError::io(&path))?;
    if !existed {
        fs.sync_dir(dir).map_err(SnapshotError::io(dir))?;
    }
    Ok(())
}

/// Cuts a partial last line left by a crash during an append.
pub(crate) fn cut_torn_tail(fs: &dyn StorageFs, path: &Path) -> Result<(), SnapshotError> {
    let Some(bytes) = read_optional(fs, path)? else {
        return Ok(());
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    fs.truncate_synced(path, keep as u64)
        .map_err(SnapshotError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"snapshot_id":"snap-1","instance_id":"i-1","wal_offset":1099511627776,"size_bytes":10,"checksum":"0000abcd","created_at":5}"#;

    #[test]
    fn a_partial_last_line_is_ignored() {
        let bytes = format!("{LINE}\n{}", &LINE[..20]);
        let contents = parse(bytes.as_bytes());
        assert_eq!(contents.entries.len(), 1);
        assert!(contents.bad_lines.is_empty());
    }

    #[test]
    fn a_bad_complete_line_is_reported_with_its_number() {
        let bytes = format!("{LINE}\nnot json\n{LINE}\n");
        let contents = parse(bytes.as_bytes());
        assert_eq!(contents.entries.len(), 2);
        assert!(matches!(
            contents.bad_lines.as_slice(),
            [SnapshotFault::BadIndexLine { line_number: 2, .. }]
        ));
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn an_index_without_any_newline_is_empty() {
        let contents = parse(&LINE.as_bytes()[..30]);
        assert!(contents.entries.is_empty());
        assert!(contents.bad_lines.is_empty());
    }
}
