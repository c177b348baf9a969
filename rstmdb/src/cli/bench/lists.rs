//! The background read load of `--list-pipeline`: one more connection keeps that many
//! LIST_INSTANCES in flight for the whole timed phase, so the report shows what expensive
//! reads do to the workload's latency (issue 14: scans must not block writers).
//!
//! The query is the worst case a client can send cheaply: a filter that matches few instances
//! (or none at all), a large `offset` and the largest page. Before the instances were indexed,
//! such a query walked every instance under the engine's read lock.

use rstmdb_client::params::ListInstancesParams;
use rstmdb_client::{Client, ClientOptions};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::BenchError;
use super::report::{ErrorCounts, Latency};
use super::workload::{Failure, UNEXPECTED_RESULT};

/// The machine the filtered lists ask for; it has [`RARE_INSTANCES`] instances.
pub const RARE_MACHINE: &str = "bench-rare";
const RARE_STATE: &str = "parked";
/// Instances of [`RARE_MACHINE`] each run creates: few next to the workload's, so the filter
/// matches few.
const RARE_INSTANCES: u64 = 10;
const PAGE_LIMIT: u32 = 1000;

/// Which instances the background lists ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFilter {
    /// `machine` and `state` of a machine with only a few instances.
    Rare,
    /// No filter: every instance matches, so only `offset` decides the work.
    None,
}

#[derive(Debug, Clone, Copy)]
pub struct ListLoad {
    /// LIST_INSTANCES in flight at once (0: no background lists).
    pub pipeline: u32,
    pub offset: u32,
    pub filter: ListFilter,
}

/// What the background lists measured.
#[derive(Debug)]
pub struct ListOutcome {
    pub ops: u64,
    pub latency: Latency,
    pub errors: ErrorCounts,
}

impl ListLoad {
    /// Registers the rare machine and its instances (set-up, not timed).
    pub async fn setup(&self, client: &Client, id_prefix: &str) -> Result<(), BenchError> {
        let definition = json!({"states": [RARE_STATE], "initial": RARE_STATE, "transitions": []});
        client
            .put_machine(RARE_MACHINE, 1, definition)
            .await
            .map_err(|err| BenchError::Setup(format!("PUT_MACHINE {RARE_MACHINE}: {err}")))?;
        for index in 0..RARE_INSTANCES {
            let options = rstmdb_client::CreateInstanceOptions::default()
                .instance_id(format!("{id_prefix}-rare-{index}"));
            client
                .create_instance(RARE_MACHINE, 1, options)
                .await
                .map_err(|err| BenchError::Setup(format!("creating rare instances: {err}")))?;
        }
        Ok(())
    }

    fn params(&self) -> ListInstancesParams {
        let (machine, state) = match self.filter {
            ListFilter::Rare => (Some(RARE_MACHINE.to_owned()), Some(RARE_STATE.to_owned())),
            ListFilter::None => (None, None),
        };
        ListInstancesParams {
            machine,
            state,
            limit: Some(PAGE_LIMIT),
            offset: Some(self.offset),
            after: None,
        }
    }

    /// [`ListLoad::run`] on a thread and runtime of their own. Decoding 128 pipelined pages of
    /// 1,000 instances takes the bench some 3 ms of CPU each; on the runtime that times the
    /// workload, that work would delay the workload's own responses, and its latency would
    /// measure the bench instead of the server.
    pub fn start(
        self,
        options: ClientOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<std::thread::JoinHandle<Result<ListOutcome, BenchError>>, BenchError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| BenchError::Setup(format!("starting the list load's runtime: {err}")))?;
        std::thread::Builder::new()
            .name("bench-lists".into())
            .spawn(move || runtime.block_on(self.run(options, stop)))
            .map_err(|err| BenchError::Setup(format!("starting the list load's thread: {err}")))
    }

    /// Keeps `pipeline` lists in flight on a connection of its own until `stop` is set.
    async fn run(
        self,
        options: ClientOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<ListOutcome, BenchError> {
        use futures::StreamExt;
        use futures::stream::FuturesUnordered;
        use std::time::Instant;

        let depth = usize::try_from(self.pipeline).unwrap_or(1).max(1);
        let client = Client::connect(options.max_in_flight_requests(depth)).await?;
        let mut outcome = ListOutcome {
            ops: 0,
            latency: Latency::new(),
            errors: ErrorCounts::default(),
        };
        let mut in_flight = FuturesUnordered::new();
        loop {
            while !stop.load(Ordering::Relaxed) && in_flight.len() < depth {
                let (client, params) = (&client, self.params());
                in_flight.push(async move {
                    let sent = Instant::now();
                    let result = client.list_instances(params).await;
                    (sent.elapsed(), result)
                });
            }
            let Some((latency, result)) = in_flight.next().await else {
                break;
            };
            outcome.ops += 1;
            outcome.latency.record(latency);
            match result {
                // Each run against one server adds its rare instances: at least this run's
                // match, and a page holds nothing else.
                Ok(_) if self.filter == ListFilter::None => {}
                Ok(page)
                    if page.total >= RARE_INSTANCES
                        && page.instances.iter().all(|instance| {
                            instance.machine == RARE_MACHINE && instance.state == RARE_STATE
                        }) => {}
                Ok(_) => outcome.errors.add(UNEXPECTED_RESULT, 1),
                Err(err) => outcome.errors.add(&Failure::from(err).code, 1),
            }
        }
        drop(in_flight);
        let _ = client.close().await;
        Ok(outcome)
    }
}
