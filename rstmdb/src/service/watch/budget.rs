//! A bound on the CPU share of watch delivery, so that many subscribers cannot starve the
//! writes that produce their events (docs/watch-streams.md, "Fairness").
//!
//! Delivery work is timed where it happens: a subscription building a batch, a connection
//! writer encoding events and writing them to the socket (the kernel's share of loopback or
//! network sends included). The time is charged to a leaky bucket that drains at
//! `share × cores` nanoseconds per nanosecond of wall time. While the bucket holds more than
//! one burst, subscriptions wait before taking their next batch: they fall behind, and catch
//! up from the ring or the WAL later, so nothing is skipped — events arrive later, not fewer.
//!
//! While bounded, subscriptions take turns ([`DeliveryBudget::turn`]): one reads and builds its
//! batch at a time, and the one whose turn it is waits out any pause for all. The others wait
//! in a FIFO queue instead of all sleeping and waking together, which would flood the runtime's
//! run queues with delivery tasks right when writes need them, and cost a wake-up each.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Debt that is tolerated before anyone waits: short bursts are delivered at once.
const BURST: Duration = Duration::from_millis(5);

/// The shared budget of one server's watch delivery.
#[derive(Debug)]
pub struct DeliveryBudget {
    /// Delivery nanoseconds the budget refills per wall-clock nanosecond; `None`: unbounded.
    rate: Option<f64>,
    bucket: Mutex<Bucket>,
    /// One permit: whose turn it is to read and build a batch.
    lane: Arc<Semaphore>,
}

/// A subscription's turn to read and build one batch; release it before waiting for room in
/// the connection's queue, so that one slow reader does not hold up the others.
#[derive(Debug)]
pub struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
    /// Whether delivery had to pause for the budget before this turn.
    pub paused: bool,
}

#[derive(Debug)]
struct Bucket {
    /// Delivery time charged and not yet drained, in nanoseconds.
    debt_ns: f64,
    drained_at: Instant,
}

impl DeliveryBudget {
    /// A budget of `cpu_percent` of `cores` cores; 0 (or 100 or more of every core) means
    /// unbounded.
    pub fn new(cpu_percent: u32, cores: usize) -> DeliveryBudget {
        let rate = f64::from(cpu_percent) / 100.0 * cores.max(1) as f64;
        let bounded = cpu_percent > 0 && cpu_percent < 100;
        DeliveryBudget {
            rate: bounded.then_some(rate),
            bucket: Mutex::new(Bucket {
                debt_ns: 0.0,
                drained_at: Instant::now(),
            }),
            lane: Arc::new(Semaphore::new(1)),
        }
    }

    /// A budget of `cpu_percent` of this machine's cores.
    pub fn for_this_machine(cpu_percent: u32) -> DeliveryBudget {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        DeliveryBudget::new(cpu_percent, cores)
    }

    /// Records delivery work that took `spent`.
    pub fn charge(&self, spent: Duration) {
        if self.rate.is_none() {
            return;
        }
        let mut bucket = self.lock();
        bucket.debt_ns += spent.as_nanos() as f64;
    }

    /// Waits for this subscription's turn and for the budget to allow more delivery; at once
    /// when the budget is unbounded. Cancel-safe: dropping the future gives the turn back.
    pub async fn turn(&self) -> Turn {
        if self.rate.is_none() {
            return Turn {
                _permit: None,
                paused: false,
            };
        }
        // The lane is never closed, so this only fails if that changes; then nobody waits.
        let permit = Arc::clone(&self.lane).acquire_owned().await.ok();
        let pause = self.pause();
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        Turn {
            _permit: permit,
            paused: pause.is_some(),
        }
    }

    /// How long delivery should pause now so that its share stays within the budget; `None`
    /// when it may go on.
    pub fn pause(&self) -> Option<Duration> {
        self.pause_at(Instant::now())
    }

    fn pause_at(&self, now: Instant) -> Option<Duration> {
        let rate = self.rate?;
        let mut bucket = self.lock();
        let elapsed_ns = now.saturating_duration_since(bucket.drained_at).as_nanos() as f64;
        bucket.debt_ns = (bucket.debt_ns - elapsed_ns * rate).max(0.0);
        bucket.drained_at = now;
        let excess_ns = bucket.debt_ns - BURST.as_nanos() as f64;
        (excess_ns > 0.0).then(|| Duration::from_nanos((excess_ns / rate) as u64))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // Two plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unbounded_budget_never_pauses() {
        for percent in [0, 100, 250] {
            let budget = DeliveryBudget::new(percent, 2);
            budget.charge(Duration::from_secs(10));
            assert_eq!(budget.pause(), None, "{percent}%");
        }
    }

    #[tokio::test]
    async fn turns_are_taken_one_at_a_time_in_arrival_order() {
        let budget = Arc::new(DeliveryBudget::new(25, 2));
        let first = budget.turn().await;
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.turn().await.paused }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second waits for the first turn"
        );
        budget.charge(BURST + Duration::from_millis(1));
        drop(first);
        assert!(waiting.await.expect("joins"), "and then for the budget");
    }

    #[test]
    fn work_beyond_the_burst_pauses_until_the_share_is_met() {
        // 25% of 2 cores: 0.5 ms of delivery per ms of wall time.
        let budget = DeliveryBudget::new(25, 2);
        let start = Instant::now();
        budget.pause_at(start);
        budget.charge(BURST);
        assert_eq!(budget.pause_at(start), None, "a burst is free");
        budget.charge(Duration::from_millis(10));
        let pause = budget.pause_at(start).expect("over budget");
        assert_eq!(
            pause,
            Duration::from_millis(20),
            "10 ms of work at 0.5 ms per ms"
        );
        assert_eq!(
            budget.pause_at(start + pause),
            None,
            "drained after the pause"
        );
    }
}
