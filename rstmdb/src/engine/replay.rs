//! Applying records: the one place where the state changes, used by execution and by replay.
//!
//! Each `apply_*` first checks that the record fits the state — an error leaves the state
//! unchanged — and then mutates it, remembering what it replaced so that [`Engine::undo`] can
//! restore it exactly. Guards are never evaluated here: the record carries the outcome.

use crate::dsl::definition::MachineDefinition;
use crate::engine::error::ReplayError;
use crate::engine::idempotency::{IdemChange, IdemEntry, IdemKey, Recorded, RecordedApply};
use crate::engine::instances::{IdIsLive, Instance, Lookup};
use crate::engine::machines::StoredMachine;
use crate::engine::record::{
    ApplyEventRecord, CreateInstanceRecord, DeleteInstanceRecord, PutMachineRecord, Record,
};
use crate::engine::{Change, Engine, Undo};
use std::num::NonZeroU64;

impl Engine {
    /// Replays one record read from the WAL at `offset`.
    pub fn apply_record(&mut self, record: &Record, offset: u64) -> Result<(), ReplayError> {
        // Replay never undoes, so the undo information is dropped at once.
        let _ = self.apply(record, offset, None)?;
        Ok(())
    }

    /// Reverts one executed command. Undo in reverse execution order.
    pub fn undo(&mut self, undo: Undo) {
        match undo.change {
            Change::Nothing => {}
            Change::Machine {
                inserted,
                idempotency,
            } => {
                self.state.idempotency.undo(idempotency);
                self.state.machines.undo_insert(inserted);
            }
            Change::Instance {
                id,
                previous,
                previous_tombstone,
                idempotency,
            } => {
                self.state.idempotency.undo(idempotency);
                self.state.instances.replace(&id, previous);
                self.state
                    .instances
                    .replace_tombstone(&id, previous_tombstone);
            }
            Change::Flush(state) => {
                let mut restored = *state;
                restored
                    .instances
                    .continue_changes_of(&mut self.state.instances);
                self.state = restored;
            }
        }
        self.state.last_timestamp_ms = undo.previous_timestamp_ms;
    }

    /// Applies a record. `definition` is PUT_MACHINE's definition when the caller has already
    /// validated it.
    pub(crate) fn apply(
        &mut self,
        record: &Record,
        offset: u64,
        definition: Option<MachineDefinition>,
    ) -> Result<Undo, ReplayError> {
        let previous_timestamp_ms = self.state.last_timestamp_ms;
        let change = match record {
            Record::PutMachine(r) => self.apply_put_machine(r, offset, definition)?,
            Record::CreateInstance(r) => self.apply_create(r, offset)?,
            Record::ApplyEvent(r) => self.apply_event(r, offset)?,
            Record::DeleteInstance(r) => self.apply_delete(r, offset)?,
            Record::FlushAll(_) => {
                let mut flushed = std::mem::take(&mut self.state);
                self.state
                    .instances
                    .continue_changes_of(&mut flushed.instances);
                Change::Flush(Box::new(flushed))
            }
        };
        self.state.last_timestamp_ms = previous_timestamp_ms.max(record.timestamp());
        Ok(Undo {
            previous_timestamp_ms,
            change,
        })
    }

    fn apply_put_machine(
        &mut self,
        r: &PutMachineRecord,
        offset: u64,
        definition: Option<MachineDefinition>,
    ) -> Result<Change, ReplayError> {
        if self
            .state
            .machines
            .get_by_name(&r.machine, r.version)
            .is_some()
        {
            return Err(ReplayError::MachineExists {
                machine: r.machine.clone(),
                version: r.version,
            });
        }
        let definition = match definition {
            Some(definition) => definition,
            None => MachineDefinition::from_json(&r.definition).map_err(|error| {
                ReplayError::InvalidDefinition {
                    machine: r.machine.clone(),
                    version: r.version,
                    error,
                }
            })?,
        };
        let checksum = definition.checksum_hex();
        if checksum != r.definition_hash {
            return Err(ReplayError::ChecksumMismatch {
                machine: r.machine.clone(),
                version: r.version,
                recorded: r.definition_hash.clone(),
                computed: checksum,
            });
        }
        let idempotency = self.record_key(None, r.timestamp, offset);
        let inserted = self.state.machines.insert(
            &r.machine,
            r.version,
            StoredMachine {
                received: r.definition.clone(),
                definition,
                checksum: checksum.into(),
            },
        );
        Ok(Change::Machine {
            inserted,
            idempotency,
        })
    }

    fn apply_create(
        &mut self,
        r: &CreateInstanceRecord,
        offset: u64,
    ) -> Result<Change, ReplayError> {
        let machines = &self.state.machines;
        let unknown_machine = || ReplayError::UnknownMachine {
            machine: r.machine.clone(),
            version: r.version,
        };
        let name = machines.name_id(&r.machine).ok_or_else(unknown_machine)?;
        let machine = machines.get(name, r.version).ok_or_else(unknown_machine)?;
        let state = machine
            .definition
            .state_id(&r.initial_state)
            .ok_or_else(|| ReplayError::UnknownState {
                machine: r.machine.clone(),
                version: r.version,
                state: r.initial_state.clone(),
            })?;
        let instance = Instance {
            machine: name,
            version: r.version,
            state,
            deleted_at: None,
            created_at: r.timestamp,
            updated_at: r.timestamp,
            last_wal_offset: offset,
            last_event_id: None,
            ctx: r.initial_ctx.get().into(),
        };
        // A deleted id may be re-created whatever the current setting: the record was
        // acknowledged under the setting in force when it was written. Refused before anything
        // else changes.
        let instances = &mut self.state.instances;
        let previous = instances
            .create(&r.instance_id, instance)
            .map_err(|IdIsLive| ReplayError::InstanceLive {
                instance_id: r.instance_id.clone(),
            })?;
        let previous_tombstone = instances.replace_tombstone(&r.instance_id, None);
        let recorded = r.idempotency_key.as_deref().map(|key| {
            (
                IdemKey::Create(key.into()),
                Recorded::Create {
                    instance_id: r.instance_id.as_str().into(),
                    machine: r.machine.as_str().into(),
                    version: r.version,
                    initial_ctx: r.initial_ctx.get().into(),
                    initial_state: r.initial_state.as_str().into(),
                },
            )
        });
        let idempotency = self.record_key(recorded, r.timestamp, offset);
        Ok(Change::Instance {
            id: r.instance_id.as_str().into(),
            previous,
            previous_tombstone,
            idempotency,
        })
    }

    fn apply_event(&mut self, r: &ApplyEventRecord, offset: u64) -> Result<Change, ReplayError> {
        let Lookup::Live(current) = self.state.instances.lookup(&r.instance_id) else {
            return Err(ReplayError::UnknownInstance {
                instance_id: r.instance_id.clone(),
            });
        };
        let machines = &self.state.machines;
        let machine_name = machines.name(current.machine);
        let mismatch = |record: String, current: String| ReplayError::RecordMismatch {
            instance_id: r.instance_id.clone(),
            record,
            current,
        };
        if machine_name != r.machine || current.version != r.version {
            return Err(mismatch(
                format!("machine {} version {}", r.machine, r.version),
                format!("machine {machine_name} version {}", current.version),
            ));
        }
        let machine = machines
            .get(current.machine, current.version)
            .ok_or_else(|| ReplayError::UnknownMachine {
                machine: r.machine.clone(),
                version: r.version,
            })?;
        let definition = &machine.definition;
        let current_state = definition.state_name(current.state);
        if current_state != r.from_state {
            return Err(mismatch(
                format!("from_state {}", r.from_state),
                format!("state {current_state}"),
            ));
        }
        let to_state =
            definition
                .state_id(&r.to_state)
                .ok_or_else(|| ReplayError::UnknownState {
                    machine: r.machine.clone(),
                    version: r.version,
                    state: r.to_state.clone(),
                })?;
        let updated = Instance {
            machine: current.machine,
            version: current.version,
            state: to_state,
            deleted_at: None,
            created_at: current.created_at,
            updated_at: r.timestamp,
            last_wal_offset: offset,
            last_event_id: r.event_id.as_deref().map(Into::into),
            ctx: r.ctx.get().into(),
        };
        let recorded = r.idempotency_key.as_deref().map(|key| {
            (
                IdemKey::Instance {
                    instance_id: r.instance_id.as_str().into(),
                    key: key.into(),
                },
                Recorded::Apply(RecordedApply {
                    event: r.event.as_str().into(),
                    payload: r.payload.as_ref().map(|p| p.get().into()),
                    expected_state: r.expected_state.as_deref().map(Into::into),
                    expected_wal_offset: r.expected_wal_offset,
                    event_id: r.event_id.as_deref().map(Into::into),
                    from_state: r.from_state.as_str().into(),
                    to_state: r.to_state.as_str().into(),
                    ctx: r.ctx.get().into(),
                }),
            )
        });
        let idempotency = self.record_key(recorded, r.timestamp, offset);
        let previous = self.state.instances.replace(&r.instance_id, Some(updated));
        Ok(Change::Instance {
            id: r.instance_id.as_str().into(),
            previous,
            previous_tombstone: None,
            idempotency,
        })
    }

    fn apply_delete(
        &mut self,
        r: &DeleteInstanceRecord,
        offset: u64,
    ) -> Result<Change, ReplayError> {
        let Lookup::Live(current) = self.state.instances.lookup(&r.instance_id) else {
            return Err(ReplayError::UnknownInstance {
                instance_id: r.instance_id.clone(),
            });
        };
        let deleted_at = NonZeroU64::new(offset).ok_or(ReplayError::ZeroOffset)?;
        let deleted = Instance {
            deleted_at: Some(deleted_at),
            updated_at: r.timestamp,
            ..current.clone()
        };
        let recorded = r.idempotency_key.as_deref().map(|key| {
            (
                IdemKey::Instance {
                    instance_id: r.instance_id.as_str().into(),
                    key: key.into(),
                },
                Recorded::Delete,
            )
        });
        let idempotency = self.record_key(recorded, r.timestamp, offset);
        let previous = self.state.instances.replace(&r.instance_id, Some(deleted));
        Ok(Change::Instance {
            id: r.instance_id.as_str().into(),
            previous,
            previous_tombstone: None,
            idempotency,
        })
    }

    /// Purges expired keys as of this record, then records its key, if it carries one.
    fn record_key(
        &mut self,
        recorded: Option<(IdemKey, Recorded)>,
        timestamp_ms: i64,
        offset: u64,
    ) -> IdemChange {
        let mut change = IdemChange::default();
        let ttl_ms = self.config.idempotency_ttl_ms;
        let table = &mut self.state.idempotency;
        table.purge_expired(timestamp_ms, ttl_ms, &mut change);
        if let Some((key, recorded)) = recorded {
            let entry = IdemEntry {
                timestamp_ms,
                wal_offset: offset,
                recorded,
            };
            table.insert(key, entry, self.config.idempotency_limits(), &mut change);
        }
        change
    }
}
