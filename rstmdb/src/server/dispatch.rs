//! [`DatabaseHandler`]: the data ops of spec §4 on top of [`Database`]. Params are parsed with
//! the protocol crate's rules (§4.0), the work is queued in `start` (so a connection's requests
//! keep their order, §3.7), and the response is built once the durability gate opens.

use super::handler::{ConnectionContext, OpHandler, ResponseFuture};
use super::session::SERVER_VERSION;
use super::value_depth;
use super::watch::{WatchHub, WatchLimits, ops as watch_ops};
use crate::database::{BatchItem, Database, RESULTS_BUDGET_BYTES, WriteOutput};
use crate::engine::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, InstanceIdChoice, ListInstancesQuery,
    ListInstancesResult, PutMachine,
};
use crate::metrics::Metrics;
use rstmdb_client::message::{Response, to_object};
use rstmdb_client::params::{
    ApplyEventParams, BatchParams, CreateInstanceParams, DeleteInstanceParams, ListInstancesParams,
    OpParams, PutMachineParams,
};
use rstmdb_client::results::{StateCountEntry, StatsResult};
use rstmdb_client::{Op, RcpError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// WAL_READ's page when `limit` is absent (spec §4.17).
const WAL_READ_DEFAULT_LIMIT: u64 = 1_000;

/// Serves the data ops from a database.
#[derive(Debug)]
pub struct DatabaseHandler {
    db: Arc<Database>,
    watch: WatchHub,
    /// Where STATS reads connection, request and error totals; without it those STATS fields
    /// are null.
    metrics: Option<Arc<Metrics>>,
    /// STATS `uptime_secs` counts from here.
    started: Instant,
}

impl DatabaseHandler {
    /// A handler with the default `[watch]` limits.
    pub fn new(db: Arc<Database>) -> DatabaseHandler {
        DatabaseHandler::with_watch_limits(db, WatchLimits::default())
    }

    pub fn with_watch_limits(db: Arc<Database>, limits: WatchLimits) -> DatabaseHandler {
        let watch = WatchHub::new(&db, limits);
        DatabaseHandler {
            db,
            watch,
            metrics: None,
            started: Instant::now(),
        }
    }

    /// STATS reports the server totals these metrics count (the ones the server counts into).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> DatabaseHandler {
        self.metrics = Some(metrics);
        self
    }

    /// The watch hub: its `stats()` feed the subscription metrics.
    pub fn watch_hub(&self) -> &WatchHub {
        &self.watch
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Reply, RcpError>> + Send + 'static>>;

/// A success: the result object and, for requests that appended records, the first offset.
struct Reply {
    result: Map<String, Value>,
    wal_offset: Option<u64>,
}

impl Reply {
    fn object(result: Map<String, Value>) -> Result<Reply, RcpError> {
        Ok(Reply {
            result,
            wal_offset: None,
        })
    }

    fn of<T: Serialize>(value: &T) -> Result<Reply, RcpError> {
        Ok(Reply {
            result: to_object(value)?,
            wal_offset: None,
        })
    }
}

impl OpHandler for DatabaseHandler {
    fn start(&self, conn: &ConnectionContext, request: rstmdb_client::Request) -> ResponseFuture {
        let id = request.id;
        let parsed = OpParams::parse(request.op, &request.params)
            .and_then(|params| value_depth::check_params(&params).map(|()| params));
        let answer = match parsed {
            Ok(params) => self.dispatch(conn, params),
            Err(err) => Box::pin(async move { Err(err) }),
        };
        Box::pin(async move {
            match answer.await {
                Ok(Reply {
                    result,
                    wal_offset: Some(offset),
                }) => Response::ok_with_offset(id, result, offset),
                Ok(Reply { result, .. }) => Response::ok(id, result),
                Err(err) => Response::error(id, err),
            }
        })
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let db = Arc::clone(&self.db);
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || db.shutdown()).await {
                Ok(Ok(())) => tracing::info!("WAL synced; database closed"),
                Ok(Err(err)) => tracing::error!(%err, "closing the database failed"),
                Err(err) => tracing::error!(%err, "closing the database panicked"),
            }
        })
    }
}

impl DatabaseHandler {
    /// Queues the op's work now and returns the future of its answer.
    fn dispatch(&self, conn: &ConnectionContext, params: OpParams) -> Answer {
        let db = &self.db;
        match params {
            OpParams::PutMachine(p) => written(db.write(put_machine(p))),
            OpParams::CreateInstance(p) => written(db.write(create_instance(p))),
            OpParams::ApplyEvent(p) => written(db.write(apply_event(p))),
            OpParams::DeleteInstance(p) => written(db.write(delete_instance(p))),
            OpParams::FlushAll => written(db.write(Command::FlushAll)),
            OpParams::GetMachine(p) => {
                let read = db.read(move |engine| engine.get_machine(&p.machine, p.version));
                Box::pin(async move {
                    read.await?
                        .map_err(|err| crate::database::apply_error(&err))
                        .and_then(|found| Reply::of(&found))
                })
            }
            OpParams::ListMachines => {
                let read = db.read(|engine| engine.list_machines());
                Box::pin(async move { Reply::of(&read.await?) })
            }
            OpParams::GetInstance(p) => {
                let read = db.get_instance(p.instance_id);
                Box::pin(async move { Reply::of(&read.await?) })
            }
            OpParams::ListInstances(p) => {
                let query = list_query(p);
                let read = db.read(move |engine| engine.list_instances(&query));
                Box::pin(async move { Reply::of(&fit_page(read.await?)) })
            }
            OpParams::Batch(p) => self.batch(p),
            OpParams::SnapshotInstance(p) => {
                let snapshot_id = format!("snap-{}", uuid::Uuid::new_v4());
                let read = db.snapshot_instance(p.instance_id, snapshot_id);
                Box::pin(async move { Reply::of(&read.await?) })
            }
            OpParams::WalRead(p) => {
                let read = db.wal_read(p.from_offset, p.limit.unwrap_or(WAL_READ_DEFAULT_LIMIT));
                Box::pin(async move { Reply::of(&read.await?) })
            }
            OpParams::WalStats => {
                let read = db.wal_stats();
                Box::pin(async move { Reply::of(&read.await?) })
            }
            OpParams::Stats => self.stats(),
            OpParams::Compact(p) => {
                let db = Arc::clone(db);
                Box::pin(async move { Reply::of(&db.compact(p.force_snapshot).await?) })
            }
            OpParams::WatchInstance(p) => {
                let watch = watch_ops::watch_instance(db, &self.watch, conn, p);
                Box::pin(async move { Reply::object(watch.await?) })
            }
            OpParams::WatchAll(p) => {
                let watch = watch_ops::watch_all(db, &self.watch, conn, p);
                Box::pin(async move { Reply::object(watch.await?) })
            }
            OpParams::Unwatch(p) => {
                let answer = watch_ops::unwatch(&self.watch, conn, p);
                Box::pin(async move { Reply::object(answer?) })
            }
            // The session answers these itself and never hands them to the handler.
            OpParams::Hello(_)
            | OpParams::Auth(_)
            | OpParams::Ping
            | OpParams::Bye
            | OpParams::Info
            | OpParams::ReplicationStatus
            | OpParams::Replicate
            | OpParams::ReplicateAck => Box::pin(async {
                Err(RcpError::internal(
                    "session op reached the database handler",
                ))
            }),
        }
    }

    /// STATS (docs/stats-op.md): the engine's incrementally kept counts (no instance scan),
    /// WAL_STATS, the watch hub's subscription count and the server totals from the metrics.
    fn stats(&self) -> Answer {
        let counts = self.db.read_at(|engine| {
            (
                engine.list_machines().items.len() as u64,
                engine.machine_version_count(),
                engine.live_instance_count(),
                engine.state_counts(),
            )
        });
        let wal = self.db.wal_stats();
        let totals = self.metrics.as_ref().map(|metrics| metrics.server_totals());
        let uptime_secs = self.started.elapsed().as_secs();
        let watch = self.watch.stats();
        let subscriptions = watch.subscriptions_active_instance + watch.subscriptions_active_all;
        Box::pin(async move {
            let ((machine_count, machine_version_count, instance_count, states), counts_offset) =
                counts.await?;
            let instances = states
                .into_iter()
                .map(|entry| StateCountEntry {
                    machine: entry.machine,
                    version: entry.version,
                    state: entry.state,
                    count: entry.count,
                })
                .collect();
            Reply::of(&StatsResult {
                server_version: SERVER_VERSION.to_owned(),
                uptime_secs,
                machine_count,
                machine_version_count,
                instance_count,
                instances,
                counts_offset,
                connections: totals.as_ref().map(|t| t.connections),
                subscriptions,
                requests_total: totals.as_ref().map(|t| t.requests_total),
                errors_total: totals.map(|t| t.errors_total),
                wal: wal.await?,
            })
        })
    }

    fn batch(&self, params: BatchParams) -> Answer {
        let items = params
            .ops
            .into_iter()
            .map(|entry| {
                OpParams::parse(entry.op, &entry.params)
                    .and_then(|params| value_depth::check_params(&params).map(|()| params))
                    .map(|parsed| (entry.op, parsed))
                    .map_err(|error| (entry.op, error))
            })
            .map(|parsed| match parsed {
                Ok((op, parsed)) => batch_item(op, parsed),
                Err((op, error)) => BatchItem::Refused { op, error },
            })
            .collect();
        let run = self.db.batch(params.mode, items);
        Box::pin(async move {
            let output = run.await?;
            let results: Vec<Value> = output
                .results
                .into_iter()
                .map(|entry| match entry {
                    Ok(result) => json!({"status": "ok", "result": result, "error": null}),
                    Err(error) => json!({"status": "error", "result": null, "error": error}),
                })
                .collect();
            let mut result = Map::new();
            result.insert("results".to_owned(), Value::Array(results));
            Ok(Reply {
                result,
                wal_offset: output.first_wal_offset,
            })
        })
    }
}

/// A BATCH sub-op (spec §4.15: the six allowed ops; the protocol crate already refused others).
fn batch_item(op: Op, params: OpParams) -> BatchItem {
    let write = |command| BatchItem::Write { op, command };
    match params {
        OpParams::PutMachine(p) => write(put_machine(p)),
        OpParams::CreateInstance(p) => write(create_instance(p)),
        OpParams::ApplyEvent(p) => write(apply_event(p)),
        OpParams::DeleteInstance(p) => write(delete_instance(p)),
        OpParams::GetInstance(p) => BatchItem::GetInstance {
            instance_id: p.instance_id,
        },
        OpParams::GetMachine(p) => BatchItem::GetMachine {
            machine: p.machine,
            version: p.version,
        },
        _ => BatchItem::Refused {
            op,
            error: RcpError::batch_invalid(format!("{op} is not allowed in a batch")),
        },
    }
}

fn written(write: impl Future<Output = Result<WriteOutput, RcpError>> + Send + 'static) -> Answer {
    Box::pin(async move {
        let output = write.await?;
        Ok(Reply {
            result: to_object(&output.result)?,
            wal_offset: output.wal_offset,
        })
    })
}

fn put_machine(p: PutMachineParams) -> Command {
    Command::PutMachine(PutMachine {
        machine: p.machine,
        version: p.version,
        definition: p.definition,
    })
}

fn create_instance(p: CreateInstanceParams) -> Command {
    let instance_id = match p.instance_id {
        Some(id) => InstanceIdChoice::Given(id),
        // Ids the server generates are UUID v4, lowercase and hyphenated (spec §6.5).
        None => InstanceIdChoice::Generated(uuid::Uuid::new_v4().to_string()),
    };
    Command::CreateInstance(CreateInstance {
        machine: p.machine,
        version: p.version,
        instance_id,
        initial_ctx: Some(p.initial_ctx),
        idempotency_key: p.idempotency_key,
    })
}

fn apply_event(p: ApplyEventParams) -> Command {
    Command::ApplyEvent(ApplyEvent {
        instance_id: p.instance_id,
        event: p.event,
        payload: p.payload,
        expected_state: p.expected_state,
        expected_wal_offset: p.expected_wal_offset,
        event_id: p.event_id,
        idempotency_key: p.idempotency_key,
    })
}

fn delete_instance(p: DeleteInstanceParams) -> Command {
    Command::DeleteInstance(DeleteInstance {
        instance_id: p.instance_id,
        idempotency_key: p.idempotency_key,
    })
}

fn list_query(p: ListInstancesParams) -> ListInstancesQuery {
    let defaults = ListInstancesQuery::default();
    ListInstancesQuery {
        machine: p.machine,
        state: p.state,
        limit: p.limit.unwrap_or(defaults.limit),
        offset: p.offset.unwrap_or(defaults.offset),
        after: p.after,
    }
}

/// Drops instances from the end of a page that would not fit in a 16 MiB response; `has_more`
/// then tells the client to page on (spec §4.12).
fn fit_page(mut page: ListInstancesResult) -> ListInstancesResult {
    let mut used_bytes = 0;
    let fits = page
        .instances
        .iter()
        .take_while(|summary| {
            used_bytes += serde_json::to_string(summary).map_or(0, |s| s.len()) + 1;
            used_bytes <= RESULTS_BUDGET_BYTES
        })
        .count();
    if fits < page.instances.len() {
        page.instances.truncate(fits);
        page.has_more = true;
    }
    page
}
