//! Command execution: each op's processing order, up to the record it writes.
//!
//! Planning only reads the state. A plan that writes ends in a [`Record`], which is applied
//! through `Engine::apply` (see `replay.rs`), the same code that replays the log.

use crate::dsl::definition::MachineDefinition;
use crate::engine::command::{
    ApplyEvent, Command, CreateInstance, DeleteInstance, InstanceIdChoice, PutMachine,
};
use crate::engine::error::{ApplyError, ExecuteError};
use crate::engine::idempotency::{IdemEntry, IdemKey, Recorded};
use crate::engine::instances::Lookup;
use crate::engine::record::{
    ApplyEventRecord, CreateInstanceRecord, DeleteInstanceRecord, FlushAllRecord, PutMachineRecord,
    Record, empty_object, raw_from_printed, raw_json,
};
use crate::engine::result::OpResult;
use crate::engine::{Change, Engine, Executed, Undo};
use rstmdb_protocol::results::{
    ApplyEventResult, CreateInstanceResult, DeleteInstanceResult, FlushAllResult, PutMachineResult,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// What a command will do.
enum Plan {
    /// Answer without writing.
    Answer(OpResult),
    Write {
        record: Record,
        /// PUT_MACHINE's definition, already validated (saves validating it twice).
        definition: Option<Box<MachineDefinition>>,
        /// FLUSH_ALL's counts, taken before the flush.
        flushed: Option<FlushAllResult>,
    },
}

type Planned = Result<Plan, ApplyError>;

impl Engine {
    /// Executes one write command; see the module docs of [`crate::engine`].
    pub fn execute<E>(
        &mut self,
        command: &Command,
        now_ms: i64,
        assign: impl FnOnce(&Record) -> Result<u64, E>,
    ) -> Result<Executed, ExecuteError<E>> {
        let now_ms = now_ms.max(self.state.last_timestamp_ms);
        let plan = match command {
            Command::PutMachine(put) => self.plan_put_machine(put, now_ms),
            Command::CreateInstance(create) => self.plan_create(create, now_ms),
            Command::ApplyEvent(apply) => self.plan_apply(apply, now_ms),
            Command::DeleteInstance(delete) => self.plan_delete(delete, now_ms),
            Command::FlushAll => self.plan_flush(now_ms),
        }?;
        match plan {
            Plan::Answer(result) => Ok(Executed {
                result,
                record: None,
                wal_offset: None,
                undo: Undo {
                    previous_timestamp_ms: self.state.last_timestamp_ms,
                    change: Change::Nothing,
                },
            }),
            Plan::Write {
                record,
                definition,
                flushed,
            } => {
                let offset = assign(&record).map_err(ExecuteError::Assign)?;
                let undo = self
                    .apply(&record, offset, definition.map(|d| *d))
                    .map_err(|e| ExecuteError::Internal(Box::new(e)))?;
                let result = written_result(&record, offset, flushed);
                Ok(Executed {
                    result,
                    record: Some(record),
                    wal_offset: Some(offset),
                    undo,
                })
            }
        }
    }

    /// §4.7.
    fn plan_put_machine(&self, put: &PutMachine, now_ms: i64) -> Planned {
        let definition = MachineDefinition::from_json(&put.definition)?;
        let checksum = definition.checksum_hex();
        if let Some(existing) = self.state.machines.get_by_name(&put.machine, put.version) {
            if *existing.checksum != checksum {
                return Err(ApplyError::MachineVersionExists {
                    machine: put.machine.clone(),
                    version: put.version,
                    existing_checksum: existing.checksum.to_string(),
                    new_checksum: checksum,
                });
            }
            return Ok(Plan::Answer(OpResult::PutMachine(PutMachineResult {
                machine: put.machine.clone(),
                version: put.version,
                stored_checksum: checksum,
                created: false,
            })));
        }
        let limit = self.config.max_machine_versions;
        if limit > 0 && self.state.machines.version_count(&put.machine) >= limit as usize {
            return Err(ApplyError::MachineVersionLimitExceeded {
                machine: put.machine.clone(),
                limit,
            });
        }
        Ok(Plan::Write {
            record: Record::PutMachine(PutMachineRecord {
                machine: put.machine.clone(),
                version: put.version,
                definition_hash: checksum,
                definition: put.definition.clone(),
                timestamp: now_ms,
            }),
            definition: Some(Box::new(definition)),
            flushed: None,
        })
    }

    /// §4.10.
    fn plan_create(&self, create: &CreateInstance, now_ms: i64) -> Planned {
        let initial_ctx = canonical_object(create.initial_ctx.as_ref());
        if let Some(key) = &create.idempotency_key
            && let Some(entry) =
                self.idempotency_entry(IdemKey::Create(key.as_str().into()), now_ms)
        {
            return match &entry.recorded {
                Recorded::Create {
                    instance_id,
                    machine,
                    version,
                    initial_ctx: recorded_ctx,
                    initial_state,
                } if **machine == *create.machine
                    && *version == create.version
                    && **recorded_ctx == *initial_ctx.get()
                    && match &create.instance_id {
                        InstanceIdChoice::Given(id) => **instance_id == **id,
                        InstanceIdChoice::Generated(_) => true,
                    } =>
                {
                    Ok(Plan::Answer(OpResult::CreateInstance(
                        CreateInstanceResult {
                            instance_id: instance_id.to_string(),
                            state: initial_state.to_string(),
                            wal_offset: entry.wal_offset,
                            applied: false,
                        },
                    )))
                }
                _ => Err(key_reused(key, entry.wal_offset)),
            };
        }
        let instance_id = create.instance_id.as_str();
        match self.state.instances.lookup(instance_id) {
            Lookup::Live(_) => return Err(instance_exists(instance_id)),
            Lookup::Deleted(_) if !self.config.allow_instance_recreate => {
                return Err(instance_exists(instance_id));
            }
            Lookup::Deleted(_) | Lookup::Unknown => {}
        }
        let Some(machine) = self
            .state
            .machines
            .get_by_name(&create.machine, create.version)
        else {
            return Err(ApplyError::MachineNotFound {
                machine: create.machine.clone(),
                version: create.version,
            });
        };
        Ok(Plan::Write {
            record: Record::CreateInstance(CreateInstanceRecord {
                instance_id: instance_id.to_owned(),
                machine: create.machine.clone(),
                version: create.version,
                initial_state: machine.definition.initial.clone(),
                initial_ctx,
                idempotency_key: create.idempotency_key.clone(),
                timestamp: now_ms,
            }),
            definition: None,
            flushed: None,
        })
    }

    /// §4.14.
    fn plan_apply(&self, apply: &ApplyEvent, now_ms: i64) -> Planned {
        let payload = apply.payload.as_ref().map(|p| Value::Object(p.clone()));
        let payload_text = apply.payload.as_ref().map(raw_json);
        if let Some(key) = &apply.idempotency_key
            && let Some(entry) =
                self.idempotency_entry(instance_key(&apply.instance_id, key), now_ms)
        {
            return match &entry.recorded {
                Recorded::Apply(recorded)
                    if *recorded.event == *apply.event
                        && recorded.payload.as_deref()
                            == payload_text.as_deref().map(RawValue::get)
                        && recorded.expected_state.as_deref()
                            == apply.expected_state.as_deref()
                        && recorded.expected_wal_offset == apply.expected_wal_offset
                        && recorded.event_id.as_deref() == apply.event_id.as_deref() =>
                {
                    Ok(Plan::Answer(OpResult::ApplyEvent(ApplyEventResult {
                        from_state: recorded.from_state.to_string(),
                        to_state: recorded.to_state.to_string(),
                        ctx: raw_from_printed(recorded.ctx.to_string()),
                        wal_offset: entry.wal_offset,
                        applied: false,
                        event_id: recorded.event_id.as_deref().map(str::to_owned),
                    })))
                }
                _ => Err(key_reused(key, entry.wal_offset)),
            };
        }
        let Lookup::Live(instance) = self.state.instances.lookup(&apply.instance_id) else {
            return Err(instance_not_found(&apply.instance_id));
        };
        let machine_name = self.state.machines.name(instance.machine);
        // Step 6 (a missing machine) comes before steps 4–5 here: without the definition the
        // current state has no name to compare. Only manual tampering can reach it (§4.14).
        let Some(machine) = self.state.machines.get(instance.machine, instance.version) else {
            return Err(ApplyError::MachineNotFound {
                machine: machine_name.to_owned(),
                version: instance.version,
            });
        };
        let definition = &machine.definition;
        let state = definition.state_name(instance.state);
        if let Some(expected) = &apply.expected_state
            && expected != state
        {
            return Err(ApplyError::StateMismatch {
                expected: expected.clone(),
                actual: state.to_owned(),
            });
        }
        if let Some(expected) = apply.expected_wal_offset
            && expected != instance.last_wal_offset
        {
            return Err(ApplyError::WalOffsetMismatch {
                expected,
                actual: instance.last_wal_offset,
            });
        }
        let candidates = definition.candidates(instance.state, &apply.event);
        if candidates.is_empty() {
            return Err(ApplyError::NoTransition {
                state: state.to_owned(),
                event: apply.event.clone(),
            });
        }
        // The ctx text is parsed only when a guard or the merge needs it.
        let mut ctx: Option<Map<String, Value>> = None;
        let mut tried = Vec::new();
        let mut chosen = None;
        for transition in candidates
            .iter()
            .filter_map(|&i| definition.transitions.get(i as usize))
        {
            match &transition.guard {
                None => {
                    chosen = Some(transition);
                    break;
                }
                Some(guard) => {
                    let ctx = match &mut ctx {
                        Some(ctx) => ctx,
                        None => ctx.insert(parse_ctx(&instance.ctx)),
                    };
                    // Guards take a `&Value`; moving the map in and out avoids a clone.
                    let ctx_value = Value::Object(std::mem::take(ctx));
                    let passed = guard.eval(&ctx_value, payload.as_ref());
                    if let Value::Object(map) = ctx_value {
                        *ctx = map;
                    }
                    if passed {
                        chosen = Some(transition);
                        break;
                    }
                    tried.push(guard.text().to_owned());
                }
            }
        }
        let Some(transition) = chosen else {
            return Err(ApplyError::GuardFailed {
                state: state.to_owned(),
                event: apply.event.clone(),
                guards: tried,
            });
        };
        let new_ctx = match payload {
            Some(Value::Object(payload)) => {
                let mut ctx = ctx.unwrap_or_else(|| parse_ctx(&instance.ctx));
                ctx.extend(payload);
                raw_json(&ctx)
            }
            // A null or missing payload leaves ctx unchanged (§6.6): no merge, no print.
            _ => raw_from_printed(instance.ctx.to_string()),
        };
        Ok(Plan::Write {
            record: Record::ApplyEvent(ApplyEventRecord {
                instance_id: apply.instance_id.clone(),
                machine: machine_name.to_owned(),
                version: instance.version,
                event: apply.event.clone(),
                from_state: state.to_owned(),
                to_state: transition.to.clone(),
                payload: payload_text,
                ctx: new_ctx,
                event_id: apply.event_id.clone(),
                idempotency_key: apply.idempotency_key.clone(),
                expected_state: apply.expected_state.clone(),
                expected_wal_offset: apply.expected_wal_offset,
                timestamp: now_ms,
            }),
            definition: None,
            flushed: None,
        })
    }

    /// §4.13.
    fn plan_delete(&self, delete: &DeleteInstance, now_ms: i64) -> Planned {
        if let Some(key) = &delete.idempotency_key
            && let Some(entry) =
                self.idempotency_entry(instance_key(&delete.instance_id, key), now_ms)
        {
            return match entry.recorded {
                Recorded::Delete => Ok(Plan::Answer(deleted(
                    &delete.instance_id,
                    entry.wal_offset,
                    false,
                ))),
                _ => Err(key_reused(key, entry.wal_offset)),
            };
        }
        match self.state.instances.lookup(&delete.instance_id) {
            Lookup::Live(_) => Ok(Plan::Write {
                record: Record::DeleteInstance(DeleteInstanceRecord {
                    instance_id: delete.instance_id.clone(),
                    idempotency_key: delete.idempotency_key.clone(),
                    timestamp: now_ms,
                }),
                definition: None,
                flushed: None,
            }),
            Lookup::Deleted(offset) => {
                Ok(Plan::Answer(deleted(&delete.instance_id, offset, false)))
            }
            Lookup::Unknown => Err(instance_not_found(&delete.instance_id)),
        }
    }

    /// §4.23.
    fn plan_flush(&self, now_ms: i64) -> Planned {
        if !self.config.allow_flush_all {
            return Err(ApplyError::FlushAllDisabled);
        }
        Ok(Plan::Write {
            record: Record::FlushAll(FlushAllRecord { timestamp: now_ms }),
            definition: None,
            flushed: Some(FlushAllResult {
                flushed: true,
                instances_removed: self.state.instances.counts().live(),
                machines_removed: self.state.machines.pair_count(),
            }),
        })
    }

    fn idempotency_entry(&self, key: IdemKey, now_ms: i64) -> Option<&IdemEntry> {
        self.state
            .idempotency
            .lookup(&key, now_ms, self.config.idempotency_ttl_ms)
    }
}

/// The result of a command whose record was written at `offset`.
fn written_result(record: &Record, offset: u64, flushed: Option<FlushAllResult>) -> OpResult {
    match record {
        Record::PutMachine(r) => OpResult::PutMachine(PutMachineResult {
            machine: r.machine.clone(),
            version: r.version,
            stored_checksum: r.definition_hash.clone(),
            created: true,
        }),
        Record::CreateInstance(r) => OpResult::CreateInstance(CreateInstanceResult {
            instance_id: r.instance_id.clone(),
            state: r.initial_state.clone(),
            wal_offset: offset,
            applied: true,
        }),
        Record::ApplyEvent(r) => OpResult::ApplyEvent(ApplyEventResult {
            from_state: r.from_state.clone(),
            to_state: r.to_state.clone(),
            ctx: r.ctx.clone(),
            wal_offset: offset,
            applied: true,
            event_id: r.event_id.clone(),
        }),
        Record::DeleteInstance(r) => deleted(&r.instance_id, offset, true),
        Record::FlushAll(_) => OpResult::FlushAll(flushed.unwrap_or(FlushAllResult {
            flushed: true,
            instances_removed: 0,
            machines_removed: 0,
        })),
    }
}

fn deleted(instance_id: &str, wal_offset: u64, applied: bool) -> OpResult {
    OpResult::DeleteInstance(DeleteInstanceResult {
        instance_id: instance_id.to_owned(),
        deleted: true,
        wal_offset,
        applied,
    })
}

/// Compact JSON with keys sorted: serde_json's map is a BTreeMap (`preserve_order` is off,
/// see the workspace Cargo.toml), so printing is canonical. `None` is `{}`.
pub(crate) fn canonical_object(map: Option<&Map<String, Value>>) -> Box<RawValue> {
    map.map_or_else(empty_object, raw_json)
}

/// Parses a stored ctx. The text was printed by serde_json or checked as a record's object,
/// so the fallback to an empty object is unreachable; it keeps a corrupt ctx from panicking.
fn parse_ctx(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

fn instance_key(instance_id: &str, key: &str) -> IdemKey {
    IdemKey::Instance {
        instance_id: instance_id.into(),
        key: key.into(),
    }
}

fn key_reused(key: &str, original_wal_offset: u64) -> ApplyError {
    ApplyError::IdempotencyKeyReused {
        idempotency_key: key.to_owned(),
        original_wal_offset,
    }
}

fn instance_exists(instance_id: &str) -> ApplyError {
    ApplyError::InstanceExists {
        instance_id: instance_id.to_owned(),
    }
}

pub(crate) fn instance_not_found(instance_id: &str) -> ApplyError {
    ApplyError::InstanceNotFound {
        instance_id: instance_id.to_owned(),
    }
}
