//! Live-instance counts per (machine, version, state), kept up to date in O(1) per write.
//! LIST_INSTANCES `total` and the STATS numbers read them instead of scanning instances.

use crate::dsl::definition::StateId;
use crate::engine::machines::NameId;
use std::collections::HashMap;

/// (machine name id, version, state).
pub(crate) type CountKey = (NameId, u32, StateId);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StateCounts {
    by_state: HashMap<CountKey, u64>,
    live: u64,
}

impl StateCounts {
    pub fn add(&mut self, key: CountKey) {
        *self.by_state.entry(key).or_insert(0) += 1;
        self.live += 1;
    }

    pub fn remove(&mut self, key: CountKey) {
        if let Some(count) = self.by_state.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                // Drop empty entries so that the map (and a full comparison) only holds states
                // that have instances.
                self.by_state.remove(&key);
            }
            self.live -= 1;
        }
    }

    pub fn get(&self, key: CountKey) -> u64 {
        self.by_state.get(&key).copied().unwrap_or(0)
    }

    /// Live instances in total.
    pub fn live(&self) -> u64 {
        self.live
    }

    pub fn iter(&self) -> impl Iterator<Item = (CountKey, u64)> + '_ {
        self.by_state.iter().map(|(k, v)| (*k, *v))
    }
}
