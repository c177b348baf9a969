//! CPU time of a process from `/proc/<pid>/stat` (the `getrusage` figures without unsafe code).

/// Kernel clock ticks per second of `utime`/`stime` (USER_HZ). It is 100 on every Linux
/// architecture we run on; reading it with `sysconf(_SC_CLK_TCK)` would need unsafe FFI.
const USER_HZ: f64 = 100.0;

/// User and system CPU seconds of a process, all threads included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTime {
    pub user_secs: f64,
    pub system_secs: f64,
}

impl CpuTime {
    /// This process. `None` where `/proc` is unavailable.
    pub fn of_self() -> Option<Self> {
        Self::read("/proc/self/stat")
    }

    pub fn of_pid(pid: u32) -> Option<Self> {
        Self::read(&format!("/proc/{pid}/stat"))
    }

    fn read(path: &str) -> Option<Self> {
        parse_stat(&std::fs::read_to_string(path).ok()?)
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

/// Fields 14 and 15 (`utime`, `stime`) of a stat line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted after the
/// last `)`.
fn parse_stat(line: &str) -> Option<CpuTime> {
    let after_name = &line[line.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come field 3 (state) onwards; utime is field 14, i.e. the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(CpuTime {
        user_secs: utime as f64 / USER_HZ,
        system_secs: stime as f64 / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_name_with_spaces_and_parentheses() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 4 0";
        let cpu = parse_stat(line).expect("parses");
        assert_eq!(cpu.user_secs, 2.5);
        assert_eq!(cpu.system_secs, 0.75);
    }

    #[test]
    fn this_process_has_a_readable_cpu_time() {
        let cpu = CpuTime::of_self().expect("/proc/self/stat is readable on Linux");
        assert!(cpu.total_secs() >= 0.0);
    }
}
