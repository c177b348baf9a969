//! BATCH in the sequencer (spec §4.15, §6.8): best_effort runs each sub-op as if sent alone;
//! atomic runs them against the live state keeping undo tokens, and either seals their records
//! into one WAL unit or undoes everything.

use super::errors;
use super::group::Group;
use super::jobs::{BatchItem, BatchOpResult, BatchOutput};
use super::sequencer::execute;
use crate::engine::{Engine, Record, Undo};
use rstmdb_protocol::RcpError;
use rstmdb_protocol::limits::MAX_RESULT_ITEMS_BYTES;
use rstmdb_protocol::params::BatchMode;
use rstmdb_protocol::results::BatchItemResult;

/// What one sub-op produced.
struct ItemOutcome {
    entry: Result<BatchOpResult, RcpError>,
    /// For a sub-op that wrote: its record, offset and undo token.
    written: Option<(u64, Record, Undo)>,
}

pub(super) fn run(
    engine: &mut Engine,
    group: &mut Group,
    mode: BatchMode,
    items: &[BatchItem],
    now_ms: i64,
    undos: &mut Vec<Undo>,
) -> Result<BatchOutput, RcpError> {
    match mode {
        BatchMode::BestEffort => Ok(best_effort(engine, group, items, now_ms, undos)),
        BatchMode::Atomic => atomic(engine, group, items, now_ms, undos),
    }
}

fn best_effort(
    engine: &mut Engine,
    group: &mut Group,
    items: &[BatchItem],
    now_ms: i64,
    undos: &mut Vec<Undo>,
) -> BatchOutput {
    let mut output = empty_output(items.len());
    let mut used_bytes = 0;
    // The error of the first sub-op that did not fit; every later sub-op repeats it, since
    // their own sizes are unknown (they never run) and `used_bytes` alone is below the limit.
    let mut overflow: Option<RcpError> = None;
    for item in items {
        if let Some(error) = &overflow {
            output.results.push(BatchItemResult::error(error.clone()));
            continue;
        }
        let mark = group.mark();
        let outcome = run_item(engine, group, item, now_ms);
        let size = entry_size(&outcome.entry);
        if used_bytes + size > MAX_RESULT_ITEMS_BYTES {
            // This sub-op and the rest are not executed (spec §6.8): take this one back.
            if let Some((_, _, undo)) = outcome.written {
                engine.undo(undo);
                group.cut_back(mark);
            }
            let error = too_large(used_bytes + size);
            overflow = Some(error.clone());
            output.results.push(BatchItemResult::error(error));
            continue;
        }
        used_bytes += size;
        if let Some((offset, record, undo)) = outcome.written {
            output.first_wal_offset.get_or_insert(offset);
            output.records.push((offset, record));
            undos.push(undo);
        }
        output.results.push(match outcome.entry {
            Ok(result) => BatchItemResult::ok(result),
            Err(error) => BatchItemResult::error(error),
        });
    }
    output
}

fn atomic(
    engine: &mut Engine,
    group: &mut Group,
    items: &[BatchItem],
    now_ms: i64,
    undos: &mut Vec<Undo>,
) -> Result<BatchOutput, RcpError> {
    let mark = group.mark();
    let mut output = empty_output(items.len());
    let mut own_undos = Vec::new();
    let mut used_bytes = 0;
    for (index, item) in items.iter().enumerate() {
        let outcome = run_item(engine, group, item, now_ms);
        used_bytes += entry_size(&outcome.entry);
        if let Some((offset, record, undo)) = outcome.written {
            output.first_wal_offset.get_or_insert(offset);
            output.records.push((offset, record));
            own_undos.push(undo);
        }
        let failure = match outcome.entry {
            Err(err) => Some(err.in_batch(index, item.op())),
            Ok(_) if used_bytes > MAX_RESULT_ITEMS_BYTES => Some(too_large(used_bytes)),
            Ok(result) => {
                output.results.push(BatchItemResult::ok(result));
                None
            }
        };
        if let Some(err) = failure {
            for undo in own_undos.into_iter().rev() {
                engine.undo(undo);
            }
            group.cut_back(mark);
            return Err(err);
        }
    }
    if !output.records.is_empty() {
        group.seal_unit(mark);
    }
    undos.extend(own_undos);
    Ok(output)
}

fn run_item(engine: &mut Engine, group: &mut Group, item: &BatchItem, now_ms: i64) -> ItemOutcome {
    let read = |result: Result<BatchOpResult, RcpError>| ItemOutcome {
        entry: result,
        written: None,
    };
    match item {
        BatchItem::Write { command, .. } => match execute(engine, group, command, now_ms) {
            Ok((output, undo)) => {
                let written = output
                    .wal_offset
                    .zip(output.record)
                    .map(|(offset, record)| (offset, record, undo));
                ItemOutcome {
                    entry: Ok(BatchOpResult::Write(output.result)),
                    written,
                }
            }
            Err(err) => read(Err(err)),
        },
        BatchItem::GetInstance { instance_id } => read(
            engine
                .get_instance(instance_id)
                .map(BatchOpResult::GetInstance)
                .map_err(|e| errors::from_apply(&e)),
        ),
        BatchItem::GetMachine { machine, version } => read(
            engine
                .get_machine(machine, *version)
                .map(BatchOpResult::GetMachine)
                .map_err(|e| errors::from_apply(&e)),
        ),
        BatchItem::Refused { error, .. } => read(Err(error.clone())),
    }
}

fn empty_output(capacity: usize) -> BatchOutput {
    BatchOutput {
        results: Vec::with_capacity(capacity),
        first_wal_offset: None,
        records: Vec::new(),
    }
}

/// The bytes this entry adds to the `results` array: `{"status":..,"result":..,"error":..},`.
fn entry_size(entry: &Result<BatchOpResult, RcpError>) -> usize {
    const FRAMING: usize = r#"{"status":"error","result":null,"error":null},"#.len();
    let body = match entry {
        Ok(result) => serde_json::to_string(result).map_or(0, |s| s.len()),
        Err(err) => serde_json::to_string(err).map_or(0, |s| s.len()),
    };
    FRAMING + body
}

fn too_large(size: usize) -> RcpError {
    RcpError::response_too_large(size, MAX_RESULT_ITEMS_BYTES)
}
