//! A full disk (issue 9, item 4): the data directory lives on a 4 MiB tmpfs that a filler file
//! fills up. Writes are refused with a retryable `WAL_IO_ERROR`, reads are still served, the
//! server stays up, writes succeed again once the filler is deleted, and a restart finds every
//! acknowledged write. Where tmpfs cannot be mounted (not root), the same scenario runs on the
//! WAL's fault-injecting storage, whose writes fail with ENOSPC; the test says which ran.
//!
//! A failed fsync is different (docs/commit-pipeline.md, "fsyncgate"): the page cache can no
//! longer be trusted, so the WAL refuses writes until a restart, even after space returns.

use rstmdb::wal::fault::FaultStorage;
use rstmdb_client::{CreateInstanceOptions, ErrorCode, RcpError};
use rstmdb_testkit::ops::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use tempfile::TempDir;

const TMPFS_SIZE: &str = "4m";
/// Small segments (about 4 records each), so running out of space often coincides with a
/// segment rotation: the new segment is created, its first write fails.
const SEGMENT_BYTES: u64 = 8 * 1024;
const CTX_PAD_BYTES: usize = 2_000;

/// A tmpfs mounted on a temp dir; unmounted on drop, whatever the test's outcome.
struct TmpfsMount {
    dir: TempDir,
}

impl TmpfsMount {
    fn try_new() -> Option<TmpfsMount> {
        let dir = TempDir::new().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then(|| TmpfsMount { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !matches!(unmounted, Ok(status) if status.success()) {
            // Something still holds a file open: detach now, freed when it lets go.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Where the disk runs out.
enum Disk {
    Tmpfs {
        /// Held for its Drop: unmounts after everything on it is gone.
        _mount: TmpfsMount,
        filler: PathBuf,
    },
    /// WAL segments in memory; writes past the budget fail with ENOSPC.
    Injected(Arc<FaultStorage>),
}

impl Disk {
    fn describe(&self) -> &'static str {
        match self {
            Disk::Tmpfs { .. } => "a 4 MiB tmpfs filled by a filler file",
            Disk::Injected(_) => "the WAL fault storage (writes fail with ENOSPC)",
        }
    }

    /// Takes every free byte; returns how many the filler took.
    fn fill(&self) -> u64 {
        match self {
            Disk::Tmpfs { filler, .. } => {
                let mut file = std::fs::File::create(filler).expect("create the filler");
                let chunk = vec![0u8; 64 * 1024];
                let mut written = 0u64;
                // The 4 KiB tail a full chunk no longer fits in is taken byte by byte below.
                while file.write_all(&chunk).is_ok() {
                    written += chunk.len() as u64;
                }
                while file.write_all(&[0]).is_ok() {
                    written += 1;
                }
                written
            }
            Disk::Injected(storage) => {
                storage.set_write_budget(Some(0));
                0
            }
        }
    }

    fn free(&self) {
        match self {
            Disk::Tmpfs { filler, .. } => std::fs::remove_file(filler).expect("delete the filler"),
            Disk::Injected(storage) => storage.set_write_budget(None),
        }
    }

    fn is_tmpfs(&self) -> bool {
        matches!(self, Disk::Tmpfs { .. })
    }
}

/// The data directory and server config for `disk`.
fn setup() -> (Disk, Arc<TempDir>, ServerConfig) {
    let config = ServerConfig::default().segment_size_bytes(SEGMENT_BYTES);
    match TmpfsMount::try_new() {
        Some(mount) => {
            let data = TempDir::new_in(mount.path()).expect("data dir on the tmpfs");
            let filler = mount.path().join("filler");
            let disk = Disk::Tmpfs {
                _mount: mount,
                filler,
            };
            (disk, Arc::new(data), config)
        }
        None => {
            let storage = Arc::new(FaultStorage::new());
            let data = TempDir::new().expect("temp data dir");
            let config = config.wal_storage(Arc::clone(&storage));
            (Disk::Injected(storage), Arc::new(data), config)
        }
    }
}

fn ctx_of(n: usize) -> Value {
    json!({"n": n, "pad": "x".repeat(CTX_PAD_BYTES)})
}

async fn create(client: &rstmdb_client::Client, id: &str, ctx: &Value) -> Result<u64, RcpError> {
    let ctx = match ctx {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let options = CreateInstanceOptions::default()
        .instance_id(id)
        .initial_ctx(ctx);
    client
        .create_instance("order", 1, options)
        .await
        .map(|created| created.wal_offset)
        .map_err(server_error)
}

fn assert_wal_io_error(error: &RcpError, what: &str) {
    assert_eq!(error.code, ErrorCode::WalIoError, "{what}: {error:?}");
    assert!(error.retryable, "{what}: WAL_IO_ERROR is retryable (§5.1)");
}

/// Every acknowledged instance is there with its ctx, and nothing else is.
async fn assert_holds_exactly(client: &rstmdb_client::Client, expected: &BTreeMap<String, Value>) {
    for (id, ctx) in expected {
        let got = client
            .get_instance(id)
            .await
            .expect("an acknowledged write");
        assert_eq!(&Value::Object(got.ctx), ctx, "ctx of {id}");
    }
    let listed = client
        .list_instances(Default::default())
        .await
        .expect("LIST_INSTANCES");
    assert_eq!(
        listed.total as usize,
        expected.len(),
        "no refused write appears"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_serves_reads_and_recovers_losing_nothing_acknowledged() {
    let started = Instant::now();
    let (disk, data_dir, config) = setup();
    let server = OpsServer::start_in(Arc::clone(&data_dir), config).await;
    let client = client_with_order(&server).await;
    let mut acknowledged = BTreeMap::new();
    for n in 0..20 {
        let id = format!("before-{n:02}");
        create(&client, &id, &ctx_of(n))
            .await
            .expect("room on the disk");
        acknowledged.insert(id, ctx_of(n));
    }

    let filler_bytes = disk.fill();
    // A write may still land in the slack of a page the segment already holds; soon one fails.
    let mut refused = Vec::new();
    let mut segments = client.wal_stats().await.expect("WAL_STATS").segment_count;
    for n in 0..500 {
        let id = format!("during-{n:03}");
        match create(&client, &id, &ctx_of(n)).await {
            Ok(_) => {
                acknowledged.insert(id, ctx_of(n));
            }
            Err(error) => {
                assert_wal_io_error(&error, "CREATE on a full disk");
                refused.push(id);
                if refused.len() == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused.len(), 5, "writes to a full disk are refused");
    segments = client.wal_stats().await.expect("WAL_STATS").segment_count - segments;
    let pay = client
        .apply_event("before-00", "PAY", Default::default())
        .await;
    assert_wal_io_error(&server_error(pay.expect_err("full")), "APPLY_EVENT");

    // Reads and the session still work, on this connection and on a fresh one.
    assert_holds_exactly(&client, &acknowledged).await;
    let records = client.wal_read(0, None).await.expect("WAL_READ");
    assert!(!records.records.is_empty());
    server.assert_fresh_connection_works().await;
    if disk.is_tmpfs() {
        // A checkpoint cannot be written either: a retryable INTERNAL_ERROR (§5.1).
        let compact = client.compact(false).await.map_err(server_error);
        let error = compact.expect_err("no room for a checkpoint");
        assert_eq!(
            (error.code.clone(), error.retryable),
            (ErrorCode::InternalError, true)
        );
    }

    disk.free();
    for (n, id) in refused.iter().enumerate() {
        create(&client, id, &ctx_of(1_000 + n))
            .await
            .expect("writes succeed once space returns");
        acknowledged.insert(id.clone(), ctx_of(1_000 + n));
    }
    let paid = client
        .apply_event("before-00", "PAY", Default::default())
        .await
        .expect("APPLY_EVENT once space returns");
    assert!(paid.applied);
    if disk.is_tmpfs() {
        client
            .compact(false)
            .await
            .expect("a checkpoint once space returns");
    }
    assert_holds_exactly(&client, &acknowledged).await;
    client.close().await.expect("close");

    let server = server.stop().await.restart().await;
    let client = server.client().await;
    assert_holds_exactly(&client, &acknowledged).await;
    assert_eq!(
        client.get_instance("before-00").await.expect("GET").state,
        "paid"
    );
    create(&client, "after-restart", &ctx_of(0))
        .await
        .expect("writes after the restart");
    server.assert_fresh_connection_works().await;
    client.close().await.expect("close");
    // Stopped before the tmpfs is unmounted (the mount guard is dropped last).
    server.stop().await;
    eprintln!(
        "full disk via {}: filler {filler_bytes} bytes, {} acknowledged, {} refused then \
         retried, {segments} segment(s) created while full, {:?}",
        disk.describe(),
        acknowledged.len(),
        refused.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_refuses_writes_until_a_restart_that_keeps_every_acknowledged_write() {
    let storage = Arc::new(FaultStorage::new());
    let server =
        OpsServer::start_with(ServerConfig::default().wal_storage(Arc::clone(&storage))).await;
    let client = client_with_order(&server).await;
    let mut acknowledged = BTreeMap::new();
    for n in 0..5 {
        let id = format!("o-{n}");
        create(&client, &id, &ctx_of(n)).await.expect("CREATE");
        acknowledged.insert(id, ctx_of(n));
    }
    storage.set_fail_syncs(true);
    let error = create(&client, "lost", &ctx_of(9))
        .await
        .expect_err("fsync failed");
    assert_wal_io_error(&error, "CREATE whose fsync failed");
    // The device recovers, but after a failed fsync the page cache cannot be trusted: the WAL
    // stays stopped rather than retry the fsync and risk acknowledging lost data.
    storage.set_fail_syncs(false);
    let still = create(&client, "still-refused", &ctx_of(9))
        .await
        .expect_err("the WAL stays stopped until a restart");
    assert_wal_io_error(&still, "CREATE after a failed fsync");
    for id in acknowledged.keys() {
        client
            .get_instance(id)
            .await
            .expect("reads are still served");
    }
    server.assert_fresh_connection_works().await;
    client.close().await.expect("close");

    // Recovery decides from what is really stored: every acknowledged write is there.
    let server = server.stop().await.restart().await;
    let client = server.client().await;
    for (id, ctx) in &acknowledged {
        let got = client.get_instance(id).await.expect("acknowledged");
        assert_eq!(&Value::Object(got.ctx), ctx);
    }
    create(&client, "after-restart", &ctx_of(0))
        .await
        .expect("the restarted WAL accepts writes");
    server.assert_fresh_connection_works().await;
}
