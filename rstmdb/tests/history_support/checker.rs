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

use super::{Call, History, OpId, Operation, Outcome, WRITE_TAG, merged};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// The machine as the checker knows it: the state an event leads to from a state with a
/// payload, or `None` when the server must refuse it.
pub type Model<'a> = &'a dyn Fn(&str, &str, &Map<String, Value>) -> Option<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// One key written twice: two offsets, or two `applied:true` answers.
    DuplicateWrite,
    /// An acknowledged key was retried and refused instead of replayed.
    ForgottenWrite,
    /// Two writes answered or logged at one offset.
    SharedOffset,
    /// The chain of an instance's writes is not a single sequence from its create.
    BrokenChain,
    /// A ctx that is not the merge of the previous ctx and the payload, or observations of one
    /// write that disagree.
    WrongContext,
    /// A transition the machine does not make.
    WrongTransition,
    /// An acknowledged write missing from a later read of the log.
    LostAck,
    /// A record or read of a write nobody asked for, or whose every call was refused.
    PhantomWrite,
    /// A read older than something already acknowledged or read.
    StaleRead,
    /// A write acknowledged before another was invoked has the higher offset.
    RealTimeOrder,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub rule: Rule,
    pub instance: String,
    pub message: String,
    pub ops: Vec<OpId>,
}

/// What the checker looked at, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub creates_acked: u64,
    pub applies_acked: u64,
    pub replays: u64,
    pub reads: u64,
    pub refused: u64,
    pub unknown: u64,
    pub wal_records: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.creates_acked += other.creates_acked;
        self.applies_acked += other.applies_acked;
        self.replays += other.replays;
        self.reads += other.reads;
        self.refused += other.refused;
        self.unknown += other.unknown;
        self.wal_records += other.wal_records;
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub counts: Counts,
}

impl Report {
    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// Every violation with the operations involved, for a failure message.
    pub fn describe(&self, history: &History) -> String {
        let mut out = String::new();
        for v in self.violations.iter().take(20) {
            let _ = writeln!(out, "{:?} on {}: {}", v.rule, v.instance, v.message);
            for id in &v.ops {
                if let Some(op) = history.ops.get(*id) {
                    let _ = writeln!(out, "    op {id}: {}", describe_op(op));
                }
            }
        }
        if self.violations.len() > 20 {
            let _ = writeln!(out, "... and {} more", self.violations.len() - 20);
        }
        out
    }
}

fn describe_op(op: &Operation) -> String {
    let call = match &op.call {
        Call::Create { instance, key, .. } => format!("CREATE {instance} key={key}"),
        Call::Apply {
            instance,
            event,
            key,
            ..
        } => format!("APPLY {instance} {event} key={key}"),
        Call::Get { instance } => format!("GET {instance}"),
    };
    let outcome = match &op.outcome {
        None => "never answered".to_owned(),
        Some(Outcome::Created {
            state,
            wal_offset,
            applied,
        }) => format!("created {state} @{wal_offset} applied={applied}"),
        Some(Outcome::Applied {
            from_state,
            to_state,
            wal_offset,
            applied,
            ..
        }) => format!("{from_state}->{to_state} @{wal_offset} applied={applied}"),
        Some(Outcome::Read {
            state,
            ctx,
            last_wal_offset,
        }) => format!(
            "read {state} @{last_wal_offset} w={}",
            tag(ctx).unwrap_or("-")
        ),
        Some(Outcome::Failed { code }) => format!("error {code}"),
        Some(Outcome::Unknown { reason }) => format!("unknown ({reason})"),
    };
    format!(
        "client {} [{}us..{}us] {call} => {outcome}",
        op.client, op.invoke_us, op.complete_us
    )
}

fn tag(ctx: &Map<String, Value>) -> Option<&str> {
    ctx.get(WRITE_TAG).and_then(Value::as_str)
}

/// One sighting of a write.
#[derive(Debug, Clone)]
struct Seen {
    offset: u64,
    from_state: Option<String>,
    state: String,
    ctx: Option<Map<String, Value>>,
    read_by: Option<OpId>,
}

/// Everything known about one (instance, key).
#[derive(Debug, Default)]
struct Write<'h> {
    ops: Vec<OpId>,
    call: Option<&'h Call>,
    seen: Vec<Seen>,
    /// Earliest answer of an ok call; 0 for a baseline.
    acked_at: Option<u64>,
    baseline: bool,
    first_invoke: Option<u64>,
}

impl Write<'_> {
    fn offset(&self) -> Option<u64> {
        self.seen.first().map(|s| s.offset)
    }

    fn state(&self) -> Option<&str> {
        self.seen.first().map(|s| s.state.as_str())
    }

    fn ctx(&self) -> Option<&Map<String, Value>> {
        self.seen.iter().find_map(|s| s.ctx.as_ref())
    }

    fn started_from(&self) -> Option<&str> {
        self.seen.iter().find_map(|s| s.from_state.as_deref())
    }

    fn is_create(&self) -> bool {
        self.baseline || matches!(self.call, Some(Call::Create { .. }))
    }
}

type Key = (String, String);

/// A version of an instance became visible: (when, its offset, the op that showed it).
type Visible = (u64, u64, Option<OpId>);

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

struct Checker<'h> {
    history: &'h History,
    writes: BTreeMap<Key, Write<'h>>,
    report: Report,
}

impl<'h> Checker<'h> {
    fn flag(&mut self, rule: Rule, instance: &str, message: String, ops: Vec<OpId>) {
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

    fn involved(&self, write: &Write<'_>) -> Vec<OpId> {
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

    /// Per instance: a single chain from the create, following the machine and the merge.
    fn check_chains(&mut self, model: Model<'_>) {
        let mut chains: BTreeMap<&str, Vec<(&Key, &Write<'_>)>> = BTreeMap::new();
        for (key, write) in &self.writes {
            if write.offset().is_some() {
                chains.entry(key.0.as_str()).or_default().push((key, write));
            }
        }
        let mut found = Vec::new();
        for (instance, mut chain) in chains {
            chain.sort_by_key(|(_, w)| w.offset());
            let mut prev: Option<(&Key, &Write<'_>)> = None;
            for &(key, write) in &chain {
                let mut ops = self.involved(write);
                if let Some((_, p)) = prev {
                    ops.extend(self.involved(p));
                }
                match (prev, write.is_create()) {
                    (Some((pkey, _)), true) => found.push((
                        Rule::BrokenChain,
                        instance,
                        format!("create {} follows write {}", key.1, pkey.1),
                        ops,
                    )),
                    (None, false) => found.push((
                        Rule::BrokenChain,
                        instance,
                        format!("write {} has no create before it", key.1),
                        ops,
                    )),
                    (Some((pkey, p)), false) => {
                        let (Some(prev_state), Some(state)) = (p.state(), write.state()) else {
                            continue;
                        };
                        if let Some(from) = write.started_from()
                            && from != prev_state
                        {
                            found.push((
                                Rule::BrokenChain,
                                instance,
                                format!(
                                    "write {} starts from {from} but {} left {prev_state}",
                                    key.1, pkey.1
                                ),
                                ops.clone(),
                            ));
                        }
                        if let Some(Call::Apply { event, payload, .. }) = write.call {
                            let expected = model(prev_state, event, payload);
                            if expected.as_deref() != Some(state) {
                                found.push((Rule::WrongTransition, instance, format!("{event} from {prev_state} gave {state}, the machine gives {expected:?}"), ops.clone()));
                            }
                            if let (Some(pctx), Some(ctx)) = (p.ctx(), write.ctx())
                                && merged(pctx, payload) != *ctx
                            {
                                found.push((
                                    Rule::WrongContext,
                                    instance,
                                    format!(
                                        "ctx of {} is not the ctx of {} merged with its payload",
                                        key.1, pkey.1
                                    ),
                                    ops.clone(),
                                ));
                            }
                        }
                    }
                    (None, true) => {}
                }
                prev = Some((key, write));
            }
            // Real time: acknowledged before another was invoked => lower offset.
            for &(key, write) in &chain {
                let (Some(offset), Some(invoked)) = (write.offset(), write.first_invoke) else {
                    continue;
                };
                for &(other_key, other) in &chain {
                    if let (Some(acked), Some(other_offset)) = (other.acked_at, other.offset())
                        && acked < invoked
                        && other_offset > offset
                        && !write.baseline
                    {
                        let mut ops = self.involved(write);
                        ops.extend(self.involved(other));
                        found.push((Rule::RealTimeOrder, instance, format!("{} was acknowledged before {} was invoked but has the higher offset", other_key.1, key.1), ops));
                    }
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

    /// Every acknowledged write is in every later WAL read that covers its offset.
    fn check_log(&mut self) {
        let mut found = Vec::new();
        for snapshot in &self.history.wal {
            let at: HashMap<u64, &super::LoggedWrite> =
                snapshot.records.iter().map(|r| (r.offset, r)).collect();
            for ((instance, key), write) in &self.writes {
                let (Some(acked), Some(offset)) = (write.acked_at, write.offset()) else {
                    continue;
                };
                if acked >= snapshot.at_us || offset < snapshot.oldest_offset {
                    continue;
                }
                let present = at.get(&offset).is_some_and(|r| {
                    r.key.as_deref() == Some(key.as_str()) && &r.instance == instance
                });
                if !present {
                    found.push((
                        instance.clone(),
                        format!(
                            "acknowledged write {key} @{offset} is not in the log read at {}us",
                            snapshot.at_us
                        ),
                        self.involved(write),
                    ));
                }
            }
        }
        for (instance, message, ops) in found {
            self.flag(Rule::LostAck, &instance, message, ops);
        }
    }

    /// No read older than what was acknowledged or read before it was invoked.
    fn check_reads(&mut self) {
        // Per instance: (time it became visible, offset, op that showed it).
        let mut visible: HashMap<&str, Vec<Visible>> = HashMap::new();
        for ((instance, _), write) in &self.writes {
            if let (Some(acked), Some(offset)) = (write.acked_at, write.offset()) {
                let op = write.ops.iter().copied().find(|id| {
                    self.history.ops[*id]
                        .outcome
                        .as_ref()
                        .is_some_and(Outcome::is_ok)
                });
                visible
                    .entry(instance)
                    .or_default()
                    .push((acked, offset, op));
            }
        }
        let reads: Vec<(OpId, &Operation, u64)> = self
            .history
            .ops
            .iter()
            .enumerate()
            .filter_map(|(id, op)| match &op.outcome {
                Some(Outcome::Read {
                    last_wal_offset, ..
                }) => Some((id, op, *last_wal_offset)),
                _ => None,
            })
            .collect();
        for (id, op, offset) in &reads {
            visible.entry(op.call.instance()).or_default().push((
                op.complete_us,
                *offset,
                Some(*id),
            ));
        }
        let mut found = Vec::new();
        for (id, op) in self.history.ops.iter().enumerate() {
            let not_found = matches!(&op.outcome, Some(Outcome::Failed { code }) if code == "INSTANCE_NOT_FOUND");
            if !(matches!(op.call, Call::Get { .. }) && not_found) {
                continue;
            }
            let Some(events) = visible.get(op.call.instance()) else {
                continue;
            };
            if let Some((_, existed, by)) = events.iter().find(|(t, _, _)| *t < op.invoke_us) {
                let mut ops = vec![id];
                ops.extend(*by);
                found.push((
                    op.call.instance().to_owned(),
                    format!("instance not found after @{existed} was visible"),
                    ops,
                ));
            }
        }
        for (id, op, offset) in reads {
            let Some(events) = visible.get(op.call.instance()) else {
                continue;
            };
            let newest = events
                .iter()
                .filter(|(t, _, _)| *t < op.invoke_us)
                .max_by_key(|(_, o, _)| *o);
            if let Some((_, newer, by)) = newest
                && *newer > offset
            {
                let mut ops = vec![id];
                ops.extend(*by);
                found.push((
                    op.call.instance().to_owned(),
                    format!("read @{offset} after @{newer} was already visible"),
                    ops,
                ));
            }
        }
        for (instance, message, ops) in found {
            self.flag(Rule::StaleRead, &instance, message, ops);
        }
    }
}
