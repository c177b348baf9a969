//! One node-to-node connection: typed JSON messages in RCP frames.

use futures::{SinkExt, StreamExt};
use rstmdb_protocol::fault::WireError;
use rstmdb_protocol::frame::FrameCodec;
use rstmdb_protocol::limits::MAX_PAYLOAD_BYTES;
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    #[error("the peer closed the connection")]
    Closed,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the peer sent a message this node cannot read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the peer answered out of turn: {0}")]
    Unexpected(String),
}

#[derive(Debug)]
pub struct PeerConnection {
    framed: Framed<TcpStream, FrameCodec>,
}

impl PeerConnection {
    pub fn new(stream: TcpStream) -> Self {
        // Replication is request-response: Nagle would hold each small frame for an ACK.
        let _ = stream.set_nodelay(true);
        Self {
            framed: Framed::new(stream, FrameCodec::new(MAX_PAYLOAD_BYTES)),
        }
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
