//! Cluster mode through the real binary (spec §12, `docs/cluster.md`): three `rstmdb serve`
//! processes elect a leader, take writes on every node (a follower relays them to the
//! leader), replicate them to identical WALs, serve reads on every node, elect a new leader
//! when the old one is killed with SIGKILL, and take the old one back with its data. A node keeps its identity, and a standalone data directory is not a node's.

use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{Client, ErrorCode, Op};
use rstmdb_testkit::cluster::{ELECTION_TIMEOUT_MAX_MS, TestCluster};
use rstmdb_testkit::metrics::{Scrape, http_get};
use rstmdb_testkit::ops::{assert_error, call, ok, order_definition, server_error};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rstmdb"))
}

/// How long a follower may take to apply what the leader acknowledged, on a loaded machine.
const CONVERGE: Duration = Duration::from_secs(15);

async fn create(client: &Client, id: &str, key: &str) -> Value {
    ok(
        client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": id,
               "initial_ctx": {"n": id}, "idempotency_key": key}),
    )
    .await
    .result
    .into()
}

/// Every committed record of a node, as (offset, sequence, record).
async fn wal(client: &Client) -> Vec<(u64, u64, Value)> {
    let mut records = Vec::new();
    let mut from = 0;
    loop {
        let page = client.wal_read(from, Some(1000)).await.expect("WAL_READ");
        for record in &page.records {
            let entry = serde_json::to_value(&record.entry).expect("entry as JSON");
            records.push((record.offset, record.sequence, entry));
        }
        match page.next_offset {
            Some(next) if !page.records.is_empty() => from = next,
            _ => return records,
        }
    }
}

/// Waits until node `id` has applied instance `instance` (local reads), and returns it.
async fn applied(cluster: &TestCluster, id: u64, instance: &str) -> Value {
    let deadline = Instant::now() + CONVERGE;
    let client = cluster.client(id).await;
    loop {
        match call(&client, Op::GetInstance, json!({"instance_id": instance})).await {
            Ok(raw) => return raw.result.into(),
            Err(err) if err.code == ErrorCode::InstanceNotFound => {}
            Err(err) => panic!("GET_INSTANCE {instance} on node {id}: {err:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "node {id} did not apply {instance} within {CONVERGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `load-0`, `load-1`, ... of `order` through `client`, one at a time, until `stop`;
/// returns the ids acknowledged.
fn creating_until(client: Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = format!("load-{i}");
            let outcome = call(
                &client,
                Op::CreateInstance,
                json!({"machine": "order", "version": 1, "instance_id": id,
                       "idempotency_key": id}),
            )
            .await;
            if outcome.is_ok() {
                acknowledged.push(id);
            }
            i += 1;
        }
        acknowledged
    })
}

/// Every running node holds the same records at the same offsets and sequences.
async fn assert_identical_wals(cluster: &TestCluster, ids: &[u64]) -> Vec<(u64, u64, Value)> {
    let first = wal(&cluster.client(ids[0]).await).await;
    for &id in &ids[1..] {
        assert_eq!(
            wal(&cluster.client(id).await).await,
            first,
            "node {id}'s WAL differs from node {}'s",
            ids[0]
        );
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_replicate_every_write_and_fail_over_without_losing_one() {
    let mut cluster = TestCluster::start(binary(), 3, "");
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let client = cluster.client(leader).await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE on the leader");
    let mut created = Vec::new();
    for i in 0..20 {
        let id = format!("order-{i}");
        created.push(create(&client, &id, &format!("create-{i}")).await);
        if i % 2 == 0 {
            ok(
                &client,
                Op::ApplyEvent,
                json!({"instance_id": id, "event": "PAY"}),
            )
            .await;
        }
    }
    // An atomic BATCH stays one unit of the entry.
    ok(
        &client,
        Op::Batch,
        json!({"mode": "atomic", "ops": [
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "batch-a"}},
            {"op": "CREATE_INSTANCE", "params": {"machine": "order", "version": 1, "instance_id": "batch-b"}},
        ]}),
    )
    .await;

    // A follower takes writes too: it relays them to the leader, in the order its connection
    // sent them (the APPLY_EVENT, sent before the create is answered, finds the instance).
    let follower = cluster.client(followers[0]).await;
    let relayed = create(&follower, "via-follower", "create-via-follower");
    let paid = call(
        &follower,
        Op::ApplyEvent,
        json!({"instance_id": "via-follower", "event": "PAY"}),
    );
    let (relayed, paid) = tokio::join!(relayed, paid);
    assert_eq!(relayed["applied"], true);
    assert_eq!(
        paid.expect("the event after the relayed create").result["to_state"],
        "paid"
    );

    // Each node knows the cluster and who leads it.
    let status = follower.cluster_status().await.expect("CLUSTER_STATUS");
    assert_eq!(status.role, "follower");
    let known = status.leader.expect("a known leader");
    assert_eq!(known.node_id, leader);
    assert_eq!(known.client_addr, cluster.node(leader).client_addr);
    // Once every follower has caught up (one may have started late and be in openraft's
    // back-off), the leader tracks all of them and heard from each lately.
    let deadline = Instant::now() + CONVERGE;
    let status = loop {
        let status = client.cluster_status().await.expect("CLUSTER_STATUS");
        if status.members.iter().all(|m| m.lag_entries == Some(0)) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the followers never caught up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.role, "leader");
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|member| member.voter));
    assert!(
        status
            .members
            .iter()
            .all(|member| member.lag_entries.is_some()),
        "the leader tracks every member: {status:?}"
    );
    assert!(
        status
            .members
            .iter()
            .filter(|member| member.node_id != leader)
            .all(|member| member.last_contact_ms.is_some_and(|ms| ms < 5_000)),
        "the leader heard from every follower lately: {status:?}"
    );

    // Reads are linearizable by default: a follower answers with every write acknowledged
    // before the read began, without retrying.
    for &id in &followers {
        let read = call(
            &cluster.client(id).await,
            Op::GetInstance,
            json!({"instance_id": "via-follower"}),
        )
        .await
        .unwrap_or_else(|err| panic!("node {id} missed an acknowledged write: {err:?}"));
        assert_eq!(read.result["state"], "paid");
    }

    // Every node serves every write, and the WALs agree record for record.
    for &id in &followers {
        applied(&cluster, id, "batch-b").await;
        let instance = applied(&cluster, id, "via-follower").await;
        assert_eq!(instance["state"], "paid", "node {id}, via-follower");
        for i in (0..20).step_by(2) {
            let instance = applied(&cluster, id, &format!("order-{i}")).await;
            assert_eq!(instance["state"], "paid", "node {id}, order-{i}");
        }
    }
    let before = assert_identical_wals(&cluster, &[1, 2, 3]).await;
    let kinds: Vec<&str> = before
        .iter()
        .filter_map(|(_, _, entry)| entry["type"].as_str())
        .collect();
    assert_eq!(
        kinds.len(),
        before.len(),
        "WAL_READ shows database records only, never the entries' headers"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "create_instance").count(),
        23,
        "20 creates, 2 in the BATCH, 1 relayed by a follower"
    );

    // REPLICATION_STATUS in the public 0.3.0 shape, metrics and /ready on every node.
    let primary = client
        .replication_status()
        .await
        .expect("REPLICATION_STATUS");
    assert_eq!(primary.role, "primary");
    assert_eq!(primary.other["replicas"].as_array().map(Vec::len), Some(2));
    let replica = follower
        .replication_status()
        .await
        .expect("REPLICATION_STATUS");
    assert_eq!(replica.role, "replica");
    assert_eq!(
        replica.other["upstream"],
        cluster.node(leader).client_addr.as_str()
    );
    // The dashboard's Cluster panel reads the CLUSTER_STATUS result from here.
    let nested: rstmdb_client::results::ClusterStatusResult =
        serde_json::from_value(replica.other["cluster"].clone()).expect("CLUSTER_STATUS inside");
    assert_eq!(nested.node_id, followers[0]);
    // One cluster id, drawn by the node that initialised the cluster, on every node.
    let mut cluster_ids = std::collections::BTreeSet::new();
    for id in 1..=3 {
        let status = cluster
            .client(id)
            .await
            .cluster_status()
            .await
            .expect("status");
        cluster_ids.insert(status.cluster_id.expect("every node knows the cluster id"));
    }
    assert_eq!(cluster_ids.len(), 1, "{cluster_ids:?}");
    // The leader has heard from every member, and knows each one's fsync policy.
    let status = client.cluster_status().await.expect("status");
    for member in &status.members {
        assert_eq!(
            member.fsync_policy.as_deref(),
            Some("every_write"),
            "{member:?}"
        );
    }
    for id in 1..=3 {
        let node = cluster.node(id);
        let (code, body) = http_get(node.metrics_addr, "/ready").await;
        assert_eq!((code, body.as_str()), (200, "OK"), "/ready of node {id}");
        let scrape = Scrape::parse(&http_get(node.metrics_addr, "/metrics").await.1);
        assert_eq!(
            scrape.value("rstmdb_raft_is_leader", &[]),
            f64::from(u8::from(id == leader)),
            "node {id}"
        );
        assert!(scrape.value("rstmdb_raft_term", &[]) >= 1.0);
        // Only the leader replicates: at least the 20 creates' entries to each follower.
        let sent = scrape.value("rstmdb_replication_entries_sent_total", &[]);
        if id == leader {
            assert!(sent >= 40.0, "node {id} sent {sent} entries");
        } else {
            assert_eq!(sent, 0.0, "node {id}");
        }
        assert_eq!(
            scrape.value("rstmdb_replication_sync_timeouts_total", &[]),
            0.0,
            "node {id}"
        );
    }

    // SIGKILL the leader: another node leads, with every acknowledged write.
    cluster.kill(leader);
    let killed_at = Instant::now();
    let new_leader = cluster.leader(Duration::from_secs(15)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    eprintln!("failover took {failover:?} (election_timeout_max_ms = {ELECTION_TIMEOUT_MAX_MS})");
    let client = cluster.client(new_leader).await;
    // A retry of an acknowledged create, with its key, on the new leader is a replay: the
    // original result, with `applied:false` (§6.2).
    let retried = create(&client, "order-3", "create-3").await;
    let mut original = created[3].clone();
    original["applied"] = json!(false);
    assert_eq!(retried, original, "the idempotency key was replicated");
    create(&client, "after-failover", "create-after").await;

    // The old leader comes back with its data and catches up.
    cluster.restart(leader);
    applied(&cluster, leader, "after-failover").await;
    let after = assert_identical_wals(&cluster, &[1, 2, 3]).await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "what was committed before the kill is unchanged on every node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_moves_to_another_node_with_from_offset_without_gap_or_duplicate() {
    let cluster = TestCluster::start(binary(), 3, "");
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let writer = cluster.client(leader).await;
    writer
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    let first = cluster.client(followers[0]).await;
    let mut events = first
        .watch_all(WatchAllParams::default())
        .await
        .expect("WATCH_ALL on a follower");
    for i in 0..6 {
        let id = format!("w-{i}");
        create(&writer, &id, &id).await;
        ok(
            &writer,
            Op::ApplyEvent,
            json!({"instance_id": id, "event": "PAY"}),
        )
        .await;
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(CONVERGE, events.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event");
        seen.push((event.instance_id, event.wal_offset));
    }
    drop(events);
    // The same stream, resumed on the other follower after the last offset seen.
    let second = cluster.client(followers[1]).await;
    let mut resumed = second
        .watch_all(WatchAllParams {
            from_offset: Some(seen[2].1 + 1),
            ..WatchAllParams::default()
        })
        .await
        .expect("WATCH_ALL with from_offset on another follower");
    while seen.len() < 6 {
        let event = tokio::time::timeout(CONVERGE, resumed.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event");
        seen.push((event.instance_id, event.wal_offset));
    }
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["w-0", "w-1", "w-2", "w-3", "w-4", "w-5"]);
    // The offsets are those of the leader's WAL.
    let leader_offsets: Vec<u64> = wal(&writer)
        .await
        .into_iter()
        .filter(|(_, _, entry)| entry["type"] == "apply_event")
        .map(|(offset, _, _)| offset)
        .collect();
    let offsets: Vec<u64> = seen.iter().map(|(_, offset)| *offset).collect();
    assert_eq!(offsets, leader_offsets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_majority_acknowledges_nothing_and_rejoins() {
    let mut cluster = TestCluster::start(binary(), 3, "");
    let old = cluster.leader(Duration::from_secs(15)).await;
    let stale = cluster.client(old).await;
    stale
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    // The leader stops answering anyone: the majority elects another and goes on.
    cluster.freeze(old);
    let new = loop {
        let found = cluster.leader(Duration::from_secs(15)).await;
        if found != old {
            break found;
        }
    };
    let fresh = cluster.client(new).await;
    create(&fresh, "after-partition", "k-after").await;
    // Long enough for the new leader's calls to the frozen node to miss a few deadlines (one
    // heartbeat interval each).
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The old leader wakes up believing it leads. A write sent to it is never acknowledged
    // as applied unless the majority has it.
    cluster.thaw(old);
    let outcome = call(
        &stale,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "to-the-old-leader",
               "idempotency_key": "k-old"}),
    )
    .await;
    eprintln!("the write sent to the old leader: {outcome:?}");
    match &outcome {
        Ok(_) => {}
        Err(err) => assert_eq!(err.code, ErrorCode::ReplicationTimeout, "{err:?}"),
    }
    // It rejoins as a follower and converges.
    applied(&cluster, old, "after-partition").await;
    let final_state = assert_identical_wals(&cluster, &[1, 2, 3]).await;
    let created = final_state
        .iter()
        .filter(|(_, _, entry)| entry["instance_id"] == "to-the-old-leader")
        .count();
    match outcome {
        Ok(_) => assert_eq!(created, 1, "an acknowledged write is in every WAL"),
        Err(err) if err.reason() == Some("no_leader") => {
            assert_eq!(created, 0, "a write answered no_leader was not applied")
        }
        Err(_) => assert!(created <= 1, "commit_unknown: at most once"),
    }
    let status = stale.cluster_status().await.expect("CLUSTER_STATUS");
    assert_ne!(status.role, "leader", "the old leader stepped down");
    // The new leader's calls to the frozen node missed their deadlines.
    let scrape = Scrape::parse(&http_get(cluster.node(new).metrics_addr, "/metrics").await.1);
    assert!(
        scrape.value("rstmdb_replication_slow_replica_disconnects_total", &[]) >= 1.0,
        "node {new} counted no dropped replication call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_restarted_at_once_applies_its_log_before_it_writes_or_reads() {
    // openraft restores a node that led before a restart as the leader of the same term,
    // with no new entry, while its engine holds only what start-up replayed (up to the
    // committed hint, saved at most once a second). A transition planned on that engine
    // would put a record in the log that fits no node's state: every node's Raft would stop
    // on it. And a read it confirmed against its saved committed index would miss writes
    // acknowledged before the restart.
    let mut cluster = TestCluster::start(binary(), 3, "");
    let mut leader = cluster.leader(Duration::from_secs(15)).await;
    let via = if leader == 1 { 2 } else { 1 };
    let setup = cluster.client(via).await;
    let ping_pong = json!({
        "states": ["ping", "pong"],
        "initial": "ping",
        "transitions": [
            {"from": "ping", "event": "HIT", "to": "pong"},
            {"from": "pong", "event": "HIT", "to": "ping"}
        ]
    });
    setup
        .put_machine("ball", 1, ping_pong)
        .await
        .expect("PUT_MACHINE");
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = cluster.client(via).await;
        let instance = format!("ball-{w}");
        ok(
            &client,
            Op::CreateInstance,
            json!({"machine": "ball", "version": 1, "instance_id": instance}),
        )
        .await;
        let stop = Arc::clone(&stop);
        writers.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let hit = call(
                    &client,
                    Op::ApplyEvent,
                    json!({"instance_id": instance, "event": "HIT",
                           "idempotency_key": format!("{instance}-{i}")}),
                )
                .await;
                acknowledged += u64::from(hit.is_ok());
                i += 1;
            }
            acknowledged
        }));
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        // Acknowledged before the kill: a linearizable read on the restored leader sees it
        // (its saved committed index may be older).
        let marker = format!("marker-{round}");
        ok(
            &cluster.client(leader).await,
            Op::CreateInstance,
            json!({"machine": "ball", "version": 1, "instance_id": marker}),
        )
        .await;
        let killed = leader;
        cluster.kill(killed);
        // Back before the others' leases run out (election_timeout_max_ms): it leads again.
        tokio::time::sleep(Duration::from_millis(150)).await;
        cluster.restart(killed);
        let read = call(
            &cluster.client(killed).await,
            Op::GetInstance,
            json!({"instance_id": marker}),
        )
        .await;
        assert!(read.is_ok(), "node {killed} after its restart: {read:?}");
        leader = cluster.leader(Duration::from_secs(15)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = 0;
    for writer in writers {
        acknowledged += writer.await.expect("writer");
    }
    assert!(acknowledged > 100, "{acknowledged} transitions");
    // Every node still applies the log: a write through each is acknowledged and seen on
    // all, and the logs are the same.
    for id in 1..=3 {
        let after = format!("after-{id}");
        ok(
            &cluster.client(id).await,
            Op::CreateInstance,
            json!({"machine": "ball", "version": 1, "instance_id": after}),
        )
        .await;
    }
    for id in 1..=3 {
        applied(&cluster, id, "after-3").await;
    }
    assert_identical_wals(&cluster, &[1, 2, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_quorum_answers_commit_unknown_and_the_write_commits_later() {
    let mut cluster = TestCluster::start(binary(), 3, "write_timeout_ms = 800");
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let client = cluster.client(leader).await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    for id in &followers {
        cluster.kill(*id);
    }
    // The group is in the leader's log, but no quorum holds it: the answer cannot say
    // whether it will commit.
    let started = Instant::now();
    let outcome = call(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "in-doubt",
               "idempotency_key": "k-doubt"}),
    )
    .await;
    let err = outcome.expect_err("no quorum, no acknowledgement");
    assert_eq!(err.code, ErrorCode::ReplicationTimeout, "{err:?}");
    assert_eq!(err.reason(), Some("commit_unknown"), "{err:?}");
    assert!(err.retryable, "{err:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "answered before write_timeout_ms"
    );
    let scrape = Scrape::parse(
        &http_get(cluster.node(leader).metrics_addr, "/metrics")
            .await
            .1,
    );
    assert_eq!(
        scrape.value("rstmdb_replication_sync_timeouts_total", &[]),
        1.0
    );
    // A follower comes back: the entry commits, and the retry with its key is a replay.
    cluster.restart(followers[0]);
    let retried = ok(
        &client,
        Op::CreateInstance,
        json!({"machine": "order", "version": 1, "instance_id": "in-doubt",
               "idempotency_key": "k-doubt"}),
    )
    .await;
    assert_eq!(
        retried.result["applied"],
        json!(false),
        "{:?}",
        retried.result
    );
    applied(&cluster, followers[0], "in-doubt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_grows_from_one_node_to_five_and_shrinks_without_losing_writes() {
    let cluster = TestCluster::start_with_spares(binary(), 1, 4, "");
    assert_eq!(cluster.leader(Duration::from_secs(15)).await, 1);
    let first = cluster.client(1).await;
    first
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE on a cluster of one");
    create(&first, "before-growth", "k0").await;
    // Writes go on while the membership changes; each acknowledged one must survive.
    let stop = Arc::new(AtomicBool::new(false));
    let load = creating_until(cluster.client(1).await, Arc::clone(&stop));

    // Nodes 2 and 3 wait with no state until they are added, then catch up from the log.
    for id in [2, 3] {
        let node = cluster.node(id);
        let added = first
            .cluster_add_learner(id, &node.raft_addr, &node.client_addr)
            .await
            .expect("CLUSTER_ADD_LEARNER");
        assert!(added.added);
        let again = first
            .cluster_add_learner(id, &node.raft_addr, &node.client_addr)
            .await
            .expect("the same learner again");
        assert!(!again.added, "adding the same node again changes nothing");
        let status = cluster
            .client(id)
            .await
            .cluster_status()
            .await
            .expect("status");
        assert!(
            matches!(status.role.as_str(), "learner" | "follower"),
            "{status:?}"
        );
        applied(&cluster, id, "before-growth").await;
    }
    let elsewhere = first
        .cluster_add_learner(2, "127.0.0.1:1", "127.0.0.1:2")
        .await
        .map_err(server_error);
    assert_eq!(
        elsewhere.expect_err("another address").reason(),
        Some("node_exists")
    );
    let unknown = first.cluster_promote(9).await.map_err(server_error);
    assert_eq!(
        unknown.expect_err("unknown node").reason(),
        Some("unknown_node")
    );

    let members = first.cluster_promote(2).await.expect("CLUSTER_PROMOTE 2");
    assert_eq!(members.members.iter().filter(|m| m.voter).count(), 2);
    // The command line does the same: `rstmdb cluster promote`, then `status`.
    let promoted = cli(&[
        "cluster",
        "promote",
        "3",
        "-s",
        &cluster.node(3).client_addr,
    ])
    .await;
    assert!(promoted.contains("(3 members)"), "{promoted}");
    let status: serde_json::Value = serde_json::from_str(
        &cli(&[
            "cluster",
            "status",
            "--json",
            "-s",
            &cluster.node(1).client_addr,
        ])
        .await,
    )
    .expect("JSON");
    assert_eq!(status["role"], "leader");
    let voters = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|member| member["voter"] == true)
        .count();
    assert_eq!(voters, 3);
    // On to five voters, and back to three: a membership op sent to another node is relayed
    // to the leader like a write.
    let from_three = cluster.client(3).await;
    for id in [4, 5] {
        let node = cluster.node(id);
        from_three
            .cluster_add_learner(id, &node.raft_addr, &node.client_addr)
            .await
            .expect("CLUSTER_ADD_LEARNER");
        applied(&cluster, id, "before-growth").await;
        from_three
            .cluster_promote(id)
            .await
            .expect("CLUSTER_PROMOTE");
    }
    let status = first.cluster_status().await.expect("CLUSTER_STATUS");
    assert_eq!(status.members.iter().filter(|m| m.voter).count(), 5);
    create(&from_three, "after-growth", "k1").await;
    for id in [4, 5] {
        applied(&cluster, id, "after-growth").await;
    }
    for id in [5, 4] {
        let members = from_three
            .cluster_remove_node(id)
            .await
            .expect("CLUSTER_REMOVE_NODE");
        assert!(members.members.iter().all(|m| m.node_id != id));
    }
    let status = first.cluster_status().await.expect("CLUSTER_STATUS");
    assert_eq!(status.members.len(), 3, "{status:?}");

    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.await.expect("the writer");
    assert!(
        !acknowledged.is_empty(),
        "writes went on during the changes"
    );

    // The first node leaves; the other two elect a leader and go on.
    let members = from_three
        .cluster_remove_node(1)
        .await
        .expect("CLUSTER_REMOVE_NODE 1");
    assert!(
        members.members.iter().all(|m| m.node_id != 1),
        "{members:?}"
    );
    let leader = loop {
        let leader = cluster.leader(Duration::from_secs(15)).await;
        if leader != 1 {
            break leader;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    create(&cluster.client(leader).await, "after-shrink", "k2").await;
    for id in [2, 3] {
        applied(&cluster, id, "after-shrink").await;
    }
    let wal = assert_identical_wals(&cluster, &[2, 3]).await;
    for id in &acknowledged {
        assert_eq!(
            wal.iter()
                .filter(|(_, _, entry)| entry["instance_id"] == id.as_str())
                .count(),
            1,
            "acknowledged {id} is in the WAL once"
        );
    }
    let last = cluster.client(leader).await;
    let other = if leader == 2 { 3 } else { 2 };
    last.cluster_remove_node(other)
        .await
        .expect("down to one voter");
    let refused = last.cluster_remove_node(leader).await.map_err(server_error);
    assert_eq!(
        refused.expect_err("the last voter").reason(),
        Some("last_voter")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_no_acknowledged_write() {
    let mut cluster = TestCluster::start(binary(), 3, "");
    cluster.leader(Duration::from_secs(15)).await;
    cluster
        .client(1)
        .await
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    let addrs: Vec<String> = (1..=3)
        .map(|id| cluster.node(id).client_addr.clone())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    // Each write goes to the next node in turn and is retried with its idempotency key, on
    // the following node, until one acknowledges it.
    let writer = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let mut acknowledged = Vec::new();
            let mut turn = 0usize;
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("rolling-{i}");
                let params = json!({"machine": "order", "version": 1, "instance_id": id,
                                    "idempotency_key": id});
                for _attempt in 0..50 {
                    turn += 1;
                    let options = rstmdb_client::ClientOptions::new(addrs[turn % 3].clone())
                        .reconnect(rstmdb_client::ReconnectPolicy::disabled())
                        .request_timeout(Duration::from_secs(10));
                    let Ok(client) = Client::connect(options).await else {
                        continue;
                    };
                    let params = params.as_object().cloned().expect("an object");
                    // Any failure (a node stopping, a leader changing) is retried elsewhere.
                    if client.request(Op::CreateInstance, params).await.is_ok() {
                        acknowledged.push(id.clone());
                        break;
                    }
                }
            }
            acknowledged
        }
    });
    for id in 1..=3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| cluster.stop(id));
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| cluster.restart(id));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.await.expect("the writer");
    assert!(
        acknowledged.len() > 10,
        "writes went on: {}",
        acknowledged.len()
    );
    let last = acknowledged.last().expect("one write").clone();
    for id in 1..=3 {
        applied(&cluster, id, &last).await;
    }
    let wal = assert_identical_wals(&cluster, &[1, 2, 3]).await;
    for id in &acknowledged {
        let copies = wal
            .iter()
            .filter(|(_, _, entry)| entry["instance_id"] == id.as_str())
            .count();
        assert_eq!(copies, 1, "acknowledged {id} is in every WAL once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_forwarding_a_follower_refuses_a_write_naming_the_leader() {
    let cluster = TestCluster::start(
        binary(),
        3,
        "forward_writes = false\nread_consistency = \"local\"",
    );
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let client = cluster.client(follower).await;
    // The follower learns the leader's client address from its first message.
    let deadline = Instant::now() + CONVERGE;
    while client
        .cluster_status()
        .await
        .expect("CLUSTER_STATUS")
        .leader
        .is_none_or(|known| known.client_addr.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "the follower never heard of the leader"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_error(
        call(
            &client,
            Op::PutMachine,
            json!({"machine": "order", "version": 1,
            "definition": order_definition()}),
        )
        .await,
        ErrorCode::ReadOnlyMode,
        json!({"reason": "not_leader", "leader": cluster.node(leader).client_addr}),
    );
    cluster
        .client(leader)
        .await
        .put_machine("order", 1, order_definition())
        .await
        .expect("the leader takes it");
    // Local reads: the follower answers from what it applied, which catches up.
    let deadline = Instant::now() + CONVERGE;
    while call(
        &client,
        Op::GetMachine,
        json!({"machine": "order", "version": 1}),
    )
    .await
    .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the follower never applied the machine"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_its_identity_and_refuses_a_standalone_data_directory() {
    let mut cluster = TestCluster::start(binary(), 1, "");
    cluster.leader(Duration::from_secs(15)).await;
    let client = cluster.client(1).await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    drop(client);
    cluster.kill(1);
    let data_dir = cluster.data_dir(1);

    // The same directory as another node id.
    let other = serve_config(
        &data_dir,
        "[cluster]\nnode_id = 2\nraft_addr = \"127.0.0.1:1\"\nforward_writes = false\nread_consistency = \"local\"\n",
    );
    let refused = run_serve(&other);
    assert!(
        refused.contains("belongs to cluster node 1, but cluster.node_id is 2"),
        "{refused}"
    );

    // A standalone server's directory is no node's.
    let standalone = tempfile::tempdir().expect("temp dir");
    {
        let mut server = rstmdb_testkit::binary::RunningBinary::start(
            binary(),
            "text",
            "info",
            &[("RSTMDB_AUTH_REQUIRED", "false")],
        );
        let addr = rstmdb_testkit::binary::logged_addr(&server.wait_for("rstmdb listening"));
        let client = Client::connect(rstmdb_client::ClientOptions::new(addr.to_string()))
            .await
            .expect("connect");
        client
            .put_machine("order", 1, order_definition())
            .await
            .map_err(server_error)
            .expect("PUT_MACHINE standalone");
        assert_error(
            client.cluster_status().await.map_err(server_error),
            ErrorCode::BadRequest,
            json!({"reason": "not_clustered"}),
        );
        for entry in std::fs::read_dir(server.data_dir()).expect("data dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &standalone.path().join(entry.file_name()));
        }
        server.stop();
    }
    let node = serve_config(
        standalone.path(),
        "[cluster]\nnode_id = 1\nraft_addr = \"127.0.0.1:1\"\nforward_writes = false\nread_consistency = \"local\"\n",
    );
    let refused = run_serve(&node);
    assert!(
        refused.contains("written by a standalone server"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_voter_asked_for_and_back_without_losing_a_write() {
    let cluster = TestCluster::start_with_spares(binary(), 3, 1, "");
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let target = if leader == 1 { 2 } else { 1 };
    let bystander = 6 - leader - target;
    let via = cluster.client(bystander).await;
    via.put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    // Writes go on through the third node, which relays them to whichever node leads.
    let stop = Arc::new(AtomicBool::new(false));
    let load = creating_until(cluster.client(bystander).await, Arc::clone(&stop));

    // Asked on a follower, the transfer is relayed to the leader like a membership op.
    let moved = via
        .cluster_transfer_leader(target)
        .await
        .expect("CLUSTER_TRANSFER_LEADER");
    assert_eq!(moved.leader, target);
    let status = cluster
        .client(target)
        .await
        .cluster_status()
        .await
        .expect("status");
    assert_eq!(status.role, "leader", "{status:?}");
    // And back, from the command line; asking for the node that leads changes nothing.
    let back: Value = serde_json::from_str(
        &cli(&[
            "cluster",
            "transfer-leader",
            &leader.to_string(),
            "--json",
            "-s",
            &cluster.node(target).client_addr,
        ])
        .await,
    )
    .expect("JSON");
    assert_eq!(back, json!({"leader": leader}));
    let same = via
        .cluster_transfer_leader(leader)
        .await
        .expect("the leader itself");
    assert_eq!(same.leader, leader);

    // Refusals: a node that is not a member, and a learner.
    let unknown = via.cluster_transfer_leader(9).await.map_err(server_error);
    assert_eq!(
        unknown.expect_err("unknown node").reason(),
        Some("unknown_node")
    );
    let learner = cluster.node(4);
    via.cluster_add_learner(4, &learner.raft_addr, &learner.client_addr)
        .await
        .expect("CLUSTER_ADD_LEARNER");
    let refused = via.cluster_transfer_leader(4).await.map_err(server_error);
    assert_eq!(refused.expect_err("a learner").reason(), Some("not_voter"));

    stop.store(true, Ordering::Relaxed);
    let acknowledged = load.await.expect("load");
    assert!(!acknowledged.is_empty(), "no write went through");
    let last = acknowledged.last().expect("one write");
    for id in [1, 2, 3] {
        applied(&cluster, id, last).await;
    }
    let records = assert_identical_wals(&cluster, &[1, 2, 3]).await;
    let created: std::collections::HashSet<String> = records
        .iter()
        .filter_map(|(_, _, record)| record["instance_id"].as_str().map(str::to_owned))
        .collect();
    for id in &acknowledged {
        assert!(created.contains(id), "acknowledged {id} is not in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_on_another_clusters_data_is_refused_naming_both_clusters() {
    let mut ours = TestCluster::start(binary(), 3, "");
    let leader = ours.leader(Duration::from_secs(15)).await;
    let ours_id = ours
        .client(leader)
        .await
        .cluster_status()
        .await
        .expect("status")
        .cluster_id
        .expect("a cluster id");
    // Another cluster of one, whose node 1 has data of its own.
    let mut theirs = TestCluster::start(binary(), 1, "");
    theirs.leader(Duration::from_secs(15)).await;
    let theirs_id = theirs
        .client(1)
        .await
        .cluster_status()
        .await
        .expect("status")
        .cluster_id
        .expect("a cluster id");
    assert_ne!(ours_id, theirs_id);
    theirs.kill(1);

    // Our node 1 is started again on a copy of their node 1's directory.
    let victim = 1;
    ours.kill(victim);
    std::fs::remove_dir_all(ours.data_dir(victim)).expect("remove our node's data");
    copy_tree(&theirs.data_dir(1), &ours.data_dir(victim));
    ours.restart(victim);
    let (_, refusal) = ours.wait_for_log(
        &[1, 2, 3],
        &["belongs to cluster", &ours_id, &theirs_id],
        CONVERGE,
    );
    assert!(
        refusal.contains("data directory from another cluster"),
        "{refusal}"
    );
    // The two others go on without it.
    let survivor = if leader == victim { 2 } else { leader };
    let client = ours.client(survivor).await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE on the remaining two");
    let status = ours
        .client(victim)
        .await
        .cluster_status()
        .await
        .expect("status");
    assert_eq!(status.cluster_id.as_deref(), Some(theirs_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_is_refused_until_it_is_removed_and_added_back() {
    let mut cluster = TestCluster::start(binary(), 3, "");
    let leader = cluster.leader(Duration::from_secs(15)).await;
    let client = cluster.client(leader).await;
    client
        .put_machine("order", 1, order_definition())
        .await
        .expect("PUT_MACHINE");
    create(&client, "before-the-wipe", "k1").await;
    // Node 1 initialised the cluster with its own directory; the others are bound by the
    // leader when it first hears from them.
    let victim = if leader == 3 { 2 } else { 3 };
    let bound = format!("node={victim}");
    cluster.wait_for_log(
        &[1, 2, 3],
        &["bound a member's data directory", &bound],
        CONVERGE,
    );
    applied(&cluster, victim, "before-the-wipe").await;

    // The victim loses its disk and comes back empty, with the same id and configuration.
    cluster.kill(victim);
    std::fs::remove_dir_all(cluster.data_dir(victim)).expect("wipe the data directory");
    cluster.restart(victim);
    let (_, refusal) = cluster.wait_for_log(
        &[victim],
        &["data directory is not the one the cluster knows"],
        CONVERGE,
    );
    assert!(refusal.contains("rstmdb cluster remove"), "{refusal}");

    // The two others go on; the victim takes no part (it holds no entry, so a write it had
    // acknowledged before would be lost if its vote or acknowledgement counted).
    create(&client, "while-refused", "k2").await;
    let victim_client = cluster.client(victim).await;
    let status = victim_client.cluster_status().await.expect("status");
    assert_eq!(
        status.leader, None,
        "the wiped node follows no one: {status:?}"
    );
    assert!(
        status.members.is_empty(),
        "nothing was replicated to it: {status:?}"
    );

    // The remedy the refusal names: remove it, add it back as a learner, promote it.
    client
        .cluster_remove_node(victim)
        .await
        .expect("CLUSTER_REMOVE_NODE");
    let node = cluster.node(victim);
    let added = client
        .cluster_add_learner(victim, &node.raft_addr, &node.client_addr)
        .await
        .expect("CLUSTER_ADD_LEARNER");
    assert!(added.added);
    applied(&cluster, victim, "while-refused").await;
    applied(&cluster, victim, "before-the-wipe").await;
    let members = client
        .cluster_promote(victim)
        .await
        .expect("CLUSTER_PROMOTE");
    assert_eq!(members.members.iter().filter(|m| m.voter).count(), 3);
    create(&client, "after-the-return", "k3").await;
    applied(&cluster, victim, "after-the-return").await;
    assert_identical_wals(&cluster, &[1, 2, 3]).await;
}

/// Runs the `rstmdb` command line with `args`, which must succeed; returns its output.
async fn cli(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(binary());
        command.args(&args);
        rstmdb_testkit::binary::clear_rstmdb_env(&mut command);
        let output = command.output().expect("run rstmdb");
        assert!(
            output.status.success(),
            "rstmdb {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .expect("join")
}

/// A configuration file for `data_dir` with `cluster` as its `[cluster]` table.
fn serve_config(data_dir: &Path, cluster: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let text = format!(
        "[network]\nbind_addr = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n{cluster}",
        data_dir.display()
    );
    std::fs::write(file.path(), text).expect("write the configuration");
    file
}

/// Runs `rstmdb serve --config FILE`, which must fail; returns what it said.
fn run_serve(config: &tempfile::NamedTempFile) -> String {
    let mut command = std::process::Command::new(binary());
    command.arg("serve").arg("--config").arg(config.path());
    rstmdb_testkit::binary::clear_rstmdb_env(&mut command);
    let output = command.output().expect("run rstmdb serve");
    assert!(!output.status.success(), "the node must not start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("create dir");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else if from.file_name().is_some_and(|name| name != "LOCK") {
        std::fs::copy(from, to).expect("copy file");
    }
}
