//! Byte budgets: how much one connection (and, optionally, all connections together) may hold
//! in requests being answered and responses not yet written. A connection over its budget is
//! not read until its client has read enough (`network.max_pending_response_bytes`,
//! `network.max_inflight_bytes`).
//!
//! A budget is soft by at most one message: the reader waits until the budget is below its
//! limit before it reads the next request, whatever that request's size, so a single request
//! or response as large as the protocol allows always gets through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit_bytes: usize,
    used_bytes: AtomicUsize,
    /// Woken whenever usage drops from at or above the limit to below it.
    freed: Notify,
}

impl ByteBudget {
    pub fn new(limit_bytes: usize) -> Arc<Self> {
        assert!(limit_bytes > 0, "a byte budget of 0 could never be met");
        Arc::new(Self {
            limit_bytes,
            used_bytes: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Acquire)
    }

    pub fn is_exhausted(&self) -> bool {
        self.used_bytes() >= self.limit_bytes
    }

    /// Resolves once usage is below the limit (at once if it already is).
    pub async fn below_limit(&self) {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            // Registered before the check, so a release between the check and the await is
            // not missed.
            freed.as_mut().enable();
            if !self.is_exhausted() {
                return;
            }
            freed.await;
        }
    }

    fn add(&self, bytes: usize) {
        self.used_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    fn sub(&self, bytes: usize) {
        let before = self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "a budget released more than was charged");
        if before >= self.limit_bytes && before - bytes < self.limit_bytes {
            self.freed.notify_waiters();
        }
    }
}

/// Bytes charged to a connection's budget and, for request bytes, to the server-wide one;
/// released when dropped (once the response they belong to is written).
#[derive(Debug)]
pub(crate) struct Charge {
    connection: Arc<ByteBudget>,
    connection_bytes: usize,
    server: Option<Arc<ByteBudget>>,
    server_bytes: usize,
}

impl Charge {
    /// A request's payload, charged to both budgets.
    pub fn request(
        connection: &Arc<ByteBudget>,
        server: Option<&Arc<ByteBudget>>,
        bytes: usize,
    ) -> Self {
        connection.add(bytes);
        if let Some(server) = server {
            server.add(bytes);
        }
        Self {
            connection: Arc::clone(connection),
            connection_bytes: bytes,
            server: server.cloned(),
            server_bytes: bytes,
        }
    }

    /// Adds the bytes of the response, which count against the connection only.
    pub fn add_response(&mut self, bytes: usize) {
        self.connection.add(bytes);
        self.connection_bytes += bytes;
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.connection.sub(self.connection_bytes);
        if let Some(server) = &self.server {
            server.sub(self.server_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_charge_counts_until_dropped_and_only_request_bytes_count_server_wide() {
        let connection = ByteBudget::new(100);
        let server = ByteBudget::new(1000);
        let mut charge = Charge::request(&connection, Some(&server), 30);
        charge.add_response(50);
        assert_eq!((connection.used_bytes(), server.used_bytes()), (80, 30));
        drop(charge);
        assert_eq!((connection.used_bytes(), server.used_bytes()), (0, 0));
    }

    #[tokio::test]
    async fn a_waiter_is_released_when_usage_drops_below_the_limit() {
        let budget = ByteBudget::new(100);
        let first = Charge::request(&budget, None, 60);
        let second = Charge::request(&budget, None, 60);
        assert!(budget.is_exhausted());
        let waiting = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move { budget.below_limit().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "still at 120 of 100");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("released once usage fell to 60")
            .unwrap();
        drop(second);
        assert!(budget.below_limit().now_or_never().is_some());
    }
}
