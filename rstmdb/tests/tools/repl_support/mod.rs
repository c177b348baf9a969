//! A real `rstmdb serve` process for the REPL tests, and the REPL command pointed at it.

use assert_cmd::Command as AssertCommand;
use rstmdb_testkit::binary::{clear_rstmdb_env, rstmdb_env_names};
use rstmdb_testkit::machines::ORDER_DEFINITION;
use rstmdb_testkit::net::free_port;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// No REPL command in these tests should take long; a hang fails instead of blocking CI.
const REPL_TIMEOUT: Duration = Duration::from_secs(60);

/// A `rstmdb serve` child in a temp dir; killed (by its pid) when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: TempDir,
    log_path: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with_env(&[])
    }

    /// With auth required for `token`.
    pub fn start_with_token(token: &str) -> Server {
        let hash = rstmdb::server::auth::token_hash_hex(token);
        Self::start_with_env(&[
            ("RSTMDB_AUTH_REQUIRED", "true"),
            ("RSTMDB_AUTH_TOKEN_HASH", &hash),
        ])
    }

    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let mut dir = tempfile::tempdir().expect("temp dir");
        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log_path = dir.path().join(format!("server-{attempt}.log"));
            let log = File::create(&log_path).expect("create server log");
            let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
            command
                .arg("serve")
                .arg("--bind")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(dir.path().join(format!("data-{attempt}")))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log);
            // The developer's own RSTMDB_* settings (a config file, TLS, auth) must not leak in.
            clear_rstmdb_env(&mut command);
            command.envs(env.iter().copied());
            let child = command.spawn().expect("spawn rstmdb serve");
            let mut server = Server {
                child,
                addr,
                dir,
                log_path,
            };
            if server.wait_until_accepting() {
                return server;
            }
            last_log = server.log();
            dir = server.take_dir();
        }
        panic!("rstmdb serve never accepted connections ({START_ATTEMPTS} attempts):\n{last_log}");
    }

    fn take_dir(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    /// True once a TCP connect succeeds; false if the process exits first.
    fn wait_until_accepting(&mut self) -> bool {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if self.child.try_wait().expect("poll server").is_some() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "rstmdb serve did not accept connections on {} within {SERVER_START_TIMEOUT:?}:\n{}",
                self.addr,
                self.log()
            );
            sleep(POLL_INTERVAL);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `rstmdb repl -s ADDR` with a clean environment, ready for more args.
    pub fn repl(&self) -> AssertCommand {
        let mut command = repl_command();
        command.arg("-s").arg(self.addr.to_string());
        command
    }

    /// Runs `-c COMMAND` and asserts it succeeds; returns its stdout.
    pub fn run_ok(&self, command: &str) -> String {
        let output = self
            .repl()
            .arg("-c")
            .arg(command)
            .output()
            .expect("run repl");
        assert!(
            output.status.success(),
            "`{command}` failed with {:?}:\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Puts the order machine of the spec's worked example, version 1.
    pub fn put_order_machine(&self) {
        self.run_ok(&format!("put-machine order 1 {ORDER_DEFINITION}"));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rstmdb repl` without the developer's RSTMDB_* variables and with a time limit.
pub fn repl_command() -> AssertCommand {
    let mut command = AssertCommand::new(env!("CARGO_BIN_EXE_rstmdb"));
    command.arg("repl").timeout(REPL_TIMEOUT);
    for name in rstmdb_env_names() {
        command.env_remove(name);
    }
    command
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}
