//! A recorded history of client operations and a checker that holds it against a sequential
//! model of each instance (issue 9, item 2).
//!
//! - [`History`], [`Operation`], [`Call`], [`Outcome`]: what clients invoked and what they
//!   were told, with invoke/complete times on one clock; [`Recorder`] collects them from many
//!   tasks. [`WalSnapshot`]: the log as WAL_READ showed it at one moment.
//! - `checker`: [`check`] gathers every sighting of every write and checks the per-key and
//!   per-offset rules; `order`: the chain, log and read-order rules; `report`: [`Rule`],
//!   [`Violation`] with the operations involved, [`Report`].
//!
//! Every write carries its idempotency key as `w` in its ctx or payload, so any ctx a read
//! returns names the write that produced it.

mod checker;
#[cfg(test)]
mod checker_tests;
mod order;
mod report;

pub use checker::check;
#[allow(unused_imports)] // part of the checker's interface; the tests read it through `Report`
pub use report::{Counts, Report, Rule, Violation};

use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Index of an operation in [`History::ops`].
pub type OpId = usize;

/// The ctx/payload field in which every write names itself (its idempotency key).
pub const WRITE_TAG: &str = "w";

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Create {
        instance: String,
        key: String,
        initial_ctx: Map<String, Value>,
    },
    Apply {
        instance: String,
        event: String,
        key: String,
        payload: Map<String, Value>,
    },
    Get {
        instance: String,
    },
}

impl Call {
    pub fn instance(&self) -> &str {
        match self {
            Call::Create { instance, .. }
            | Call::Apply { instance, .. }
            | Call::Get { instance } => instance,
        }
    }

    /// The idempotency key of a write; `None` for a read.
    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Create { key, .. } | Call::Apply { key, .. } => Some(key),
            Call::Get { .. } => None,
        }
    }
}

/// What the client was told.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created {
        state: String,
        wal_offset: u64,
        applied: bool,
    },
    Applied {
        from_state: String,
        to_state: String,
        ctx: Map<String, Value>,
        wal_offset: u64,
        applied: bool,
    },
    Read {
        state: String,
        ctx: Map<String, Value>,
        last_wal_offset: u64,
    },
    /// A definite error response: the server says nothing was written.
    Failed { code: String },
    /// The connection died (or the call timed out) before an answer: it may or may not have
    /// executed. Treated as never completing.
    Unknown { reason: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Outcome::Created { .. } | Outcome::Applied { .. } | Outcome::Read { .. }
        )
    }
}

/// One operation: invoked at `invoke_us`, answered at `complete_us` (microseconds on the
/// history's clock). `outcome` is `None` while it is outstanding.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub client: usize,
    pub call: Call,
    pub invoke_us: u64,
    pub complete_us: u64,
    pub outcome: Option<Outcome>,
}

impl Operation {
    /// When the client learnt the answer; `None` for an op whose outcome is unknown, which
    /// may take effect at any later time.
    #[allow(dead_code)] // no check needs it at the moment
    pub fn known_completion_us(&self) -> Option<u64> {
        match &self.outcome {
            Some(outcome) if !matches!(outcome, Outcome::Unknown { .. }) => Some(self.complete_us),
            _ => None,
        }
    }
}

/// One WAL record as WAL_READ showed it, reduced to what the checker compares.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedWrite {
    pub offset: u64,
    pub sequence: u64,
    pub instance: String,
    pub key: Option<String>,
    /// `None` for a `create_instance` record.
    pub from_state: Option<String>,
    pub to_state: String,
    pub ctx: Map<String, Value>,
}

/// The whole retained log read at `at_us`: records at or above `oldest_offset` are all there.
#[derive(Debug, Clone, PartialEq)]
pub struct WalSnapshot {
    pub at_us: u64,
    pub oldest_offset: u64,
    pub records: Vec<LoggedWrite>,
}

/// An instance's state checked in an earlier window of a long run: the history continues
/// from it as if its write had been acknowledged before the window began.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub instance: String,
    pub key: String,
    pub state: String,
    pub ctx: Map<String, Value>,
    pub wal_offset: u64,
}

/// Everything the checker looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub ops: Vec<Operation>,
    pub wal: Vec<WalSnapshot>,
    pub baseline: Vec<Baseline>,
    /// Log records below this offset were checked in an earlier window and are skipped.
    pub checked_below: u64,
}

/// Collects a [`History`] from many tasks on one clock.
#[derive(Debug, Clone)]
pub struct Recorder {
    clock: Instant,
    history: Arc<Mutex<History>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new(Vec::new(), 0)
    }
}

impl Recorder {
    pub fn new(baseline: Vec<Baseline>, checked_below: u64) -> Self {
        Self {
            clock: Instant::now(),
            history: Arc::new(Mutex::new(History {
                baseline,
                checked_below,
                ..History::default()
            })),
        }
    }

    pub fn now_us(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn invoke(&self, client: usize, call: Call) -> OpId {
        let now = self.now_us();
        let mut history = self.lock();
        history.ops.push(Operation {
            client,
            call,
            invoke_us: now,
            complete_us: now,
            outcome: None,
        });
        history.ops.len() - 1
    }

    pub fn complete(&self, id: OpId, outcome: Outcome) {
        let now = self.now_us();
        if let Some(op) = self.lock().ops.get_mut(id) {
            op.complete_us = now;
            op.outcome = Some(outcome);
        }
    }

    pub fn observe_wal(&self, oldest_offset: u64, records: Vec<LoggedWrite>) {
        let at_us = self.now_us();
        self.lock().wal.push(WalSnapshot {
            at_us,
            oldest_offset,
            records,
        });
    }

    /// Declares an acknowledged op's answer void (a write lost within a documented fsync
    /// window): from then on it counts as in flight.
    pub fn forget_answer(&self, id: OpId, reason: &str) {
        if let Some(op) = self.lock().ops.get_mut(id) {
            op.outcome = Some(Outcome::Unknown {
                reason: reason.to_owned(),
            });
        }
    }

    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }
}

/// The shallow merge of spec §6.6: each payload key replaces the ctx key of the same name.
pub fn merged(ctx: &Map<String, Value>, payload: &Map<String, Value>) -> Map<String, Value> {
    let mut out = ctx.clone();
    for (name, value) in payload {
        out.insert(name.clone(), value.clone());
    }
    out
}
