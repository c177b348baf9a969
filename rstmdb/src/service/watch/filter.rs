//! Which transitions a subscription matches (spec §4.20, §4.21, §6.9).

use crate::database::CommittedEvent;
use std::collections::HashSet;

/// A subscription's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// WATCH_INSTANCE: every transition of this id, of any incarnation of the instance.
    Instance(String),
    /// WATCH_ALL: an empty set is no constraint; a non-empty set matches one of its strings;
    /// the sets are combined with AND. Sets, so a 256-entry filter costs one lookup per
    /// transition, not 256 comparisons.
    All {
        machines: HashSet<String>,
        from_states: HashSet<String>,
        to_states: HashSet<String>,
        events: HashSet<String>,
    },
}

impl Filter {
    pub fn matches(&self, event: &CommittedEvent) -> bool {
        match self {
            Filter::Instance(id) => event.instance_id == *id,
            Filter::All {
                machines,
                from_states,
                to_states,
                events,
            } => {
                allows(machines, &event.machine)
                    && allows(from_states, &event.from_state)
                    && allows(to_states, &event.to_state)
                    && allows(events, &event.event)
            }
        }
    }

    /// The `type` label of the subscription metrics (spec §10).
    pub fn kind(&self) -> SubscriptionKind {
        match self {
            Filter::Instance(_) => SubscriptionKind::Instance,
            Filter::All { .. } => SubscriptionKind::All,
        }
    }
}

fn allows(set: &HashSet<String>, value: &str) -> bool {
    set.is_empty() || set.contains(value)
}

/// WATCH_INSTANCE or WATCH_ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    Instance,
    All,
}

impl SubscriptionKind {
    pub fn label(self) -> &'static str {
        match self {
            SubscriptionKind::Instance => "instance",
            SubscriptionKind::All => "all",
        }
    }
}
