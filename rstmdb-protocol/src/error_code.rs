//! The `error.code` strings of spec §5.1.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RCP error code. Known codes have their own variant; anything else a server sends becomes
/// [`ErrorCode::Other`] instead of a parse failure (§1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    UnsupportedProtocol,
    BadRequest,
    Unauthorized,
    AuthFailed,
    NotFound,
    MachineNotFound,
    MachineVersionExists,
    MachineVersionLimitExceeded,
    InstanceNotFound,
    InstanceExists,
    InvalidTransition,
    GuardFailed,
    Conflict,
    WalIoError,
    InternalError,
    RateLimited,
    ReadOnlyMode,
    ReplicationTimeout,
    ReplicationError,
    /// A code this crate does not know, kept verbatim.
    Other(String),
}

impl ErrorCode {
    /// Every known code, in the order of §5.1.
    pub const KNOWN: [ErrorCode; 19] = [
        Self::UnsupportedProtocol,
        Self::BadRequest,
        Self::Unauthorized,
        Self::AuthFailed,
        Self::NotFound,
        Self::MachineNotFound,
        Self::MachineVersionExists,
        Self::MachineVersionLimitExceeded,
        Self::InstanceNotFound,
        Self::InstanceExists,
        Self::InvalidTransition,
        Self::GuardFailed,
        Self::Conflict,
        Self::WalIoError,
        Self::InternalError,
        Self::RateLimited,
        Self::ReadOnlyMode,
        Self::ReplicationTimeout,
        Self::ReplicationError,
    ];

    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::UnsupportedProtocol => "UNSUPPORTED_PROTOCOL",
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::AuthFailed => "AUTH_FAILED",
            Self::NotFound => "NOT_FOUND",
            Self::MachineNotFound => "MACHINE_NOT_FOUND",
            Self::MachineVersionExists => "MACHINE_VERSION_EXISTS",
            Self::MachineVersionLimitExceeded => "MACHINE_VERSION_LIMIT_EXCEEDED",
            Self::InstanceNotFound => "INSTANCE_NOT_FOUND",
            Self::InstanceExists => "INSTANCE_EXISTS",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::GuardFailed => "GUARD_FAILED",
            Self::Conflict => "CONFLICT",
            Self::WalIoError => "WAL_IO_ERROR",
            Self::InternalError => "INTERNAL_ERROR",
            Self::RateLimited => "RATE_LIMITED",
            Self::ReadOnlyMode => "READ_ONLY_MODE",
            Self::ReplicationTimeout => "REPLICATION_TIMEOUT",
            Self::ReplicationError => "REPLICATION_ERROR",
            Self::Other(code) => code,
        }
    }

    /// Parses a wire code; unknown strings become `Other`.
    pub fn parse(code: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == code)
            .unwrap_or_else(|| Self::Other(code.to_owned()))
    }

    /// Whether a client may retry the same request (§5.1). It depends on the code alone; an
    /// unknown code is treated as not retryable.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::WalIoError | Self::InternalError | Self::RateLimited | Self::ReplicationTimeout
        )
    }

    /// Whether a standalone server may send this code (§5.2): the public clients reject the
    /// others.
    pub fn emitted_by_standalone_server(&self) -> bool {
        !matches!(
            self,
            Self::ReadOnlyMode | Self::ReplicationTimeout | Self::ReplicationError | Self::Other(_)
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::parse(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips_through_its_spelling() {
        for code in ErrorCode::KNOWN {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
            assert!(!matches!(code, ErrorCode::Other(_)));
        }
    }

    #[test]
    fn the_version_limit_code_has_the_upstream_spelling() {
        assert_eq!(
            ErrorCode::MachineVersionLimitExceeded.as_str(),
            "MACHINE_VERSION_LIMIT_EXCEEDED"
        );
    }

    #[test]
    fn exactly_four_codes_are_retryable() {
        let retryable: Vec<&str> = ErrorCode::KNOWN
            .iter()
            .filter(|code| code.retryable())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            retryable,
            [
                "WAL_IO_ERROR",
                "INTERNAL_ERROR",
                "RATE_LIMITED",
                "REPLICATION_TIMEOUT"
            ]
        );
    }

    #[test]
    fn a_standalone_server_emits_sixteen_codes() {
        let count = ErrorCode::KNOWN
            .iter()
            .filter(|code| code.emitted_by_standalone_server())
            .count();
        assert_eq!(count, 16);
    }

    #[test]
    fn unknown_codes_deserialize_to_other_and_serialize_back_verbatim() {
        let code: ErrorCode = serde_json::from_str(r#""QUOTA_EXCEEDED""#).unwrap();
        assert_eq!(code, ErrorCode::Other("QUOTA_EXCEEDED".to_owned()));
        assert!(!code.retryable());
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""QUOTA_EXCEEDED""#);
    }
}
