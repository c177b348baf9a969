//! The `rstmdb hash-token` and `rstmdb serve` subcommands, run as real processes.

use assert_cmd::Command;
use rstmdb_testkit::{TOKEN, TOKEN_HASH};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn hash_token_prints_the_spec_hash() {
    Command::cargo_bin("rstmdb")
        .expect("binary")
        .args(["hash-token", TOKEN])
        .assert()
        .success()
        .stdout(format!("{TOKEN_HASH}\n"));
}

#[test]
fn serve_refuses_a_bad_config_value_naming_the_variable() {
    Command::cargo_bin("rstmdb")
        .expect("binary")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("RSTMDB_MAX_CONNECTIONS", "lots")
        .assert()
        .failure()
        .stderr(predicates::str::contains("RSTMDB_MAX_CONNECTIONS"));
}

/// Kills the server if the test fails half-way, so no process outlives it.
struct ServeProcess(std::process::Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_ping_and_exits_zero_on_sigterm() {
    let binary = assert_cmd::cargo::cargo_bin("rstmdb");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let child = std::process::Command::new(binary)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--fsync",
            "every_n:10",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env("RUST_LOG", "info")
        .env_remove("RSTMDB_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut serve = ServeProcess(child);

    // Log lines arrive on a thread so that every wait below has a deadline.
    let stderr = serve.0.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = String::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no listening line:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };

    let mut socket = TcpStream::connect(&addr).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket
        .write_all(b"{\"type\":\"request\",\"id\":\"1\",\"op\":\"PING\"}\n")
        .expect("write");
    let mut reply = String::new();
    BufReader::new(&socket)
        .read_line(&mut reply)
        .expect("reply");
    assert_eq!(
        reply,
        "{\"type\":\"response\",\"id\":\"1\",\"status\":\"ok\",\"result\":{\"pong\":true}}\n"
    );
    drop(socket);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = serve.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit after SIGTERM:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(exit.success(), "exit status {exit:?}\n{log}");
    for expected in [
        "data directory",
        "every_n:10",
        "authentication",
        "TLS disabled",
        "shutdown complete",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
}
