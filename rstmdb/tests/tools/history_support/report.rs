//! What the checker reports: the rules, the violations with the operations involved, and
//! counts of what it looked at.

use super::checker::tag;
use super::{Call, History, OpId, Operation, Outcome};
use std::fmt::Write as _;

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
    #[allow(dead_code)] // no check needs it at the moment
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
