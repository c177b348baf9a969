//! A reader wrapper that remembers when the last byte arrived, so the idle timeout (§8.4)
//! counts from the last byte, not from the last complete request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct ActivityReader<R> {
    inner: R,
    last_byte_at: Instant,
}

impl<R> ActivityReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            last_byte_at: Instant::now(),
        }
    }

    /// When the most recent byte arrived (or when the connection was opened).
    pub fn last_byte_at(&self) -> Instant {
        self.last_byte_at
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for ActivityReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.last_byte_at = Instant::now();
        }
        polled
    }
}
