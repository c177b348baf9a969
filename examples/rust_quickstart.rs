//! Quickstart: register a machine, create an instance, watch it move, and read it back.
//!
//! Run a server first (`cargo run --release -- serve` at the workspace root), then:
//!
//! ```text
//! cargo run -p rstmdb-client --example quickstart -- 127.0.0.1:7401 [TOKEN]
//! ```
//!
//! With TLS, set `RSTMDB_CA_CERT` to the CA bundle (PEM) that signed the server certificate.

use std::time::Duration;

use futures::StreamExt;
use rstmdb_client::{
    ApplyEventOptions, Client, ClientError, ClientOptions, CreateInstanceOptions, ErrorCode,
    PemSource, TlsOptions,
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7401".to_owned());
    let mut options = ClientOptions::new(addr).request_timeout(Duration::from_secs(10));
    if let Some(token) = args.next() {
        options = options.token(token);
    }
    if let Ok(ca) = std::env::var("RSTMDB_CA_CERT") {
        options = options.tls(TlsOptions::new().ca_cert(PemSource::File(ca.into())));
    }

    let client = Client::connect(options).await?;
    let info = client.info().await?;
    println!("connected to {} {}", info.server_name, info.server_version);

    let definition = json!({
        "states": ["created", "paid", "shipped"],
        "initial": "created",
        "transitions": [
            {"from": "created", "event": "PAY", "to": "paid"},
            {"from": "paid", "event": "SHIP", "to": "shipped", "guard": "ctx.ready"}
        ]
    });
    let put = client
        .put_machine("quickstart-order", 1, definition)
        .await?;
    println!("machine stored, checksum {}", put.stored_checksum);

    let mut watch = client
        .watch_all(rstmdb_client::params::WatchAllParams {
            machines: vec!["quickstart-order".to_owned()],
            ..Default::default()
        })
        .await?;

    // Idempotency keys make these calls safe to retry after a lost connection.
    let created = client
        .create_instance(
            "quickstart-order",
            1,
            CreateInstanceOptions::default().idempotency_key("quickstart-create-1"),
        )
        .await?;
    let id = created.instance_id;
    println!("instance {id} is {}", created.state);

    let payload = json!({"amount": 42.5, "ready": true});
    let paid = client
        .apply_event(
            &id,
            "PAY",
            ApplyEventOptions::default()
                .payload(payload.as_object().cloned().unwrap_or_default())
                .expected_state("created")
                .idempotency_key("quickstart-pay-1"),
        )
        .await?;
    println!("{id}: {} -> {}", paid.from_state, paid.to_state);

    if let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
        let event = event?;
        println!(
            "watched: {} {} -> {} at offset {}",
            event.instance_id, event.from_state, event.to_state, event.wal_offset
        );
    }

    // A typed error: APPLY_EVENT with the wrong expected state is a CONFLICT.
    match client
        .apply_event(
            &id,
            "SHIP",
            ApplyEventOptions::default().expected_state("created"),
        )
        .await
    {
        Err(error) if error.code() == Some(&ErrorCode::Conflict) => {
            println!("conflict as expected: {}", error.reason().unwrap_or("?"));
        }
        other => println!("unexpected: {other:?}"),
    }

    let instance = client.get_instance(&id).await?;
    let ctx = serde_json::Value::Object(instance.ctx);
    println!("{id} is now {} with ctx {ctx}", instance.state);
    watch.unwatch().await?;
    client.close().await
}
