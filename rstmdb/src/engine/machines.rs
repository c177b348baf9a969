//! Machine definitions by (name, version), with interned names.
//!
//! Instances refer to their machine by a small [`NameId`] instead of a `String`, which keeps
//! per-instance memory small. Name ids are handed out in order of first PUT and never reused
//! until FLUSH_ALL, so they are identical after replay and after an engine image round trip.

use crate::dsl::definition::MachineDefinition;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Index of an interned machine name.
pub(crate) type NameId = u32;

/// One stored (name, version).
#[derive(Debug, Clone)]
pub(crate) struct StoredMachine {
    /// As received in PUT_MACHINE: the `put_machine` record and checkpoints keep it.
    pub received: Value,
    pub definition: MachineDefinition,
    /// 8 lowercase hex digits (§6.7).
    pub checksum: Box<str>,
}

/// Every machine version, by interned name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Machines {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, NameId>,
    /// Indexed by [`NameId`].
    versions: Vec<BTreeMap<u32, StoredMachine>>,
}

/// What [`Machines::insert`] did, so that it can be undone.
#[derive(Debug)]
pub(crate) struct MachineInserted {
    pub name: NameId,
    pub version: u32,
    /// The insert interned a new name (the last one).
    pub new_name: bool,
}

impl Machines {
    pub fn name_id(&self, name: &str) -> Option<NameId> {
        self.ids.get(name).copied()
    }

    /// The name of an id this table handed out.
    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", |n| n)
    }

    pub fn get(&self, name: NameId, version: u32) -> Option<&StoredMachine> {
        self.versions.get(name as usize)?.get(&version)
    }

    pub fn get_by_name(&self, name: &str, version: u32) -> Option<&StoredMachine> {
        self.get(self.name_id(name)?, version)
    }

    /// How many versions the name has (0 for an unknown name).
    pub fn version_count(&self, name: &str) -> usize {
        self.name_id(name)
            .and_then(|id| self.versions.get(id as usize))
            .map_or(0, BTreeMap::len)
    }

    /// The versions of a name, ascending.
    pub fn versions_of(&self, name: NameId) -> impl Iterator<Item = (u32, &StoredMachine)> {
        self.versions
            .get(name as usize)
            .into_iter()
            .flat_map(|versions| versions.iter().map(|(v, m)| (*v, m)))
    }

    /// Every name with its id, in interning order.
    pub fn names(&self) -> impl Iterator<Item = (NameId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as NameId, &**n))
    }

    /// The number of (name, version) pairs.
    pub fn pair_count(&self) -> u64 {
        self.versions.iter().map(|v| v.len() as u64).sum()
    }

    /// Stores a version that does not exist yet.
    pub fn insert(&mut self, name: &str, version: u32, machine: StoredMachine) -> MachineInserted {
        let (id, new_name) = match self.name_id(name) {
            Some(id) => (id, false),
            None => {
                let id = self.names.len() as NameId;
                self.names.push(name.into());
                self.ids.insert(name.into(), id);
                self.versions.push(BTreeMap::new());
                (id, true)
            }
        };
        if let Some(versions) = self.versions.get_mut(id as usize) {
            versions.insert(version, machine);
        }
        MachineInserted {
            name: id,
            version,
            new_name,
        }
    }

    /// Reverts the most recent [`Self::insert`].
    pub fn undo_insert(&mut self, inserted: MachineInserted) {
        if let Some(versions) = self.versions.get_mut(inserted.name as usize) {
            versions.remove(&inserted.version);
        }
        if inserted.new_name {
            self.versions.pop();
            if let Some(name) = self.names.pop() {
                self.ids.remove(&name);
            }
        }
    }
}
