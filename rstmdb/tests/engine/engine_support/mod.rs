//! Shared helpers for the engine tests: a harness that hands out WAL offsets the way the WAL
//! does (growing, first one 2^40) and keeps every record written, for replay checks.

use rstmdb::engine::{
    ApplyError, ApplyEvent, Command, CreateInstance, DeleteInstance, Engine, EngineConfig,
    ExecuteError, Executed, InstanceIdChoice, PutMachine, Record,
};
use serde_json::{Map, Value, json};
use std::convert::Infallible;

pub use rstmdb_testkit::machines::FIRST_OFFSET;

#[derive(Debug)]
pub struct Harness {
    pub engine: Engine,
    pub next_offset: u64,
    pub now_ms: i64,
    /// Every record written, with its offset, in order.
    pub records: Vec<(Record, u64)>,
}

impl Harness {
    pub fn new(config: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(config),
            next_offset: FIRST_OFFSET,
            now_ms: 1_767_225_600_000,
            records: Vec::new(),
        }
    }

    pub fn with_defaults() -> Harness {
        Harness::new(EngineConfig::default())
    }

    /// Executes at the harness clock, which then advances by 1 ms.
    pub fn run(&mut self, command: Command) -> Result<Executed, ApplyError> {
        let now = self.now_ms;
        self.now_ms += 1;
        self.run_at(command, now)
    }

    pub fn run_at(&mut self, command: Command, now_ms: i64) -> Result<Executed, ApplyError> {
        let offset = self.next_offset;
        let mut written = None;
        let executed = self.engine.execute(
            &command,
            now_ms,
            |record: &Record| -> Result<u64, Infallible> {
                written = Some(record.clone());
                Ok(offset)
            },
        );
        match executed {
            Ok(executed) => {
                if let Some(record) = written {
                    let size = serde_json::to_vec(&record).map_or(100, |v| v.len() as u64 + 24);
                    self.records.push((record, offset));
                    self.next_offset += size;
                }
                Ok(executed)
            }
            Err(ExecuteError::Rejected(error)) => Err(error),
            Err(other) => panic!("unexpected execute failure: {other}"),
        }
    }

    /// The result as JSON, or the error.
    pub fn result(&mut self, command: Command) -> Result<Value, ApplyError> {
        self.run(command)
            .map(|e| serde_json::to_value(&e.result).expect("result serialises"))
    }

    pub fn ok(&mut self, command: Command) -> Value {
        match self.result(command) {
            Ok(value) => value,
            Err(error) => panic!("command failed: {error}"),
        }
    }

    pub fn err(&mut self, command: Command) -> ApplyError {
        match self.result(command) {
            Ok(value) => panic!("command succeeded: {value}"),
            Err(error) => error,
        }
    }

    /// Undoes executed commands newest first, forgetting the records they wrote.
    pub fn undo_all(&mut self, executed: Vec<Executed>) {
        for executed in executed.into_iter().rev() {
            if executed.wal_offset.is_some() {
                self.records.pop();
            }
            self.engine.undo(executed.undo);
        }
    }

    /// A fresh engine with every record written so far replayed into it.
    pub fn replayed(&self) -> Engine {
        let mut engine = Engine::new(self.engine.config().clone());
        for (record, offset) in &self.records {
            let text = serde_json::to_string(record).expect("record serialises");
            let read: Record = serde_json::from_str(&text).expect("record deserialises");
            engine
                .apply_record(&read, *offset)
                .unwrap_or_else(|e| panic!("replay failed at {offset}: {e}"));
        }
        engine
    }
}

/// The §4.7 example definition (`order` version 1).
pub fn order_v1() -> Value {
    rstmdb_testkit::machines::order_definition()
}

/// §7.9's several-candidates example, as a whole machine.
pub fn review() -> Value {
    json!({"states":["review","approved","manual","rejected"],"initial":"review","transitions":[
        {"from":"review","event":"DECIDE","to":"approved","guard":"payload.score >= 80"},
        {"from":"review","event":"DECIDE","to":"manual","guard":"payload.score >= 50"},
        {"from":"review","event":"DECIDE","to":"rejected"},
        {"from":["approved","manual","rejected"],"event":"REOPEN","to":"review"}]})
}

pub fn put(machine: &str, version: u32, definition: Value) -> Command {
    Command::PutMachine(PutMachine {
        machine: machine.into(),
        version,
        definition,
    })
}

pub fn create(machine: &str, version: u32, id: &str) -> CreateInstance {
    CreateInstance {
        machine: machine.into(),
        version,
        instance_id: InstanceIdChoice::Given(id.into()),
        initial_ctx: None,
        idempotency_key: None,
    }
}

pub fn apply(id: &str, event: &str) -> ApplyEvent {
    ApplyEvent {
        instance_id: id.into(),
        event: event.into(),
        ..ApplyEvent::default()
    }
}

pub fn delete(id: &str) -> Command {
    Command::DeleteInstance(DeleteInstance {
        instance_id: id.into(),
        idempotency_key: None,
    })
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The error as the client sees it: code plus details.
pub fn wire(error: &ApplyError) -> Value {
    let error = rstmdb::database::apply_error(error);
    json!({"code": error.code, "details": error.details})
}

/// `details.reason` of the RCP error a client would receive for this refusal.
pub fn reason(error: &ApplyError) -> String {
    wire(error)["details"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The RCP error code a client would receive for this refusal.
pub fn code(error: &ApplyError) -> String {
    rstmdb::database::apply_error(error).code.to_string()
}
