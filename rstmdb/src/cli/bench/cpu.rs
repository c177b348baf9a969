//! CPU time of a process, from the kernel's per-process statistics (`procfs`, which also knows
//! the clock tick rate instead of assuming one).

/// User and system CPU seconds of a process, all threads included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_secs: f64,
    pub system_secs: f64,
}

impl CpuTime {
    /// This process. `None` where `/proc` is unavailable.
    pub fn of_self() -> Option<Self> {
        Self::read(procfs::process::Process::myself().ok()?)
    }

    pub fn of_pid(pid: u32) -> Option<Self> {
        Self::read(procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?)
    }

    fn read(process: procfs::process::Process) -> Option<Self> {
        let stat = process.stat().ok()?;
        let ticks_per_second = procfs::ticks_per_second() as f64;
        Some(CpuTime {
            user_secs: stat.utime as f64 / ticks_per_second,
            system_secs: stat.stime as f64 / ticks_per_second,
        })
    }

    pub fn total_secs(&self) -> f64 {
        self.user_secs + self.system_secs
    }

    /// The CPU used between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user_secs: (self.user_secs - earlier.user_secs).max(0.0),
            system_secs: (self.system_secs - earlier.system_secs).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_accumulates_cpu_time_while_it_works() {
        use std::time::{Duration, Instant};
        let before = CpuTime::of_self().expect("/proc/self/stat is readable on Linux");
        let started = Instant::now();
        // Spin until the kernel has counted 100 ms of CPU for this process. How much wall time
        // that takes depends on what else the machine runs (the test suite runs other tests and
        // a build beside this one), so the deadline is only a guard against a reading that
        // never moves.
        let mut spin = 0u64;
        let used = loop {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            let used = CpuTime::of_self().expect("readable").since(&before);
            if used.total_secs() >= 0.1 {
                break used;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "60 s of spinning and the process's CPU time moved only {used:?}"
            );
        };
        // Seconds, not clock ticks: the process (this test and whatever other tests run in
        // its threads) cannot have used more CPU than wall time passed on every core, plus a
        // tick of rounding (10 ms at the usual 100 Hz).
        let wall = started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(
            used.total_secs() <= wall * cores + 0.05,
            "{used:?} of CPU in {wall:.3} s of wall time on {cores} cores: not seconds"
        );
        assert_eq!(
            CpuTime::of_pid(std::process::id()).map(|cpu| cpu.total_secs() > 0.0),
            Some(true)
        );
    }
}
