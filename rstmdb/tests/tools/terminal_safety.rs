//! Stored strings cannot drive the operator's terminal: an instance id and a ctx value holding
//! escape sequences are printed escaped by the REPL (tables and error messages) and by
//! `wal-inspect dump`. (The dashboard's test is in rstmdb-tui's snapshot tests.)

use crate::repl_support::Server;
use assert_cmd::Command;
use rstmdb::wal::{DirStorage, FsyncPolicy, NewRecord, Storage, Wal, WalConfig, wal_dir};
use std::sync::Arc;

/// Clears the screen, then sets the window title to "pwned".
const HOSTILE: &str = "\x1b[2J\x1b]0;pwned\x07";
const HOSTILE_ESCAPED: &str = "\\x1b[2J\\x1b]0;pwned\\x07";

/// The output as text, after checking that it holds no control character but line ends.
fn inert(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output).into_owned();
    let controls: Vec<char> = text
        .chars()
        .filter(|c| *c != '\n' && c.is_control())
        .collect();
    assert!(
        controls.is_empty(),
        "control characters {controls:?} in {text:?}"
    );
    text
}

#[test]
fn the_repl_prints_stored_escape_sequences_escaped() {
    let server = Server::start();
    server.put_order_machine();
    let id = format!("order{HOSTILE}");
    // The ctx's JSON escapes become real control characters on the server; \u009b is the
    // one-byte CSI of C1, which JSON output leaves as it is.
    server.run_ok(&format!(
        r#"create order 1 {id} --ctx {{"note": "\u001b[2J\u001b]0;pwned\u0007\u009b31m"}}"#
    ));

    let output = server
        .repl()
        .args(["-c", &format!("get {id}")])
        .output()
        .expect("run");
    assert!(output.status.success());
    let shown = inert(&output.stdout);
    assert!(
        shown.contains(&format!("instance_id      order{HOSTILE_ESCAPED}")),
        "{shown}"
    );
    assert!(shown.contains(r#"\u001b[2J"#), "{shown}");
    assert!(shown.contains(r#"\u{9b}31m"#), "{shown}");

    let output = server.repl().args(["-c", "list"]).output().expect("run");
    assert!(inert(&output.stdout).contains(&format!("order{HOSTILE_ESCAPED}  order")));

    // The server's error message quotes the id it did not find.
    let output = server
        .repl()
        .args(["-c", &format!("get missing{HOSTILE}")])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        inert(&output.stderr).contains(&format!("missing{HOSTILE_ESCAPED}")),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn wal_inspect_dump_prints_stored_escape_sequences_escaped() {
    let data = tempfile::tempdir().expect("temp dir");
    let storage: Arc<dyn Storage> =
        Arc::new(DirStorage::open(wal_dir(data.path())).expect("storage"));
    let config = WalConfig {
        segment_size_bytes: 1 << 20,
        fsync_policy: FsyncPolicy::EveryWrite,
    };
    let (wal, _) = Wal::open(storage, config, None, &mut |_| Ok(())).expect("open");
    let entry = serde_json::json!({
        "type": "apply_event", "instance_id": format!("order{HOSTILE}"),
        "machine": format!("m{HOSTILE}"), "version": 1, "event": format!("PAY{HOSTILE}"),
        "from_state": format!("a{HOSTILE}"), "to_state": "b\u{9b}31m",
    });
    let payload = entry.to_string().into_bytes();
    wal.append(&[NewRecord {
        kind: 2,
        timestamp_ms: 0,
        payload: &payload,
    }])
    .expect("append");
    wal.shutdown().expect("shutdown");

    let output = Command::cargo_bin("rstmdb")
        .expect("binary")
        .args(["wal-inspect", "dump", "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run");
    assert!(output.status.success());
    let shown = inert(&output.stdout);
    for expected in [
        format!("order{HOSTILE_ESCAPED}"),
        format!("m{HOSTILE_ESCAPED}"),
        format!("PAY{HOSTILE_ESCAPED}"),
        format!("a{HOSTILE_ESCAPED} -> b\\u{{9b}}31m"),
    ] {
        assert!(shown.contains(&expected), "{expected} in {shown}");
    }
}
