//! Rate limits for log lines a client can trigger at will (refused connections, failed AUTH):
//! a flood must not fill the disk or drown everything else, yet the operator must learn that
//! lines were dropped and how many.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines of one kind the server writes per window before it starts dropping them.
pub const LOG_LINES_PER_WINDOW: u32 = 20;
pub const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Lets [`LOG_LINES_PER_WINDOW`] lines through per [`LOG_WINDOW`]; counts the rest.
#[derive(Debug)]
pub(crate) struct LogLimit {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    /// Dropped since the last line that was written.
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self {
            state: Mutex::new(Window {
                started: Instant::now(),
                written: 0,
                suppressed: 0,
            }),
        }
    }
}

impl LogLimit {
    /// `Some(n)`: write the line, noting that `n` like it were dropped before it; `None`: drop
    /// it.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means a panic while counting; the counts stay usable.
        let mut window = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(window.started) >= LOG_WINDOW {
            window.started = now;
            window.written = 0;
        }
        if window.written >= LOG_LINES_PER_WINDOW {
            window.suppressed += 1;
            return None;
        }
        window.written += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_next_window_reports_what_was_dropped() {
        let limit = LogLimit::default();
        let start = Instant::now();
        let written = (0..1000)
            .filter(|_| limit.admit_at(start).is_some())
            .count();
        assert_eq!(written, LOG_LINES_PER_WINDOW as usize);
        assert_eq!(
            limit.admit_at(start + LOG_WINDOW),
            Some(1000 - u64::from(LOG_LINES_PER_WINDOW))
        );
        assert_eq!(limit.admit_at(start + LOG_WINDOW), Some(0));
    }
}
