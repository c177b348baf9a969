//! `rstmdb repl` over TLS: the connection flags reach the client (CA bundle, insecure mode),
//! and a certificate that cannot be verified is a connection failure (exit 2).

mod repl_support;

use predicates::prelude::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use repl_support::Server;
use std::path::{Path, PathBuf};

/// A CA certificate and a server certificate it signed for 127.0.0.1, with the server's key.
struct TlsFiles {
    ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn issue_tls_files(dir: &Path) -> TlsFiles {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rstmdb repl test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("self-signed CA");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let server_key = KeyPair::generate().expect("server key");
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .expect("server certificate signed by the CA");
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    std::fs::write(&files.ca_cert, ca.pem()).expect("write CA");
    std::fs::write(&files.server_cert, server_cert.pem()).expect("write server cert");
    std::fs::write(&files.server_key, server_key.serialize_pem()).expect("write server key");
    files
}

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
