//! Shared helpers for the `server_*` integration tests: a real server on 127.0.0.1:0 running
//! in-process with the `EchoHandler`, and a raw-socket client that builds and checks frames
//! byte by byte (independently of the protocol crate's codec).
#![allow(dead_code)] // each test binary uses a different subset

use rstmdb::server::AuthSettings;
use rstmdb::server::{Server, ServerSettings};
use rstmdb::service::EchoHandler;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for any expected byte before failing.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The hash of `my-secret-token` (spec §8.1 worked example).
pub const TOKEN: &str = "my-secret-token";
pub const TOKEN_HASH: &str = "ea5add57437cbf20af59034d7ed17968dcc56767b41965fcc5b376d45db8b4a3";

pub fn settings() -> ServerSettings {
    ServerSettings {
        bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        idle_timeout: None,
        max_connections: 1000,
        max_frame_bytes: 16 * 1024 * 1024,
        write_timeout: None,
        auth: AuthSettings {
            required: false,
            token_hashes: Vec::new(),
        },
        tls: None,
    }
}

pub fn auth_required() -> AuthSettings {
    AuthSettings {
        required: true,
        token_hashes: vec![TOKEN_HASH.to_owned()],
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub handler: Arc<EchoHandler>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(settings()).await
    }

    pub async fn start_with(settings: ServerSettings) -> Self {
        let handler = Arc::new(EchoHandler::default());
        let server = Server::bind(settings, handler.clone())
            .await
            .expect("server binds");
        let addr = server.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            handler,
            stop: Some(stop),
            task,
        }
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.addr).await.expect("connects"))
    }

    /// Asks for a graceful shutdown; the returned handle resolves when `run_until` returned.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn wait_stopped(self) {
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops in time")
            .expect("server task does not panic");
    }
}

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

pub fn request(id: &str, op: &str, params: Value) -> String {
    json!({"type": "request", "id": id, "op": op, "params": params}).to_string()
}

pub struct Client<S> {
    pub stream: S,
    next_id: u64,
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

pub fn error_reason(response: &Value) -> &Value {
    &response["error"]["details"]["reason"]
}
