//! A client that builds and checks RCP frames byte by byte, independently of the protocol
//! crate's codec, so the bytes on the wire are what the test says they are (§2.2).

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any expected byte before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A complete binary frame with version 1, flags 0x0001 and a correct CRC.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    raw_frame(b"RCPX", 1, 1, payload, crc32c::crc32c(payload))
}

/// A frame with every header field chosen by the test.
pub fn raw_frame(magic: &[u8; 4], version: u16, flags: u16, payload: &[u8], crc: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A request envelope as JSON text.
pub fn request(id: &str, op: &str, params: Value) -> String {
    json!({"type": "request", "id": id, "op": op, "params": params}).to_string()
}

/// `error.details.reason` of a response.
pub fn error_reason(response: &Value) -> &Value {
    &response["error"]["details"]["reason"]
}

/// A connection (or one half of it) that sends requests with ids 1, 2, ...
#[derive(Debug)]
pub struct Client<S> {
    pub stream: S,
    next_id: u64,
}

/// A connection to `addr` that has authenticated with [`TOKEN`](crate::TOKEN).
pub async fn authenticated(addr: SocketAddr) -> Client<TcpStream> {
    let mut client = Client::new(TcpStream::connect(addr).await.expect("connects"));
    let auth = client
        .call("AUTH", json!({"method": "bearer", "token": crate::TOKEN}))
        .await;
    assert_eq!(auth["result"], json!({"authenticated": true}), "{auth}");
    client
}

impl<S> Client<S> {
    pub fn new(stream: S) -> Self {
        Self { stream, next_id: 1 }
    }
}

impl<S: AsyncWrite + Unpin> Client<S> {
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Half-closes: the server sees end of input but may still write.
    pub async fn finish_sending(&mut self) {
        self.stream.shutdown().await.expect("shutdown write side");
    }

    pub async fn send_frame(&mut self, payload: &str) {
        self.send_raw(&frame(payload.as_bytes())).await;
    }

    /// Sends a request in a binary frame and returns its id.
    pub async fn send(&mut self, op: &str, params: Value) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.send_frame(&request(&id, op, params)).await;
        id
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Sends a request in a binary frame and reads the next frame, checking its id.
    pub async fn call(&mut self, op: &str, params: Value) -> Value {
        let id = self.send(op, params).await;
        let response = self.read_frame().await;
        assert_eq!(response["id"], json!(id), "response to {op}: {response}");
        response
    }
}

impl<S: AsyncRead + Unpin> Client<S> {
    pub async fn read_exact(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        tokio::time::timeout(READ_TIMEOUT, self.stream.read_exact(&mut buf))
            .await
            .expect("bytes arrive in time")
            .expect("read");
        buf
    }

    /// Reads one frame, checks what every server frame must be (§2.2), returns its JSON.
    pub async fn read_frame(&mut self) -> Value {
        let header = self.read_exact(18).await;
        assert_eq!(&header[0..4], b"RCPX", "magic");
        assert_eq!(&header[4..6], &[0, 1], "version");
        assert_eq!(&header[6..8], &[0, 1], "flags are exactly CRC_PRESENT");
        assert_eq!(&header[8..10], &[0, 0], "no header extension");
        let len = u32::from_be_bytes([header[10], header[11], header[12], header[13]]) as usize;
        let crc = u32::from_be_bytes([header[14], header[15], header[16], header[17]]);
        let payload = self.read_exact(len).await;
        assert_eq!(crc32c::crc32c(&payload), crc, "frame CRC");
        serde_json::from_slice(&payload).expect("payload is JSON")
    }

    /// Reads one JSON line.
    pub async fn read_line(&mut self) -> Value {
        let mut line = Vec::new();
        loop {
            let byte = self.read_exact(1).await[0];
            if byte == b'\n' {
                break;
            }
            line.push(byte);
        }
        serde_json::from_slice(&line).expect("line is JSON")
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub async fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(READ_TIMEOUT, self.stream.read_to_end(&mut rest))
            .await
            .expect("server closes in time");
        // A reset after the FIN also counts as closed; what matters is that no byte follows.
        if let Ok(n) = read {
            assert_eq!(
                n,
                0,
                "unexpected bytes before close: {:?}",
                String::from_utf8_lossy(&rest)
            );
        }
    }

    /// Asserts that nothing arrives (and the connection stays open) for `duration`.
    pub async fn expect_silence(&mut self, duration: Duration) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(duration, self.stream.read(&mut byte)).await;
        assert!(read.is_err(), "expected silence, got {read:?}");
    }
}
