//! The machine, the calls clients make, and one client's loop. Every call goes through
//! [`execute`], which records its invocation and its answer in the history.

use super::Rng;
use crate::history_support::{Call, Outcome, Recorder, WRITE_TAG};
use rstmdb_client::{ApplyEventOptions, Client, ClientError, CreateInstanceOptions};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

pub const MACHINE: &str = "cycle";

/// a -STEP-> b -STEP-> c -STEP-> a; RESET from b or c to a; SKIP from a to c when the
/// payload's `g` is above 3 (so INVALID_TRANSITION and GUARD_FAILED both happen).
pub fn definition() -> Value {
    json!({
        "states": ["a", "b", "c"],
        "initial": "a",
        "transitions": [
            {"from": "a", "event": "STEP", "to": "b"},
            {"from": "b", "event": "STEP", "to": "c"},
            {"from": "c", "event": "STEP", "to": "a"},
            {"from": ["b", "c"], "event": "RESET", "to": "a"},
            {"from": "a", "event": "SKIP", "to": "c", "guard": "payload.g > 3"}
        ]
    })
}

/// The same machine for the checker.
pub fn model(from: &str, event: &str, payload: &Map<String, Value>) -> Option<String> {
    let guard = payload
        .get("g")
        .and_then(Value::as_u64)
        .is_some_and(|g| g > 3);
    let to = match (from, event) {
        ("a", "STEP") => "b",
        ("b", "STEP") => "c",
        ("c", "STEP") => "a",
        ("b" | "c", "RESET") => "a",
        ("a", "SKIP") if guard => "c",
        _ => return None,
    };
    Some(to.to_owned())
}

/// Moments the kill can aim at, shared by the clients, the compactor and the killer.
#[derive(Debug, Default)]
pub struct Signals {
    /// The highest segment id seen in an acknowledged offset this cycle.
    pub newest_segment: AtomicU64,
    /// When (history clock, µs) an acknowledgement first showed that segment.
    pub rotated_at_us: AtomicU64,
    pub rotations: AtomicU64,
    pub rotated: Notify,
    pub compacting: AtomicBool,
    pub compact_started: Notify,
    /// An acknowledged record lies within [`NEAR_SEGMENT_END_BYTES`] of the 1 MiB segment
    /// limit: the next few appends rotate.
    pub near_segment_end: Notify,
    /// The clients stop after their current call (in a cluster, those on surviving nodes
    /// would go on for ever).
    pub stop: AtomicBool,
}

/// How close to the end of a 1 MiB segment an acknowledged record must lie for the next
/// appends to be likely to rotate (records here are 0.3 to 3 KiB).
pub const NEAR_SEGMENT_END_BYTES: u64 = 12 * 1024;

impl Signals {
    fn saw_offset(&self, offset: u64, now_us: u64) {
        if offset & ((1 << 40) - 1) > (1 << 20) - NEAR_SEGMENT_END_BYTES {
            self.near_segment_end.notify_waiters();
        }
        let segment = offset >> 40;
        let before = self.newest_segment.fetch_max(segment, Ordering::SeqCst);
        if before != 0 && segment > before {
            self.rotated_at_us.store(now_us, Ordering::SeqCst);
            self.rotations.fetch_add(1, Ordering::SeqCst);
            self.rotated.notify_waiters();
        }
    }
}

/// Runs `call` on the server, recording it; returns what the client was told.
pub async fn execute(client: &Client, recorder: &Recorder, who: usize, call: Call) -> Outcome {
    let id = recorder.invoke(who, call.clone());
    let outcome = match call {
        Call::Create {
            instance,
            key,
            initial_ctx,
        } => {
            let options = CreateInstanceOptions {
                instance_id: Some(instance),
                initial_ctx,
                idempotency_key: Some(key),
            };
            match client.create_instance(MACHINE, 1, options).await {
                Ok(r) => Outcome::Created {
                    state: r.state,
                    wal_offset: r.wal_offset,
                    applied: r.applied,
                },
                Err(err) => refused(err),
            }
        }
        Call::Apply {
            instance,
            event,
            key,
            payload,
        } => {
            let options = ApplyEventOptions {
                payload: Some(payload),
                idempotency_key: Some(key),
                ..ApplyEventOptions::default()
            };
            match client.apply_event(&instance, &event, options).await {
                Ok(r) => Outcome::Applied {
                    from_state: r.from_state,
                    to_state: r.to_state,
                    ctx: r.ctx,
                    wal_offset: r.wal_offset,
                    applied: r.applied,
                },
                Err(err) => refused(err),
            }
        }
        Call::Get { instance } => match client.get_instance(&instance).await {
            Ok(r) => Outcome::Read {
                state: r.state,
                ctx: r.ctx,
                last_wal_offset: r.last_wal_offset,
            },
            Err(err) => refused(err),
        },
    };
    recorder.complete(id, outcome.clone());
    outcome
}

/// A server error is a definite refusal, except a cluster's `commit_unknown` (spec §12.2: the
/// write may still commit); anything else leaves the call's fate unknown.
fn refused(err: ClientError) -> Outcome {
    match err {
        ClientError::Server(error) if error.reason() == Some("commit_unknown") => {
            Outcome::Unknown {
                reason: error.message,
            }
        }
        ClientError::Server(error) => Outcome::Failed {
            code: error.code.to_string(),
        },
        other => Outcome::Unknown {
            reason: other.to_string(),
        },
    }
}

/// What one client does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub who: usize,
    /// Names keys and new instances so they are unique across the whole run.
    pub prefix: String,
    /// Instances this client may use (its own and the shared ones), all existing.
    pub instances: Vec<String>,
    pub max_ops: Option<u64>,
    pub create_percent: u64,
    pub read_percent: u64,
    /// `pad` size range, so records are big enough to rotate small segments.
    pub pad_bytes: (u64, u64),
}

/// Issues calls until `max_ops` or until an answer is unknown (the server died). Returns the
/// instances it created.
pub async fn run_client(
    client: Client,
    recorder: Recorder,
    mut plan: Plan,
    mut rng: Rng,
    signals: Arc<Signals>,
) -> Vec<String> {
    let mut created = Vec::new();
    for n in 0u64.. {
        if plan.max_ops.is_some_and(|max| n >= max) || signals.stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("{}-{n}", plan.prefix);
        let call = if plan.instances.is_empty() || rng.percent(plan.create_percent) {
            let mut ctx = Map::new();
            ctx.insert(WRITE_TAG.into(), json!(key));
            Call::Create {
                instance: format!("{}-i{n}", plan.prefix),
                key,
                initial_ctx: ctx,
            }
        } else {
            let instance = rng.pick(&plan.instances).cloned().unwrap_or_default();
            if rng.percent(plan.read_percent) {
                Call::Get { instance }
            } else {
                let event = match rng.range(0, 10) {
                    0..=5 => "STEP",
                    6..=7 => "RESET",
                    _ => "SKIP",
                };
                let pad = "x".repeat(rng.range(plan.pad_bytes.0, plan.pad_bytes.1) as usize);
                let payload = json!({WRITE_TAG: key, "g": rng.range(0, 8), "pad": pad});
                Call::Apply {
                    instance,
                    event: event.into(),
                    key,
                    payload: payload.as_object().cloned().unwrap_or_default(),
                }
            }
        };
        let instance = call.instance().to_owned();
        match execute(&client, &recorder, plan.who, call).await {
            Outcome::Unknown { .. } => break,
            Outcome::Created { wal_offset, .. } => {
                signals.saw_offset(wal_offset, recorder.now_us());
                plan.instances.push(instance.clone());
                created.push(instance);
            }
            Outcome::Applied { wal_offset, .. } => {
                signals.saw_offset(wal_offset, recorder.now_us())
            }
            _ => {}
        }
    }
    created
}

/// What the compactor saw: COMPACTs that completed, and the error of one the server refused
/// (a refusal is a finding; a lost connection is the kill).
#[derive(Debug, Default)]
pub struct Compactions {
    pub completed: u64,
    pub refused: Option<String>,
}

/// Sends COMPACT every `every_ms` (at random between half that and that) until the server
/// dies, flagging while one is in flight.
pub async fn run_compactor(
    client: Client,
    signals: Arc<Signals>,
    mut rng: Rng,
    every_ms: u64,
) -> Compactions {
    let mut seen = Compactions::default();
    loop {
        let pause = rng.range(every_ms / 2, every_ms);
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        signals.compacting.store(true, Ordering::SeqCst);
        signals.compact_started.notify_waiters();
        let result = client.compact(rng.percent(30)).await;
        signals.compacting.store(false, Ordering::SeqCst);
        match result {
            Ok(_) => seen.completed += 1,
            Err(ClientError::Server(error)) => {
                seen.refused = Some(format!("COMPACT refused: {error:?}"));
                return seen;
            }
            Err(_) => return seen,
        }
    }
}
