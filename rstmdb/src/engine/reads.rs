//! Reads: GET_MACHINE, LIST_MACHINES, GET_INSTANCE, LIST_INSTANCES and the counts.

use crate::dsl::definition::MachineDefinition;
use crate::engine::Engine;
use crate::engine::error::ApplyError;
use crate::engine::execute::instance_not_found;
use crate::engine::instances::{Instance, Lookup};
use crate::engine::record::raw_from_printed;
use crate::engine::result::RawCtx;
use rstmdb_protocol::results::{
    GetInstanceResult, GetMachineResult, InstanceSummary, ListMachinesResult, MachineVersions,
    StateCountEntry,
};
use serde_json::{Map, Value};

impl Engine {
    /// GET_MACHINE (§4.8).
    pub fn get_machine(&self, machine: &str, version: u32) -> Result<GetMachineResult, ApplyError> {
        let stored = self
            .state
            .machines
            .get_by_name(machine, version)
            .ok_or_else(|| ApplyError::MachineNotFound {
                machine: machine.to_owned(),
                version,
            })?;
        // The normalised form is always an object (a serialised struct); the empty map is
        // unreachable and only keeps this free of a panic.
        let definition = match stored.definition.normalized() {
            Value::Object(definition) => definition,
            _ => Map::new(),
        };
        Ok(GetMachineResult {
            definition,
            checksum: stored.checksum.to_string(),
        })
    }

    /// The validated definition of (machine, version), e.g. for the server's STATS op.
    pub fn machine_definition(&self, machine: &str, version: u32) -> Option<&MachineDefinition> {
        Some(
            &self
                .state
                .machines
                .get_by_name(machine, version)?
                .definition,
        )
    }

    /// The definition of (machine, version) as received in PUT_MACHINE.
    pub fn machine_definition_as_received(&self, machine: &str, version: u32) -> Option<&Value> {
        Some(&self.state.machines.get_by_name(machine, version)?.received)
    }

    /// LIST_MACHINES (§4.9): names in byte order, versions ascending.
    pub fn list_machines(&self) -> ListMachinesResult {
        let machines = &self.state.machines;
        let mut items: Vec<MachineVersions> = machines
            .names()
            .map(|(id, name)| MachineVersions {
                machine: name.to_owned(),
                versions: machines.versions_of(id).map(|(v, _)| v).collect(),
            })
            .filter(|item| !item.versions.is_empty())
            .collect();
        items.sort_unstable_by(|a, b| a.machine.cmp(&b.machine));
        ListMachinesResult { items }
    }

    /// GET_INSTANCE (§4.11).
    pub fn get_instance(&self, instance_id: &str) -> Result<GetInstanceResult<RawCtx>, ApplyError> {
        let Lookup::Live(instance) = self.state.instances.lookup(instance_id) else {
            return Err(instance_not_found(instance_id));
        };
        Ok(GetInstanceResult {
            instance_id: instance_id.to_owned(),
            machine: self.state.machines.name(instance.machine).to_owned(),
            version: instance.version,
            state: self.state_name(instance).to_owned(),
            ctx: raw_from_printed(instance.ctx.to_string()),
            last_event_id: instance.last_event_id.as_deref().map(str::to_owned),
            last_wal_offset: instance.last_wal_offset,
            created_at: instance.created_at,
            updated_at: instance.updated_at,
        })
    }

    /// The offset of the newest record that changed the instance — its create, last apply or
    /// delete — also for a deleted id that is still known. A read of the instance must not be
    /// answered before this record is durable (docs/commit-pipeline.md).
    pub fn latest_record_offset(&self, instance_id: &str) -> Option<u64> {
        match self.state.instances.lookup(instance_id) {
            Lookup::Live(instance) => Some(instance.last_wal_offset),
            Lookup::Deleted(offset) => Some(offset),
            Lookup::Unknown => None,
        }
    }

    /// Live instances per (machine, version, state), sorted by machine name, version, state.
    pub fn state_counts(&self) -> Vec<StateCountEntry> {
        let machines = &self.state.machines;
        let mut counts: Vec<StateCountEntry> = self
            .state
            .instances
            .counts()
            .iter()
            .map(|((name, version, state), count)| StateCountEntry {
                machine: machines.name(name).to_owned(),
                version,
                state: machines
                    .get(name, version)
                    .map_or("", |m| m.definition.state_name(state))
                    .to_owned(),
                count,
            })
            .collect();
        counts.sort_unstable_by(|a, b| {
            (&a.machine, a.version, &a.state).cmp(&(&b.machine, b.version, &b.state))
        });
        counts
    }

    /// Live (non-deleted) instances.
    pub fn live_instance_count(&self) -> u64 {
        self.state.instances.counts().live()
    }

    /// Stored (machine, version) pairs.
    pub fn machine_version_count(&self) -> u64 {
        self.state.machines.pair_count()
    }

    /// Known idempotency keys, expired ones not yet purged included.
    pub fn idempotency_key_count(&self) -> usize {
        self.state.idempotency.len()
    }

    /// What the known idempotency keys take in a checkpoint (`storage.idempotency_max_bytes`
    /// bounds it).
    pub fn idempotency_key_bytes(&self) -> usize {
        self.state.idempotency.bytes()
    }

    pub(super) fn summary(&self, id: &str, instance: &Instance) -> InstanceSummary {
        InstanceSummary {
            id: id.to_owned(),
            machine: self.state.machines.name(instance.machine).to_owned(),
            version: instance.version,
            state: self.state_name(instance).to_owned(),
            created_at: instance.created_at,
            updated_at: instance.updated_at,
            last_wal_offset: instance.last_wal_offset,
        }
    }

    fn state_name(&self, instance: &Instance) -> &str {
        self.state
            .machines
            .get(instance.machine, instance.version)
            .map_or("", |m| m.definition.state_name(instance.state))
    }
}
