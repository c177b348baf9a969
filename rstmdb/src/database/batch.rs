//! BATCH in the sequencer (spec §4.15, §6.8): best_effort runs each sub-op as if sent alone;
//! atomic runs them against the live state keeping undo tokens, and either seals their records
//! into one WAL unit or undoes everything.

use super::errors;
use super::group::Group;
use super::jobs::{BatchItem, BatchOutput};
use super::sequencer::execute;
use crate::engine::{Engine, Record, Undo};
use rstmdb_client::RcpError;
use rstmdb_client::params::BatchMode;
use serde_json::Value;

/// The most result bytes a BATCH may return (spec §6.8: 16 MiB − 64 KiB, leaving room for the
/// envelope).
pub const RESULTS_BUDGET_BYTES: usize = 16 * 1024 * 1024 - 64 * 1024;

/// What one sub-op produced.
struct ItemOutcome {
    entry: Result<Value, RcpError>,
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
            output.results.push(Err(error.clone()));
            continue;
        }
        let mark = group.mark();
        let outcome = run_item(engine, group, item, now_ms);
        let size = entry_size(&outcome.entry);
        if used_bytes + size > RESULTS_BUDGET_BYTES {
            // This sub-op and the rest are not executed (spec §6.8): take this one back.
            if let Some((_, _, undo)) = outcome.written {
                engine.undo(undo);
                group.cut_back(mark);
            }
            let error = too_large(used_bytes + size);
            overflow = Some(error.clone());
            output.results.push(Err(error));
            continue;
        }
        used_bytes += size;
        if let Some((offset, record, undo)) = outcome.written {
            output.first_wal_offset.get_or_insert(offset);
            output.records.push((offset, record));
            undos.push(undo);
        }
        output.results.push(outcome.entry);
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
            Ok(_) if used_bytes > RESULTS_BUDGET_BYTES => Some(too_large(used_bytes)),
            Ok(value) => {
                output.results.push(Ok(value));
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
    let read = |result: Result<Value, RcpError>| ItemOutcome {
        entry: result,
        written: None,
    };
    match item {
        BatchItem::Write { command, .. } => match execute(engine, group, command, now_ms) {
            Ok((output, undo)) => {
                let entry = serde_json::to_value(&output.result).map_err(errors::internal);
                let written = output
                    .wal_offset
                    .zip(output.record)
                    .map(|(offset, record)| (offset, record, undo));
                ItemOutcome { entry, written }
            }
            Err(err) => read(Err(err)),
        },
        BatchItem::GetInstance { instance_id } => read(
            engine
                .get_instance(instance_id)
                .map_err(|e| errors::from_apply(&e))
                .and_then(|view| serde_json::to_value(view).map_err(errors::internal)),
        ),
        BatchItem::GetMachine { machine, version } => read(
            engine
                .get_machine(machine, *version)
                .map_err(|e| errors::from_apply(&e))
                .and_then(|found| serde_json::to_value(found).map_err(errors::internal)),
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
fn entry_size(entry: &Result<Value, RcpError>) -> usize {
    const FRAMING: usize = r#"{"status":"error","result":null,"error":null},"#.len();
    let body = match entry {
        Ok(value) => serde_json::to_string(value).map_or(0, |s| s.len()),
        Err(err) => serde_json::to_string(err).map_or(0, |s| s.len()),
    };
    FRAMING + body
}

fn too_large(size: usize) -> RcpError {
    RcpError::response_too_large(size, RESULTS_BUDGET_BYTES)
}
