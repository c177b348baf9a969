//! The network layer alone: a server on the loopback interface whose handler echoes requests
//! back ([`EchoHandler`], the `testing` feature), for tests of framing, sessions, limits and
//! TLS.

use crate::raw::Client;
use crate::server::{ServerTask, loopback_settings};
use rstmdb::server::ServerSettings;
use rstmdb::service::EchoHandler;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct EchoServer {
    pub addr: SocketAddr,
    pub handler: Arc<EchoHandler>,
    task: ServerTask,
}

impl EchoServer {
    /// With [`loopback_settings`].
    pub async fn start() -> EchoServer {
        EchoServer::start_with(loopback_settings()).await
    }

    pub async fn start_with(settings: ServerSettings) -> EchoServer {
        let handler = Arc::new(EchoHandler::default());
        let task = ServerTask::start(settings, handler.clone()).await;
        EchoServer {
            addr: task.addr,
            handler,
            task,
        }
    }

    /// A raw-frame client on a new connection.
    pub async fn connect(&self) -> Client<TcpStream> {
        Client::new(TcpStream::connect(self.addr).await.expect("connects"))
    }

    /// Asks for a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        self.task.begin_shutdown();
    }

    /// Waits until the server stopped (within 10 s, without a panic).
    pub async fn wait_stopped(self) {
        self.task.stop(Duration::from_secs(10)).await;
    }
}
