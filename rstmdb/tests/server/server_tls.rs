//! TLS and mutual TLS on the listener (spec §8.2), with certificates made by rcgen.

use rstmdb::server::{ServerSettings, TlsSettings};
use rstmdb_testkit::echo::EchoServer;
use rstmdb_testkit::raw::{Client, frame, request};
use rstmdb_testkit::server::loopback_settings;
use rstmdb_testkit::tls::{ExtendedKeyUsagePurpose, TestCa, unrelated_key_pem, write_pem};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A CA, a server certificate for `localhost` and a client certificate, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: PrivateKeyDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new("rstmdb test CA");
        let server = ca.leaf(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
        let client = ca.client_leaf("client");
        // Chain leaf first, then the CA, as an operator would configure it.
        write_pem(
            &dir.path().join("server.pem"),
            &format!("{}{}", server.cert_pem, ca.pem()),
        );
        write_pem(&dir.path().join("server.key"), &server.key_pem);
        write_pem(&dir.path().join("ca.pem"), &ca.pem());
        Self {
            ca: ca.der(),
            client_key: client.private_key_der(),
            client_cert: client.cert_der,
            dir,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn settings(&self, mutual: bool) -> ServerSettings {
        ServerSettings {
            tls: Some(TlsSettings {
                cert_path: self.path("server.pem"),
                key_path: self.path("server.key"),
                client_ca_path: mutual.then(|| self.path("ca.pem")),
            }),
            ..loopback_settings()
        }
    }

    fn connector(&self, with_client_cert: bool) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = if with_client_cert {
            builder
                .with_client_auth_cert(vec![self.client_cert.clone()], self.client_key.clone_key())
                .expect("client cert")
        } else {
            builder.with_no_client_auth()
        };
        TlsConnector::from(Arc::new(config))
    }
}

async fn tls_client(
    server: &EchoServer,
    connector: &TlsConnector,
) -> std::io::Result<Client<tokio_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    Ok(Client::new(connector.connect(name, tcp).await?))
}

#[tokio::test]
async fn a_tls_client_is_served_over_tls() {
    let pki = Pki::new();
    let server = EchoServer::start_with(pki.settings(false)).await;
    let mut client = tls_client(&server, &pki.connector(false))
        .await
        .expect("handshake");
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
    let bye = client.call("BYE", json!({})).await;
    assert_eq!(bye["result"], json!({"goodbye": true}));
    client.expect_closed().await;
}

#[tokio::test]
async fn a_plain_client_on_a_tls_port_is_dropped_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let server = EchoServer::start_with(pki.settings(false)).await;
    let mut plain = TcpStream::connect(server.addr).await.expect("tcp");
    tokio::io::AsyncWriteExt::write_all(
        &mut plain,
        &frame(request("1", "PING", json!({})).as_bytes()),
    )
    .await
    .expect("write");
    let mut received = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        plain.read_to_end(&mut received),
    )
    .await
    .expect("dropped in time");
    assert!(!received.starts_with(b"RCPX"), "no RCP frame in plaintext");

    let mut client = tls_client(&server, &pki.connector(false))
        .await
        .expect("handshake");
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn mutual_tls_serves_a_client_with_a_certificate_from_the_ca() {
    let pki = Pki::new();
    let server = EchoServer::start_with(pki.settings(true)).await;
    let mut client = tls_client(&server, &pki.connector(true))
        .await
        .expect("handshake");
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let server = EchoServer::start_with(pki.settings(true)).await;
    // With TLS 1.3 the client learns of the refusal on its first read, not in `connect`.
    let refused = match tls_client(&server, &pki.connector(false)).await {
        Err(_) => true,
        Ok(mut client) => {
            client.send("PING", json!({})).await;
            let mut buf = [0u8; 1];
            matches!(
                tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    client.stream.read(&mut buf)
                )
                .await,
                Ok(Err(_)) | Ok(Ok(0))
            )
        }
    };
    assert!(refused, "a client without a certificate must not be served");
}

#[tokio::test]
async fn a_missing_certificate_file_stops_start_up() {
    let pki = Pki::new();
    let mut settings = pki.settings(false);
    if let Some(tls) = settings.tls.as_mut() {
        tls.cert_path = Path::new("/nonexistent/server.pem").to_path_buf();
    }
    let handler = Arc::new(rstmdb::service::EchoHandler::default());
    let error = rstmdb::server::Server::bind(settings, handler)
        .await
        .expect_err("start-up fails");
    assert!(
        error.to_string().contains("/nonexistent/server.pem"),
        "{error}"
    );
}

#[tokio::test]
async fn a_connection_over_the_limit_is_refused_after_the_tls_handshake() {
    let pki = Pki::new();
    let server = EchoServer::start_with(ServerSettings {
        max_connections: 1,
        ..pki.settings(false)
    })
    .await;
    let connector = pki.connector(false);
    let mut first = tls_client(&server, &connector).await.expect("handshake");
    first.call("PING", json!({})).await;

    let mut second = tls_client(&server, &connector)
        .await
        .expect("handshake completes");
    let refusal = second.read_frame().await;
    assert_eq!(refusal["error"]["code"], json!("RATE_LIMITED"));
    assert_eq!(
        refusal["error"]["details"],
        json!({"reason": "connection_limit", "limit": 1})
    );
    second.expect_closed().await;
}

#[tokio::test]
async fn the_first_key_in_the_key_file_is_used() {
    let pki = Pki::new();
    let other_key = unrelated_key_pem();
    let server_key = std::fs::read_to_string(pki.path("server.key")).expect("key file");

    std::fs::write(pki.path("server.key"), format!("{server_key}{other_key}")).expect("write");
    let server = EchoServer::start_with(pki.settings(false)).await;
    let mut client = tls_client(&server, &pki.connector(false))
        .await
        .expect("handshake");
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );

    std::fs::write(pki.path("server.key"), format!("{other_key}{server_key}")).expect("write");
    let handler = Arc::new(rstmdb::service::EchoHandler::default());
    let error = rstmdb::server::Server::bind(pki.settings(false), handler)
        .await
        .expect_err("a first key that does not match the certificate stops start-up");
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test]
async fn a_sec1_ec_private_key_is_accepted() {
    let pki = Pki::new();
    let pkcs8_pem = std::fs::read_to_string(pki.path("server.key")).expect("key file");
    let pkcs8 = PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.as_bytes()).expect("pkcs8");
    let sec1 = sec1_from_pkcs8(pkcs8.secret_pkcs8_der());
    std::fs::write(pki.path("server.key"), pem("EC PRIVATE KEY", &sec1)).expect("write");

    let server = EchoServer::start_with(pki.settings(false)).await;
    let mut client = tls_client(&server, &pki.connector(false))
        .await
        .expect("handshake");
    assert_eq!(
        client.call("PING", json!({})).await["result"],
        json!({"pong": true})
    );
}

/// The ECPrivateKey (SEC1) inside a PKCS#8 PrivateKeyInfo:
/// `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey }`.
fn sec1_from_pkcs8(der: &[u8]) -> Vec<u8> {
    let (tag, info, _) = der_element(der);
    assert_eq!(tag, 0x30, "PrivateKeyInfo is a SEQUENCE");
    let (_, _, rest) = der_element(info); // version
    let (_, _, rest) = der_element(rest); // algorithm
    let (tag, private_key, _) = der_element(rest);
    assert_eq!(tag, 0x04, "privateKey is an OCTET STRING");
    private_key.to_vec()
}

/// Splits one DER element into (tag, content, rest).
fn der_element(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = bytes[0];
    let (len, header) = match bytes[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let len = bytes[2..2 + count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + count)
        }
    };
    (tag, &bytes[header..header + len], &bytes[header + len..])
}

fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                encoded.push('=');
            }
        }
    }
    let body: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}
