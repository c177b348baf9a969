//! The real `rstmdb` binary as a child process. The binary's path comes from the test
//! (`env!("CARGO_BIN_EXE_rstmdb")`, which cargo sets only while compiling the rstmdb crate's
//! own tests).

use crate::TOKEN_HASH;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The names of this process's `RSTMDB_*` environment variables.
pub fn rstmdb_env_names() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_string_lossy().starts_with("RSTMDB_"))
        .collect()
}

/// Removes every `RSTMDB_*` variable from `command`'s environment, so the developer's own
/// settings (a config file, TLS, auth) do not leak into a server or tool under test.
pub fn clear_rstmdb_env(command: &mut Command) -> &mut Command {
    for name in rstmdb_env_names() {
        command.env_remove(name);
    }
    command
}

/// `rstmdb serve` with its stderr and stdout read line by line, stopped with SIGTERM by its pid.
#[derive(Debug)]
pub struct RunningBinary {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    _dir: tempfile::TempDir,
}

impl RunningBinary {
    /// `binary serve` on 127.0.0.1:0 in a fresh data directory, with auth required (token
    /// [`TOKEN`](crate::TOKEN)), no `RSTMDB_*` variable of this process, and `env` added.
    pub fn start(
        binary: &Path,
        log_format: &str,
        rust_log: &str,
        env: &[(&str, &str)],
    ) -> RunningBinary {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(binary);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", log_format])
            .arg("--data-dir")
            .arg(dir.path());
        clear_rstmdb_env(&mut command);
        let mut child = command
            .env("RUST_LOG", rust_log)
            .env("RSTMDB_AUTH_REQUIRED", "true")
            .env("RSTMDB_AUTH_TOKEN_HASH", TOKEN_HASH)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", binary.display()));
        // Both streams feed one channel: tests about what is logged see every line written.
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        forward_lines(stderr, send.clone());
        forward_lines(stdout, send);
        RunningBinary {
            child,
            lines,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    /// [`RunningBinary::start`] with text logs at `info`, once it listens; with its address.
    pub fn listening(binary: &Path, env: &[(&str, &str)]) -> (RunningBinary, SocketAddr) {
        let mut running = RunningBinary::start(binary, "text", "info", env);
        let addr = logged_addr(&running.wait_for("rstmdb listening"));
        (running, addr)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// The server's process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no log line with {needle:?}; saw {:#?}", self.seen));
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Sends SIGTERM to the process by its pid, waits for the graceful shutdown to finish,
    /// and returns every line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if !matches!(terminated, Ok(status) if status.success()) {
            let _ = self.child.kill();
        }
        self.wait_for("shutdown complete");
        let _ = self.child.wait();
        // The reader threads end at end of file, closing the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for RunningBinary {
    /// A test that fails before `stop` leaves no server behind (SIGKILL to this child's pid).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line `stream` yields to `send` until the end of the stream.
pub(crate) fn forward_lines(
    stream: impl std::io::Read + Send + 'static,
    send: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                return;
            }
        }
    });
}

/// The `addr` of a log line such as "rstmdb listening", in either log format.
pub fn logged_addr(line: &str) -> SocketAddr {
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(line) {
        return event["addr"]
            .as_str()
            .expect("addr field")
            .parse()
            .expect("an address");
    }
    // Text format: "... rstmdb listening addr=127.0.0.1:PORT"
    let at = line.find("addr=").expect("addr= in the text line") + "addr=".len();
    line[at..]
        .split_whitespace()
        .next()
        .and_then(|addr| addr.parse().ok())
        .expect("an address")
}

/// Whether `output` (the binary's stderr) says `message`, however miette wrapped it to the
/// terminal width: whitespace and miette's frame characters are ignored on both sides.
pub fn says(output: &str, message: &str) -> bool {
    fn unwrapped(text: &str) -> String {
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != '│')
            .collect()
    }
    unwrapped(output).contains(&unwrapped(message))
}
