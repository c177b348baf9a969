//! [`EchoHandler`]: a stand-in for the database, so the network layer runs and is tested
//! without the engine. `rstmdb serve` uses it until the real dispatcher is plugged in.

use super::handler::{ConnectionContext, OpHandler, Outbound, ResponseFuture};
use rstmdb_protocol::EncodedResponse;
use rstmdb_protocol::message::{Event, Response};
use rstmdb_protocol::ops::Op;
use rstmdb_protocol::request::Request;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Answers every data op with `{"op": NAME, "echo": params}`. A few params steer it, for tests:
/// - `delay_ms` (number): the answer resolves that much later (pipelining, shutdown);
/// - `panic: true`: `start` panics, or the future does with `panic_in_future: true`;
/// - WATCH_ALL / WATCH_INSTANCE open a subscription (`{"subscription_id", "wal_offset": 0}`)
///   and push `events` (number, default 0) synthetic events; UNWATCH with `subscription_id`
///   ends it.
#[derive(Debug, Default)]
pub struct EchoHandler {
    shutdown_calls: AtomicUsize,
    next_subscription: AtomicUsize,
    /// Subscriptions whose connection closed, as a subscription task would notice it.
    watches_ended_by_close: Arc<AtomicUsize>,
}

impl EchoHandler {
    /// How many times the shutdown hook ran.
    pub fn shutdown_calls(&self) -> usize {
        self.shutdown_calls.load(Ordering::SeqCst)
    }

    /// How many subscriptions ended because their connection closed.
    pub fn watches_ended_by_close(&self) -> usize {
        self.watches_ended_by_close.load(Ordering::SeqCst)
    }
}

impl OpHandler for EchoHandler {
    fn start(&self, conn: &ConnectionContext, request: Request) -> ResponseFuture {
        let params = &request.params;
        if params.get("panic") == Some(&Value::Bool(true)) {
            panic!("EchoHandler asked to panic in start");
        }
        let panic_later = params.get("panic_in_future") == Some(&Value::Bool(true));
        let delay = params
            .get("delay_ms")
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
        let result = match request.op {
            Op::WatchAll | Op::WatchInstance => self.watch(conn, params),
            Op::Unwatch => {
                let id = params.get("subscription_id").and_then(Value::as_str);
                let removed = id.is_some_and(|id| conn.has_subscription(id));
                if let Some(id) = id {
                    conn.subscription_ended(id);
                }
                json!({"removed": removed})
            }
            op => json!({"op": op.as_str(), "echo": Value::Object(params.clone())}),
        };
        let id = request.id;
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            if panic_later {
                panic!("EchoHandler asked to panic in the response future");
            }
            let result = match result {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            EncodedResponse::new(&Response::ok(id, result))
        })
    }

    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.shutdown_calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {})
    }
}

impl EchoHandler {
    fn watch(&self, conn: &ConnectionContext, params: &Map<String, Value>) -> Value {
        let number = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        let subscription_id = format!("sub-echo-{number}");
        conn.subscription_started(&subscription_id);
        let events = params.get("events").and_then(Value::as_u64).unwrap_or(0);
        for offset in 0..events {
            let event = Event {
                subscription_id: subscription_id.clone(),
                instance_id: "echo-1".to_owned(),
                machine: "echo".to_owned(),
                version: 1,
                wal_offset: offset,
                from_state: "a".to_owned(),
                to_state: "b".to_owned(),
                event: "TICK".to_owned(),
                payload: None,
                ctx: None,
            };
            if conn.try_push(Outbound::Event(event)).is_err() {
                break;
            }
        }
        let conn = conn.clone();
        let ended = self.watches_ended_by_close.clone();
        tokio::spawn(async move {
            conn.closed().await;
            ended.fetch_add(1, Ordering::SeqCst);
        });
        json!({"subscription_id": subscription_id, "wal_offset": 0})
    }
}
