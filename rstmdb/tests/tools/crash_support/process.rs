//! The real `rstmdb serve` as a child process: started on 127.0.0.1:0 (its address read from
//! the "rstmdb listening" log line, so no port race), killed with SIGKILL by its own pid.

use rstmdb_testkit::binary::clear_rstmdb_env;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `RSTMDB_CRASH_LOOP_BIN` (e.g. a release build) or the binary cargo built for this test.
pub fn server_binary() -> PathBuf {
    std::env::var_os("RSTMDB_CRASH_LOOP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rstmdb")))
}

/// How one server start is configured (environment variables of spec §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSetup {
    /// `every_write`, `every_n:N` or `every_ms:N`.
    pub fsync_policy: String,
    pub segment_size_mb: u64,
    /// Automatic compaction with the lowest thresholds, or none at all.
    pub eager_compaction: bool,
}

#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// Log lines read so far (start-up, recovery cuts).
    pub log: Vec<String>,
}

impl ServerProcess {
    pub fn start(binary: &Path, data_dir: &Path, setup: &ServerSetup) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "text"])
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        clear_rstmdb_env(&mut command);
        command
            .env("RUST_LOG", "info")
            .env("RSTMDB_FSYNC_POLICY", &setup.fsync_policy)
            .env(
                "RSTMDB_WAL_SEGMENT_SIZE_MB",
                setup.segment_size_mb.to_string(),
            )
            // Automatic compaction as eager as the configuration allows; the harness also
            // sends COMPACT itself, because the background check runs only every 10 s.
            .env(
                "RSTMDB_COMPACT_ENABLED",
                if setup.eager_compaction {
                    "true"
                } else {
                    "false"
                },
            )
            .env("RSTMDB_COMPACT_EVENTS", "500")
            .env("RSTMDB_COMPACT_SIZE_MB", "2")
            .env("RSTMDB_COMPACT_INTERVAL", "0")
            // Every idempotency entry keeps its full result, ctx included, and checkpoints
            // carry the table: at the default 100,000 entries of this workload's ~2 KiB ctx
            // a checkpoint reaches ~190 MB and each cycle's recovery and COMPACT slow down
            // with it. A cycle writes at most a few thousand keys and retries them in the
            // same cycle, so 25,000 keeps every key the checks need.
            .env("RSTMDB_IDEMPOTENCY_MAX_ENTRIES", "25000");
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("stderr is not piped")?;
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut process = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
            log: Vec::new(),
        };
        loop {
            let line = process
                .lines
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| format!("no \"rstmdb listening\" line; log: {:#?}", process.log))?;
            process.log.push(line.clone());
            if line.contains("rstmdb listening") {
                process.addr = listening_addr(&line)?;
                return Ok(process);
            }
        }
    }

    #[allow(dead_code)] // for debugging a cycle: which process was killed
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (std's `Child::kill` on Unix) to this child's pid, reaped; returns its log.
    pub fn kill(&mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        std::mem::take(&mut self.log)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listening_addr(line: &str) -> Result<SocketAddr, String> {
    let at = line
        .find("addr=")
        .ok_or_else(|| format!("no addr= in {line:?}"))?
        + "addr=".len();
    line[at..]
        .split_whitespace()
        .next()
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("no address in {line:?}"))
}
