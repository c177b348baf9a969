//! TLS and mutual TLS on the listener (spec §8.2), with certificates made by rcgen.

mod server_support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rstmdb::server::{ServerSettings, TlsSettings};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::json;
use server_support::{Client, TestServer, frame, request, settings};
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
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");

        let server_key = KeyPair::generate().expect("server key");
        let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&server_key, &ca)
            .expect("server cert");
        let client_key = KeyPair::generate().expect("client key");
        let client_cert = CertificateParams::new(vec!["client".to_owned()])
            .expect("client params")
            .signed_by(&client_key, &ca)
            .expect("client cert");

        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text);
        // Chain leaf first, then the CA, as an operator would configure it.
        write("server.pem", format!("{}{}", server_cert.pem(), ca.pem())).expect("write");
        write("server.key", server_key.serialize_pem()).expect("write");
        write("ca.pem", ca.pem()).expect("write");
        Self {
            ca: ca.der().clone(),
            client_cert: client_cert.der().clone(),
            client_key: PrivatePkcs8KeyDer::from(client_key.serialize_der()).into(),
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
            ..settings()
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
    server: &TestServer,
    connector: &TlsConnector,
) -> std::io::Result<Client<tokio_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    Ok(Client::new(connector.connect(name, tcp).await?))
}

#[tokio::test]
async fn a_tls_client_is_served_over_tls() {
    let pki = Pki::new();
    let server = TestServer::start_with(pki.settings(false)).await;
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
    let server = TestServer::start_with(pki.settings(false)).await;
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
    let server = TestServer::start_with(pki.settings(true)).await;
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
    let server = TestServer::start_with(pki.settings(true)).await;
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
    let handler = Arc::new(rstmdb::server::EchoHandler::default());
    let error = rstmdb::server::Server::bind(settings, handler)
        .await
        .expect_err("start-up fails");
    assert!(
        error.to_string().contains("/nonexistent/server.pem"),
        "{error}"
    );
}
