//! [`DatabaseHandler`]: the data ops of spec §4 on top of [`Database`]. Params are parsed with
//! the protocol crate's rules (§4.0), the work is queued in `start` (so a connection's requests
//! keep their order, §3.7), and the response is built once the durability gate opens.

use super::commands::{apply_event, batch_item, create_instance, delete_instance, put_machine};
use super::forwarding::{ForwardLane, ForwardedWrites, relayed};
use super::handler::{ConnectionContext, OpHandler, ResponseFuture};
use super::stats::{ServerCounters, stats};
use super::value_depth;
use super::watch::{WatchHub, WatchLimits, ops as watch_ops};
use crate::cluster::forward::{Forwarder, Route};
use crate::cluster::membership::ClusterAdmin;
use crate::cluster::node::ClusterNode;
use crate::cluster::status::ClusterObserver;
use crate::database::{BatchItem, Database, WriteOutput};
use crate::engine::{Command, Engine, ListLandmarks};
use rstmdb_protocol::RcpError;
use rstmdb_protocol::limits::MAX_RESULT_ITEMS_BYTES;
use rstmdb_protocol::message::Response;
use rstmdb_protocol::params::{BatchParams, ListInstancesParams, OpParams};
use rstmdb_protocol::results::{BatchResult, ListInstancesResult};
use rstmdb_protocol::{EncodedResponse, Op};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Serves the data ops from a database.
#[derive(Debug)]
pub struct DatabaseHandler {
    db: Arc<Database>,
    watch: WatchHub,
    /// Where STATS reads connection, request and error totals; without it those STATS fields
    /// are null.
    counters: Option<Arc<dyn ServerCounters>>,
    /// STATS `uptime_secs` counts from here.
    started: Instant,
    /// Where recent large-offset LIST_INSTANCES walks stood, for the next walk of the same ids.
    list_landmarks: Arc<Mutex<ListLandmarks>>,
    /// Cluster mode: the node, stopped before the database closes.
    cluster: Mutex<Option<ClusterNode>>,
    /// Cluster mode with `forward_writes`: how writes reach the leader from here.
    forwarder: Option<Forwarder>,
    /// Cluster mode with linearizable reads: how reads are confirmed with the leader.
    linearizer: Option<Forwarder>,
    /// Cluster mode: CLUSTER_STATUS's source.
    observer: Option<ClusterObserver>,
    /// Cluster mode: the membership ops.
    admin: Option<ClusterAdmin>,
    /// This handler, for the forwarded writes that find this node leading after all.
    this: OnceLock<Weak<DatabaseHandler>>,
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
            counters: None,
            started: Instant::now(),
            list_landmarks: Arc::default(),
            cluster: Mutex::new(None),
            forwarder: None,
            linearizer: None,
            observer: None,
            admin: None,
            this: OnceLock::new(),
        }
    }

    /// Cluster mode: the node whose database this is; stopped at shutdown, before the
    /// database.
    pub fn with_cluster(mut self, node: ClusterNode) -> DatabaseHandler {
        self.forwarder = node.write_forwarder().cloned();
        self.linearizer = node.read_linearizer().cloned();
        self.observer = Some(node.observer().clone());
        self.admin = Some(node.admin().clone());
        *self.cluster.lock().unwrap_or_else(PoisonError::into_inner) = Some(node);
        self
    }

    /// Call once the handler is shared. Cluster mode: runs the writes other nodes relay here
    /// when this node leads, and lets relayed writes and confirmed reads that find this node
    /// leading run here.
    pub fn serve_cluster(self: &Arc<Self>) {
        let _ = self.this.set(Arc::downgrade(self));
        let cluster = self.cluster.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(node) = cluster.as_ref() {
            node.take_forwarded_writes(Arc::new(ForwardedWrites {
                handler: Arc::clone(self),
            }));
        }
    }

    /// A write relayed by another node, run here as a client's (never relayed again).
    pub(crate) fn run_forwarded(&self, request: rstmdb_protocol::Request) -> ResponseFuture {
        let answer = match parse_params(&request) {
            Ok(params) => self.dispatch_write(&request.id, params).unwrap_or_else(|| {
                Box::pin(std::future::ready(Err(RcpError::bad_request(
                    "not_forwarded",
                    "only writes and membership changes are relayed between nodes",
                ))))
            }),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        };
        respond(request.id, answer)
    }

    /// Runs the request on this node, whatever the cluster.
    fn start_here(
        &self,
        conn: &ConnectionContext,
        request: rstmdb_protocol::Request,
    ) -> ResponseFuture {
        let answer = self.answer_here(conn, &request);
        respond(request.id, answer)
    }

    /// [`DatabaseHandler::start_here`] for a request the caller keeps (to relay it after all).
    fn start_here_keeping(
        &self,
        conn: &ConnectionContext,
        request: &rstmdb_protocol::Request,
    ) -> ResponseFuture {
        respond(request.id.clone(), self.answer_here(conn, request))
    }

    /// Parses the params and queues the work now.
    fn answer_here(&self, conn: &ConnectionContext, request: &rstmdb_protocol::Request) -> Answer {
        match parse_params(request) {
            Ok(params) => self.dispatch(conn, &request.id, params),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        }
    }

    /// A write on a node that leads, relayed to the new leader if this one lost its lead
    /// before the write committed (it then answers `no_leader` or `READ_ONLY_MODE`: nothing
    /// was applied).
    fn write_here_or_forward(
        &self,
        forwarder: &Forwarder,
        conn: &ConnectionContext,
        request: rstmdb_protocol::Request,
    ) -> ResponseFuture {
        let local = self.start_here_keeping(conn, &request);
        let forwarder = forwarder.clone();
        let conn = conn.clone();
        let this = self.this.get().cloned();
        Box::pin(async move {
            let response = local.await;
            if !answered_not_leading(&response) {
                return response;
            }
            match this.and_then(|this| this.upgrade()) {
                Some(handler) => handler.forward(&forwarder, &conn, request).await,
                None => response,
            }
        })
    }

    /// A read that runs once this node has applied everything committed when it arrived, as
    /// the leader confirms.
    fn linearized(
        &self,
        linearizer: &Forwarder,
        conn: &ConnectionContext,
        request: rstmdb_protocol::Request,
    ) -> ResponseFuture {
        let linearizer = linearizer.clone();
        let conn = conn.clone();
        let this = self.this.get().cloned();
        let started = tokio::time::Instant::now();
        Box::pin(async move {
            if let Err(err) = linearizer.linearize(started).await {
                return EncodedResponse::new(&Response::error(request.id, err));
            }
            match this.and_then(|this| this.upgrade()) {
                Some(handler) => handler.start_here(&conn, request).await,
                None => EncodedResponse::new(&Response::error(
                    request.id,
                    RcpError::internal("the server is shutting down"),
                )),
            }
        })
    }

    /// Relays a write to the leader through the connection's lane; runs it here if this node
    /// turns out to lead.
    fn forward(
        &self,
        forwarder: &Forwarder,
        conn: &ConnectionContext,
        request: rstmdb_protocol::Request,
    ) -> ResponseFuture {
        let lane = conn
            .forward_lane(|| ForwardLane::start(forwarder.clone()))
            .clone();
        let started = tokio::time::Instant::now();
        let mut routed = lane.send(&request, started);
        let this = self.this.get().cloned();
        let deadline = started + forwarder.write_timeout();
        Box::pin(async move {
            let id = request.id.clone();
            loop {
                let response = match routed.await {
                    Ok(Route::Relayed(response)) => return relayed(&id, response),
                    Ok(Route::Local) => match this.as_ref().and_then(Weak::upgrade) {
                        Some(handler) => handler.run_forwarded(request.clone()).await,
                        None => {
                            let err = RcpError::internal("the server is shutting down");
                            return EncodedResponse::new(&Response::error(id, err));
                        }
                    },
                    Err(err) => return EncodedResponse::new(&Response::error(id, err)),
                };
                // This node looked like the leader but lost the lead before the write
                // committed (nothing applied): look for the leader again, within the time.
                if !answered_not_leading(&response) || tokio::time::Instant::now() >= deadline {
                    return response;
                }
                tokio::time::sleep(FORWARD_RETRY_PAUSE).await;
                routed = lane.send(&request, started);
            }
        })
    }

    /// STATS reports the server totals these counters keep (the metrics the server reports to).
    pub fn with_counters(mut self, counters: Arc<dyn ServerCounters>) -> DatabaseHandler {
        self.counters = Some(counters);
        self
    }

    /// The watch hub: its `stats()` feed the subscription metrics.
    pub fn watch_hub(&self) -> &WatchHub {
        &self.watch
    }
}

/// The success response of a request, or the error to answer it with.
type Answer = Pin<Box<dyn Future<Output = Result<EncodedResponse, RcpError>> + Send + 'static>>;

/// Answers `id` with the typed result `read` resolves to, serialised straight into the
/// response's text: no JSON tree is built between the result and the wire.
fn answer<T: Serialize>(
    id: &str,
    read: impl Future<Output = Result<T, RcpError>> + Send + 'static,
) -> Answer {
    answer_with_offset(id, async move { Ok((read.await?, None)) })
}

/// [`answer`] for a result that may come with `meta.wal_offset`, the first offset of the
/// records its request appended.
fn answer_with_offset<T: Serialize>(
    id: &str,
    outcome: impl Future<Output = Result<(T, Option<u64>), RcpError>> + Send + 'static,
) -> Answer {
    let id = id.to_owned();
    Box::pin(async move {
        let (result, wal_offset) = outcome.await?;
        Ok(EncodedResponse::ok_typed(&id, &result, wal_offset))
    })
}

impl OpHandler for DatabaseHandler {
    fn start(&self, conn: &ConnectionContext, request: rstmdb_protocol::Request) -> ResponseFuture {
        if let Some(forwarder) = &self.forwarder
            && is_forwarded(request.op)
        {
            if !forwarder.leads() {
                return self.forward(forwarder, conn, request);
            }
            return self.write_here_or_forward(forwarder, conn, request);
        }
        if let Some(linearizer) = &self.linearizer
            && is_linearized(request.op)
        {
            return self.linearized(linearizer, conn, request);
        }
        self.start_here(conn, request)
    }

    fn answers_replication_status(&self) -> bool {
        self.observer.is_some()
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let db = Arc::clone(&self.db);
        let node = self
            .cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        Box::pin(async move {
            if let Some(node) = node {
                node.shutdown().await;
            }
            match tokio::task::spawn_blocking(move || db.shutdown()).await {
                Ok(Ok(())) => tracing::info!("WAL synced; database closed"),
                Ok(Err(err)) => tracing::error!(%err, "closing the database failed"),
                Err(err) => tracing::error!(%err, "closing the database panicked"),
            }
        })
    }
}

/// How long a relayed write waits before looking for the leader again after this node lost
/// the lead under it.
const FORWARD_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// A request's params, typed, within the value limits.
fn parse_params(request: &rstmdb_protocol::Request) -> Result<OpParams, RcpError> {
    OpParams::parse(request.op, &request.params)
        .and_then(|params| value_depth::check_params(&params).map(|()| params))
}

/// The response future: the answer, or the error it failed with, under the request's id.
fn respond(id: String, answer: Answer) -> ResponseFuture {
    Box::pin(async move {
        answer
            .await
            .unwrap_or_else(|err| EncodedResponse::new(&Response::error(id, err)))
    })
}

/// Whether a response says that this node did not apply the write because it does not lead
/// (any more): `READ_ONLY_MODE`, or `REPLICATION_TIMEOUT` `no_leader`.
fn answered_not_leading(response: &EncodedResponse) -> bool {
    match response.error_code() {
        Some(rstmdb_protocol::ErrorCode::ReadOnlyMode) => true,
        Some(rstmdb_protocol::ErrorCode::ReplicationTimeout) => {
            serde_json::from_str::<serde_json::Value>(response.payload())
                .is_ok_and(|payload| payload["error"]["details"]["reason"] == "no_leader")
        }
        _ => false,
    }
}

fn not_clustered() -> RcpError {
    RcpError::bad_request(
        "not_clustered",
        "this server runs standalone: it has no [cluster] table",
    )
}

/// The reads confirmed with the leader under `read_consistency = "linearizable"` (spec
/// §12.2): every read of the database's state. Watch streams, STATS and WAL_STATS are the
/// node's own.
fn is_linearized(op: Op) -> bool {
    matches!(
        op,
        Op::GetMachine
            | Op::ListMachines
            | Op::GetInstance
            | Op::ListInstances
            | Op::WalRead
            | Op::SnapshotInstance
    )
}

/// The ops a follower relays to the leader: every one that appends WAL records (COMPACT is
/// each node's own business), and the membership ops.
fn is_forwarded(op: Op) -> bool {
    (op.is_write() && op != Op::Compact) || op.is_membership()
}

impl DatabaseHandler {
    /// The work of an op that runs on the leader (a write, or a membership change), queued
    /// now; `None` for any other op.
    fn dispatch_write(&self, id: &str, params: OpParams) -> Option<Answer> {
        let db = &self.db;
        Some(match params {
            OpParams::PutMachine(p) => written(id, db.write(put_machine(p))),
            OpParams::CreateInstance(p) => written(id, db.write(create_instance(p))),
            OpParams::ApplyEvent(p) => written(id, db.write(apply_event(p))),
            OpParams::DeleteInstance(p) => written(id, db.write(delete_instance(p))),
            OpParams::FlushAll => written(id, db.write(Command::FlushAll)),
            OpParams::Batch(p) => self.batch(id, p),
            OpParams::ClusterAddLearner(p) => match self.admin.clone() {
                Some(admin) => answer(id, async move {
                    admin
                        .add_learner(p.node_id, p.raft_addr, p.client_addr)
                        .await
                }),
                None => Box::pin(std::future::ready(Err(not_clustered()))),
            },
            OpParams::ClusterPromote(p) => match self.admin.clone() {
                Some(admin) => answer(id, async move { admin.promote(p.node_id).await }),
                None => Box::pin(std::future::ready(Err(not_clustered()))),
            },
            OpParams::ClusterRemoveNode(p) => match self.admin.clone() {
                Some(admin) => answer(id, async move { admin.remove(p.node_id).await }),
                None => Box::pin(std::future::ready(Err(not_clustered()))),
            },
            OpParams::ClusterTransferLeader(p) => match self.admin.clone() {
                Some(admin) => answer(id, async move { admin.transfer_leader(p.node_id).await }),
                None => Box::pin(std::future::ready(Err(not_clustered()))),
            },
            _ => return None,
        })
    }

    /// Queues the op's work now and returns the future of its answer.
    fn dispatch(&self, conn: &ConnectionContext, id: &str, params: OpParams) -> Answer {
        let db = &self.db;
        match params {
            OpParams::PutMachine(_)
            | OpParams::CreateInstance(_)
            | OpParams::ApplyEvent(_)
            | OpParams::DeleteInstance(_)
            | OpParams::FlushAll
            | OpParams::Batch(_)
            | OpParams::ClusterAddLearner(_)
            | OpParams::ClusterPromote(_)
            | OpParams::ClusterRemoveNode(_)
            | OpParams::ClusterTransferLeader(_) => self
                .dispatch_write(id, params)
                .expect("a write op has a write's work"),
            OpParams::GetMachine(p) => {
                let read = db.read(move |engine| engine.get_machine(&p.machine, p.version));
                answer(id, async move {
                    read.await?
                        .map_err(|err| crate::database::apply_error(&err))
                })
            }
            OpParams::ListMachines => answer(id, db.read(|engine| engine.list_machines())),
            OpParams::GetInstance(p) => answer(id, db.get_instance(p.instance_id)),
            OpParams::ListInstances(p) if is_long_list(&p) => {
                let landmarks = Arc::clone(&self.list_landmarks);
                let mut walk = None;
                let step = move |engine: &Engine| {
                    // Started at the first step, not here: a page queued behind other long
                    // reads starts from the newest landmark, not one stale by then.
                    let walk = walk.get_or_insert_with(|| lock(&landmarks).start(p.clone()));
                    let page = engine.list_step(walk, LIST_STEP_IDS);
                    lock(&landmarks).remember(walk);
                    page
                };
                let id = id.to_owned();
                Box::pin(db.read_long(step, move |page| encode_page(&id, page)))
            }
            OpParams::ListInstances(p) => {
                let read = db.read(move |engine| engine.list_instances(&p));
                let id = id.to_owned();
                Box::pin(async move { Ok(encode_page(&id, read.await?)) })
            }
            OpParams::SnapshotInstance(p) => {
                let snapshot_id = format!("snap-{}", uuid::Uuid::new_v4());
                answer(id, db.snapshot_instance(p.instance_id, snapshot_id))
            }
            OpParams::WalRead(p) => answer(id, db.wal_read(p.from_offset, p.max_records())),
            OpParams::WalStats => answer(id, db.wal_stats()),
            OpParams::ReplicationStatus if self.observer.is_some() => {
                let status = self
                    .observer
                    .as_ref()
                    .map(ClusterObserver::replication_status);
                answer(id, std::future::ready(status.ok_or_else(not_clustered)))
            }
            OpParams::ClusterStatus => match &self.observer {
                Some(observer) => {
                    let status = observer.status();
                    answer(id, std::future::ready(Ok(status)))
                }
                None => Box::pin(std::future::ready(Err(not_clustered()))),
            },
            OpParams::Stats => answer(
                id,
                stats(db, &self.watch, self.counters.as_ref(), self.started),
            ),
            OpParams::Compact(p) => {
                let db = Arc::clone(db);
                answer(id, async move { db.compact(p.force_snapshot).await })
            }
            OpParams::WatchInstance(p) => {
                answer(id, watch_ops::watch_instance(db, &self.watch, conn, p))
            }
            OpParams::WatchAll(p) => answer(id, watch_ops::watch_all(db, &self.watch, conn, p)),
            OpParams::Unwatch(p) => {
                let unwatched = watch_ops::unwatch(&self.watch, conn, p);
                answer(id, std::future::ready(Ok(unwatched)))
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

    fn batch(&self, id: &str, params: BatchParams) -> Answer {
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
        answer_with_offset(id, async move {
            let output = run.await?;
            let result = BatchResult {
                results: output.results,
            };
            Ok((result, output.first_wal_offset))
        })
    }
}

/// [`answer`] for a write: `meta` carries the offset of the record it appended, if any.
fn written(
    id: &str,
    write: impl Future<Output = Result<WriteOutput, RcpError>> + Send + 'static,
) -> Answer {
    answer_with_offset(id, async move {
        let output = write.await?;
        Ok((output.result, output.wal_offset))
    })
}

/// Ids of a LIST_INSTANCES `offset` passed per hold of the engine lock, which bounds what a write
/// may wait for a page: meant as some 0.1 ms (4,096 ids at 20-30 ns each), but steps of over
/// 0.2 ms were common under load when measured for issue 14 (cache misses on a million ids).
const LIST_STEP_IDS: usize = 4096;

/// A LIST_INSTANCES is a long read (off the runtime's workers, in steps and paced, see
/// `Database::read_long`) when its `offset` walks more than one step, or when its page may be
/// large: a page of 1,000 instances is some 0.5 ms to build and encode, beside which the hand
/// over to the blocking pool is nothing, and a few dozen pipelined on a worker would make every
/// other request on it wait. A page of the default size or smaller is cheaper in place.
fn is_long_list(params: &ListInstancesParams) -> bool {
    params.skip() as usize > LIST_STEP_IDS
        || params.page_size() > ListInstancesParams::DEFAULT_LIMIT
}

/// Landmarks are hints that each walk checks against the engine: one left half-updated by a
/// panic is still safe to use.
fn lock(landmarks: &Mutex<ListLandmarks>) -> MutexGuard<'_, ListLandmarks> {
    landmarks.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The response of a page, encoded from the typed page (no JSON tree). A page whose instances
/// would not fit in a 16 MiB response is cut short first, and `has_more` then tells the client
/// to page on (spec §4.12); only then is each instance measured on its own.
fn encode_page(id: &str, page: ListInstancesResult) -> EncodedResponse {
    let encoded = EncodedResponse::ok_typed(id, &page, None);
    if encoded.error_code().is_none() && encoded.payload().len() <= MAX_RESULT_ITEMS_BYTES {
        return encoded;
    }
    EncodedResponse::ok_typed(id, &fit_page(page), None)
}

/// Drops instances from the end of a page that would not fit in a 16 MiB response.
fn fit_page(mut page: ListInstancesResult) -> ListInstancesResult {
    let mut used_bytes = 0;
    let fits = page
        .instances
        .iter()
        .take_while(|summary| {
            used_bytes += serde_json::to_string(summary).map_or(0, |s| s.len()) + 1;
            used_bytes <= MAX_RESULT_ITEMS_BYTES
        })
        .count();
    if fits < page.instances.len() {
        page.instances.truncate(fits);
        page.has_more = true;
    }
    page
}
