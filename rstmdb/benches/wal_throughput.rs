//! WAL throughput on this machine, 200-byte records (40-byte header + 160-byte payload).
//!
//! `cargo bench -p rstmdb --bench wal_throughput` prints the median of 3 runs of:
//! raw write+fdatasync pairs (the physical limit for one writer), `every_write` with 1 and 64
//! writers, `never`, and recovery replay of ~1,000,000 records. Files go under
//! `CARGO_TARGET_TMPDIR` (on the build disk, not a tmpfs) unless `WAL_BENCH_DIR` is set.

use rstmdb::wal::{DirStorage, FsyncPolicy, NewRecord, Storage, Wal, WalConfig, wal_dir};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PAYLOAD: [u8; 160] = [b'x'; 160];
const RECORD_BYTES: u64 = 200;
const TIMED_RUN: Duration = Duration::from_secs(2);
const REPLAY_RECORDS: u64 = 1_000_000;

fn bench_root() -> PathBuf {
    std::env::var_os("WAL_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from)
}

fn open(data: &Path, fsync_policy: FsyncPolicy) -> Wal {
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(wal_dir(data)).expect("storage"));
    let cfg = WalConfig {
        fsync_policy,
        ..WalConfig::default()
    };
    Wal::open(storage, cfg, None, &mut |_| Ok(()))
        .expect("open")
        .0
}

fn record() -> NewRecord<'static> {
    NewRecord {
        kind: 1,
        timestamp_ms: 0,
        payload: &PAYLOAD,
    }
}

/// (operations per second, extra figure)
type Sample = (f64, f64);

fn raw_write_fdatasync(root: &Path) -> Sample {
    let dir = tempfile::tempdir_in(root).expect("tempdir");
    let file = std::fs::File::create(dir.path().join("raw")).expect("file");
    let buf = [b'r'; RECORD_BYTES as usize];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < TIMED_RUN {
        file.write_all_at(&buf, n * RECORD_BYTES).expect("write");
        file.sync_data().expect("fdatasync");
        n += 1;
    }
    (n as f64 / start.elapsed().as_secs_f64(), 1.0)
}

fn every_write(root: &Path, writers: usize) -> Sample {
    let dir = tempfile::tempdir_in(root).expect("tempdir");
    let wal = Arc::new(open(dir.path(), FsyncPolicy::EveryWrite));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (wal, stop, done) = (Arc::clone(&wal), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let a = wal.append(&[record()]).expect("append");
                    wal.wait_durable_blocking(a.end_offset).expect("durable");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(TIMED_RUN);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("writer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = wal.stats();
    let per_fsync = stats.io.writes as f64 / stats.io.fsyncs.max(1) as f64;
    (done.load(Ordering::Relaxed) as f64 / elapsed, per_fsync)
}

fn never(root: &Path) -> Sample {
    let dir = tempfile::tempdir_in(root).expect("tempdir");
    let wal = open(dir.path(), FsyncPolicy::Never);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < TIMED_RUN {
        for _ in 0..1000 {
            wal.append(&[record()]).expect("append");
        }
        n += 1000;
    }
    (n as f64 / start.elapsed().as_secs_f64(), 0.0)
}

fn replay(data: &Path) -> Sample {
    let storage: Arc<dyn Storage> = Arc::new(DirStorage::open(wal_dir(data)).expect("storage"));
    let mut count = 0u64;
    let start = Instant::now();
    let (wal, _) = Wal::open(storage, WalConfig::default(), None, &mut |r| {
        count += r.payload.len() as u64 / 160;
        Ok(())
    })
    .expect("recovery");
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(count, REPLAY_RECORDS);
    drop(wal);
    (count as f64 / elapsed, 0.0)
}

fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    samples[samples.len() / 2]
}

fn main() {
    let root = bench_root();
    std::fs::create_dir_all(&root).expect("bench dir");
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "WAL throughput, 200-byte records, median of 3 runs, files under {}",
        root.display()
    );
    let _ = writeln!(out, "| scenario | records/s | records per fsync |");
    let _ = writeln!(out, "|---|---:|---:|");
    let row = |name: &str, s: Sample| format!("| {name} | {:.0} | {:.1} |", s.0, s.1);

    let raw = median((0..3).map(|_| raw_write_fdatasync(&root)).collect());
    let _ = writeln!(out, "{}", row("raw write+fdatasync pairs (1 writer)", raw));
    let one = median((0..3).map(|_| every_write(&root, 1)).collect());
    let _ = writeln!(out, "{}", row("every_write, 1 writer", one));
    let many = median((0..3).map(|_| every_write(&root, 64)).collect());
    let _ = writeln!(out, "{}", row("every_write, 64 writers", many));
    let nev = median((0..3).map(|_| never(&root)).collect());
    let _ = writeln!(out, "| never, 1 writer | {:.0} | - |", nev.0);

    let data = tempfile::tempdir_in(&root).expect("tempdir");
    {
        let wal = open(data.path(), FsyncPolicy::Never);
        let batch: Vec<_> = (0..100).map(|_| record()).collect();
        for _ in 0..REPLAY_RECORDS / 100 {
            wal.append(&batch).expect("append");
        }
        wal.shutdown().expect("shutdown");
    }
    let rep = median((0..3).map(|_| replay(data.path())).collect());
    let _ = writeln!(
        out,
        "| recovery replay of {REPLAY_RECORDS} records | {:.0} | - |",
        rep.0
    );
}
