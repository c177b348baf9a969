//! Certificates for TLS tests (§8.2), made by rcgen at run time instead of key files kept in
//! the repository: a CA, the server and client certificates it signs, and the PEM files a
//! server configured with TLS reads.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};

pub use rcgen::ExtendedKeyUsagePurpose;

/// The names a server certificate carries: clients that check the host name (the Python
/// client does) dial 127.0.0.1 or localhost.
pub const SERVER_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A self-signed CA that signs leaf certificates.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its PKCS#8 key, as DER and as PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl TestCa {
    /// A fresh CA key and certificate, with `common_name` as its subject.
    pub fn new(common_name: &str) -> TestCa {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("CA certificate parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate the CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        TestCa { issuer }
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate as DER (a trust anchor for a rustls root store).
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A certificate for `names` (DNS names or IP addresses; the first is also the subject's
    /// common name), for `usage`, signed by this CA with a fresh key.
    pub fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        self.leaf_for(names, vec![usage])
    }

    /// A cluster node's certificate for `names`: it serves its raft address and calls its peers
    /// with the same certificate (mutual TLS between nodes).
    pub fn node_leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_for(
            names,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    fn leaf_for(&self, names: &[&str], usages: Vec<ExtendedKeyUsagePurpose>) -> Leaf {
        let owned: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(owned)
            .unwrap_or_else(|err| panic!("certificate parameters for {names:?}: {err}"));
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.extended_key_usages = usages;
        let key = KeyPair::generate().expect("generate a certificate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|err| panic!("sign the certificate for {names:?}: {err}"));
        Leaf {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for [`SERVER_NAMES`].
    pub fn server_leaf(&self) -> Leaf {
        self.leaf(&SERVER_NAMES, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for mutual TLS.
    pub fn client_leaf(&self, name: &str) -> Leaf {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

impl Leaf {
    /// The key as rustls takes it.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A PKCS#8 PEM key that belongs to no certificate.
pub fn unrelated_key_pem() -> String {
    KeyPair::generate().expect("generate a key").serialize_pem()
}

/// The PEM files of a TLS server: the CA that clients trust, and the server's certificate and
/// key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A new CA and a server certificate it signed for [`SERVER_NAMES`], written into `dir` as
/// `ca.pem`, `server.pem` and `server.key`.
pub fn issue_tls_files(dir: &Path) -> TlsFiles {
    let ca = TestCa::new("rstmdb test CA");
    let server = ca.server_leaf();
    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    write_pem(&files.ca_cert, &ca.pem());
    write_pem(&files.server_cert, &server.cert_pem);
    write_pem(&files.server_key, &server.key_pem);
    files
}

/// Writes PEM text to `path`.
pub fn write_pem(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}
