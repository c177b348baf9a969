//! WATCH_ALL / WATCH_INSTANCE / UNWATCH behaviour on one server: event shape, filters alone
//! and combined, include_ctx, unwatch, limits and the subscription gauges (spec §3.5, §4.20–4.22,
//! §6.9, §10).

use rstmdb::service::watch::WatchLimits;
use rstmdb_client::{ErrorCode, Op};
use rstmdb_testkit::watch::{Applied, Conn, Pushed, Setup, WatchServer, applied_since, create};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

async fn apply(conn: &mut Conn, instance_id: &str, event: &str) {
    conn.ok(
        Op::ApplyEvent,
        json!({"instance_id": instance_id, "event": event, "payload": {"by": event}}),
    )
    .await;
}

async fn watch_all(conn: &mut Conn, params: Value) -> (String, u64) {
    let result = conn.ok(Op::WatchAll, params).await;
    (
        result["subscription_id"].as_str().expect("id").to_owned(),
        result["wal_offset"].as_u64().expect("wal_offset"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_have_exactly_the_fields_of_the_spec() {
    let server = WatchServer::start(Setup::default()).await;
    let mut writer = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut writer, "order").await;
    create(&mut writer, "order", "o-1").await;
    let mut watcher = server.connect().await;
    let (with_ctx, _) = watch_all(&mut watcher, json!({})).await;
    let (without_ctx, _) = watch_all(&mut watcher, json!({"include_ctx": false})).await;

    apply(&mut writer, "o-1", "GO").await;
    let mut seen = HashMap::new();
    for _ in 0..2 {
        let raw = watcher.next_raw().await;
        seen.insert(raw["subscription_id"].as_str().unwrap().to_owned(), raw);
    }

    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let base = [
        "type",
        "subscription_id",
        "instance_id",
        "machine",
        "version",
        "wal_offset",
        "from_state",
        "to_state",
        "event",
        "payload",
    ];
    let mut with = base.map(str::to_owned).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(keys(&seen[&without_ctx]), with);
    with.insert("ctx".to_owned());
    assert_eq!(keys(&seen[&with_ctx]), with);
    let event = &seen[&with_ctx];
    assert_eq!(event["type"], "event");
    assert_eq!(event["instance_id"], "o-1");
    assert_eq!(event["machine"], "order");
    assert_eq!(event["version"], 1);
    assert_eq!(
        (event["from_state"].clone(), event["to_state"].clone()),
        (json!("a"), json!("b"))
    );
    assert_eq!(event["event"], "GO");
    assert_eq!(event["payload"], json!({"by": "GO"}));
    assert_eq!(
        event["ctx"],
        json!({"n": 0, "by": "GO"}),
        "ctx after the transition"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_all_delivers_exactly_the_transitions_at_or_after_its_offset() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "order").await;
    create(&mut conn, "order", "o-1").await;
    apply(&mut conn, "o-1", "GO").await;
    // Pipelined on the same connection: the write before WATCH_ALL is below S, the one after
    // is at or above it (spec §3.7 request order).
    let (sub, start) = watch_all(&mut conn, json!({})).await;
    apply(&mut conn, "o-1", "BACK").await;

    let event = conn.next_event().await;
    assert_eq!(
        (event.subscription_id.as_str(), event.event.as_str()),
        (sub.as_str(), "BACK")
    );
    assert!(event.wal_offset >= start);
    conn.expect_quiet(QUIET).await;
    let wal = applied_since(&mut conn, 0).await;
    assert_eq!(wal.len(), 2);
    assert!(wal[0].offset < start, "the earlier transition lies below S");
    server.stop().await;
}

/// The filter cases: (params, predicate over machine/from/to/event).
type Case = (Value, fn(&str, &Applied) -> bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_filter_alone_and_combined_matches_exactly_its_transitions() {
    let server = WatchServer::start(Setup::default()).await;
    let mut writer = server.connect().await;
    for machine in ["order", "ticket"] {
        rstmdb_testkit::watch::put_flip_machine(&mut writer, machine).await;
    }
    let cases: Vec<Case> = vec![
        (json!({}), |_, _| true),
        (json!({"machines": ["order"]}), |m, _| m == "order"),
        (json!({"machines": ["order", "ticket"]}), |_, _| true),
        (json!({"from_states": ["b"]}), |_, a| a.from_state == "b"),
        (json!({"to_states": ["closed"]}), |_, a| {
            a.to_state == "closed"
        }),
        (json!({"events": ["GO", "CLOSE"]}), |_, a| {
            a.event == "GO" || a.event == "CLOSE"
        }),
        (
            json!({"machines": ["ticket"], "from_states": ["b"], "to_states": ["a"], "events": ["BACK"]}),
            |m, a| m == "ticket" && a.event == "BACK",
        ),
        (json!({"machines": ["ticket"], "events": ["GO"]}), |m, a| {
            m == "ticket" && a.event == "GO"
        }),
        (json!({"machines": ["nothing"]}), |_, _| false),
    ];
    let mut watcher = server.connect().await;
    let mut subscriptions = Vec::new();
    for (params, _) in &cases {
        subscriptions.push(watch_all(&mut watcher, params.clone()).await.0);
    }

    let mut machine_of = HashMap::new();
    for (machine, id) in [("order", "o-1"), ("order", "o-2"), ("ticket", "t-1")] {
        create(&mut writer, machine, id).await;
        machine_of.insert(id.to_owned(), machine);
    }
    for id in ["o-1", "o-2", "t-1"] {
        for event in ["GO", "BACK", "GO", "CLOSE"] {
            apply(&mut writer, id, event).await;
        }
    }
    let all = applied_since(&mut writer, 0).await;
    assert_eq!(all.len(), 12);

    let expected: Vec<Vec<Applied>> = cases
        .iter()
        .map(|(_, keep)| {
            all.iter()
                .filter(|a| keep(machine_of[&a.instance_id], a))
                .cloned()
                .collect()
        })
        .collect();
    let total = expected.iter().map(Vec::len).sum();
    let mut received: HashMap<String, Vec<Applied>> = HashMap::new();
    for event in watcher.events(total).await {
        received
            .entry(event.subscription_id.clone())
            .or_default()
            .push(Applied::of(&event));
    }
    watcher.expect_quiet(QUIET).await;
    for (i, sub) in subscriptions.iter().enumerate() {
        let got = received.remove(sub).unwrap_or_default();
        assert_eq!(got, expected[i], "filter {}", cases[i].0);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_instance_follows_only_its_instance_and_reports_where_it_stands() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "order").await;
    create(&mut conn, "order", "o-1").await;
    create(&mut conn, "order", "o-2").await;
    apply(&mut conn, "o-1", "GO").await;
    let result = conn
        .ok(
            Op::WatchInstance,
            json!({"instance_id": "o-1", "include_ctx": false}),
        )
        .await;
    let instance = conn
        .ok(Op::GetInstance, json!({"instance_id": "o-1"}))
        .await;
    assert_eq!(result["current_state"], "b");
    assert_eq!(result["current_wal_offset"], instance["last_wal_offset"]);
    assert_eq!(result["instance_id"], "o-1");
    let sub = result["subscription_id"].as_str().unwrap().to_owned();
    assert!(
        sub.starts_with("sub-") && sub.len() == 40,
        "sub- + UUID: {sub}"
    );

    apply(&mut conn, "o-2", "GO").await;
    apply(&mut conn, "o-1", "BACK").await;
    let event = conn.next_event().await;
    assert_eq!(
        (event.instance_id.as_str(), event.event.as_str()),
        ("o-1", "BACK")
    );
    assert_eq!(event.ctx, None, "include_ctx false");
    conn.expect_quiet(QUIET).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_an_unknown_or_deleted_instance_is_instance_not_found() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "order").await;
    create(&mut conn, "order", "gone").await;
    conn.ok(Op::DeleteInstance, json!({"instance_id": "gone"}))
        .await;
    for id in ["never", "gone"] {
        let err = conn
            .err(Op::WatchInstance, json!({"instance_id": id}))
            .await;
        assert_eq!(err.code, ErrorCode::InstanceNotFound, "{id}");
    }
    assert_eq!(server.stats().subscriptions_active_instance, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_applies_and_non_transition_writes_produce_no_event_but_batches_do() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "order").await;
    create(&mut conn, "order", "o-1").await;
    watch_all(&mut conn, json!({})).await;

    let err = conn
        .err(
            Op::ApplyEvent,
            json!({"instance_id": "o-1", "event": "BACK"}),
        )
        .await;
    assert_eq!(err.code, ErrorCode::InvalidTransition);
    create(&mut conn, "order", "o-2").await;
    conn.ok(
        Op::ApplyEvent,
        json!({"instance_id": "o-2", "event": "GO", "idempotency_key": "k"}),
    )
    .await;
    // An idempotent replay writes nothing and sends nothing.
    conn.ok(
        Op::ApplyEvent,
        json!({"instance_id": "o-2", "event": "GO", "idempotency_key": "k"}),
    )
    .await;
    conn.ok(
        Op::Batch,
        json!({"mode": "atomic", "ops": [
            {"op": "APPLY_EVENT", "params": {"instance_id": "o-1", "event": "GO"}},
            {"op": "APPLY_EVENT", "params": {"instance_id": "o-1", "event": "BACK"}}
        ]}),
    )
    .await;
    let events: Vec<(String, String)> = conn
        .events(3)
        .await
        .into_iter()
        .map(|e| (e.instance_id, e.event))
        .collect();
    assert_eq!(
        events,
        [("o-2", "GO"), ("o-1", "GO"), ("o-1", "BACK")].map(|(i, e)| (i.to_owned(), e.to_owned()))
    );
    conn.expect_quiet(QUIET).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwatch_ends_the_subscription_and_reports_whether_it_removed_one() {
    let server = WatchServer::start(Setup::default()).await;
    let mut conn = server.connect().await;
    let mut other = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut conn, "order").await;
    create(&mut conn, "order", "o-1").await;
    let (sub, _) = watch_all(&mut conn, json!({})).await;
    let (kept, _) = watch_all(&mut conn, json!({})).await;

    let foreign = other.ok(Op::Unwatch, json!({"subscription_id": sub})).await;
    assert_eq!(foreign["removed"], false, "another connection's id");
    let removed = conn.ok(Op::Unwatch, json!({"subscription_id": sub})).await;
    assert_eq!(
        (
            removed["subscription_id"].clone(),
            removed["removed"].clone()
        ),
        (json!(sub), json!(true))
    );
    let again = conn.ok(Op::Unwatch, json!({"subscription_id": sub})).await;
    assert_eq!(again["removed"], false);
    let unknown = conn
        .ok(Op::Unwatch, json!({"subscription_id": "sub-nope"}))
        .await;
    assert_eq!(unknown["removed"], false);

    apply(&mut conn, "o-1", "GO").await;
    let event = conn.next_event().await;
    assert_eq!(event.subscription_id, kept);
    conn.expect_quiet(QUIET).await;
    server
        .wait_stats("one left", |s| s.subscriptions_active_all == 1)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_over_a_limit_are_refused_with_subscription_limit() {
    let limits = WatchLimits {
        max_subscriptions_per_connection: 2,
        max_subscriptions: 3,
        ..WatchLimits::default()
    };
    let server = WatchServer::start(Setup {
        limits,
        ..Setup::default()
    })
    .await;
    let mut first = server.connect().await;
    let mut second = server.connect().await;
    watch_all(&mut first, json!({})).await;
    watch_all(&mut first, json!({})).await;
    let per_connection = first.err(Op::WatchAll, json!({})).await;
    assert_eq!(per_connection.code, ErrorCode::BadRequest);
    let details = per_connection.details.clone().unwrap_or_default();
    assert_eq!(
        (details["reason"].clone(), details["limit"].clone()),
        (json!("subscription_limit"), json!(2))
    );

    watch_all(&mut second, json!({})).await;
    let total = second.err(Op::WatchAll, json!({})).await;
    let details = total.details.clone().unwrap_or_default();
    assert_eq!(
        (details["reason"].clone(), details["limit"].clone()),
        (json!("subscription_limit"), json!(3))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_gauges_count_by_type_and_drop_on_disconnect_bye_and_unwatch() {
    let server = WatchServer::start(Setup::default()).await;
    let mut setup = server.connect().await;
    rstmdb_testkit::watch::put_flip_machine(&mut setup, "order").await;
    create(&mut setup, "order", "o-1").await;

    let mut dropped = server.connect().await;
    let mut leaving = server.connect().await;
    for conn in [&mut dropped, &mut leaving] {
        watch_all(conn, json!({})).await;
        conn.ok(Op::WatchInstance, json!({"instance_id": "o-1"}))
            .await;
    }
    let (sub, _) = watch_all(&mut setup, json!({})).await;
    let stats = server.stats();
    assert_eq!(
        (
            stats.subscriptions_active_all,
            stats.subscriptions_active_instance
        ),
        (3, 2)
    );

    apply(&mut setup, "o-1", "GO").await;
    setup.next_event().await;
    server
        .wait_stats("forwarded", |s| {
            s.events_forwarded_all == 3 && s.events_forwarded_instance == 2
        })
        .await;

    drop(dropped);
    leaving.ok(Op::Bye, json!({})).await;
    server
        .wait_stats("after disconnect and BYE", |s| {
            s.subscriptions_active_all == 1 && s.subscriptions_active_instance == 0
        })
        .await;
    setup.ok(Op::Unwatch, json!({"subscription_id": sub})).await;
    server
        .wait_stats("after UNWATCH", |s| s.subscriptions_active_all == 0)
        .await;
    assert!(matches!(
        setup.next_pushed(QUIET).await,
        None | Some(Pushed::Event(_))
    ));
    server.stop().await;
}
