//! Interop with the public Python client `rstmdb` from PyPI (spec §1.2: it must keep working
//! unmodified). Each test starts a real `rstmdb serve` on a free port in a temp data dir, with
//! bearer auth required, and runs `tests/interop/scenario.py` against it: once over plain TCP
//! (the full scenario) and once over TLS with an rcgen-issued certificate (the short one).
//!
//! The Python side lives in a virtualenv made by `scripts/python-env` (also run by
//! `scripts/test`); the test runs that script once per process, so a fresh checkout works too.

use rstmdb_testkit::binary::clear_rstmdb_env;
use rstmdb_testkit::net::free_port;
use rstmdb_testkit::tls::{TlsFiles, issue_tls_files};
use rstmdb_testkit::{TOKEN, TOKEN_HASH};
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The scenario's own request timeouts are 15 s; this bounds a wedged interpreter or server.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// Another process may grab the free port between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the rstmdb crate lives inside the workspace")
        .to_path_buf()
}

/// The virtualenv's interpreter, after `scripts/python-env` has run once in this process.
fn interop_python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let python = PYTHON.get_or_init(|| {
        let root = workspace_root();
        let output = Command::new(root.join("scripts/python-env"))
            .current_dir(&root)
            .output()
            .map_err(|err| format!("cannot run scripts/python-env: {err}"))?;
        if !output.status.success() {
            return Err(format!(
                "scripts/python-env failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        // Same default and override as the script; a relative override is relative to the root.
        let venv = std::env::var_os("RSTMDB_INTEROP_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".venv-interop"));
        Ok(root.join(venv).join("bin/python"))
    });
    match python {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits for `child` with a deadline; kills it (by the pid we started) when the deadline passes.
fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        sleep(POLL_INTERVAL);
    }
}

/// A `rstmdb serve` child process with auth required; killed (by its pid) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
}

impl Server {
    fn start(work_dir: &Path, tls: Option<&TlsFiles>) -> Server {
        let mut last_log = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let log_path = work_dir.join(format!("server-{attempt}.log"));
            let log = File::create(&log_path).expect("create server log");
            let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
            command
                .arg("serve")
                .arg("--bind")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(work_dir.join(format!("data-{attempt}")))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log);
            // The developer's own RSTMDB_* settings (a config file, TLS, auth) must not leak in.
            clear_rstmdb_env(&mut command);
            command
                .env("RUST_LOG", "info")
                .env("RSTMDB_AUTH_REQUIRED", "true")
                .env("RSTMDB_AUTH_TOKEN_HASH", TOKEN_HASH);
            if let Some(tls) = tls {
                command
                    .env("RSTMDB_TLS_ENABLED", "true")
                    .env("RSTMDB_TLS_CERT", &tls.server_cert)
                    .env("RSTMDB_TLS_KEY", &tls.server_key);
            }
            let mut server = Server {
                child: command.spawn().expect("spawn rstmdb serve"),
                addr,
                log_path,
            };
            if server.wait_until_accepting() {
                return server;
            }
            last_log = server.log();
        }
        panic!("rstmdb serve never accepted connections ({START_ATTEMPTS} attempts):\n{last_log}");
    }

    /// True once a TCP connect succeeds; false if the process exits first. Panics at the deadline.
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

    fn log(&self) -> String {
        read_or_empty(&self.log_path)
    }

    /// Runs the scenario against this server; panics with its output and the server's log
    /// unless it exits 0. Returns the scenario's stdout (one `ok` line per passed step).
    fn run_scenario(&self, work_dir: &Path, extra_args: &[&str]) -> String {
        let scenario = workspace_root().join("tests/interop/scenario.py");
        let stdout_path = work_dir.join("scenario.stdout");
        let stderr_path = work_dir.join("scenario.stderr");
        let mut child = Command::new(interop_python())
            .arg("-u")
            .arg(&scenario)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args(["--token", TOKEN])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create scenario stdout"))
            .stderr(File::create(&stderr_path).expect("create scenario stderr"))
            .spawn()
            .expect("spawn the Python scenario");
        let status = wait_with_deadline(&mut child, SCENARIO_TIMEOUT);
        let stdout = read_or_empty(&stdout_path);
        if status.is_none_or(|status| !status.success()) {
            let outcome = status.map_or_else(
                || format!("killed after {SCENARIO_TIMEOUT:?}"),
                |status| status.to_string(),
            );
            panic!(
                "Python interop scenario failed ({outcome})\n--- scenario stdout\n{stdout}\
                 --- scenario stderr\n{}--- server log\n{}",
                read_or_empty(&stderr_path),
                self.log()
            );
        }
        stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_steps_passed(stdout: &str, steps: &[&str]) {
    for step in steps {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("ok   {step}"))),
            "step {step:?} did not report success:\n{stdout}"
        );
    }
}

#[test]
fn python_client_runs_the_full_scenario_with_auth() {
    let work_dir = TempDir::new().expect("temp dir");
    let server = Server::start(work_dir.path(), None);

    let stdout = server.run_scenario(work_dir.path(), &[]);

    assert_steps_passed(
        &stdout,
        &[
            "a wrong token is refused with AUTH_FAILED",
            "PUT_MACHINE",
            "APPLY_EVENT replayed with the same idempotency key writes nothing",
            "APPLY_EVENT whose guard fails raises GUARD_FAILED",
            "COMPACT",
            "WATCH_ALL delivers an apply made on a second connection",
            "WATCH_INSTANCE without ctx and a filtered WATCH_ALL get only their events",
        ],
    );
}

#[test]
fn python_client_runs_the_short_scenario_over_tls() {
    let work_dir = TempDir::new().expect("temp dir");
    let tls = issue_tls_files(work_dir.path());
    let server = Server::start(work_dir.path(), Some(&tls));

    let ca_cert = tls.ca_cert.to_string_lossy().into_owned();
    let stdout = server.run_scenario(work_dir.path(), &["--tls", "--ca-cert", &ca_cert]);

    assert!(stdout.contains("over TLS"), "not a TLS run:\n{stdout}");
    assert_steps_passed(
        &stdout,
        &[
            "connect (HELLO, AUTH) and PING",
            "PUT_MACHINE",
            "CREATE_INSTANCE with initial_ctx",
            "APPLY_EVENT PAY with a payload merges it into ctx",
            "GET_INSTANCE shows the new state and merged ctx",
        ],
    );
}
