//! Op results. The engine builds the protocol's typed results (`rstmdb_protocol::results`, one
//! set of types for the server and the client); the results that carry a `ctx` hold it as the
//! JSON text the engine keeps ([`RawCtx`]), so answering never parses it again.

use rstmdb_protocol::results::{
    ApplyEventResult, CreateInstanceResult, DeleteInstanceResult, FlushAllResult, PutMachineResult,
};
use serde::Serialize;
use serde_json::value::RawValue;

/// A context as stored: the JSON text of an object.
pub type RawCtx = Box<RawValue>;

/// The result of any write command.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OpResult {
    PutMachine(PutMachineResult),
    CreateInstance(CreateInstanceResult),
    ApplyEvent(ApplyEventResult<RawCtx>),
    DeleteInstance(DeleteInstanceResult),
    FlushAll(FlushAllResult),
}
