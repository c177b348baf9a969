//! What a cut in progress needs from the instance table: the value at the cut of every instance
//! changed since that the walk has not reached yet (its before-image), and the walk itself.
//!
//! See `engine/cut.rs` for the whole mechanism. The table calls [`CutLog::remember`] on every
//! change ([`super::instances::Instances::replace`] is the only way an instance changes), so
//! the first change of an id after the cut keeps what the cut saw; later changes of the same
//! id, and changes of ids the walk has passed, keep nothing.

use super::instance_key::{InstanceKey, KeyView, Probe};
use super::instances::Instance;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) struct CutLog {
    /// Tells one cut from another: a walk only continues the log it started.
    cut_id: u64,
    /// The last id the walk has visited; `None` before the first step.
    walked: Option<Arc<str>>,
    /// The value at the cut of each id changed since, past `walked`; `None`: the id did not
    /// exist at the cut (created since).
    before: BTreeMap<Arc<str>, Option<Instance>>,
}

impl CutLog {
    pub(crate) fn new(cut_id: u64) -> CutLog {
        CutLog {
            cut_id,
            walked: None,
            before: BTreeMap::new(),
        }
    }

    pub(crate) fn cut_id(&self) -> u64 {
        self.cut_id
    }

    /// Called with an id's value before a change (`None`: it did not exist).
    pub(crate) fn remember(&mut self, id: &Arc<str>, old: Option<&Instance>) {
        if self.walked.as_deref().is_some_and(|walked| **id <= *walked) {
            return;
        }
        self.before
            .entry(Arc::clone(id))
            .or_insert_with(|| old.cloned());
    }

    /// How many before-images are kept (memory a cut costs, for tests and logs).
    pub(crate) fn saved(&self) -> usize {
        self.before.len()
    }

    /// Visits, in id order, the next `max` ids that existed at the cut, with their values at
    /// the cut, and moves the walk past them. Returns whether the walk is done.
    pub(crate) fn walk(
        &mut self,
        by_id: &BTreeMap<InstanceKey, Instance>,
        max: usize,
        mut visit: impl FnMut(&str, &Instance),
    ) -> bool {
        let walked = self.walked.clone();
        let mut live = match walked.as_deref() {
            None => by_id.range::<dyn KeyView, _>(..),
            Some(after) => {
                let after = Probe::new(after);
                by_id.range::<dyn KeyView, _>((Bound::Excluded(after.view()), Bound::Unbounded))
            }
        }
        .peekable();
        let mut saved = match &walked {
            None => self.before.range::<Arc<str>, _>(..),
            Some(after) => self
                .before
                .range::<Arc<str>, _>((Bound::Excluded(after), Bound::Unbounded)),
        }
        .peekable();
        let mut last = None;
        for _ in 0..max {
            let live_id = live.peek().map(|(key, _)| key.id());
            let saved_id = saved.peek().map(|(id, _)| *id);
            let (id, value) = match (live_id, saved_id) {
                (None, None) => break,
                // A saved value wins over the live one: it is what the cut saw.
                (live_id, Some(saved_id)) if live_id.is_none_or(|l| saved_id <= l) => {
                    if live_id.is_some_and(|l| l == saved_id) {
                        live.next();
                    }
                    let (id, value) = saved.next().expect("peeked");
                    (id, value.as_ref())
                }
                _ => {
                    let (key, instance) = live.next().expect("peeked");
                    (key.id(), Some(instance))
                }
            };
            if let Some(instance) = value {
                visit(id, instance);
            }
            last = Some(Arc::clone(id));
        }
        let done = live.peek().is_none() && saved.peek().is_none();
        if let Some(last) = last {
            // What is at or below the walk is never read again.
            self.before = self.before.split_off(&*last);
            self.before.remove(&*last);
            self.walked = Some(last);
        }
        done
    }
}
