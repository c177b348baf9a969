//! Certificates for tests that run a TLS server as a child process (rcgen).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Paths of a CA certificate and of a server certificate it signed (valid for 127.0.0.1 and
/// localhost), with the server's PKCS#8 key.
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
pub fn issue_tls_files(dir: &Path) -> TlsFiles {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "rstmdb test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("self-signed CA");

    // Clients that verify the host name (§8.2; the Python client does) dial 127.0.0.1 or
    // localhost, so the certificate names both.
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
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
