//! Configuration errors. Each names where the bad value came from — a key in a file (with its
//! line, rendered by miette), an environment variable or a flag — and what would be accepted.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    #[diagnostic(code(config::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A bad key or value in the TOML file, with the file text for the label (boxed: it is big).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Toml(Box<TomlError>),

    #[error("invalid environment variable {var}={value:?}: {message}")]
    #[diagnostic(code(config::env))]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },

    #[error("invalid config: {key}: {message}")]
    #[diagnostic(code(config::rule), help("{help}"))]
    Rule {
        key: &'static str,
        message: String,
        help: String,
    },

    /// A configured token hash that is not 64 hex digits. Only its position and length are
    /// shown: a raw token pasted where its hash belongs would otherwise land in logs.
    #[error("invalid config: {origin}: not a SHA-256 hex digest ({shape})")]
    #[diagnostic(
        code(config::token_hash),
        help(
            "each hash is the SHA-256 of a token as 64 hex digits; `rstmdb hash-token` prints it \
             (give no argument and it reads the token from standard input)"
        )
    )]
    TokenHash {
        /// `auth.token_hashes[2]`, `RSTMDB_AUTH_TOKEN_HASH` or `auth.secrets_file PATH line 3`.
        origin: String,
        /// `17 characters; expected 64`, or why 64 characters are still wrong.
        shape: String,
    },

    #[error("cannot read auth secrets file {}: {source}", path.display())]
    #[diagnostic(
        code(config::secrets_file),
        help(
            "auth.secrets_file (RSTMDB_AUTH_SECRETS_FILE) must name a readable file with one token hash per line"
        )
    )]
    SecretsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A bad key or value in a TOML document, labelled at its span.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("invalid config: {message}")]
#[diagnostic(code(config::invalid_value), help("{help}"))]
pub struct TomlError {
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{message}")]
    pub span: Option<SourceSpan>,
    pub message: String,
    pub help: String,
}

impl ConfigError {
    pub(super) fn toml(origin: &str, text: &str, err: toml::de::Error) -> ConfigError {
        let message = err.message().trim().to_owned();
        let help = if message.contains("unknown field") {
            "remove or correct the key; config/rstmdb.toml documents every key with its default"
        } else {
            "config/rstmdb.toml documents every key, its accepted values and its default"
        };
        ConfigError::Toml(Box::new(TomlError {
            src: NamedSource::new(origin, text.to_owned()),
            span: err.span().map(SourceSpan::from),
            message,
            help: help.to_owned(),
        }))
    }

    pub(super) fn rule(
        key: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        ConfigError::Rule {
            key,
            message: message.into(),
            help: help.into(),
        }
    }
}
