//! One typed method per operation (§4), plus the raw `request` escape hatch.

use serde_json::{Map, Value};

use crate::message::{RawOutcome, ResponseMeta};
use crate::ops::Op;
use crate::params::{
    ApplyEventParams, BatchMode, BatchOp, BatchParams, ClusterAddLearnerParams, ClusterNodeParams,
    CompactParams, CreateInstanceParams, DeleteInstanceParams, GetInstanceParams, GetMachineParams,
    ListInstancesParams, PutMachineParams, SnapshotInstanceParams, UnwatchParams, WalReadParams,
    WatchAllParams, WatchInstanceParams,
};
use crate::results::*;

use super::reconnect::params_object;
use super::subscription::{SubEntry, Subscription, WatchRequest, WatchStart, abandon};
use super::{Client, ClientError, typed};

/// Optional params of CREATE_INSTANCE (§4.10).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateInstanceOptions {
    /// `None`: the server generates a UUID v4.
    pub instance_id: Option<String>,
    pub initial_ctx: Map<String, Value>,
    /// Global scope (§6.2); makes a retry after a lost connection safe.
    pub idempotency_key: Option<String>,
}

impl CreateInstanceOptions {
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    pub fn initial_ctx(mut self, ctx: Map<String, Value>) -> Self {
        self.initial_ctx = ctx;
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// Optional params of APPLY_EVENT (§4.14).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyEventOptions {
    /// Merged into ctx (§6.6); guards read it as `payload.*`.
    pub payload: Option<Map<String, Value>>,
    /// Fail with `CONFLICT` unless the instance is in this state (§6.3).
    pub expected_state: Option<String>,
    /// Fail with `CONFLICT` unless the instance's `last_wal_offset` is this (§6.3).
    pub expected_wal_offset: Option<u64>,
    pub event_id: Option<String>,
    /// Instance scope (§6.2); makes a retry after a lost connection safe.
    pub idempotency_key: Option<String>,
}

impl ApplyEventOptions {
    pub fn payload(mut self, payload: Map<String, Value>) -> Self {
        self.payload = Some(payload);
        self
    }

    pub fn expected_state(mut self, state: impl Into<String>) -> Self {
        self.expected_state = Some(state.into());
        self
    }

    pub fn expected_wal_offset(mut self, offset: u64) -> Self {
        self.expected_wal_offset = Some(offset);
        self
    }

    pub fn event_id(mut self, id: impl Into<String>) -> Self {
        self.event_id = Some(id.into());
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// An untyped successful response, from [`Client::request`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawResult {
    pub result: Map<String, Value>,
    /// The offset of the first WAL record the request wrote, if it wrote any (§3.4).
    pub meta: Option<ResponseMeta>,
}

impl Client {
    /// Sends any op with any params; the escape hatch for ops or params this crate does not
    /// type. Server errors come back as [`ClientError::Server`].
    pub async fn request(
        &self,
        op: Op,
        params: Map<String, Value>,
    ) -> Result<RawResult, ClientError> {
        match self.send(op, params, None).await?.outcome {
            RawOutcome::Ok { result, meta } => {
                let result = serde_json::from_str(result.get()).map_err(|e| {
                    ClientError::Protocol(format!("{op} result is not a JSON object: {e}"))
                })?;
                Ok(RawResult { result, meta })
            }
            RawOutcome::Error { error } => Err(ClientError::Server(error)),
        }
    }

    /// HELLO again on the current connection (the client already sent one on connect).
    pub async fn hello(&self) -> Result<HelloResult, ClientError> {
        let params = crate::params::HelloParams {
            protocol_version: crate::limits::PROTOCOL_VERSION,
            client_name: Some(self.options().client_name.clone()),
            wire_modes: vec!["binary_json".to_owned()],
            features: vec!["idempotency".to_owned(), "batch".to_owned()],
        };
        self.call(Op::Hello, params_object(&params)?).await
    }

    /// AUTH on the current connection only. The options' token is what reconnects use.
    pub async fn auth(&self, token: &str) -> Result<AuthResult, ClientError> {
        let params = crate::params::AuthParams {
            method: "bearer".to_owned(),
            token: token.to_owned(),
        };
        self.call(Op::Auth, params_object(&params)?).await
    }

    pub async fn ping(&self) -> Result<PingResult, ClientError> {
        self.call(Op::Ping, Map::new()).await
    }

    /// BYE: the server closes this connection afterwards and the client reconnects. To stop
    /// for good, use [`Client::close`].
    pub async fn bye(&self) -> Result<ByeResult, ClientError> {
        self.call(Op::Bye, Map::new()).await
    }

    pub async fn info(&self) -> Result<InfoResult, ClientError> {
        self.call(Op::Info, Map::new()).await
    }

    pub async fn replication_status(&self) -> Result<ReplicationStatusResult, ClientError> {
        self.call(Op::ReplicationStatus, Map::new()).await
    }

    pub async fn put_machine(
        &self,
        machine: &str,
        version: u32,
        definition: Value,
    ) -> Result<PutMachineResult, ClientError> {
        let params = PutMachineParams {
            machine: machine.to_owned(),
            version,
            definition,
        };
        self.call(Op::PutMachine, params_object(&params)?).await
    }

    pub async fn get_machine(
        &self,
        machine: &str,
        version: u32,
    ) -> Result<GetMachineResult, ClientError> {
        let params = GetMachineParams {
            machine: machine.to_owned(),
            version,
        };
        self.call(Op::GetMachine, params_object(&params)?).await
    }

    pub async fn list_machines(&self) -> Result<ListMachinesResult, ClientError> {
        self.call(Op::ListMachines, Map::new()).await
    }

    pub async fn create_instance(
        &self,
        machine: &str,
        version: u32,
        options: CreateInstanceOptions,
    ) -> Result<CreateInstanceResult, ClientError> {
        let params = CreateInstanceParams {
            machine: machine.to_owned(),
            version,
            instance_id: options.instance_id,
            initial_ctx: options.initial_ctx,
            idempotency_key: options.idempotency_key,
        };
        self.call(Op::CreateInstance, params_object(&params)?).await
    }

    pub async fn get_instance(&self, instance_id: &str) -> Result<GetInstanceResult, ClientError> {
        let params = GetInstanceParams {
            instance_id: instance_id.to_owned(),
        };
        self.call(Op::GetInstance, params_object(&params)?).await
    }

    pub async fn list_instances(
        &self,
        params: ListInstancesParams,
    ) -> Result<ListInstancesResult, ClientError> {
        self.call(Op::ListInstances, params_object(&params)?).await
    }

    pub async fn delete_instance(
        &self,
        instance_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<DeleteInstanceResult, ClientError> {
        let params = DeleteInstanceParams {
            instance_id: instance_id.to_owned(),
            idempotency_key: idempotency_key.map(str::to_owned),
        };
        self.call(Op::DeleteInstance, params_object(&params)?).await
    }

    pub async fn apply_event(
        &self,
        instance_id: &str,
        event: &str,
        options: ApplyEventOptions,
    ) -> Result<ApplyEventResult, ClientError> {
        let params = ApplyEventParams {
            instance_id: instance_id.to_owned(),
            event: event.to_owned(),
            payload: options.payload,
            expected_state: options.expected_state,
            expected_wal_offset: options.expected_wal_offset,
            event_id: options.event_id,
            idempotency_key: options.idempotency_key,
        };
        self.call(Op::ApplyEvent, params_object(&params)?).await
    }

    /// BATCH (§4.15). A failed atomic batch is a [`ClientError::Server`] whose details carry
    /// `index` and `op`; best-effort failures are per-item in the result.
    pub async fn batch(
        &self,
        mode: BatchMode,
        ops: Vec<BatchOp>,
    ) -> Result<BatchResult, ClientError> {
        let params = BatchParams { mode, ops };
        self.call(Op::Batch, params_object(&params)?).await
    }

    pub async fn snapshot_instance(
        &self,
        instance_id: &str,
    ) -> Result<SnapshotInstanceResult, ClientError> {
        let params = SnapshotInstanceParams {
            instance_id: instance_id.to_owned(),
        };
        self.call(Op::SnapshotInstance, params_object(&params)?)
            .await
    }

    /// WAL_READ from `from_offset` (0: the oldest retained record); `limit` defaults to 1,000.
    pub async fn wal_read(
        &self,
        from_offset: u64,
        limit: Option<u64>,
    ) -> Result<WalReadResult, ClientError> {
        let params = WalReadParams { from_offset, limit };
        self.call(Op::WalRead, params_object(&params)?).await
    }

    pub async fn wal_stats(&self) -> Result<WalStatsResult, ClientError> {
        self.call(Op::WalStats, Map::new()).await
    }

    /// STATS (extension, docs/stats-op.md): instance counts by machine, version and state,
    /// connections, subscriptions, uptime and the extended WAL statistics in one call.
    pub async fn stats(&self) -> Result<StatsResult, ClientError> {
        self.call(Op::Stats, Map::new()).await
    }

    /// CLUSTER_STATUS (extension, §12.3): the node's view of its cluster; `BAD_REQUEST`
    /// `not_clustered` from a standalone server.
    pub async fn cluster_status(&self) -> Result<ClusterStatusResult, ClientError> {
        self.call(Op::ClusterStatus, Map::new()).await
    }

    /// CLUSTER_ADD_LEARNER (extension, §12.3): node `node_id` starts receiving the log.
    pub async fn cluster_add_learner(
        &self,
        node_id: u64,
        raft_addr: &str,
        client_addr: &str,
    ) -> Result<ClusterAddLearnerResult, ClientError> {
        let params = ClusterAddLearnerParams {
            node_id,
            raft_addr: raft_addr.to_owned(),
            client_addr: client_addr.to_owned(),
        };
        self.call(Op::ClusterAddLearner, params_object(&params)?)
            .await
    }

    /// CLUSTER_PROMOTE (extension, §12.3): a learner becomes a voter.
    pub async fn cluster_promote(&self, node_id: u64) -> Result<ClusterMembersResult, ClientError> {
        self.call(
            Op::ClusterPromote,
            params_object(&ClusterNodeParams { node_id })?,
        )
        .await
    }

    /// CLUSTER_REMOVE_NODE (extension, §12.3): the node leaves the cluster.
    pub async fn cluster_remove_node(
        &self,
        node_id: u64,
    ) -> Result<ClusterMembersResult, ClientError> {
        self.call(
            Op::ClusterRemoveNode,
            params_object(&ClusterNodeParams { node_id })?,
        )
        .await
    }

    /// CLUSTER_TRANSFER_LEADER (extension, §12.3): voter `node_id` becomes the leader.
    pub async fn cluster_transfer_leader(
        &self,
        node_id: u64,
    ) -> Result<ClusterTransferLeaderResult, ClientError> {
        self.call(
            Op::ClusterTransferLeader,
            params_object(&ClusterNodeParams { node_id })?,
        )
        .await
    }

    pub async fn compact(&self, force_snapshot: bool) -> Result<CompactResult, ClientError> {
        self.call(
            Op::Compact,
            params_object(&CompactParams { force_snapshot })?,
        )
        .await
    }

    /// FLUSH_ALL: erases everything, when the server allows it (§4.23).
    pub async fn flush_all(&self) -> Result<FlushAllResult, ClientError> {
        self.call(Op::FlushAll, Map::new()).await
    }

    /// Subscribes to one instance's transitions (§4.20).
    pub async fn watch_instance(
        &self,
        instance_id: &str,
        include_ctx: bool,
        from_offset: Option<u64>,
    ) -> Result<Subscription, ClientError> {
        let request = WatchRequest::Instance(WatchInstanceParams {
            instance_id: instance_id.to_owned(),
            include_ctx,
            from_offset,
        });
        self.watch(request).await
    }

    /// Subscribes to every transition that passes `filter` (§4.21); its `from_offset`
    /// replays history first.
    pub async fn watch_all(&self, filter: WatchAllParams) -> Result<Subscription, ClientError> {
        self.watch(WatchRequest::All(filter)).await
    }

    /// UNWATCH by server subscription id (§4.22). Prefer [`Subscription::unwatch`], which
    /// also stops the client from re-creating the subscription after a reconnect.
    pub async fn unwatch(&self, subscription_id: &str) -> Result<UnwatchResult, ClientError> {
        let params = UnwatchParams {
            subscription_id: subscription_id.to_owned(),
        };
        let result = self.call(Op::Unwatch, params_object(&params)?).await;
        self.forget_route(subscription_id);
        result
    }

    async fn watch(&self, request: WatchRequest) -> Result<Subscription, ClientError> {
        let key = self.new_subscription_key();
        let buffer = self.options().subscription_buffer_events;
        let (entry, receiver) = SubEntry::new(key, request.clone(), buffer);
        // Registered before sending: once the server confirms it, a reconnect that happens
        // before this call returns must already re-create it. The guard unregisters it if
        // this call fails or is abandoned.
        self.register_subscription(entry.clone());
        let registration = Registration {
            client: self,
            entry: entry.clone(),
            keep: false,
        };
        let start = self.watch_exchange(&entry, &request).await?;
        registration.keep();
        Ok(Subscription::new(entry, receiver, self.clone(), start))
    }

    async fn watch_exchange(
        &self,
        entry: &std::sync::Arc<SubEntry>,
        request: &WatchRequest,
    ) -> Result<WatchStart, ClientError> {
        let response = self
            .send(entry.op(), entry.initial_params()?, Some(entry.clone()))
            .await?;
        Ok(match request {
            WatchRequest::All(_) => WatchStart::All(typed(response)?),
            WatchRequest::Instance(_) => WatchStart::Instance(typed(response)?),
        })
    }
}

/// Unregisters a subscription whose WATCH did not complete, however the call ended, and
/// cancels it on the server if the server had confirmed it.
struct Registration<'a> {
    client: &'a Client,
    entry: std::sync::Arc<SubEntry>,
    keep: bool,
}

impl Registration<'_> {
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if !self.keep {
            abandon(self.client, &self.entry);
        }
    }
}
