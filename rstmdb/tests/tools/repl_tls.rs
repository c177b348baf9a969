//! `rstmdb repl` over TLS: the connection flags reach the client (CA bundle, insecure mode),
//! and a certificate that cannot be verified is a connection failure (exit 2).

use crate::repl_support::Server;
use predicates::prelude::*;
use rstmdb_testkit::tls::issue_tls_files;

#[test]
fn tls_flags_connect_with_the_ca_or_insecurely_and_an_unverified_certificate_exits_2() {
    let certs = tempfile::tempdir().expect("temp dir");
    let files = issue_tls_files(certs.path());
    let cert = files.server_cert.display().to_string();
    let key = files.server_key.display().to_string();
    let server = Server::start_with_env(&[
        ("RSTMDB_TLS_ENABLED", "true"),
        ("RSTMDB_TLS_CERT", &cert),
        ("RSTMDB_TLS_KEY", &key),
    ]);

    server
        .repl()
        .arg("--ca-cert")
        .arg(&files.ca_cert)
        .args(["-c", "ping"])
        .assert()
        .success()
        .stdout("pong\n");
    server
        .repl()
        .args(["--tls", "-k", "-c", "ping"])
        .assert()
        .success()
        .stdout("pong\n");
    // A CA that did not sign the server's certificate: the handshake fails.
    let stranger = tempfile::tempdir().expect("temp dir");
    let other_ca = issue_tls_files(stranger.path()).ca_cert;
    server
        .repl()
        .arg("--ca-cert")
        .arg(&other_ca)
        .args(["-c", "ping"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: TLS: "));
    // There are no built-in roots, so TLS without a CA is refused before connecting.
    server
        .repl()
        .args(["--tls", "-c", "ping"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ca_cert"));
}
