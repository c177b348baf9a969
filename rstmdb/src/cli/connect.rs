//! The connection flags shared by the subcommands that talk to a running server (`repl`,
//! `bench`, `dashboard`): address, token and TLS, turned into [`ClientOptions`]; and the
//! `--token-file` reader they all use.

use clap::Args;
use rstmdb_client::{ClientOptions, PemSource, TlsOptions};
use std::path::{Path, PathBuf};

/// `-s/--server`, `-t/--token`, `--token-file` and the TLS flags, as the public CLI spells them.
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

    /// Bearer token, sent with AUTH when connecting. Prefer --token-file or RSTMDB_TOKEN: a
    /// token on the command line is visible to every user through `ps`.
    #[arg(short = 't', long = "token", value_name = "TOKEN")]
    pub token: Option<String>,

    /// Read the bearer token from this file (surrounding whitespace and the final newline are
    /// ignored). Without --token or --token-file, the token comes from RSTMDB_TOKEN.
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,

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

    /// The client options these flags describe; `client_name` goes into HELLO. Fails only
    /// when the token cannot be had (`--token-file` or RSTMDB_TOKEN).
    pub fn client_options(&self, client_name: &str) -> Result<ClientOptions, TokenError> {
        let mut options = ClientOptions::new(self.server.clone()).client_name(client_name);
        if let Some(token) = resolve_token(self.token.as_deref(), self.token_file.as_deref())? {
            options = options.token(token);
        }
        if self.wants_tls() {
            options = options.tls(self.tls_options());
        }
        Ok(options)
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

/// Why the text of a token file (or of standard input, for `hash-token`) is not a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenTextError {
    #[error("is empty")]
    Empty,
    #[error("holds more than one line; it must hold only the token")]
    SeveralLines,
}

/// Why no token could be had. The token itself is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {} {problem}", path.display())]
    Text {
        path: PathBuf,
        problem: TokenTextError,
    },
    #[error("{TOKEN_ENV} is not valid UTF-8")]
    EnvNotUnicode,
}

/// The environment variable a token comes from when no flag gives one.
pub const TOKEN_ENV: &str = "RSTMDB_TOKEN";

/// The token from `-t`, else from `--token-file` (clap makes the two exclusive), else from
/// RSTMDB_TOKEN (empty counts as unset). The variable is read here rather than by clap so that
/// it does not count as a `--token` that conflicts with `--token-file`: flags override the
/// environment, as everywhere else.
pub fn resolve_token(
    token: Option<&str>,
    token_file: Option<&Path>,
) -> Result<Option<String>, TokenError> {
    if let Some(token) = token {
        return Ok(Some(token.to_owned()));
    }
    if let Some(path) = token_file {
        return read_token_file(path).map(Some);
    }
    match std::env::var(TOKEN_ENV) {
        Ok(token) if token.is_empty() => Ok(None),
        Ok(token) => Ok(Some(token)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(TokenError::EnvNotUnicode),
    }
}

/// Reads a token file (see [`token_from_text`]).
pub fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    token_from_text(&text)
        .map(str::to_owned)
        .map_err(|problem| TokenError::Text {
            path: path.to_owned(),
            problem,
        })
}

/// The token a file holds: its text without surrounding whitespace, so the newline an editor or
/// `echo` adds is not part of it. A second line is refused rather than sent as part of the
/// token (a file of several secrets, named by mistake). `hash-token` reads standard input by the
/// same rule, so one file gives both the hash and the token the client sends.
pub fn token_from_text(text: &str) -> Result<&str, TokenTextError> {
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenTextError::Empty);
    }
    if token.contains(['\n', '\r']) {
        return Err(TokenTextError::SeveralLines);
    }
    Ok(token)
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
        let options = parse(&["-s", "db:9000", "-t", "secret"])
            .client_options("test")
            .expect("no token file");
        assert_eq!(options.addr, "db:9000");
        assert_eq!(options.token.as_deref(), Some("secret"));
        assert!(options.tls.is_none());
    }

    #[test]
    fn a_ca_certificate_alone_turns_tls_on() {
        let options = parse(&["--ca-cert", "ca.pem"])
            .client_options("test")
            .expect("no token file");
        let tls = options.tls.expect("TLS implied by --ca-cert");
        assert_eq!(tls.ca_cert, Some(PemSource::File("ca.pem".into())));
        assert!(!tls.insecure);
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let argv = ["test", "--client-cert", "c.pem"];
        assert!(Harness::try_parse_from(argv).is_err());
        let options = parse(&["--client-cert", "c.pem", "--client-key", "k.pem", "-k"])
            .client_options("test")
            .expect("no token file");
        let tls = options.tls.expect("TLS implied by --client-cert");
        assert!(tls.insecure);
        assert!(tls.client_cert.is_some());
    }

    #[test]
    fn a_token_file_conflicts_with_the_token_flag() {
        let argv = ["test", "-t", "x", "--token-file", "t.txt"];
        assert!(Harness::try_parse_from(argv).is_err());
    }
}
