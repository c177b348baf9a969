//! The one place where the database's typed errors become RCP errors (spec §5).

use crate::engine::ApplyError;
use crate::wal::WalError;
use rstmdb_client::{ErrorCode, RcpError};

/// An engine refusal as the RCP error the client receives: code, message and `details`.
pub fn from_apply(err: &ApplyError) -> RcpError {
    let code = ErrorCode::parse(err.code());
    let details = err.details();
    RcpError {
        retryable: code.retryable(),
        code,
        message: err.to_string(),
        details: (!details.is_empty()).then_some(details),
    }
}

/// A WAL failure on the write or read path: retryable `WAL_IO_ERROR`. The write was not
/// acknowledged; a retry should reuse its idempotency key (spec §5.1).
pub(crate) fn from_wal(err: &WalError) -> RcpError {
    RcpError::new(ErrorCode::WalIoError, format!("WAL I/O error: {err}"))
}

/// A bug caught at run time, reported for the one request instead of crashing (spec §2.8).
pub(crate) fn internal(what: impl std::fmt::Display) -> RcpError {
    RcpError::internal(format!("internal error: {what}"))
}
