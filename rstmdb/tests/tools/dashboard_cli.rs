//! `rstmdb dashboard` refuses to start with a readable message, before taking over the screen,
//! when the server cannot be reached or refuses the token.

use crate::repl_support::Server;
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use rstmdb_testkit::binary::rstmdb_env_names;
use rstmdb_testkit::net::free_port;

fn dashboard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
    for name in rstmdb_env_names() {
        command.env_remove(name);
    }
    command
        .arg("dashboard")
        .timeout(std::time::Duration::from_secs(30));
    command
}

#[test]
fn an_unreachable_server_is_reported_with_exit_status_2() {
    let addr = format!("127.0.0.1:{}", free_port());
    dashboard()
        .args(["-s", &addr])
        .assert()
        .code(2)
        .stderr(contains("error: cannot connect to").and(contains(addr.as_str())));
}

#[test]
fn a_wrong_token_is_reported_with_exit_status_2() {
    let server = Server::start_with_token("right-token");
    dashboard()
        .args(["-s", &server.addr.to_string(), "-t", "wrong-token"])
        .assert()
        .code(2)
        .stderr(contains("AUTH_FAILED"));
}

#[test]
fn a_tls_handshake_against_a_plaintext_server_is_reported_with_exit_status_2() {
    let server = Server::start();
    dashboard()
        .args(["-s", &server.addr.to_string(), "--tls", "-k"])
        .assert()
        .code(2)
        .stderr(contains("error: TLS: handshake failed"));
}
