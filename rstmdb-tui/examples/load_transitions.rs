//! Drives a steady stream of transitions against a running server, to watch the dashboard
//! under load: `cargo run -p rstmdb-tui --example load_transitions -- 127.0.0.1:7401 [SECONDS]`.
//! Registers a two-state `flip` machine, creates 200 instances and flips them with 64 requests
//! in flight; prints the transitions per second it achieved.

use futures::StreamExt;
use rstmdb_client::{ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions};
use std::time::{Duration, Instant};

const INSTANCES: usize = 200;
const IN_FLIGHT: usize = 64;

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7401".to_owned());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let client = Client::connect(ClientOptions::new(addr)).await?;
    let definition = serde_json::json!({
        "states": ["up", "down"],
        "initial": "up",
        "transitions": [
            {"from": "up", "event": "FLIP", "to": "down"},
            {"from": "down", "event": "FLIP", "to": "up"}
        ]
    });
    // Already registered by an earlier run: fine.
    let _ = client.put_machine("flip", 1, definition).await;
    for n in 0..INSTANCES {
        let options = CreateInstanceOptions::default().instance_id(format!("flip-{n}"));
        let _ = client.create_instance("flip", 1, options).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let ids = (0..).map(|n: usize| format!("flip-{}", n % INSTANCES));
    let applied = futures::stream::iter(ids)
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .map(|id| {
            let client = client.clone();
            async move {
                client
                    .apply_event(&id, "FLIP", ApplyEventOptions::default())
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{applied} transitions in {secs:.1} s: {:.0}/s",
        applied as f64 / secs
    );
    client.close().await
}
