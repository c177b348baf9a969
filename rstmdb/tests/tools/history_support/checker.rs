//! The history checker: a sequential model of each instance, held against what clients were
//! told and what the log holds.
//!
//! A write is identified by (instance, idempotency key). Its *observations* are every answer or
//! record that shows it: an acknowledgement or replay (offset, states, ctx), a WAL record, a
//! read whose ctx carries its key. The rules:
//! - one write, one record: all observations of a key agree on offset, state and ctx, and at
//!   most one call reports `applied:true`; a key acknowledged before a retry was invoked must
//!   replay, never fail;
//! - one offset, one write (a lost write whose offset was reused shows up here);
//! - per instance, the writes ordered by offset form a single chain: a create first, then
//!   applies whose `from_state` is the previous state, whose state is the machine's answer and
//!   whose ctx is the previous ctx merged with the payload; a write acknowledged before another
//!   was invoked has the lower offset;
//! - nothing is written that no call asked for, or that every call for it was refused;
//! - an acknowledged write is in every later WAL read that covers its offset;
//! - a read returns a version written by a call invoked before the read completed, and not
//!   older than any version acknowledged, or read, before the read was invoked.

use super::report::{Report, Rule};
use super::{Call, History, OpId, Operation, Outcome, WRITE_TAG};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

pub(super) use super::report::Violation;

/// The machine as the checker knows it: the state an event leads to from a state with a
/// payload, or `None` when the server must refuse it.
pub type Model<'a> = &'a dyn Fn(&str, &str, &Map<String, Value>) -> Option<String>;

pub(super) fn tag(ctx: &Map<String, Value>) -> Option<&str> {
    ctx.get(WRITE_TAG).and_then(Value::as_str)
}

/// One sighting of a write.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) offset: u64,
    pub(super) from_state: Option<String>,
    pub(super) state: String,
    pub(super) ctx: Option<Map<String, Value>>,
    pub(super) read_by: Option<OpId>,
}

/// Everything known about one (instance, key).
#[derive(Debug, Default)]
pub(super) struct Write<'h> {
    pub(super) ops: Vec<OpId>,
    pub(super) call: Option<&'h Call>,
    pub(super) seen: Vec<Seen>,
    /// Earliest answer of an ok call; 0 for a baseline.
    pub(super) acked_at: Option<u64>,
    pub(super) baseline: bool,
    pub(super) first_invoke: Option<u64>,
}

impl Write<'_> {
    pub(super) fn offset(&self) -> Option<u64> {
        self.seen.first().map(|s| s.offset)
    }

    pub(super) fn state(&self) -> Option<&str> {
        self.seen.first().map(|s| s.state.as_str())
    }

    pub(super) fn ctx(&self) -> Option<&Map<String, Value>> {
        self.seen.iter().find_map(|s| s.ctx.as_ref())
    }

    pub(super) fn started_from(&self) -> Option<&str> {
        self.seen.iter().find_map(|s| s.from_state.as_deref())
    }

    pub(super) fn is_create(&self) -> bool {
        self.baseline || matches!(self.call, Some(Call::Create { .. }))
    }
}

pub(super) type Key = (String, String);

/// A version of an instance became visible: (when, its offset, the op that showed it).
pub(super) type Visible = (u64, u64, Option<OpId>);

/// Checks `history` against `model`; returns every violation found.
pub fn check(history: &History, model: Model<'_>) -> Report {
    let mut checker = Checker {
        history,
        writes: BTreeMap::new(),
        report: Report::default(),
    };
    checker.gather();
    checker.check_writes();
    checker.check_offsets();
    checker.check_chains(model);
    checker.check_log();
    checker.check_reads();
    checker.report
}

pub(super) struct Checker<'h> {
    pub(super) history: &'h History,
    pub(super) writes: BTreeMap<Key, Write<'h>>,
    pub(super) report: Report,
}

impl<'h> Checker<'h> {
    pub(super) fn flag(&mut self, rule: Rule, instance: &str, message: String, ops: Vec<OpId>) {
        self.report.violations.push(Violation {
            rule,
            instance: instance.to_owned(),
            message,
            ops,
        });
    }

    /// Collects every sighting of every write.
    fn gather(&mut self) {
        for b in &self.history.baseline {
            let write = self
                .writes
                .entry((b.instance.clone(), b.key.clone()))
                .or_default();
            write.baseline = true;
            write.acked_at = Some(0);
            write.first_invoke = Some(0);
            write.seen.push(Seen {
                offset: b.wal_offset,
                from_state: None,
                state: b.state.clone(),
                ctx: Some(b.ctx.clone()),
                read_by: None,
            });
        }
        for (id, op) in self.history.ops.iter().enumerate() {
            self.gather_op(id, op);
        }
        for snapshot in &self.history.wal {
            for record in &snapshot.records {
                if record.offset < self.history.checked_below {
                    continue; // checked in an earlier window
                }
                self.report.counts.wal_records += 1;
                let Some(key) = &record.key else {
                    self.flag(
                        Rule::PhantomWrite,
                        &record.instance,
                        format!("record @{} carries no idempotency key", record.offset),
                        Vec::new(),
                    );
                    continue;
                };
                self.writes
                    .entry((record.instance.clone(), key.clone()))
                    .or_default()
                    .seen
                    .push(Seen {
                        offset: record.offset,
                        from_state: record.from_state.clone(),
                        state: record.to_state.clone(),
                        ctx: Some(record.ctx.clone()),
                        read_by: None,
                    });
            }
        }
    }

    fn gather_op(&mut self, id: OpId, op: &'h Operation) {
        let counts = &mut self.report.counts;
        match &op.outcome {
            Some(Outcome::Created { applied, .. }) | Some(Outcome::Applied { applied, .. }) => {
                match (&op.call, applied) {
                    (_, false) => counts.replays += 1,
                    (Call::Create { .. }, true) => counts.creates_acked += 1,
                    (_, true) => counts.applies_acked += 1,
                }
            }
            Some(Outcome::Read { .. }) => counts.reads += 1,
            Some(Outcome::Failed { .. }) => counts.refused += 1,
            Some(Outcome::Unknown { .. }) | None => counts.unknown += 1,
        }
        let instance = op.call.instance().to_owned();
        if let (
            Call::Get { .. },
            Some(Outcome::Read {
                state,
                ctx,
                last_wal_offset,
            }),
        ) = (&op.call, &op.outcome)
        {
            let Some(key) = tag(ctx) else {
                self.flag(
                    Rule::PhantomWrite,
                    &instance,
                    format!("read a ctx without a write tag: {ctx:?}"),
                    vec![id],
                );
                return;
            };
            self.writes
                .entry((instance, key.to_owned()))
                .or_default()
                .seen
                .push(Seen {
                    offset: *last_wal_offset,
                    from_state: None,
                    state: state.clone(),
                    ctx: Some(ctx.clone()),
                    read_by: Some(id),
                });
            return;
        }
        let Some(key) = op.call.key() else { return };
        let write = self.writes.entry((instance, key.to_owned())).or_default();
        write.ops.push(id);
        write.call.get_or_insert(&op.call);
        write.first_invoke = Some(
            write
                .first_invoke
                .map_or(op.invoke_us, |t| t.min(op.invoke_us)),
        );
        let seen = match (&op.call, &op.outcome) {
            (
                Call::Create { initial_ctx, .. },
                Some(Outcome::Created {
                    state, wal_offset, ..
                }),
            ) => Some(Seen {
                offset: *wal_offset,
                from_state: None,
                state: state.clone(),
                ctx: Some(initial_ctx.clone()),
                read_by: None,
            }),
            (
                Call::Apply { .. },
                Some(Outcome::Applied {
                    from_state,
                    to_state,
                    ctx,
                    wal_offset,
                    ..
                }),
            ) => Some(Seen {
                offset: *wal_offset,
                from_state: Some(from_state.clone()),
                state: to_state.clone(),
                ctx: Some(ctx.clone()),
                read_by: None,
            }),
            _ => None,
        };
        if let Some(seen) = seen {
            write.seen.push(seen);
            write.acked_at = Some(
                write
                    .acked_at
                    .map_or(op.complete_us, |t| t.min(op.complete_us)),
            );
        }
    }

    /// One key, one record; acknowledged keys replay; nothing written that was not asked for.
    fn check_writes(&mut self) {
        let mut found = Vec::new();
        for ((instance, key), write) in &self.writes {
            let ops = &self.history.ops;
            let applied: Vec<OpId> = write
                .ops
                .iter()
                .copied()
                .filter(|id| {
                    matches!(
                        ops[*id].outcome,
                        Some(Outcome::Created { applied: true, .. })
                            | Some(Outcome::Applied { applied: true, .. })
                    )
                })
                .collect();
            if applied.len() > 1 {
                found.push((
                    Rule::DuplicateWrite,
                    instance,
                    format!("key {key} applied {} times", applied.len()),
                    applied,
                ));
            }
            let mut offsets: Vec<u64> = write.seen.iter().map(|s| s.offset).collect();
            offsets.sort_unstable();
            offsets.dedup();
            if offsets.len() > 1 {
                found.push((
                    Rule::DuplicateWrite,
                    instance,
                    format!("key {key} seen at offsets {offsets:?}"),
                    self.involved(write),
                ));
            }
            if let Some(first) = write.seen.first()
                && write.seen.iter().any(|s| {
                    s.offset == first.offset
                        && (s.state != first.state
                            || (s.ctx.is_some() && first.ctx.is_some() && s.ctx != first.ctx))
                })
            {
                found.push((
                    Rule::WrongContext,
                    instance,
                    format!("observations of key {key} disagree on state or ctx"),
                    self.involved(write),
                ));
            }
            if let Some(acked_at) = write.acked_at {
                let forgotten: Vec<OpId> = write
                    .ops
                    .iter()
                    .copied()
                    .filter(|id| {
                        ops[*id].invoke_us > acked_at
                            && matches!(ops[*id].outcome, Some(Outcome::Failed { .. }))
                    })
                    .collect();
                if !forgotten.is_empty() {
                    let mut involved = write.ops.clone();
                    involved.sort_unstable();
                    found.push((
                        Rule::ForgottenWrite,
                        instance,
                        format!("key {key} was acknowledged, then a retry was refused"),
                        involved,
                    ));
                }
            }
            if !write.seen.is_empty() && !write.baseline {
                let asked = write
                    .ops
                    .iter()
                    .any(|id| !matches!(ops[*id].outcome, Some(Outcome::Failed { .. })));
                if !asked {
                    found.push((
                        Rule::PhantomWrite,
                        instance,
                        format!("key {key} was seen but no call for it could have written it"),
                        self.involved(write),
                    ));
                }
            }
            for seen in &write.seen {
                let Some(read) = seen.read_by else { continue };
                let invoked_before = write
                    .first_invoke
                    .is_some_and(|t| t < ops[read].complete_us);
                if !invoked_before && !write.ops.is_empty() {
                    found.push((
                        Rule::PhantomWrite,
                        instance,
                        format!("read key {key} before any call for it was made"),
                        self.involved(write),
                    ));
                }
            }
        }
        let found: Vec<(Rule, String, String, Vec<OpId>)> = found
            .into_iter()
            .map(|(rule, instance, message, ops)| (rule, instance.to_string(), message, ops))
            .collect();
        for (rule, instance, message, ops) in found {
            self.flag(rule, &instance, message, ops);
        }
    }

    pub(super) fn involved(&self, write: &Write<'_>) -> Vec<OpId> {
        let mut ops: Vec<OpId> = write.ops.clone();
        ops.extend(write.seen.iter().filter_map(|s| s.read_by));
        ops.sort_unstable();
        ops.dedup();
        ops
    }

    /// One offset, one write.
    fn check_offsets(&mut self) {
        let mut by_offset: HashMap<u64, Vec<&Key>> = HashMap::new();
        for (key, write) in &self.writes {
            let mut offsets: Vec<u64> = write.seen.iter().map(|s| s.offset).collect();
            offsets.sort_unstable();
            offsets.dedup();
            for offset in offsets {
                by_offset.entry(offset).or_default().push(key);
            }
        }
        let mut found = Vec::new();
        for (offset, keys) in by_offset {
            if keys.len() > 1 {
                let mut ops: Vec<OpId> = keys
                    .iter()
                    .flat_map(|k| self.involved(&self.writes[*k]))
                    .collect();
                ops.sort_unstable();
                let names: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
                found.push((
                    keys[0].0.clone(),
                    format!("writes {names:?} share offset {offset}"),
                    ops,
                ));
            }
        }
        for (instance, message, ops) in found {
            self.flag(Rule::SharedOffset, &instance, message, ops);
        }
    }
}
