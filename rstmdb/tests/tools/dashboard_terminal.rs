//! `rstmdb dashboard` in a real terminal: a tmux pane at 100×30 attached to a real
//! `rstmdb serve`. Transitions applied with the client show up in the feed and the counts;
//! after the server is killed and restarted on the same port and data, the dashboard says it
//! is reconnecting, then comes back and keeps updating.

use rstmdb_client::{ApplyEventOptions, Client, ClientOptions, CreateInstanceOptions};
use rstmdb_testkit::binary::clear_rstmdb_env;
use rstmdb_testkit::machines::ORDER_DEFINITION;
use rstmdb_testkit::net::free_port;
use rstmdb_testkit::tmux::{SCREEN_TIMEOUT, Tmux};
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A `rstmdb serve` child on a fixed address and data dir, so it can be restarted in place.
struct ServeProcess {
    child: Child,
}

impl ServeProcess {
    fn start(addr: SocketAddr, data_dir: &Path) -> ServeProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
        command
            .arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        clear_rstmdb_env(&mut command);
        // The metrics endpoint's default port may be taken by a parallel test.
        command.env("RSTMDB_METRICS_ENABLED", "false");
        let child = command.spawn().expect("spawn rstmdb serve");
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rstmdb serve did not start on {addr}"
            );
            sleep(Duration::from_millis(50));
        }
        ServeProcess { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn apply(client: &Client, instance: &str, event: &str) {
    // Retries ride out the moment the client notices a restarted server.
    for _ in 0..50 {
        match client
            .apply_event(instance, event, ApplyEventOptions::default())
            .await
        {
            Ok(_) => return,
            Err(error) if error.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("{event} on {instance}: {error}"),
        }
    }
    panic!("{event} on {instance} never went through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_transitions_and_survives_a_server_restart() {
    if !Tmux::available() {
        eprintln!("tmux is not installed (scripts/test-deps installs it): skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir: PathBuf = dir.path().join("data");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = ServeProcess::start(addr, &data_dir);

    let client = Client::connect(ClientOptions::new(addr.to_string()))
        .await
        .expect("connect");
    let definition: Value = serde_json::from_str(ORDER_DEFINITION).expect("definition");
    client
        .put_machine("order", 1, definition)
        .await
        .expect("put machine");
    for id in ["ord-1", "ord-2", "ord-3"] {
        client
            .create_instance("order", 1, CreateInstanceOptions::default().instance_id(id))
            .await
            .expect("create");
    }

    let tmux = Tmux::new("dashboard");
    let command = format!(
        "env -i TERM=screen-256color {binary} dashboard -s {addr}",
        binary = env!("CARGO_BIN_EXE_rstmdb"),
    );
    tmux.new_session("dash", 100, 30, &command);
    tmux.wait_for_text("dash", &["Instances 3", "created", "connected to"]);

    apply(&client, "ord-1", "PAY").await;
    apply(&client, "ord-2", "PAY").await;
    let screen = tmux.wait_for_text("dash", &["ord-1", "ord-2", "created → paid"]);
    assert!(screen.contains("Instances 3"), "{screen}");

    server.kill();
    tmux.wait_for_text("dash", &["reconnecting to"]);
    let _server = ServeProcess::start(addr, &data_dir);
    tmux.wait_for_text("dash", &["connected to"]);

    apply(&client, "ord-3", "PAY").await;
    let screen = tmux.wait_for_text("dash", &["ord-3"]);
    // The counts after the restart come from the recovered server: all three are paid now.
    let paid_row = screen
        .lines()
        .find(|line| line.contains("order") && line.contains(" paid "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        paid_row.contains(" 3 "),
        "paid count row: {paid_row:?}\n{screen}"
    );

    tmux.send_keys("dash", &["q"]);
}
