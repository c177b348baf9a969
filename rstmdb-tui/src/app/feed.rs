//! The transitions feed: a bounded ring of recent transitions, a text filter, and the
//! transitions-per-second history behind the sparkline.

use std::collections::VecDeque;

/// The most transitions the feed keeps; older ones fall off. At 1,000+ transitions/s the
/// screen shows a sample of the newest, while the counts stay exact (they are kept apart).
pub const FEED_CAPACITY_ENTRIES: usize = 1_000;

/// Seconds of history in the sparkline.
pub const SPARKLINE_SECONDS: usize = 60;

/// One transition as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Wall-clock time the dashboard received it, `HH:MM:SS` UTC.
    pub time: String,
    pub instance_id: String,
    pub machine: String,
    pub version: u32,
    pub from_state: String,
    pub to_state: String,
    pub event: String,
    pub wal_offset: u64,
}

impl FeedEntry {
    /// Whether the filter text occurs in the machine, either state or the event (case
    /// sensitive, as names are). An empty filter matches everything.
    pub fn matches(&self, filter: &str) -> bool {
        filter.is_empty()
            || [&self.machine, &self.from_state, &self.to_state, &self.event]
                .iter()
                .any(|field| field.contains(filter))
    }
}

/// Newest-first ring of transitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    entries: VecDeque<FeedEntry>,
}

impl Feed {
    pub fn push(&mut self, entry: FeedEntry) {
        if self.entries.len() == FEED_CAPACITY_ENTRIES {
            self.entries.pop_back();
        }
        self.entries.push_front(entry);
    }

    /// The entries that pass `filter`, newest first.
    pub fn visible<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a FeedEntry> + 'a {
        self.entries
            .iter()
            .filter(move |entry| entry.matches(filter))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Transitions counted per wall-clock second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHistory {
    /// Completed seconds, oldest first, at most [`SPARKLINE_SECONDS`].
    completed: VecDeque<u64>,
    current_second: Option<u64>,
    current_count: u64,
}

impl RateHistory {
    /// Counts one transition in the current second.
    pub fn record(&mut self) {
        self.current_count += 1;
    }

    /// Moves the clock to `unix_secs`: finished seconds are closed, and seconds with no
    /// transition at all are recorded as zeros.
    pub fn advance_to(&mut self, unix_secs: u64) {
        let Some(current) = self.current_second else {
            self.current_second = Some(unix_secs);
            return;
        };
        if unix_secs <= current {
            return;
        }
        let elapsed = unix_secs - current;
        self.close(self.current_count);
        // Quiet seconds in between, but never more than the history can show.
        for _ in 1..elapsed.min(SPARKLINE_SECONDS as u64) {
            self.close(0);
        }
        self.current_count = 0;
        self.current_second = Some(unix_secs);
    }

    fn close(&mut self, count: u64) {
        if self.completed.len() == SPARKLINE_SECONDS {
            self.completed.pop_front();
        }
        self.completed.push_back(count);
    }

    /// Completed seconds, oldest first.
    pub fn per_second(&self) -> Vec<u64> {
        self.completed.iter().copied().collect()
    }

    /// The last completed second's count (0 before the first second completes).
    pub fn last_second(&self) -> u64 {
        self.completed.back().copied().unwrap_or(0)
    }
}
