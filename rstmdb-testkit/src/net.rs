//! Loopback ports.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago. Another process may take it before the
/// caller binds it, so whoever starts a server on it must retry on another port.
pub fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket on 127.0.0.1:0");
    probe
        .local_addr()
        .expect("the probe socket's address")
        .port()
}
