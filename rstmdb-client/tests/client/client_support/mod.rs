//! An in-process FAKE rstmdb server for the client tests: a tokio listener speaking RCP binary
//! frames with the crate's own codecs. It answers ops with the canned results of the spec's
//! worked example (`fixtures/spec_op_examples.txt`), keeps a log of every request it saw, and
//! can be told to push events and stream errors, drop connections, delay or hold responses,
//! require AUTH, refuse connections and speak TLS.
//!
//! Subscriptions behave like the real server's in the way the client depends on: WATCH answers
//! with a fresh id per connection, then replays logged events at or after `from_offset`, and
//! [`FakeServer::publish`] delivers new events live, each at most once per subscription.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rstmdb_client::limits::MAX_PAYLOAD_BYTES;
use rstmdb_client::{
    ErrorCode, Event, Op, RcpError, Request, Response, StreamError, WireCodec, WireMode,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::Framed;

pub use rstmdb_testkit::TOKEN;
// The spec examples live with the protocol crate's tests, which check them against the types.
const EXAMPLES: &str =
    include_str!("../../../../rstmdb-protocol/tests/fixtures/spec_op_examples.txt");

/// What the test handler wants done with one request.
pub enum Reply {
    /// Answer now with this result or error (the id is filled in).
    Answer(Result<Map<String, Value>, RcpError>),
    /// Answer after a delay, without holding up later requests.
    After(Duration, Result<Map<String, Value>, RcpError>),
    /// Never answer.
    Silent,
    /// Close the connection without answering.
    #[allow(dead_code)] // the fake can do it; no test asks for it at the moment
    Drop,
}

pub type Handler = Arc<dyn Fn(&Request) -> Option<Reply> + Send + Sync>;

/// How the fake behaves; fields may be changed while it runs through [`FakeServer::config`].
#[derive(Default, Clone)]
pub struct FakeConfig {
    /// Ops other than HELLO, AUTH, PING and BYE fail with UNAUTHORIZED until AUTH with this.
    pub token: Option<String>,
    /// Hold answers (but HELLO's and AUTH's) until this many are held, then send them in
    /// reverse order.
    pub reverse_batches_of: Option<usize>,
    /// Close this many newly accepted connections at once (to exercise backoff).
    pub refuse_next_connections: usize,
    /// Tested first; `None` falls back to the canned behaviour.
    pub handler: Option<Handler>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Replay from this much before the requested `from_offset`: a server that repeats
    /// events the client already has.
    pub replay_overlap: u64,
}

/// One request the fake received, with the connection (1-based, in accept order) it came on.
#[derive(Debug, Clone)]
pub struct Seen {
    pub connection: usize,
    pub request: Request,
}

#[derive(Clone)]
enum Control {
    Publish,
    Raw(String),
    StreamError(RcpError),
    DropAll,
}

struct State {
    config: Mutex<FakeConfig>,
    seen: Mutex<Vec<Seen>>,
    accepted: AtomicUsize,
    accept_times: Mutex<Vec<Instant>>,
    /// Every published event in offset order, for replays.
    log: Mutex<Vec<Event>>,
    controls: broadcast::Sender<Control>,
    canned: HashMap<Op, Vec<(Value, Response)>>,
}

pub struct FakeServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl FakeServer {
    pub async fn start(config: FakeConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (controls, _) = broadcast::channel(1024);
        let state = Arc::new(State {
            config: Mutex::new(config),
            seen: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            accept_times: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            controls,
            canned: canned_examples(),
        });
        tokio::spawn(accept_loop(listener, state.clone()));
        Self { addr, state }
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    pub fn config(&self, change: impl FnOnce(&mut FakeConfig)) {
        change(&mut self.state.config.lock().unwrap());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn seen_ops(&self, op: Op) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| seen.request.op == op)
            .collect()
    }

    pub fn connections_accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// When each connection was accepted, in order.
    #[allow(dead_code)] // no test reads the accept times at the moment
    pub fn accept_times(&self) -> Vec<Instant> {
        self.state.accept_times.lock().unwrap().clone()
    }

    /// Appends an event at `wal_offset` to the log and sends it to every live subscription.
    pub fn publish(&self, wal_offset: u64) {
        self.state.log.lock().unwrap().push(event_at(wal_offset));
        let _ = self.state.controls.send(Control::Publish);
    }

    /// Ends every live subscription with a stream error.
    pub fn stream_error(&self, error: RcpError) {
        let _ = self.state.controls.send(Control::StreamError(error));
    }

    /// Sends `payload` verbatim, as one frame, on every live connection.
    pub fn send_raw(&self, payload: &str) {
        let _ = self.state.controls.send(Control::Raw(payload.to_owned()));
    }

    /// Closes every live connection without a word.
    pub fn drop_connections(&self) {
        let _ = self.state.controls.send(Control::DropAll);
    }
}

/// The event the fake sends for the transition at `wal_offset` (subscription id filled in
/// per subscription).
pub fn event_at(wal_offset: u64) -> Event {
    Event {
        subscription_id: String::new(),
        instance_id: format!("order-{wal_offset}"),
        machine: "order".into(),
        version: 1,
        wal_offset,
        from_state: "created".into(),
        to_state: "paid".into(),
        event: "PAY".into(),
        payload: None,
        ctx: Some(Map::new()),
    }
}

/// (params, response) of every spec example, by op.
fn canned_examples() -> HashMap<Op, Vec<(Value, Response)>> {
    let mut requests: HashMap<String, Request> = HashMap::new();
    let mut canned: HashMap<Op, Vec<(Value, Response)>> = HashMap::new();
    for line in EXAMPLES.lines() {
        if let Some(text) = line.strip_prefix("REQ ") {
            let request = Request::parse(text).expect("fixture requests parse");
            requests.insert(request.id.clone(), request);
        } else if let Some(text) = line.strip_prefix("RES ") {
            let response: Response = serde_json::from_str(text).expect("fixture responses parse");
            if let Some(request) = requests.get(&response.id) {
                canned
                    .entry(request.op)
                    .or_default()
                    .push((Value::Object(request.params.clone()), response));
            }
        }
    }
    canned
}

/// The example's params and result for `op`, for tests that compare with them.
pub fn spec_examples(op: Op) -> Vec<(Value, Response)> {
    canned_examples().remove(&op).unwrap_or_default()
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        state.accept_times.lock().unwrap().push(Instant::now());
        let number = state.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let (refuse, tls) = {
            let mut config = state.config.lock().unwrap();
            let refuse = config.refuse_next_connections > 0;
            if refuse {
                config.refuse_next_connections -= 1;
            }
            (refuse, config.tls.clone())
        };
        if refuse {
            drop(tcp);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            match tls {
                Some(config) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve(stream, number, state).await;
                    }
                }
                None => serve(tcp, number, state).await,
            }
        });
    }
}

/// A subscription on one fake connection.
struct FakeSubscription {
    id: String,
    /// The next offset it may deliver: replays and live pushes never repeat an event.
    next_offset: u64,
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, number: usize, state: Arc<State>) {
    let mut framed = Framed::new(
        stream,
        WireCodec::new(WireMode::BinaryJson, MAX_PAYLOAD_BYTES),
    );
    let mut controls = state.controls.subscribe();
    let (delayed_tx, mut delayed_rx) = mpsc::unbounded_channel::<String>();
    let mut authenticated = false;
    let mut subscriptions: Vec<FakeSubscription> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    let mut next_subscription = 0u32;
    loop {
        let mut outgoing: Vec<String> = Vec::new();
        tokio::select! {
            frame = framed.next() => {
                let frame: Option<Result<String, rstmdb_client::WireError>> = frame;
                let Some(Ok(payload)) = frame else { return };
                let request = match Request::parse(&payload) {
                    Ok(request) => request,
                    Err(error) => {
                        outgoing.push(encode(&error.into_response()));
                        send_all(&mut framed, outgoing).await;
                        continue;
                    }
                };
                state.seen.lock().unwrap().push(Seen { connection: number, request: request.clone() });
                let (handler, token, reverse, overlap) = {
                    let config = state.config.lock().unwrap();
                    (config.handler.clone(), config.token.clone(), config.reverse_batches_of, config.replay_overlap)
                };
                let reply = match handler.and_then(|handler| handler(&request)) {
                    Some(reply) => reply,
                    None => default_reply(&state.canned, &request, token.as_deref(), &mut authenticated),
                };
                let answer = match reply {
                    Reply::Answer(answer) => answer,
                    Reply::After(delay, answer) => {
                        let text = encode(&response(&request.id, answer));
                        let tx = delayed_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = tx.send(text);
                        });
                        continue;
                    }
                    Reply::Silent => continue,
                    Reply::Drop => return,
                };
                let is_watch = matches!(request.op, Op::WatchAll | Op::WatchInstance);
                let answer = if is_watch && answer.is_ok() {
                    next_subscription += 1;
                    let id = format!("sub-{number}-{next_subscription}");
                    let from_offset = request.params.get("from_offset").and_then(Value::as_u64);
                    let latest = state.log.lock().unwrap().last().map_or(1, |e| e.wal_offset + 1);
                    let mut subscription = FakeSubscription { id: id.clone(), next_offset: from_offset.map_or(latest, |f| f.saturating_sub(overlap)) };
                    let answer = watch_result(&request, &id, latest);
                    outgoing.push(encode(&response(&request.id, Ok(answer))));
                    outgoing.extend(pending_events(&state, &mut subscription));
                    subscriptions.push(subscription);
                    None
                } else {
                    Some(answer)
                };
                if let Some(answer) = answer {
                    let text = encode(&response(&request.id, answer));
                    // The handshake is never held, or a client could not even connect.
                    let holdable = !matches!(request.op, Op::Hello | Op::Auth);
                    match reverse.filter(|_| holdable) {
                        Some(batch) => {
                            held.push(text);
                            if held.len() >= batch {
                                outgoing.extend(held.drain(..).rev());
                            }
                        }
                        None => outgoing.push(text),
                    }
                }
                if request.op == Op::Bye {
                    send_all(&mut framed, outgoing).await;
                    return;
                }
            }
            control = controls.recv() => match control {
                Ok(Control::Publish) => {
                    for subscription in &mut subscriptions {
                        outgoing.extend(pending_events(&state, subscription));
                    }
                }
                Ok(Control::Raw(payload)) => outgoing.push(payload),
                Ok(Control::StreamError(error)) => {
                    for subscription in subscriptions.drain(..) {
                        let message = StreamError { subscription_id: subscription.id, error: error.clone() };
                        outgoing.push(serde_json::to_string(&message).unwrap());
                    }
                }
                Ok(Control::DropAll) | Err(_) => return,
            },
            Some(text) = delayed_rx.recv() => outgoing.push(text),
        }
        if !send_all(&mut framed, outgoing).await {
            return;
        }
    }
}

async fn send_all<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, WireCodec>,
    outgoing: Vec<String>,
) -> bool {
    for text in outgoing {
        if framed.feed(text).await.is_err() {
            return false;
        }
    }
    SinkExt::<String>::flush(framed).await.is_ok()
}

fn pending_events(state: &State, subscription: &mut FakeSubscription) -> Vec<String> {
    let log = state.log.lock().unwrap();
    let mut out = Vec::new();
    let from = subscription.next_offset;
    for event in log.iter().filter(|e| e.wal_offset >= from) {
        let mut event = event.clone();
        event.subscription_id = subscription.id.clone();
        subscription.next_offset = event.wal_offset + 1;
        out.push(serde_json::to_string(&event).unwrap());
    }
    out
}

fn watch_result(request: &Request, id: &str, latest: u64) -> Map<String, Value> {
    let value = match request.op {
        Op::WatchInstance => json!({
            "subscription_id": id,
            "instance_id": request.params.get("instance_id").cloned().unwrap_or(Value::Null),
            "current_state": "paid",
            "current_wal_offset": latest.saturating_sub(1),
        }),
        _ => json!({"subscription_id": id, "wal_offset": latest}),
    };
    value.as_object().cloned().unwrap()
}

fn response(id: &str, answer: Result<Map<String, Value>, RcpError>) -> Response {
    match answer {
        Ok(result) => Response::ok(id, result),
        Err(error) => Response::error(id, error),
    }
}

fn encode(response: &Response) -> String {
    serde_json::to_string(response).unwrap()
}

/// The canned behaviour: AUTH against the configured token, UNAUTHORIZED before it, the spec
/// example whose params match (else the op's first example), and echoes for UNWATCH.
fn default_reply(
    canned: &HashMap<Op, Vec<(Value, Response)>>,
    request: &Request,
    token: Option<&str>,
    authenticated: &mut bool,
) -> Reply {
    if request.op == Op::Auth {
        let sent = request.params.get("token").and_then(Value::as_str);
        return match token {
            Some(expected) if sent != Some(expected) => Reply::Answer(Err(RcpError::auth_failed(
                rstmdb_client::AuthFailure::InvalidToken,
            ))),
            _ => {
                *authenticated = true;
                Reply::Answer(Ok(json!({"authenticated": true})
                    .as_object()
                    .cloned()
                    .unwrap()))
            }
        };
    }
    if token.is_some() && request.op.needs_auth() && !*authenticated {
        return Reply::Answer(Err(RcpError::auth_required()));
    }
    match request.op {
        Op::Unwatch => {
            let id = request
                .params
                .get("subscription_id")
                .cloned()
                .unwrap_or(Value::Null);
            Reply::Answer(Ok(json!({"subscription_id": id, "removed": true})
                .as_object()
                .cloned()
                .unwrap()))
        }
        Op::WatchAll | Op::WatchInstance => Reply::Answer(Ok(Map::new())),
        op => {
            let examples = canned.get(&op).map(Vec::as_slice).unwrap_or_default();
            let params = Value::Object(request.params.clone());
            let chosen = examples
                .iter()
                .find(|(example, _)| *example == params)
                .or_else(|| examples.first());
            match chosen {
                Some((_, example)) => Reply::Answer(match &example.outcome {
                    rstmdb_client::Outcome::Ok { result, .. } => Ok(result.clone()),
                    rstmdb_client::Outcome::Error { error } => Err(error.clone()),
                }),
                None => Reply::Answer(Err(RcpError::new(
                    ErrorCode::BadRequest,
                    "no canned answer",
                ))),
            }
        }
    }
}
