//! After a restart: read the whole log and check its shape, retry what is unresolved, read
//! every instance. The verdict on values is the history checker's; this module checks what
//! only the log shows (dense sequences, segment layout, records never rewritten).

use super::workload::execute;
use crate::history_support::{
    Baseline, Call, History, LoggedWrite, OpId, Outcome, Recorder, WRITE_TAG,
};
use rstmdb_client::Client;
use rstmdb_client::results::WalRecord;
use serde_json::Value;
use std::collections::BTreeMap;

const POSITION_MASK: u64 = (1 << 40) - 1;

/// The retained log: records at or above `oldest_offset`, all of them (or, for a partial
/// read, all of them from the offset asked for, which `oldest_offset` is then).
#[derive(Debug, Clone)]
pub struct Log {
    pub oldest_offset: u64,
    /// Read from an offset above the oldest retained one: what precedes is not shown.
    pub partial: bool,
    /// WAL_STATS `latest_offset`: where the next record goes.
    pub latest_offset: u64,
    pub records: Vec<WalRecord>,
}

impl Log {
    /// Whether the newest segment exists but holds no record: segments are created only for a
    /// record about to be appended (spec §6.10), so a kill landed inside a rotation.
    pub fn newest_segment_empty(&self) -> bool {
        self.latest_offset & POSITION_MASK == 0
            && self
                .records
                .last()
                .is_none_or(|r| r.offset >> 40 < self.latest_offset >> 40)
    }
}

/// Pages through WAL_READ from the oldest retained record. The oldest offset is taken after
/// the read, so a compaction racing the read cannot make a deleted record look lost.
pub async fn read_log(client: &Client) -> Result<Log, String> {
    read_log_from(client, 0).await
}

/// [`read_log`] from offset `start` on (the whole retained log when it is 0).
pub async fn read_log_from(client: &Client, start: u64) -> Result<Log, String> {
    let mut records = Vec::new();
    let mut from = start;
    loop {
        let page = client
            .wal_read(from, Some(1000))
            .await
            .map_err(|err| format!("WAL_READ: {err}"))?;
        records.extend(page.records);
        match page.next_offset {
            Some(next) => from = next,
            None => break,
        }
    }
    let stats = client
        .wal_stats()
        .await
        .map_err(|err| format!("WAL_STATS: {err}"))?;
    let oldest_offset = stats.oldest_offset.max(start);
    records.retain(|r| r.offset >= oldest_offset);
    Ok(Log {
        oldest_offset,
        partial: start > stats.oldest_offset,
        latest_offset: stats.latest_offset,
        records,
    })
}

/// The instance records of the log, as the checker compares them.
pub fn logged_writes(log: &Log) -> Vec<LoggedWrite> {
    let text =
        |r: &WalRecord, name: &str| r.entry.get(name).and_then(Value::as_str).map(str::to_owned);
    log.records
        .iter()
        .filter_map(|r| {
            let kind = text(r, "type")?;
            let (from_state, to_state, ctx) = match kind.as_str() {
                "create_instance" => (None, text(r, "initial_state")?, r.entry.get("initial_ctx")?),
                "apply_event" => (
                    text(r, "from_state"),
                    text(r, "to_state")?,
                    r.entry.get("ctx")?,
                ),
                _ => return None,
            };
            Some(LoggedWrite {
                offset: r.offset,
                sequence: r.sequence,
                instance: text(r, "instance_id")?,
                key: text(r, "idempotency_key"),
                from_state,
                to_state,
                ctx: ctx.as_object().cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// What every log read showed, across the whole run: a record, once seen, never changes.
#[derive(Debug, Default)]
pub struct LogShape {
    seen: BTreeMap<u64, (u64, String)>,
    /// A cluster's entry headers take sequence numbers that WAL_READ does not show
    /// (`docs/protocol.md` §12.1): its sequences increase with gaps.
    pub sequence_gaps: bool,
    pub problems: Vec<String>,
}

impl LogShape {
    /// Dense sequences (increasing ones with `sequence_gaps`), offsets increasing, each
    /// segment's first record at byte 0 and segment ids consecutive, and no record different
    /// from an earlier read of the same offset.
    pub fn check(&mut self, log: &Log) {
        let mut problems = Vec::new();
        if let Some(first) = log.records.first().filter(|_| !log.partial) {
            if log.oldest_offset == 0 && first.sequence != 1 && !self.sequence_gaps {
                problems.push(format!(
                    "nothing was ever compacted, yet the log starts at sequence {}",
                    first.sequence
                ));
            }
            if log.oldest_offset != 0 && first.offset & POSITION_MASK != 0 {
                problems.push(format!(
                    "the oldest retained record @{} is not at the start of its segment",
                    first.offset
                ));
            }
        }
        for pair in log.records.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let follows = if self.sequence_gaps {
                b.sequence > a.sequence
            } else {
                b.sequence == a.sequence + 1
            };
            if !follows {
                problems.push(format!(
                    "sequence {} @{} follows {} @{}",
                    b.sequence, b.offset, a.sequence, a.offset
                ));
            }
            if b.offset <= a.offset {
                problems.push(format!("offset {} follows {}", b.offset, a.offset));
            }
            let (sa, sb) = (a.offset >> 40, b.offset >> 40);
            if sb != sa && (sb != sa + 1 || b.offset & POSITION_MASK != 0) {
                problems.push(format!(
                    "record @{} (segment {sb}) follows @{} (segment {sa})",
                    b.offset, a.offset
                ));
            }
        }
        for r in &log.records {
            let identity = (
                r.sequence,
                serde_json::to_string(&r.entry).unwrap_or_default(),
            );
            if let Some(before) = self.seen.get(&r.offset)
                && *before != identity
            {
                problems.push(format!(
                    "record @{} changed between reads: {:?} then {:?}",
                    r.offset, before, identity
                ));
            }
            self.seen.insert(r.offset, identity);
        }
        // Forget what compaction removed, so memory stays bounded over long runs.
        self.seen = self.seen.split_off(&log.oldest_offset);
        self.problems.extend(problems);
    }
}

/// Acknowledged writes of `history` whose offset the log covers but does not hold.
pub fn lost_acks(history: &History, log: &Log) -> Vec<(OpId, u64)> {
    let at: BTreeMap<u64, Option<&str>> = log
        .records
        .iter()
        .map(|r| {
            (
                r.offset,
                r.entry.get("idempotency_key").and_then(Value::as_str),
            )
        })
        .collect();
    history
        .ops
        .iter()
        .enumerate()
        .filter_map(|(id, op)| {
            let offset = match &op.outcome {
                Some(Outcome::Created {
                    wal_offset,
                    applied: true,
                    ..
                })
                | Some(Outcome::Applied {
                    wal_offset,
                    applied: true,
                    ..
                }) => *wal_offset,
                _ => return None,
            };
            let present = at.get(&offset).is_some_and(|key| *key == op.call.key());
            (offset >= log.oldest_offset && !present).then_some((id, op.complete_us))
        })
        .collect()
}

/// Sends every call again with its idempotency key, `parallel` at a time. An answer that is
/// still unknown is an error: the server is up, so every retry must be decided.
pub async fn retry(
    client: &Client,
    recorder: &Recorder,
    calls: Vec<(usize, Call)>,
    parallel: usize,
) -> Result<(), String> {
    for chunk in calls.chunks(parallel.max(1)) {
        let answers = futures::future::join_all(
            chunk
                .iter()
                .map(|(who, call)| execute(client, recorder, *who, call.clone())),
        )
        .await;
        if let Some(Outcome::Unknown { reason }) = answers
            .iter()
            .find(|o| matches!(o, Outcome::Unknown { .. }))
        {
            return Err(format!("a retry after the restart got no answer: {reason}"));
        }
    }
    Ok(())
}

/// GET_INSTANCE of every instance; the found ones are the next window's baseline.
pub async fn read_all(
    client: &Client,
    recorder: &Recorder,
    who: usize,
    instances: &[String],
) -> Result<Vec<Baseline>, String> {
    let mut baseline = Vec::new();
    for chunk in instances.chunks(32) {
        let answers = futures::future::join_all(chunk.iter().map(|i| {
            execute(
                client,
                recorder,
                who,
                Call::Get {
                    instance: i.clone(),
                },
            )
        }))
        .await;
        for (instance, answer) in chunk.iter().zip(answers) {
            match answer {
                Outcome::Read {
                    state,
                    ctx,
                    last_wal_offset,
                } => baseline.push(Baseline {
                    instance: instance.clone(),
                    key: ctx
                        .get(WRITE_TAG)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    state,
                    ctx,
                    wal_offset: last_wal_offset,
                }),
                Outcome::Failed { .. } => {}
                other => {
                    return Err(format!(
                        "GET_INSTANCE {instance} after the restart: {other:?}"
                    ));
                }
            }
        }
    }
    Ok(baseline)
}
