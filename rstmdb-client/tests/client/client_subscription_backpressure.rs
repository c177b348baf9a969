//! A subscription whose application reads slowly loses nothing: when its buffer is full the
//! connection's reader waits, and every event still arrives once, in order.

use std::time::Duration;

use crate::client_support::{FakeConfig, FakeServer};
use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{Client, ClientOptions};

#[tokio::test]
async fn a_full_subscription_buffer_delays_events_but_drops_none() {
    let server = FakeServer::start(FakeConfig::default()).await;
    let options = ClientOptions::new(server.addr()).subscription_buffer_events(2);
    let client = Client::connect(options).await.unwrap();
    let mut subscription = client.watch_all(WatchAllParams::default()).await.unwrap();
    let offsets: Vec<u64> = (1..=50).collect();
    for &offset in &offsets {
        server.publish(offset);
    }
    // Let the buffer fill up well before reading anything.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut received = Vec::new();
    while received.len() < offsets.len() {
        let event = tokio::time::timeout(Duration::from_secs(5), subscription.next())
            .await
            .expect("events keep coming")
            .expect("the stream is open")
            .expect("an event");
        received.push(event.wal_offset);
    }
    assert_eq!(received, offsets);
    // Once drained, the connection serves calls again.
    assert!(client.ping().await.unwrap().pong);
}
