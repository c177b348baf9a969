//! Reads: GET_MACHINE, LIST_MACHINES, GET_INSTANCE, LIST_INSTANCES and the counts.

use crate::dsl::definition::MachineDefinition;
use crate::engine::Engine;
use crate::engine::counts::CountKey;
use crate::engine::error::ApplyError;
use crate::engine::execute::instance_not_found;
use crate::engine::instances::{Instance, Lookup};
use crate::engine::record::raw_from_printed;
use crate::engine::result::RawCtx;
use rstmdb_protocol::params::ListInstancesParams;
use rstmdb_protocol::results::{
    GetInstanceResult, GetMachineResult, InstanceSummary, ListInstancesResult, ListMachinesResult,
    MachineVersions, StateCountEntry,
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

    /// LIST_INSTANCES (§4.12). Filters combine with AND; deleted instances are never listed.
    ///
    /// A filtered page walks the (machine, version, state) index from the cursor: O(log n +
    /// offset + page). Only an unfiltered page with a large `offset` still walks the instances
    /// it skips; an `offset` at or past `total` answers at once (nothing can follow it).
    pub fn list_instances(&self, query: &ListInstancesParams) -> ListInstancesResult {
        let keys = self.matching_keys(query.machine.as_deref(), query.state.as_deref());
        let counts = self.state.instances.counts();
        let total = match &keys {
            None => counts.live(),
            Some(keys) => keys.iter().map(|key| counts.get(*key)).sum(),
        };
        let limit = query.page_size() as usize;
        if u64::from(query.skip()) >= total {
            // Instances after the cursor are a subset of the `total` matching ones.
            return ListInstancesResult {
                instances: Vec::new(),
                total,
                has_more: false,
            };
        }
        let instances = &self.state.instances;
        let after = query.after.as_deref();
        let skip = query.skip() as usize;
        let mut matching: Box<dyn Iterator<Item = (&str, &Instance)>> = match &keys {
            None => Box::new(
                instances
                    .iter_after(after)
                    .filter(|(_, instance)| instance.is_live())
                    .skip(skip),
            ),
            // Skipped ids are never looked up in the map.
            Some(keys) => Box::new(
                instances
                    .index()
                    .ids_after(keys, after)
                    .skip(skip)
                    .filter_map(|id| Some((id, instances.get(id)?))),
            ),
        };
        let mut page = Vec::with_capacity(limit.min(total as usize));
        if limit > 0 {
            for (id, instance) in matching.by_ref().take(limit) {
                page.push(self.summary(id, instance));
            }
        }
        let has_more = matching.next().is_some();
        ListInstancesResult {
            instances: page,
            total,
            has_more,
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

    /// The (machine, version, state) keys a `machine`/`state` filter matches, `None` without
    /// a filter. O(machine versions), never O(instances): the LIST total is the sum of their
    /// counts, and the page merges their index sets.
    fn matching_keys(&self, machine: Option<&str>, state: Option<&str>) -> Option<Vec<CountKey>> {
        if machine.is_none() && state.is_none() {
            return None;
        }
        let machines = &self.state.machines;
        let name = match machine {
            Some(name) => match machines.name_id(name) {
                Some(id) => Some(id),
                None => return Some(Vec::new()),
            },
            None => None,
        };
        let Some(state) = state else {
            // A machine filter alone: every key of the machine that has live instances.
            return Some(name.map_or_else(Vec::new, |name| {
                self.state.instances.index().keys_of(name).collect()
            }));
        };
        // State ids are per definition, so resolve the name in each version.
        Some(
            machines
                .names()
                .filter(|(id, _)| name.is_none_or(|name| name == *id))
                .flat_map(|(id, _)| machines.versions_of(id).map(move |(v, m)| (id, v, m)))
                .filter_map(|(id, version, stored)| {
                    Some((id, version, stored.definition.state_id(state)?))
                })
                .collect(),
        )
    }

    fn summary(&self, id: &str, instance: &Instance) -> InstanceSummary {
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
