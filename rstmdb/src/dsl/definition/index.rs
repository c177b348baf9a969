//! State ids and the (state, event) → candidate transitions lookup (§7.9).

use super::StateId;
use std::collections::HashMap;

/// Distinct state names and their ids. Duplicates in `states` share the id of their first
/// occurrence; ids are dense, in order of first occurrence.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct StateIndex {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, StateId>,
}

impl StateIndex {
    /// `states` holds at most `MAX_ITEMS` (= `u32::MAX`) entries, checked by the shape pass.
    pub fn new(states: &[&str]) -> Self {
        let mut index = Self::default();
        for &name in states {
            if index.ids.contains_key(name) {
                continue;
            }
            let id = StateId::try_from(index.names.len()).unwrap_or(StateId::MAX);
            index.names.push(name.into());
            index.ids.insert(name.into(), id);
        }
        index
    }

    pub fn id(&self, name: &str) -> Option<StateId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: StateId) -> Option<&str> {
        self.names.get(id as usize).map(|name| &**name)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// For each state id, the transitions that leave it, grouped by event, in definition order.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct CandidateIndex {
    by_state: Vec<HashMap<Box<str>, Candidates>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Candidates {
    transitions: Vec<u32>,
    /// The earliest candidate without a guard: every later transition for the same pair would
    /// be unreachable (§7.3 step 3.4), so validation refuses it.
    first_unguarded: Option<u32>,
}

impl CandidateIndex {
    pub fn new(state_count: usize) -> Self {
        Self {
            by_state: vec![HashMap::new(); state_count],
        }
    }

    /// Transition indices for (state, event), in definition order; empty when there are none.
    pub fn candidates(&self, state: StateId, event: &str) -> &[u32] {
        self.by_state
            .get(state as usize)
            .and_then(|events| events.get(event))
            .map_or(&[], |candidates| &candidates.transitions)
    }

    /// The earliest unguarded transition already registered for (state, event).
    pub fn unguarded(&self, state: StateId, event: &str) -> Option<u32> {
        self.by_state
            .get(state as usize)
            .and_then(|events| events.get(event))
            .and_then(|candidates| candidates.first_unguarded)
    }

    /// Registers transition `index` as a candidate for (state, event). A transition that lists
    /// the same source twice is registered once.
    pub fn push(&mut self, state: StateId, event: &str, index: u32, guarded: bool) {
        let Some(events) = self.by_state.get_mut(state as usize) else {
            return;
        };
        let candidates = match events.get_mut(event) {
            Some(candidates) => candidates,
            None => events.entry(event.into()).or_default(),
        };
        if candidates.transitions.last() == Some(&index) {
            return;
        }
        candidates.transitions.push(index);
        if !guarded && candidates.first_unguarded.is_none() {
            candidates.first_unguarded = Some(index);
        }
    }
}
