//! WATCH_INSTANCE, WATCH_ALL and UNWATCH (spec §4.20–4.22) on top of the hub.

use super::filter::Filter;
use super::hub::{WatchHub, WatchRequest};
use crate::database::Database;
use crate::service::handler::ConnectionContext;
use rstmdb_protocol::RcpError;
use rstmdb_protocol::params::{UnwatchParams, WatchAllParams, WatchInstanceParams};
use rstmdb_protocol::results::{UnwatchResult, WatchAllResult, WatchInstanceResult};
use std::future::Future;

/// WATCH_INSTANCE: the subscription point is queued now (request order, spec §3.7); the
/// subscription starts once everything below it is committed.
pub fn watch_instance(
    db: &Database,
    hub: &WatchHub,
    conn: &ConnectionContext,
    params: WatchInstanceParams,
) -> impl Future<Output = Result<WatchInstanceResult, RcpError>> + Send + 'static {
    let point = db.watch_point(Some(params.instance_id.clone()), params.from_offset);
    let (hub, conn) = (hub.clone(), conn.clone());
    async move {
        let point = point.await?;
        let (current_state, current_wal_offset) = point
            .instance
            .clone()
            .ok_or_else(|| RcpError::internal("the watch point lacks the instance"))?;
        let request = WatchRequest {
            filter: Filter::Instance(params.instance_id.clone()),
            include_ctx: params.include_ctx,
            from_offset: params.from_offset,
        };
        let subscription_id = hub.start(&conn, request, &point)?;
        Ok(WatchInstanceResult {
            subscription_id,
            instance_id: params.instance_id,
            current_state,
            current_wal_offset,
        })
    }
}

/// WATCH_ALL: answers S, the subscription point (spec §4.21).
pub fn watch_all(
    db: &Database,
    hub: &WatchHub,
    conn: &ConnectionContext,
    params: WatchAllParams,
) -> impl Future<Output = Result<WatchAllResult, RcpError>> + Send + 'static {
    let point = db.watch_point(None, params.from_offset);
    let (hub, conn) = (hub.clone(), conn.clone());
    async move {
        let point = point.await?;
        let request = WatchRequest {
            filter: Filter::All {
                machines: params.machines.into_iter().collect(),
                from_states: params.from_states.into_iter().collect(),
                to_states: params.to_states.into_iter().collect(),
                events: params.events.into_iter().collect(),
            },
            include_ctx: params.include_ctx,
            from_offset: params.from_offset,
        };
        let subscription_id = hub.start(&conn, request, &point)?;
        Ok(WatchAllResult {
            subscription_id,
            wal_offset: point.start_offset,
        })
    }
}

/// UNWATCH, done synchronously so no event of the subscription follows the response.
pub fn unwatch(hub: &WatchHub, conn: &ConnectionContext, params: UnwatchParams) -> UnwatchResult {
    let removed = hub.unwatch(conn, &params.subscription_id);
    UnwatchResult {
        subscription_id: params.subscription_id,
        removed,
    }
}
