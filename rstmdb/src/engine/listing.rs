//! LIST_INSTANCES (§4.12): a page in one go, or a walk in chunks that lets go of the engine
//! between them.
//!
//! A filtered page merges the (machine, version, state) index sets from the cursor on, and
//! `total` is the sum of counts, so a page costs O(log n + offset + page). Only the `offset`
//! is still walked id by id. A large one (900,000 ids, some 20 ms) must not hold the engine
//! lock that long, or every write waits for it (issue 14): [`Engine::list_step`] passes at
//! most a budget of ids per call and remembers where it stopped. The caller releases the lock
//! between calls; on resuming, the walk reads the engine's log of live-key changes made
//! meanwhile (`changes.rs`) and corrects how many matching ids lie between the cursor and
//! where it stopped. Its page, `total` and `has_more` come from the last call, and are exactly
//! what a single snapshot taken then would give. If the log no longer holds the changes, the
//! walk starts over; after [`MAX_RESTARTS`] it walks the rest in one call.

use crate::engine::Engine;
use crate::engine::changes::ChangeLog;
use crate::engine::counts::CountKey;
use crate::engine::instances::Instance;
use crate::engine::machines::NameId;
use rstmdb_protocol::params::ListInstancesParams;
use rstmdb_protocol::results::ListInstancesResult;

/// Restarts after which a walk finishes in one call: the answer stays exact, at the cost of
/// one long hold of the lock, which only a storm of changes can cause.
pub const MAX_RESTARTS: u32 = 3;

/// A LIST_INSTANCES walk in progress: see [`Engine::list_step`].
#[derive(Debug, Clone)]
pub struct ListWalk {
    query: ListInstancesParams,
    progress: Progress,
}

/// Where a walk stands in the offset.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// The last matching id passed while skipping `offset`; `None` before the first one.
    passed_to: Option<Box<str>>,
    /// How many matching ids lie after the cursor up to and including `passed_to`.
    passed: u64,
    /// The engine's change log position when the previous call returned.
    seen: u64,
    restarts: u32,
    /// Taken over from an earlier walk ([`ListWalk::continuing`]): if it cannot be corrected,
    /// starting over is no restart of this walk's own.
    borrowed: bool,
}

impl ListWalk {
    pub fn new(query: ListInstancesParams) -> ListWalk {
        ListWalk {
            query,
            progress: Progress::default(),
        }
    }

    /// A walk of `query` that starts where `earlier` stands, when that helps: the same filter
    /// and cursor (so the same ids in the same order), and no further than `query`'s offset.
    /// Its first call corrects the position for the changes since, like a resumed walk; if it
    /// cannot, it starts from the cursor. A later page of offsets, or the same large offset
    /// asked again, then passes only what lies between.
    pub fn continuing(query: ListInstancesParams, earlier: &ListWalk) -> ListWalk {
        let progress = &earlier.progress;
        if !same_ids(&query, &earlier.query)
            || progress.passed_to.is_none()
            || progress.passed > u64::from(query.skip())
        {
            return ListWalk::new(query);
        }
        ListWalk {
            query,
            progress: Progress {
                restarts: 0,
                borrowed: true,
                ..progress.clone()
            },
        }
    }

    /// How often the walk started over because the changes since its last call were lost.
    pub fn restarts(&self) -> u32 {
        self.progress.restarts
    }

    /// How many matching ids after the cursor the walk has passed.
    pub fn passed(&self) -> u64 {
        self.progress.passed
    }

    /// Whether the walk answers the same filter and cursor as `other`.
    pub fn same_ids_as(&self, other: &ListWalk) -> bool {
        same_ids(&self.query, &other.query)
    }
}

/// Whether two queries walk the same ids in the same order (they may differ in offset and
/// limit).
fn same_ids(a: &ListInstancesParams, b: &ListInstancesParams) -> bool {
    a.machine == b.machine && a.state == b.state && a.after == b.after
}

impl Progress {
    fn start_over(&mut self) {
        self.passed_to = None;
        self.passed = 0;
        if !std::mem::take(&mut self.borrowed) {
            self.restarts += 1;
        }
    }

    /// Corrects `passed` for the changes since the previous call: an id at or before
    /// `passed_to` that started (stopped) matching moves the walk's position one on (back).
    /// False when the walk must start over: changes were lost, or the position now lies past
    /// `offset`.
    fn catch_up(
        &mut self,
        query: &ListInstancesParams,
        changes: &ChangeLog,
        matches: impl Fn(CountKey) -> bool,
    ) -> bool {
        let Some(passed_to) = self.passed_to.as_deref() else {
            return true;
        };
        let Some(since) = changes.since(self.seen) else {
            return false;
        };
        let after = query.after.as_deref();
        for change in since {
            let id = &*change.id;
            if id > passed_to || after.is_some_and(|after| id <= after) {
                continue;
            }
            match (
                change.old.is_some_and(&matches),
                change.new.is_some_and(&matches),
            ) {
                (false, true) => self.passed += 1,
                (true, false) => match self.passed.checked_sub(1) {
                    Some(passed) => self.passed = passed,
                    None => return false,
                },
                _ => {}
            }
        }
        self.passed <= u64::from(query.skip())
    }
}

/// What a `machine`/`state` filter resolved to.
enum Filter<'q> {
    /// The machine is unknown: nothing matches.
    Nothing,
    All,
    /// The keys whose index sets hold the matching ids, and the filter to judge other keys by.
    Keys {
        keys: Vec<CountKey>,
        machine: Option<NameId>,
        state: Option<&'q str>,
    },
}

impl Engine {
    /// LIST_INSTANCES (§4.12) in one go. Filters combine with AND; deleted instances are never
    /// listed.
    pub fn list_instances(&self, query: &ListInstancesParams) -> ListInstancesResult {
        let mut walk = ListWalk::new(query.clone());
        // An unlimited budget answers in the first call.
        loop {
            if let Some(page) = self.list_step(&mut walk, usize::MAX) {
                return page;
            }
        }
    }

    /// One call of a LIST_INSTANCES walk: passes at most `budget_ids` ids of `offset`, and
    /// answers (`Some`) once the rest of the offset fits in the budget. The caller may change
    /// the engine between calls; the answer is what [`Engine::list_instances`] would give at
    /// the last call. An `offset` at or past `total` answers at once.
    pub fn list_step(&self, walk: &mut ListWalk, budget_ids: usize) -> Option<ListInstancesResult> {
        let ListWalk { query, progress } = walk;
        let filter = self.filter(query);
        let counts = self.state.instances.counts();
        let total = match &filter {
            Filter::Nothing => 0,
            Filter::All => counts.live(),
            Filter::Keys { keys, .. } => keys.iter().map(|key| counts.get(*key)).sum(),
        };
        let skip = u64::from(query.skip());
        if skip >= total {
            // Instances after the cursor are a subset of the `total` matching ones.
            return Some(ListInstancesResult {
                instances: Vec::new(),
                total,
                has_more: false,
            });
        }
        let changes = self.state.instances.changes();
        let caught_up = match &filter {
            Filter::Nothing | Filter::All => progress.catch_up(query, changes, |_| true),
            Filter::Keys { machine, state, .. } => progress.catch_up(query, changes, |key| {
                self.key_matches(key, *machine, *state)
            }),
        };
        if !caught_up {
            progress.start_over();
        }
        progress.borrowed = false;
        progress.seen = changes.end();
        let budget = if progress.restarts >= MAX_RESTARTS {
            usize::MAX
        } else {
            budget_ids
        };

        let instances = &self.state.instances;
        let from = progress.passed_to.as_deref().or(query.after.as_deref());
        // Ids only: a skipped id of a filtered walk is never looked up in the map.
        let mut matching: Box<dyn Iterator<Item = (&str, Option<&Instance>)>> = match &filter {
            Filter::Keys { keys, .. } => {
                Box::new(instances.index().ids_after(keys, from).map(|id| (id, None)))
            }
            Filter::Nothing | Filter::All => Box::new(
                instances
                    .iter_after(from)
                    .filter(|(_, instance)| instance.is_live())
                    .map(|(id, instance)| (id, Some(instance))),
            ),
        };
        let remaining = skip - progress.passed;
        if remaining > budget as u64 {
            let (mut passed, mut last) = (0usize, None);
            for (id, _) in matching.by_ref().take(budget) {
                passed += 1;
                last = Some(id);
            }
            return match last {
                Some(id) if passed == budget => {
                    progress.passed_to = Some(id.into());
                    progress.passed += budget as u64;
                    None
                }
                // Fewer ids than the budget follow the cursor: fewer than the offset.
                _ => Some(ListInstancesResult {
                    instances: Vec::new(),
                    total,
                    has_more: false,
                }),
            };
        }
        if remaining > 0
            // `nth(k)` passes k + 1 ids.
            && let Some((id, _)) = matching.nth((remaining - 1) as usize)
        {
            // Where a later walk of the same ids may start (ListWalk::continuing).
            progress.passed_to = Some(id.into());
            progress.passed = skip;
        }
        let limit = query.page_size() as usize;
        let mut page = Vec::with_capacity(limit.min(total as usize));
        let mut has_more = false;
        for (id, instance) in matching.by_ref() {
            if page.len() == limit {
                has_more = true;
                break;
            }
            if let Some(instance) = instance.or_else(|| instances.get(id)) {
                page.push(self.summary(id, instance));
            }
        }
        Some(ListInstancesResult {
            instances: page,
            total,
            has_more,
        })
    }

    fn filter<'q>(&self, query: &'q ListInstancesParams) -> Filter<'q> {
        let machine = match query.machine.as_deref() {
            None => None,
            Some(name) => match self.state.machines.name_id(name) {
                Some(id) => Some(id),
                None => return Filter::Nothing,
            },
        };
        let state = query.state.as_deref();
        if machine.is_none() && state.is_none() {
            return Filter::All;
        }
        Filter::Keys {
            keys: self.matching_keys(machine, state),
            machine,
            state,
        }
    }

    /// The (machine, version, state) keys a `machine`/`state` filter matches that may have
    /// live instances. O(machine versions), never O(instances): the LIST total is the sum of
    /// their counts, and the page merges their index sets.
    fn matching_keys(&self, machine: Option<NameId>, state: Option<&str>) -> Vec<CountKey> {
        let machines = &self.state.machines;
        let Some(state) = state else {
            // A machine filter alone: every key of the machine that has live instances.
            return machine.map_or_else(Vec::new, |name| {
                self.state.instances.index().keys_of(name).collect()
            });
        };
        // State ids are per definition, so resolve the name in each version.
        machines
            .names()
            .filter(|(id, _)| machine.is_none_or(|machine| machine == *id))
            .flat_map(|(id, _)| machines.versions_of(id).map(move |(v, m)| (id, v, m)))
            .filter_map(|(id, version, stored)| {
                Some((id, version, stored.definition.state_id(state)?))
            })
            .collect()
    }

    /// Whether ids under `key` match the filter: the same judgement as [`Self::matching_keys`],
    /// for any key, also one whose set is empty now.
    fn key_matches(&self, key: CountKey, machine: Option<NameId>, state: Option<&str>) -> bool {
        let (name, version, state_id) = key;
        machine.is_none_or(|machine| machine == name)
            && state.is_none_or(|state| {
                self.state
                    .machines
                    .get(name, version)
                    .is_some_and(|stored| stored.definition.state_id(state) == Some(state_id))
            })
    }
}
