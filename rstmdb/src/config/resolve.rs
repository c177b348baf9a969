//! Cross-field rules checked once every source is applied, and the auth hash list (spec §8.1):
//! `auth.token_hashes`, `RSTMDB_AUTH_TOKEN_HASH` (already appended by `apply_env`) and the lines
//! of `auth.secrets_file`.

use super::error::ConfigError;
use super::model::Config;

/// Authentication settings ready for the server: hashes are validated and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAuth {
    pub required: bool,
    /// Lowercase 64-hex-digit SHA-256 hashes of the accepted tokens.
    pub token_hashes: Vec<String>,
}

impl Config {
    /// Checks the rules that span several keys and loads the auth hashes. Reads the secrets file.
    pub fn resolve(&self) -> Result<ResolvedAuth, ConfigError> {
        if self.replication.role != "standalone" {
            return Err(ConfigError::rule(
                "replication.role",
                format!("`{}` is not supported", self.replication.role),
                "replication does not exist yet; the only accepted role is \"standalone\"",
            ));
        }
        self.check_tls()?;
        self.check_unauthenticated_frames()?;
        self.check_cluster()?;
        let token_hashes = self.load_token_hashes()?;
        if self.auth.required && token_hashes.is_empty() {
            return Err(ConfigError::rule(
                "auth.required",
                "authentication is required but no token hash is configured",
                "add a hash to auth.token_hashes, set RSTMDB_AUTH_TOKEN_HASH, or point \
                 auth.secrets_file at a file of hashes; `rstmdb hash-token TOKEN` prints a hash",
            ));
        }
        Ok(ResolvedAuth {
            required: self.auth.required,
            token_hashes,
        })
    }

    fn check_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.tls;
        if !tls.enabled {
            if tls.require_client_cert {
                // Silently serving plaintext to an operator who asked for mutual TLS would be
                // the worst reading of this configuration.
                return Err(ConfigError::rule(
                    "tls.require_client_cert",
                    "client certificates are required but TLS is not enabled",
                    "set tls.enabled = true (RSTMDB_TLS_ENABLED) with a certificate and key, \
                     or drop tls.require_client_cert",
                ));
            }
            return Ok(());
        }
        if tls.cert_path.is_none() {
            return Err(ConfigError::rule(
                "tls.cert_path",
                "TLS is enabled but no certificate is configured",
                "set tls.cert_path (RSTMDB_TLS_CERT) to a PEM certificate chain, leaf first",
            ));
        }
        if tls.key_path.is_none() {
            return Err(ConfigError::rule(
                "tls.key_path",
                "TLS is enabled but no private key is configured",
                "set tls.key_path (RSTMDB_TLS_KEY) to a PEM private key (PKCS#8, PKCS#1 or SEC1)",
            ));
        }
        if tls.require_client_cert && tls.client_ca_path.is_none() {
            return Err(ConfigError::rule(
                "tls.client_ca_path",
                "client certificates are required but no client CA is configured",
                "set tls.client_ca_path (RSTMDB_TLS_CLIENT_CA) to a PEM bundle of trusted client CAs",
            ));
        }
        Ok(())
    }

    /// The pre-AUTH frame limit (§13) cannot exceed the frame limit itself.
    fn check_unauthenticated_frames(&self) -> Result<(), ConfigError> {
        let before_auth = self.auth.max_unauthenticated_frame_bytes;
        let limit = self.network.max_frame_bytes;
        if before_auth > limit {
            return Err(ConfigError::rule(
                "auth.max_unauthenticated_frame_bytes",
                format!("{before_auth} is larger than network.max_frame_bytes ({limit})"),
                "the limit before AUTH can only be the same as or lower than the frame limit",
            ));
        }
        Ok(())
    }

    fn load_token_hashes(&self) -> Result<Vec<String>, ConfigError> {
        let mut hashes = Vec::new();
        for (index, hash) in self.auth.token_hashes.iter().enumerate() {
            hashes.push(checked_token_hash(hash, || {
                format!("auth.token_hashes[{index}]")
            })?);
        }
        if let Some(path) = &self.auth.secrets_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::SecretsFile {
                    path: path.clone(),
                    source,
                })?;
            for (index, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                hashes.push(checked_token_hash(line, || {
                    format!("auth.secrets_file {} line {}", path.display(), index + 1)
                })?);
            }
        }
        Ok(hashes)
    }
}

/// The lowercased hash, or an error that names where it came from (`origin`) and its length but
/// never the value: a raw token pasted where its hash belongs must not reach a log.
pub(super) fn checked_token_hash(
    hash: &str,
    origin: impl FnOnce() -> String,
) -> Result<String, ConfigError> {
    normalise_hash(hash).ok_or_else(|| {
        let chars = hash.chars().count();
        let shape = if chars == 64 {
            "64 characters, but not all hex digits".to_owned()
        } else {
            format!("{chars} characters; expected 64")
        };
        ConfigError::TokenHash {
            origin: origin(),
            shape,
        }
    })
}

fn normalise_hash(hash: &str) -> Option<String> {
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}
