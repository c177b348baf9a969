//! The ops the session layer answers itself (spec §4.1–§4.6, §4.24) and the auth gate of §4.0.
//! Everything else is handed to the [`OpHandler`](crate::service::OpHandler).

use super::auth::{AuthState, AuthVerdict, TokenVerifier};
use crate::service::identity::{SERVER_FEATURES, SERVER_NAME, SERVER_VERSION};
use rstmdb_protocol::limits::{MAX_BATCH_OPS, PROTOCOL_VERSION};
use rstmdb_protocol::params::{AuthParams, FromParams, HelloParams};
use rstmdb_protocol::results::{
    AuthResult, ByeResult, HelloResult, InfoResult, PingResult, ReplicationStatusResult,
};
use rstmdb_protocol::{Op, RcpError, Request, Response, WireMode};
use serde_json::Map;
use std::sync::Arc;

/// What the connection does with one request.
#[derive(Debug)]
pub(crate) enum Step {
    /// The session answered. `switch_mode` is applied before the answer is written (HELLO);
    /// `close` runs the Closing procedure after it (BYE, third AUTH failure).
    Answer {
        response: Response,
        switch_mode: Option<WireMode>,
        close: bool,
    },
    /// A data op for the handler.
    Delegate(Request),
}

impl Step {
    fn answer(response: Response) -> Self {
        Step::Answer {
            response,
            switch_mode: None,
            close: false,
        }
    }
}

/// Settings shared by every session of a server.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub verifier: TokenVerifier,
    pub max_frame_bytes: usize,
    /// A cluster node's handler answers REPLICATION_STATUS (spec §12.2); a standalone server
    /// answers it here.
    pub handler_answers_replication_status: bool,
}

/// One connection's protocol state: authentication and failure count. The wire mode lives in
/// the codec; it is passed in where HELLO needs it.
#[derive(Debug)]
pub(crate) struct Session {
    shared: Arc<SessionShared>,
    auth: AuthState,
}

impl Session {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        let auth = AuthState::new(&shared.verifier);
        Self { shared, auth }
    }

    /// Whether a request with this op may run now: everything but HELLO, AUTH, PING and BYE
    /// waits for a successful AUTH when auth is required (§8.1).
    pub fn admits(&self, op: Op) -> bool {
        !op.needs_auth() || self.auth.is_authenticated()
    }

    pub fn is_authenticated(&self) -> bool {
        self.auth.is_authenticated()
    }

    /// Decides what to do with a request whose envelope is valid. `mode` is the connection's
    /// current wire mode.
    pub fn handle(&mut self, request: Request, mode: WireMode) -> Step {
        let id = request.id.clone();
        if !self.admits(request.op) {
            return Step::answer(Response::error(id, RcpError::auth_required()));
        }
        match request.op {
            Op::Hello => hello(&request, mode),
            Op::Auth => self.auth(&request),
            Op::Ping => Step::answer(typed(id, &PingResult { pong: true })),
            Op::Bye => Step::Answer {
                response: typed(id, &ByeResult { goodbye: true }),
                switch_mode: None,
                close: true,
            },
            Op::Info => Step::answer(typed(id, &self.info())),
            Op::ReplicationStatus if self.shared.handler_answers_replication_status => {
                Step::Delegate(request)
            }
            Op::ReplicationStatus => Step::answer(typed(
                id,
                &ReplicationStatusResult {
                    role: "standalone".to_owned(),
                    other: Map::new(),
                },
            )),
            Op::Replicate | Op::ReplicateAck => {
                Step::answer(Response::error(id, RcpError::replication_internal()))
            }
            _ => Step::Delegate(request),
        }
    }

    fn auth(&mut self, request: &Request) -> Step {
        let params = match AuthParams::from_params(&request.params) {
            Ok(params) => params,
            // A malformed AUTH neither counts as a failure nor resets the count (§4.2).
            Err(error) => return Step::answer(Response::error(request.id.clone(), error)),
        };
        let outcome = self
            .shared
            .verifier
            .authenticate(&params.method, &params.token);
        let verdict = self.auth.record(&outcome);
        let response = match outcome {
            Ok(()) => typed(
                request.id.clone(),
                &AuthResult {
                    authenticated: true,
                },
            ),
            Err(error) => Response::error(request.id.clone(), error),
        };
        Step::Answer {
            response,
            switch_mode: None,
            close: verdict == AuthVerdict::CloseAfterAnswer,
        }
    }

    fn info(&self) -> InfoResult {
        InfoResult {
            server_name: SERVER_NAME.to_owned(),
            server_version: SERVER_VERSION.to_owned(),
            protocol_version: PROTOCOL_VERSION,
            features: SERVER_FEATURES.map(str::to_owned).to_vec(),
            max_frame_bytes: self.shared.max_frame_bytes as u64,
            max_batch_ops: MAX_BATCH_OPS as u32,
        }
    }
}

/// HELLO (§4.1): the params' types are checked first, then the version; the first supported
/// wire mode wins, and the features are the client's that the server has, in server order.
fn hello(request: &Request, current: WireMode) -> Step {
    let params = match HelloParams::from_params(&request.params) {
        Ok(params) if params.protocol_version == PROTOCOL_VERSION => params,
        Ok(params) => {
            let error = RcpError::unsupported_protocol(params.protocol_version);
            return Step::answer(Response::error(request.id.clone(), error));
        }
        Err(error) => return Step::answer(Response::error(request.id.clone(), error)),
    };
    if let Some(client_name) = &params.client_name {
        tracing::debug!(client_name, "HELLO");
    }
    let chosen = WireMode::choose(&params.wire_modes).unwrap_or(current);
    let features = SERVER_FEATURES
        .into_iter()
        .filter(|feature| params.features.iter().any(|f| f == feature))
        .map(str::to_owned)
        .collect();
    let result = HelloResult {
        protocol_version: PROTOCOL_VERSION,
        wire_mode: chosen.as_str().to_owned(),
        server_name: SERVER_NAME.to_owned(),
        server_version: SERVER_VERSION.to_owned(),
        features,
    };
    Step::Answer {
        response: typed(request.id.clone(), &result),
        switch_mode: (chosen != current).then_some(chosen),
        close: false,
    }
}

/// A success with a typed result; serialising our own result types cannot fail, but if it did
/// the client gets INTERNAL_ERROR rather than a broken message.
fn typed<T: serde::Serialize>(id: String, result: &T) -> Response {
    Response::ok_typed(id.clone(), result).unwrap_or_else(|error| Response::error(id, error))
}
