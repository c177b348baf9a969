//! The thread long reads run on ([`super::Database::read_long`]): one thread of their own, at
//! a lower CPU priority than the runtime's workers and the sequencer.
//!
//! Pacing bounds what long reads take on average; the priority decides who runs first when a
//! writer's request wakes while a page is being built. On two cores, a page of 1,000 instances
//! built at the same priority as the workers kept a concurrent writer waiting for a time slice
//! (its p99 about 3× idle with the list load's client niced, docs/benchmarks.md); at a lower
//! priority the writer's thread preempts it.
//!
//! A thread of its own rather than the blocking pool: a pool thread's priority cannot be raised
//! back without privileges once lowered, and the pool also runs work that must not be slowed.

use rstmdb_protocol::RcpError;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How much nicer the long-read thread is than the thread that starts it (Linux nice values run
/// from -20 to 19; each step is about 10 % less CPU under contention). Not the lowest priority:
/// long reads must still progress on a server whose writers keep both cores busy (10 steps
/// nicer, a busy thread gets about a tenth of what the others get).
pub const LONG_READ_NICE_INCREMENT: i32 = 10;

/// The highest nice value Linux allows.
const NICEST: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug)]
pub(crate) struct LongReadThread {
    jobs: mpsc::Sender<Job>,
}

impl LongReadThread {
    /// Starts the thread; it ends once this value is dropped and its queued jobs are done.
    pub(crate) fn start() -> std::io::Result<LongReadThread> {
        let (jobs, queued) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("long-reads".to_owned())
            .spawn(move || {
                lower_priority(LONG_READ_NICE_INCREMENT);
                for job in queued {
                    job();
                }
            })?;
        Ok(LongReadThread { jobs })
    }

    /// Runs `work` on the thread. A panic in it is this read's `INTERNAL_ERROR`; the thread
    /// goes on with the next read.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RcpError> {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
        });
        let stopped = || RcpError::internal("the long-read thread has stopped");
        self.jobs.send(job).map_err(|_| stopped())?;
        match answer.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(RcpError::internal("a long read panicked")),
            Err(_) => Err(stopped()),
        }
    }
}

/// On Linux each thread has its own nice value, and `setpriority(PRIO_PROCESS, 0)` sets the
/// calling thread's only; a thread starts with its creator's. Elsewhere it would renice the
/// whole process, so it is not done.
fn lower_priority(increment: i32) {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let lowered = getpriority_process(None)
            .and_then(|nice| setpriority_process(None, (nice + increment).min(NICEST)));
        if let Err(err) = lowered {
            tracing::warn!(%err, "cannot lower the long-read thread's priority; long reads compete with requests for the CPU");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = increment;
}

/// CPU time the calling thread has used so far. Long reads are paced by it rather than by the
/// wall clock: a page built at a low priority is preempted often, and its wall time counts the
/// time others ran, so long reads were held below their share of the CPU, most of all when
/// the server was busy.
pub(crate) fn thread_cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        // No per-thread clock here: the time since the first call stands in for it.
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pacing_clock_counts_work_not_waiting() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time() - before;
        let before = thread_cpu_time();
        let spin_until = std::time::Instant::now() + Duration::from_millis(50);
        while std::time::Instant::now() < spin_until {
            std::hint::spin_loop();
        }
        let spun = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(10), "sleeping cost {slept:?}");
        // At least some of the 50 ms of spinning is this thread's, however busy the machine.
        assert!(
            spun > Duration::from_millis(5),
            "spinning cost only {spun:?}"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn long_reads_run_at_a_lower_priority_and_survive_a_panic() {
        use rustix::process::getpriority_process;
        let starter = getpriority_process(None).unwrap();
        let thread = LongReadThread::start().unwrap();
        let panicked = thread.run(|| panic!("a read that panics")).await;
        assert!(panicked.is_err());
        let nice = thread
            .run(|| getpriority_process(None))
            .await
            .expect("the thread still runs reads")
            .unwrap();
        assert_eq!(nice, (starter + LONG_READ_NICE_INCREMENT).min(NICEST));
        assert_eq!(getpriority_process(None).unwrap(), starter);
    }
}
