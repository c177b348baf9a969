//! Bearer-token authentication (spec §4.2, §8.1): the server keeps only SHA-256 hashes and
//! compares them in constant time; each connection counts its consecutive failures.

use rstmdb_protocol::{AuthFailure, RcpError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The third consecutive `AUTH_FAILED` on a connection closes it (§4.2).
pub const MAX_CONSECUTIVE_AUTH_FAILURES: u32 = 3;

/// Lowercase hex SHA-256 of the token's UTF-8 bytes: the form hashes are configured in.
pub fn token_hash_hex(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest.iter() {
        hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Who may use the server (spec §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSettings {
    /// Connections start unauthenticated and only HELLO, AUTH, PING and BYE run before AUTH.
    pub required: bool,
    /// Lowercase 64-hex-digit SHA-256 hashes of the accepted tokens ([`token_hash_hex`]).
    pub token_hashes: Vec<String>,
    /// What a connection may hold before its AUTH succeeds (§13); only when `required`.
    pub before_auth: BeforeAuthLimits,
}

/// The limits of spec §13 on a connection that has not authenticated yet. The defaults are
/// the configuration's (`crate::assemble`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeforeAuthLimits {
    /// Largest frame payload or JSONL line, decided from the header or line length.
    pub max_frame_bytes: usize,
    /// AUTH must succeed within this long, or the connection is closed silently.
    pub timeout: Option<std::time::Duration>,
    /// Unauthenticated connections at once; beyond it a new one gets `RATE_LIMITED`.
    pub max_connections: usize,
}

/// Checks AUTH requests against the configured hashes.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    required: bool,
    /// Lowercase 64-hex-digit hashes.
    token_hashes: Vec<String>,
}

impl TokenVerifier {
    pub fn new(auth: &AuthSettings) -> Self {
        Self {
            required: auth.required,
            token_hashes: auth.token_hashes.clone(),
        }
    }

    /// Whether connections start unauthenticated.
    pub fn required(&self) -> bool {
        self.required
    }

    /// Steps 1–4 of §4.2 for a well-typed AUTH request.
    pub fn authenticate(&self, method: &str, token: &str) -> Result<(), RcpError> {
        if method != "bearer" {
            return Err(RcpError::auth_failed(AuthFailure::UnsupportedMethod));
        }
        if token.is_empty() {
            return Err(RcpError::auth_failed(AuthFailure::EmptyToken));
        }
        if !self.required {
            return Ok(());
        }
        let presented = token_hash_hex(token);
        // Every configured hash is compared, with no early exit, so timing reveals neither
        // which hash matched nor how many bytes of one did.
        let matched = self
            .token_hashes
            .iter()
            .fold(subtle::Choice::from(0), |acc, hash| {
                acc | presented.as_bytes().ct_eq(hash.as_bytes())
            });
        if bool::from(matched) {
            Ok(())
        } else {
            Err(RcpError::auth_failed(AuthFailure::InvalidToken))
        }
    }
}

/// One connection's authentication state (§2.7, §4.2).
#[derive(Debug, Clone)]
pub struct AuthState {
    authenticated: bool,
    consecutive_failures: u32,
}

/// What the session must do after answering an AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    KeepOpen,
    /// This was the third consecutive failure: send the answer, then close.
    CloseAfterAnswer,
}

impl AuthState {
    pub fn new(verifier: &TokenVerifier) -> Self {
        Self {
            authenticated: !verifier.required(),
            consecutive_failures: 0,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Records the outcome of an AUTH that was answered with success or `AUTH_FAILED`. A
    /// failure never undoes an earlier success.
    pub fn record(&mut self, outcome: &Result<(), RcpError>) -> AuthVerdict {
        match outcome {
            Ok(()) => {
                self.authenticated = true;
                self.consecutive_failures = 0;
                AuthVerdict::KeepOpen
            }
            Err(_) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= MAX_CONSECUTIVE_AUTH_FAILURES {
                    AuthVerdict::CloseAfterAnswer
                } else {
                    AuthVerdict::KeepOpen
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_TOKEN_HASH: &str =
        "ea5add57437cbf20af59034d7ed17968dcc56767b41965fcc5b376d45db8b4a3";

    fn verifier(required: bool) -> TokenVerifier {
        TokenVerifier::new(&AuthSettings {
            required,
            token_hashes: vec!["0".repeat(64), SPEC_TOKEN_HASH.to_owned()],
            ..AuthSettings::default()
        })
    }

    fn reason(result: Result<(), RcpError>) -> Option<String> {
        result.err().and_then(|e| e.reason().map(str::to_owned))
    }

    #[test]
    fn token_hash_matches_the_spec_worked_example() {
        assert_eq!(token_hash_hex("my-secret-token"), SPEC_TOKEN_HASH);
    }

    #[test]
    fn any_configured_hash_authenticates() {
        assert!(
            verifier(true)
                .authenticate("bearer", "my-secret-token")
                .is_ok()
        );
        assert_eq!(
            reason(verifier(true).authenticate("bearer", "wrong")),
            Some("invalid_token".into())
        );
    }

    #[test]
    fn method_and_empty_token_are_checked_even_when_auth_is_off() {
        let off = verifier(false);
        assert_eq!(
            reason(off.authenticate("basic", "x")),
            Some("unsupported_method".into())
        );
        assert_eq!(
            reason(off.authenticate("bearer", "")),
            Some("empty_token".into())
        );
        assert!(off.authenticate("bearer", "anything").is_ok());
    }

    #[test]
    fn third_consecutive_failure_closes_and_success_resets_the_count() {
        let verifier = verifier(true);
        let mut state = AuthState::new(&verifier);
        let fail = verifier.authenticate("bearer", "bad");
        assert_eq!(state.record(&fail), AuthVerdict::KeepOpen);
        assert_eq!(state.record(&fail), AuthVerdict::KeepOpen);
        assert_eq!(state.record(&Ok(())), AuthVerdict::KeepOpen);
        assert_eq!(state.record(&fail), AuthVerdict::KeepOpen);
        assert_eq!(state.record(&fail), AuthVerdict::KeepOpen);
        assert_eq!(state.record(&fail), AuthVerdict::CloseAfterAnswer);
        assert!(state.is_authenticated(), "a failure never undoes a success");
    }
}
