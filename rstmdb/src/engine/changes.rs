//! The latest changes to which instances are live and under which (machine, version, state)
//! key. A LIST_INSTANCES walk that skips a large `offset` releases the engine lock between
//! chunks; when it resumes it reads the changes made meanwhile and corrects how many matching
//! ids it has passed, so its page is still the one a single snapshot would give (issue 14).
//! When the log no longer holds every change since the walk's last chunk, the walk starts over.
//!
//! Not part of the state: two engines with the same instances are equal whatever their
//! histories, so the log never takes part in equality, and the image does not store it.

use crate::engine::counts::CountKey;
use std::collections::VecDeque;
use std::sync::Arc;

/// Changes kept. A walk needs only those made between two of its chunks (the sequencer's
/// groups of that moment); more than this many makes it start over, which stays exact.
pub(crate) const KEPT_CHANGES: usize = 1024;

/// One change of an id's live key: `None` is "not live" (absent, or deleted).
#[derive(Debug, Clone)]
pub(crate) struct KeyChange {
    /// The same allocation as the instance map's key.
    pub id: Arc<str>,
    pub old: Option<CountKey>,
    pub new: Option<CountKey>,
}

#[derive(Clone, Default)]
pub(crate) struct ChangeLog {
    /// The newest [`KEPT_CHANGES`] changes, oldest first.
    kept: VecDeque<KeyChange>,
    /// Position after the newest change: changes ever recorded, plus one per [`ChangeLog::forget`].
    end: u64,
}

impl ChangeLog {
    pub fn record(&mut self, change: KeyChange) {
        if self.kept.len() == KEPT_CHANGES {
            self.kept.pop_front();
        }
        self.kept.push_back(change);
        self.end += 1;
    }

    /// The position a walk resumes from after this moment.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The changes made since position `from`, oldest first; `None` when some of them are no
    /// longer kept.
    pub fn since(&self, from: u64) -> Option<impl Iterator<Item = &KeyChange>> {
        let first = self.end - self.kept.len() as u64;
        if from < first || from > self.end {
            return None;
        }
        let skipped = usize::try_from(from - first).ok()?;
        Some(self.kept.iter().skip(skipped))
    }

    /// Forgets every change: the whole instance table was swapped (FLUSH_ALL or its undo), so
    /// every walk in progress must start over.
    pub fn forget(&mut self) {
        self.kept.clear();
        self.end += 1;
    }
}

/// Always equal: see the module comment.
impl PartialEq for ChangeLog {
    fn eq(&self, _: &ChangeLog) -> bool {
        true
    }
}

impl Eq for ChangeLog {}

/// The position only: a thousand ids would bury the engine's debug output.
impl std::fmt::Debug for ChangeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeLog")
            .field("end", &self.end)
            .field("kept", &self.kept.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::{ChangeLog, KEPT_CHANGES, KeyChange};
    use std::sync::Arc;

    fn change(n: usize) -> KeyChange {
        KeyChange {
            id: Arc::from(format!("id-{n}")),
            old: None,
            new: Some((0, 1, 0)),
        }
    }

    #[test]
    fn a_position_older_than_the_kept_changes_is_refused() {
        let mut log = ChangeLog::default();
        let start = log.end();
        for n in 0..KEPT_CHANGES {
            log.record(change(n));
        }
        assert_eq!(log.since(start).map(Iterator::count), Some(KEPT_CHANGES));
        log.record(change(KEPT_CHANGES));
        assert!(log.since(start).is_none());
        let recent = log.end() - 2;
        let ids: Vec<String> = log
            .since(recent)
            .into_iter()
            .flatten()
            .map(|c| c.id.to_string())
            .collect();
        assert_eq!(
            ids,
            [
                format!("id-{}", KEPT_CHANGES - 1),
                format!("id-{KEPT_CHANGES}")
            ]
        );
        let now = log.end();
        log.forget();
        assert!(log.since(now).is_none());
        assert_eq!(log.since(log.end()).map(Iterator::count), Some(0));
    }
}
