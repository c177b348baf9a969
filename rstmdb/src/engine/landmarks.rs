//! Where recent LIST_INSTANCES walks stood, so that the next walk of the same ids starts
//! there instead of at the cursor: offset paging (offset 0, 1000, 2000, ...) and the same
//! large offset asked again pass only what lies between, not the whole offset each time.
//!
//! A landmark is a walk's position plus the engine's change log position it was valid at;
//! [`ListWalk::continuing`] corrects it for the changes since, exactly as a resumed walk is
//! corrected, or starts from the cursor when it cannot. So a landmark can be stale, never
//! wrong. Keep one set per engine: positions in another engine's change log mean nothing.

use crate::engine::listing::ListWalk;
use rstmdb_protocol::params::ListInstancesParams;

/// Landmarks kept: one per filter and cursor, the most recently used ones.
pub const KEPT_LANDMARKS: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct ListLandmarks {
    /// Most recently used last.
    walks: Vec<ListWalk>,
}

impl ListLandmarks {
    /// A walk of `query`, from a landmark of the same ids when there is one at or before its
    /// offset.
    pub fn start(&self, query: ListInstancesParams) -> ListWalk {
        let fresh = ListWalk::new(query.clone());
        match self
            .walks
            .iter()
            .rev()
            .find(|walk| walk.same_ids_as(&fresh))
        {
            Some(earlier) => ListWalk::continuing(query, earlier),
            None => fresh,
        }
    }

    /// Remembers where `walk` stands (after each call of [`crate::engine::Engine::list_step`]):
    /// it replaces the landmark of the same ids, or the least recently used one.
    pub fn remember(&mut self, walk: &ListWalk) {
        if walk.passed() == 0 {
            return;
        }
        if let Some(same) = self.walks.iter().position(|kept| kept.same_ids_as(walk)) {
            self.walks.remove(same);
        } else if self.walks.len() == KEPT_LANDMARKS {
            self.walks.remove(0);
        }
        self.walks.push(walk.clone());
    }
}
