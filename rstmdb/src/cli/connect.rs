//! The connection flags shared by the subcommands that talk to a running server (`repl`,
//! `bench`, `dashboard`): address, token and TLS, turned into [`ClientOptions`].

use clap::Args;
use rstmdb_client::{ClientOptions, PemSource, TlsOptions};
use std::path::PathBuf;

/// `-s/--server`, `-t/--token` and the TLS flags, as the public CLI spells them.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Server address, `host:port`.
    #[arg(
        short = 's',
        long = "server",
        env = "RSTMDB_SERVER",
        default_value = "127.0.0.1:7401",
        value_name = "HOST:PORT"
    )]
    pub server: String,

    /// Bearer token, sent with AUTH when connecting.
    #[arg(
        short = 't',
        long = "token",
        env = "RSTMDB_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Connect over TLS. Implied by any of the other TLS flags.
    #[arg(long)]
    pub tls: bool,

    /// CA certificates (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate chain (PEM) for mutual TLS; needs --client-key.
    #[arg(long, value_name = "PATH", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// Private key (PEM) of --client-cert.
    #[arg(long, value_name = "PATH", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Accept any server certificate (tests and development only: no protection against an
    /// active attacker).
    #[arg(short = 'k', long)]
    pub insecure: bool,

    /// Name to verify the server certificate against (default: the host of --server).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
}

impl ConnectArgs {
    /// Whether the flags ask for TLS: `--tls`, or any flag that only makes sense with it.
    pub fn wants_tls(&self) -> bool {
        self.tls
            || self.ca_cert.is_some()
            || self.client_cert.is_some()
            || self.insecure
            || self.server_name.is_some()
    }

    /// The client options these flags describe; `client_name` goes into HELLO.
    pub fn client_options(&self, client_name: &str) -> ClientOptions {
        let mut options = ClientOptions::new(self.server.clone()).client_name(client_name);
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if self.wants_tls() {
            options = options.tls(self.tls_options());
        }
        options
    }

    fn tls_options(&self) -> TlsOptions {
        let mut tls = TlsOptions::new().insecure(self.insecure);
        if let Some(ca) = &self.ca_cert {
            tls = tls.ca_cert(PemSource::File(ca.clone()));
        }
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            tls = tls.client_cert(PemSource::File(cert.clone()), PemSource::File(key.clone()));
        }
        if let Some(name) = &self.server_name {
            tls = tls.server_name(name.clone());
        }
        tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    fn parse(args: &[&str]) -> ConnectArgs {
        let argv = std::iter::once("test").chain(args.iter().copied());
        match Harness::try_parse_from(argv) {
            Ok(harness) => harness.connect,
            Err(error) => panic!("flags {args:?} rejected: {error}"),
        }
    }

    #[test]
    fn plain_flags_give_a_plaintext_client_with_the_token() {
        let options = parse(&["-s", "db:9000", "-t", "secret"]).client_options("test");
        assert_eq!(options.addr, "db:9000");
        assert_eq!(options.token.as_deref(), Some("secret"));
        assert!(options.tls.is_none());
    }

    #[test]
    fn a_ca_certificate_alone_turns_tls_on() {
        let options = parse(&["--ca-cert", "ca.pem"]).client_options("test");
        let tls = options.tls.expect("TLS implied by --ca-cert");
        assert_eq!(tls.ca_cert, Some(PemSource::File("ca.pem".into())));
        assert!(!tls.insecure);
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let argv = ["test", "--client-cert", "c.pem"];
        assert!(Harness::try_parse_from(argv).is_err());
        let options = parse(&["--client-cert", "c.pem", "--client-key", "k.pem", "-k"])
            .client_options("test");
        let tls = options.tls.expect("TLS implied by --client-cert");
        assert!(tls.insecure);
        assert!(tls.client_cert.is_some());
    }
}
