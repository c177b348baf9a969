//! The workloads: their set-up (one machine, N instances) and one checked operation each.
//!
//! The machine is cyclic (`ping` ⇄ `pong` on `FLIP`), so APPLY_EVENT is valid in every state
//! and a run can last forever, whatever order concurrent callers apply in. Each operation's
//! response is checked against what the workload expects; anything else is a [`Failure`].

use rstmdb_client::params::{BatchMode, BatchOp};
use rstmdb_client::results::{ApplyEventResult, BatchItemStatus};
use rstmdb_client::{ApplyEventOptions, Client, ClientError, CreateInstanceOptions, Op};
use serde_json::{Map, Value, json};
use std::str::FromStr;

use super::BenchError;
use super::lists::ListLoad;

pub const MACHINE: &str = "bench-cycle";
pub const MACHINE_VERSION: u32 = 1;
const STATES: [&str; 2] = ["ping", "pong"];
const EVENT: &str = "FLIP";
/// An event the machine does not have: `--invalid-event-every` sends it to inject errors.
const INVALID_EVENT: &str = "NO_SUCH_EVENT";
/// Instances per set-up BATCH (the protocol's limit, §4.15).
const SETUP_BATCH_OPS: u64 = 100;
/// Set-up batches in flight at once.
const SETUP_CONCURRENCY: usize = 8;

/// The code under which a response that is not an error but not what the workload expects
/// is counted.
pub const UNEXPECTED_RESULT: &str = "UNEXPECTED_RESULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// APPLY_EVENT on the instances, round robin.
    Apply,
    /// CREATE_INSTANCE with server-generated ids.
    Create,
    /// GET_INSTANCE on the instances, round robin.
    Get,
    /// get / apply / create in the ratios of --mix.
    Mixed,
    /// BATCH of --batch-size APPLY_EVENTs.
    Batch,
    /// APPLY_EVENT while --watchers WATCH_ALL subscribers receive every transition.
    Watch,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Create => "create",
            Self::Get => "get",
            Self::Mixed => "mixed",
            Self::Batch => "batch",
            Self::Watch => "watch",
        }
    }
}

/// The single-op kinds the mixed workload chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MixKind {
    Get,
    Apply,
    Create,
}

/// Ratios of the mixed workload, e.g. `get=8,apply=2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(MixKind, u64)>,
    total: u64,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut weights = Vec::new();
        for part in text.split(',').filter(|part| !part.trim().is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not NAME=WEIGHT"))?;
            let kind = match name.trim() {
                "get" => MixKind::Get,
                "apply" => MixKind::Apply,
                "create" => MixKind::Create,
                other => return Err(format!("`{other}` is not one of get, apply, create")),
            };
            let weight: u64 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{weight}` is not a whole number"))?;
            if weight > 1_000_000 {
                return Err(format!("weight {weight} is above 1000000"));
            }
            weights.push((kind, weight));
        }
        let total = weights.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return Err("the mix needs at least one positive weight".to_owned());
        }
        Ok(Self { weights, total })
    }
}

impl Mix {
    /// The kind of the `seq`th operation: an even interleaving of the weights.
    fn pick(&self, seq: u64) -> MixKind {
        let mut slot = seq % self.total;
        for (kind, weight) in &self.weights {
            if slot < *weight {
                return *kind;
            }
            slot -= weight;
        }
        MixKind::Get
    }
}

/// Everything that decides what the operations look like.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub workload: Workload,
    pub instances: u64,
    pub payload_bytes: u64,
    pub mix: Mix,
    pub batch_size: u32,
    pub batch_atomic: bool,
    pub invalid_event_every: Option<u64>,
    /// Background LIST_INSTANCES during the timed phase (`--list-pipeline`).
    pub lists: Option<ListLoad>,
}

/// One way an operation went wrong, under the code it is counted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
}

impl Failure {
    fn unexpected() -> Self {
        Self {
            code: UNEXPECTED_RESULT.to_owned(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self {
            code: error_code(&error),
        }
    }
}

/// The code an error is reported under: the server's code, or the kind of client failure.
pub fn error_code(error: &ClientError) -> String {
    match error {
        ClientError::Server(error) => error.code.as_str().to_owned(),
        ClientError::ConnectionLost { .. } => "CONNECTION_LOST".to_owned(),
        ClientError::Timeout { .. } => "TIMEOUT".to_owned(),
        ClientError::Connect { .. } => "CONNECT_FAILED".to_owned(),
        ClientError::Tls(_) => "TLS_ERROR".to_owned(),
        ClientError::RequestTooLarge { .. } => "REQUEST_TOO_LARGE".to_owned(),
        ClientError::Config(_) => "CLIENT_CONFIG".to_owned(),
        ClientError::Protocol(_) => "PROTOCOL_ERROR".to_owned(),
        ClientError::Closed { .. } => "CLIENT_CLOSED".to_owned(),
    }
}

/// What one operation did: how many items succeeded (BATCH counts its sub-ops) and every
/// failure. An operation with no failure succeeded.
#[derive(Debug, Default)]
pub struct Checked {
    pub items_ok: u64,
    pub failures: Vec<Failure>,
}

impl Checked {
    fn ok(items: u64) -> Self {
        Self {
            items_ok: items,
            failures: Vec::new(),
        }
    }

    fn failed(failure: Failure) -> Self {
        Self {
            items_ok: 0,
            failures: vec![failure],
        }
    }
}

/// A set-up workload, ready to issue operations.
#[derive(Debug)]
pub struct Prepared {
    spec: WorkloadSpec,
    /// Unique per run, so that runs against one remote server do not collide.
    id_prefix: String,
    payload: Map<String, Value>,
}

impl Prepared {
    /// Registers the machine and creates the instances.
    pub async fn setup(client: &Client, spec: &WorkloadSpec) -> Result<Self, BenchError> {
        let definition = json!({
            "states": STATES,
            "initial": STATES[0],
            "transitions": [
                {"from": STATES[0], "event": EVENT, "to": STATES[1]},
                {"from": STATES[1], "event": EVENT, "to": STATES[0]},
            ]
        });
        client
            .put_machine(MACHINE, MACHINE_VERSION, definition)
            .await
            .map_err(|err| BenchError::Setup(format!("PUT_MACHINE: {err}")))?;
        let prepared = Self {
            spec: spec.clone(),
            id_prefix: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            payload: payload_of(spec.payload_bytes),
        };
        prepared.create_instances(client).await?;
        if let Some(lists) = &spec.lists {
            lists.setup(client, &prepared.id_prefix).await?;
        }
        Ok(prepared)
    }

    /// Whether `instance_id` is one of this run's instances.
    pub fn owns(&self, instance_id: &str) -> bool {
        instance_id
            .strip_prefix(self.id_prefix.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
    }

    fn instance_id(&self, index: u64) -> String {
        format!("{}-{}", self.id_prefix, index % self.spec.instances)
    }

    async fn create_instances(&self, client: &Client) -> Result<(), BenchError> {
        use futures::StreamExt;
        let batches = self.spec.instances.div_ceil(SETUP_BATCH_OPS);
        let mut results = futures::stream::iter(0..batches)
            .map(|batch| self.create_batch(client, batch))
            .buffer_unordered(SETUP_CONCURRENCY);
        while let Some(result) = results.next().await {
            result?;
        }
        Ok(())
    }

    async fn create_batch(&self, client: &Client, batch: u64) -> Result<(), BenchError> {
        let first = batch * SETUP_BATCH_OPS;
        let last = (first + SETUP_BATCH_OPS).min(self.spec.instances);
        let ops = (first..last)
            .map(|index| {
                let mut params = Map::new();
                params.insert("machine".into(), MACHINE.into());
                params.insert("version".into(), MACHINE_VERSION.into());
                params.insert("instance_id".into(), self.instance_id(index).into());
                BatchOp {
                    op: Op::CreateInstance,
                    params,
                }
            })
            .collect();
        let result = client
            .batch(BatchMode::Atomic, ops)
            .await
            .map_err(|err| BenchError::Setup(format!("creating instances: {err}")))?;
        if result.results.len() as u64 != last - first {
            return Err(BenchError::Setup(
                "creating instances: the BATCH result has the wrong number of entries".to_owned(),
            ));
        }
        Ok(())
    }

    /// Issues the `seq`th operation of the workload and checks its response.
    pub async fn execute(&self, client: &Client, seq: u64) -> Checked {
        match self.spec.workload {
            Workload::Apply | Workload::Watch => self.apply(client, seq).await,
            Workload::Create => self.create(client).await,
            Workload::Get => self.get(client, seq).await,
            Workload::Batch => self.batch(client, seq).await,
            Workload::Mixed => match self.spec.mix.pick(seq) {
                MixKind::Get => self.get(client, seq).await,
                MixKind::Apply => self.apply(client, seq).await,
                MixKind::Create => self.create(client).await,
            },
        }
    }

    /// Whether the `seq`th apply is one of the injected invalid events.
    fn injects_invalid(&self, seq: u64) -> bool {
        self.spec
            .invalid_event_every
            .is_some_and(|every| seq % every == every - 1)
    }

    fn apply_options(&self) -> ApplyEventOptions {
        if self.payload.is_empty() {
            ApplyEventOptions::default()
        } else {
            ApplyEventOptions::default().payload(self.payload.clone())
        }
    }

    async fn apply(&self, client: &Client, seq: u64) -> Checked {
        let event = if self.injects_invalid(seq) {
            INVALID_EVENT
        } else {
            EVENT
        };
        let id = self.instance_id(seq);
        match client.apply_event(&id, event, self.apply_options()).await {
            Ok(result) if is_flip(&result) => Checked::ok(1),
            Ok(_) => Checked::failed(Failure::unexpected()),
            Err(err) => Checked::failed(err.into()),
        }
    }

    async fn create(&self, client: &Client) -> Checked {
        let options = CreateInstanceOptions::default().initial_ctx(self.payload.clone());
        match client
            .create_instance(MACHINE, MACHINE_VERSION, options)
            .await
        {
            Ok(result) if result.applied && result.state == STATES[0] => Checked::ok(1),
            Ok(_) => Checked::failed(Failure::unexpected()),
            Err(err) => Checked::failed(err.into()),
        }
    }

    async fn get(&self, client: &Client, seq: u64) -> Checked {
        let id = self.instance_id(seq);
        match client.get_instance(&id).await {
            Ok(result)
                if result.instance_id == id
                    && result.machine == MACHINE
                    && STATES.contains(&result.state.as_str()) =>
            {
                Checked::ok(1)
            }
            Ok(_) => Checked::failed(Failure::unexpected()),
            Err(err) => Checked::failed(err.into()),
        }
    }

    async fn batch(&self, client: &Client, seq: u64) -> Checked {
        let size = u64::from(self.spec.batch_size);
        let ops: Vec<BatchOp> = (0..size)
            .map(|item| {
                let item_seq = seq * size + item;
                let event = if self.injects_invalid(item_seq) {
                    INVALID_EVENT
                } else {
                    EVENT
                };
                let mut params = Map::new();
                params.insert("instance_id".into(), self.instance_id(item_seq).into());
                params.insert("event".into(), event.into());
                if !self.payload.is_empty() {
                    params.insert("payload".into(), Value::Object(self.payload.clone()));
                }
                BatchOp {
                    op: Op::ApplyEvent,
                    params,
                }
            })
            .collect();
        let mode = if self.spec.batch_atomic {
            BatchMode::Atomic
        } else {
            BatchMode::BestEffort
        };
        let result = match client.batch(mode, ops).await {
            Ok(result) => result,
            Err(err) => return Checked::failed(err.into()),
        };
        if result.results.len() as u64 != size {
            return Checked::failed(Failure::unexpected());
        }
        let mut checked = Checked::default();
        for item in result.results {
            match (item.status, item.result, item.error) {
                (BatchItemStatus::Ok, Some(result), _) if is_flip_object(&result) => {
                    checked.items_ok += 1;
                }
                (BatchItemStatus::Error, _, Some(error)) => checked.failures.push(Failure {
                    code: error.code.as_str().to_owned(),
                }),
                _ => checked.failures.push(Failure::unexpected()),
            }
        }
        checked
    }
}

/// `{"data": "xxx…"}` with `bytes` characters, or `{}` for 0: merged into ctx by APPLY_EVENT,
/// so ctx stays the same size however long the run.
fn payload_of(bytes: u64) -> Map<String, Value> {
    let mut payload = Map::new();
    if bytes > 0 {
        let data = "x".repeat(usize::try_from(bytes).unwrap_or(usize::MAX));
        payload.insert("data".to_owned(), Value::String(data));
    }
    payload
}

fn is_flip(result: &ApplyEventResult) -> bool {
    result.applied
        && result.from_state != result.to_state
        && STATES.contains(&result.from_state.as_str())
        && STATES.contains(&result.to_state.as_str())
}

fn is_flip_object(result: &Map<String, Value>) -> bool {
    let state = |key: &str| result.get(key).and_then(Value::as_str);
    match (state("from_state"), state("to_state")) {
        (Some(from), Some(to)) => {
            from != to
                && STATES.contains(&from)
                && STATES.contains(&to)
                && result.get("applied") == Some(&Value::Bool(true))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_interleaves_kinds_in_proportion_to_their_weights() {
        let mix: Mix = "get=3,apply=1".parse().expect("valid mix");
        let kinds: Vec<MixKind> = (0..8).map(|seq| mix.pick(seq)).collect();
        let gets = kinds.iter().filter(|kind| **kind == MixKind::Get).count();
        assert_eq!(gets, 6);
        assert_eq!(kinds.len() - gets, 2);
    }

    #[test]
    fn a_mix_rejects_unknown_kinds_and_all_zero_weights() {
        assert!("get=1,delete=1".parse::<Mix>().is_err());
        assert!("get=0".parse::<Mix>().is_err());
        assert!("get".parse::<Mix>().is_err());
    }

    #[test]
    fn payload_has_the_requested_size_and_none_for_zero() {
        let payload = payload_of(64);
        assert_eq!(payload["data"].as_str().map(str::len), Some(64));
        assert!(payload_of(0).is_empty());
    }
}
