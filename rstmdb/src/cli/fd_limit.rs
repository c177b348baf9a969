//! The open-file limit (RLIMIT_NOFILE) at start-up: raised from the soft to the hard limit,
//! then checked against `network.max_connections`, so that running out of descriptors is a
//! start-up error naming both numbers instead of refused accepts and failed WAL rotations
//! under load.

use rstmdb::metrics::http::{HEALTH_ONLY_CONNECTIONS, MAX_HTTP_CONNECTIONS};
use rstmdb::server::MAX_LINGERING_REFUSALS;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors the server needs besides one per connection: standard streams, the listeners,
/// the runtime's own, WAL segments (kept open while retained), checkpoint and snapshot writes,
/// the data directory lock, and logging.
pub const BASE_DESCRIPTORS: u64 = 64;

/// What the server may hold at once: every connection, refused connections being answered,
/// and the metrics endpoint's connections.
pub fn descriptors_needed(max_connections: u64) -> u64 {
    let overhead = BASE_DESCRIPTORS
        + MAX_LINGERING_REFUSALS as u64
        + (MAX_HTTP_CONNECTIONS + HEALTH_ONLY_CONNECTIONS) as u64;
    max_connections.saturating_add(overhead)
}

/// The limit after start-up, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: Option<u64>,
    pub now: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "network.max_connections = {max_connections} needs {needed} file descriptors, but this \
     process may open only {limit} (RLIMIT_NOFILE, hard limit {hard}); lower \
     network.max_connections to at most {fits}, or raise the limit (`ulimit -n`, systemd \
     LimitNOFILE=, docker --ulimit nofile=)"
)]
pub struct FdLimitError {
    pub max_connections: u64,
    pub needed: u64,
    pub limit: u64,
    pub hard: String,
    pub fits: u64,
}

/// Raises the soft limit to the hard one, then checks that `max_connections` fits.
pub fn raise_and_check(max_connections: u64) -> Result<FdLimit, FdLimitError> {
    let before = getrlimit(Resource::Nofile);
    if before.current != before.maximum {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            // An unlimited hard limit may be refused as a soft one (fs.nr_open); keep going
            // with what there is, and let the check below decide.
            tracing::debug!(%err, "cannot raise the open-file limit to the hard limit");
        }
    }
    let now = getrlimit(Resource::Nofile);
    check(max_connections, now)?;
    Ok(FdLimit {
        before: before.current,
        now: now.current,
    })
}

fn check(max_connections: u64, limit: Rlimit) -> Result<(), FdLimitError> {
    let Some(soft) = limit.current else {
        return Ok(());
    };
    let needed = descriptors_needed(max_connections);
    if needed <= soft {
        return Ok(());
    }
    Err(FdLimitError {
        max_connections,
        needed,
        limit: soft,
        hard: limit
            .maximum
            .map_or_else(|| "unlimited".to_owned(), |hard| hard.to_string()),
        fits: soft.saturating_sub(descriptors_needed(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_too_small_for_the_connections_names_both_numbers_and_what_fits() {
        let limit = Rlimit {
            current: Some(1024),
            maximum: Some(1024),
        };
        let error = check(1000, limit).unwrap_err();
        assert_eq!(error.needed, descriptors_needed(1000));
        assert_eq!(error.fits, 1024 - descriptors_needed(0));
        let text = error.to_string();
        assert!(text.contains("max_connections = 1000"), "{text}");
        assert!(text.contains("only 1024"), "{text}");
        assert!(check(error.fits, limit).is_ok());
        assert!(check(error.fits + 1, limit).is_err());
        let unlimited = Rlimit {
            current: None,
            maximum: None,
        };
        assert!(check(u64::MAX, unlimited).is_ok());
    }
}
