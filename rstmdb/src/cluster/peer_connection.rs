//! One node-to-node connection: typed JSON messages in RCP frames.

use futures::{SinkExt, StreamExt};
use rstmdb_protocol::fault::WireError;
use rstmdb_protocol::frame::FrameCodec;
use rstmdb_protocol::limits::MAX_PAYLOAD_BYTES;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// Why a node-to-node exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("the peer refused this node: {0}")]
    Refused(String),
    #[error(
        "TLS handshake with {addr} failed: {source} (cluster nodes use TLS all or none: is one \
         of them running without it?)"
    )]
    Tls {
        addr: String,
        source: std::io::Error,
    },
    #[error("the peer closed the connection")]
    Closed,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the peer sent a message this node cannot read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the peer answered out of turn: {0}")]
    Unexpected(String),
}

/// Frames before the hello is accepted are small: a stranger who connects to the raft port
/// makes the node buffer at most this much per connection, not 16 MiB.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 64 * 1024;

/// The transport under a connection: plain TCP, or TLS over it.
pub trait PeerIo: AsyncRead + AsyncWrite + Send + Sync + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> PeerIo for T {}

pub struct PeerConnection {
    framed: Framed<Box<dyn PeerIo>, FrameCodec>,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerConnection(..)")
    }
}

impl PeerConnection {
    /// A plain TCP connection.
    pub fn new(stream: TcpStream) -> Self {
        Self::over(tuned(stream))
    }

    /// A connection over `io` (TLS over a [`tuned`] stream, say). Frames are limited to
    /// [`MAX_HANDSHAKE_FRAME_BYTES`] until [`PeerConnection::handshake_done`].
    pub fn over(io: impl PeerIo + 'static) -> Self {
        let io: Box<dyn PeerIo> = Box::new(io);
        Self {
            framed: Framed::new(io, FrameCodec::new(MAX_HANDSHAKE_FRAME_BYTES)),
        }
    }

    /// The peer is a node of this cluster: its frames may now carry entries, up to the
    /// protocol's 16 MiB.
    pub fn handshake_done(&mut self) {
        self.framed
            .codec_mut()
            .set_max_frame_bytes(MAX_PAYLOAD_BYTES);
    }

    pub async fn send<T: Serialize>(&mut self, message: &T) -> Result<(), PeerError> {
        let text = serde_json::to_string(message)?;
        self.framed.send(text).await?;
        Ok(())
    }

    pub async fn receive<T: DeserializeOwned>(&mut self) -> Result<T, PeerError> {
        match self.framed.next().await {
            Some(frame) => Ok(serde_json::from_str(&frame?)?),
            None => Err(PeerError::Closed),
        }
    }
}

/// Replication is request-response: Nagle would hold each small frame for an ACK.
pub fn tuned(stream: TcpStream) -> TcpStream {
    let _ = stream.set_nodelay(true);
    stream
}
