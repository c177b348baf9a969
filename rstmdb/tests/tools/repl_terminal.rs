//! The interactive REPL in a real terminal: a tmux pane at a fixed size, driven by keystrokes.
//! Tab completes command names and instance ids the server knows; Enter inside an open JSON
//! value continues the command; history survives a restart and comes back with the Up key.

use crate::repl_support::Server;
use rstmdb_testkit::tmux::{SCREEN_TIMEOUT, Tmux};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

const PROMPT: &str = "rstmdb> ";

/// Starts the REPL in a 100x30 pane with a clean environment and `state_dir` for history.
fn start_repl(tmux: &Tmux, session: &str, server: &Server, state_dir: &Path) {
    let command = format!(
        "env -i TERM=screen HOME={home} XDG_STATE_HOME={state} {binary} repl -s {addr}",
        home = state_dir.display(),
        state = state_dir.display(),
        binary = env!("CARGO_BIN_EXE_rstmdb"),
        addr = server.addr,
    );
    tmux.new_session(session, 100, 30, &command);
    // Keep the tmux server up when this session's REPL exits, so the next session does not
    // race with a server that is shutting down ("server exited unexpectedly").
    tmux.run(&["set-option", "-s", "exit-empty", "off"]);
}

#[test]
fn tab_completes_names_json_spans_lines_and_up_recalls_history_after_a_restart() {
    if !Tmux::available() {
        eprintln!("skipped: tmux is not installed (scripts/test-deps installs it)");
        return;
    }
    let server = Server::start();
    server.put_order_machine();
    server.run_ok("create order 1 order-42");
    let state_dir = tempfile::tempdir().expect("temp dir");
    let tmux = Tmux::new("repl");

    start_repl(&tmux, "first", &server, state_dir.path());
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    // Tab completes a command name.
    tmux.send_keys("first", &["wal-r", "Tab"]);
    tmux.wait_for_last_line("first", "rstmdb> wal-read");
    tmux.send_keys("first", &["C-u"]);
    // Enter inside an open JSON value continues the command on the next line.
    tmux.send_keys("first", &["apply order-42 PAY {", "Enter"]);
    tmux.wait_for_last_line("first", "rstmdb> apply order-42 PAY {");
    tmux.send_keys("first", &["\"amount\": 5}", "Enter"]);
    tmux.wait_for_text("first", &["to_state    paid"]);
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    // Tab completes an instance id fetched from the server.
    tmux.send_keys("first", &["get ord", "Tab"]);
    tmux.wait_for_last_line("first", "rstmdb> get order-42");
    tmux.send_keys("first", &["Enter"]);
    tmux.wait_for_text("first", &["state            paid"]);
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    tmux.send_keys("first", &["C-d"]);

    let history = state_dir.path().join("rstmdb").join("history");
    let deadline = Instant::now() + SCREEN_TIMEOUT;
    while !std::fs::read_to_string(&history).is_ok_and(|text| text.contains("get order-42")) {
        assert!(
            Instant::now() < deadline,
            "no history at {}",
            history.display()
        );
        sleep(Duration::from_millis(50));
    }

    start_repl(&tmux, "second", &server, state_dir.path());
    tmux.wait_for_last_line("second", PROMPT.trim_end());
    tmux.send_keys("second", &["Up"]);
    tmux.wait_for_last_line("second", "rstmdb> get order-42");
}
