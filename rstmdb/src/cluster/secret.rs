//! The shared secret nodes prove to each other (`cluster.secret_file`, `docs/cluster.md`
//! section 9). Each side of a connection sends a fresh nonce and answers the other's with an
//! HMAC-SHA256 of it under the secret, so the secret never crosses the wire and an old answer
//! is worth nothing. The prover's node id is part of the MAC: a node cannot hand a peer's own
//! challenge back to it as its answer.

use super::types::NodeId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// A secret shorter than this is refused: it could be guessed.
pub const MIN_SECRET_BYTES: usize = 16;
/// A secret file larger than this is not a secret file.
pub const MAX_SECRET_BYTES: usize = 4096;
const DOMAIN: &[u8] = b"rstmdb-node-proof/v1";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the cluster secret file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cluster secret file {} holds {len} bytes; a secret is {MIN_SECRET_BYTES} to \
         {MAX_SECRET_BYTES} bytes (surrounding whitespace is ignored)",
        path.display()
    )]
    Length { path: PathBuf, len: usize },
}

/// The secret, never printed.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// The file's bytes without surrounding whitespace (a trailing newline, say).
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let bytes = std::fs::read(path).map_err(|source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let secret = bytes.trim_ascii();
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
            return Err(SecretError::Length {
                path: path.to_path_buf(),
                len: secret.len(),
            });
        }
        Ok(Self(secret.to_vec()))
    }

    /// For tests and tools that hold the secret already.
    pub fn from_bytes(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    /// A fresh challenge: 122 random bits from the operating system's generator, as hex.
    pub fn nonce() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// `prover`'s answer to `nonce`.
    pub fn prove(&self, prover: NodeId, nonce: &str) -> String {
        let tag = self.mac(prover, nonce).finalize().into_bytes();
        tag.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `proof` is `prover`'s answer to `nonce` (compared in constant time).
    pub fn verify(&self, prover: NodeId, nonce: &str, proof: &str) -> bool {
        let Some(tag) = decode_hex(proof) else {
            return false;
        };
        self.mac(prover, nonce).verify_slice(&tag).is_ok()
    }

    fn mac(&self, prover: NodeId, nonce: &str) -> Hmac<Sha256> {
        // Any key length is accepted by HMAC; the length was checked when the file was read.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(DOMAIN);
        mac.update(&prover.to_be_bytes());
        mac.update(nonce.as_bytes());
        mac
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_only_for_its_prover_its_nonce_and_its_secret() {
        let secret = ClusterSecret::from_bytes(b"correct horse battery staple");
        let nonce = ClusterSecret::nonce();
        let proof = secret.prove(2, &nonce);
        assert!(secret.verify(2, &nonce, &proof));
        assert!(!secret.verify(3, &nonce, &proof), "another prover");
        assert!(
            !secret.verify(2, &ClusterSecret::nonce(), &proof),
            "another nonce"
        );
        let other = ClusterSecret::from_bytes(b"correct horse battery stapler");
        assert!(!other.verify(2, &nonce, &proof), "another secret");
        assert!(!secret.verify(2, &nonce, "zz"), "not hex");
        assert_ne!(ClusterSecret::nonce(), nonce, "nonces are fresh");
    }

    #[test]
    fn a_secret_file_is_trimmed_and_a_short_one_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.secret");
        std::fs::write(&path, b"  0123456789abcdef0123\n").expect("write");
        let secret = ClusterSecret::from_file(&path).expect("a secret");
        let same = ClusterSecret::from_bytes(b"0123456789abcdef0123");
        assert!(same.verify(1, "n", &secret.prove(1, "n")));
        assert_eq!(format!("{secret:?}"), "ClusterSecret(..)", "never printed");

        std::fs::write(&path, b"short\n").expect("write");
        let err = ClusterSecret::from_file(&path).expect_err("too short");
        assert!(err.to_string().contains("cluster.secret"), "{err}");
        assert!(err.to_string().contains("5 bytes"), "{err}");
    }
}
