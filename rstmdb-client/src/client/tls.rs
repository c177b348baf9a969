//! TLS client configuration (§8.2): CA bundle, client certificate, insecure mode, server name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::error::ClientError;
use super::options::{PemSource, TlsOptions};

/// A ready-to-use TLS connector and the name it verifies, built once per client.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Reads the PEM files and builds the rustls configuration. `default_host` is the host of
    /// the address, used when no server name is configured.
    pub(crate) fn new(options: &TlsOptions, default_host: &str) -> Result<Self, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(format!("protocol versions: {e}")))?;
        let builder = if options.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else {
            let ca = options.ca_cert.as_ref().ok_or_else(|| {
                ClientError::Config(
                    "TLS needs a CA certificate (ca_cert) or insecure mode; no built-in roots"
                        .into(),
                )
            })?;
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| ClientError::Tls(format!("CA {}: {e}", ca.describe())))?;
            }
            builder.with_root_certificates(roots)
        };
        let config = match &options.client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(read_certificates(chain)?, read_private_key(key)?)
                .map_err(|e| ClientError::Tls(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        let name = options.server_name.as_deref().unwrap_or(default_host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| ClientError::Config(format!("TLS server name {name:?}: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, ClientError> {
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| ClientError::Tls(format!("handshake failed: {e}")))
    }
}

fn read_pem(source: &PemSource) -> Result<Vec<u8>, ClientError> {
    source
        .read()
        .map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", source.describe())))
}

fn read_certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = read_pem(source)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Tls(format!("{}: {e}", source.describe())))?;
    if certs.is_empty() {
        return Err(ClientError::Tls(format!(
            "{}: no certificate found",
            source.describe()
        )));
    }
    Ok(certs)
}

/// The first private key in the file, in PKCS#8, PKCS#1 or SEC1 form.
fn read_private_key(source: &PemSource) -> Result<PrivateKeyDer<'static>, ClientError> {
    let pem = read_pem(source)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| ClientError::Tls(format!("{}: {e}", source.describe())))
}

/// Insecure mode: any certificate chain and name is accepted, but handshake signatures are
/// still checked, so the session is at least bound to the certificate the server presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
