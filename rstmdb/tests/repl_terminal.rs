//! The interactive REPL in a real terminal: a tmux pane at a fixed size, driven by keystrokes.
//! Tab completes command names and instance ids the server knows; Enter inside an open JSON
//! value continues the command; history survives a restart and comes back with the Up key.

mod repl_support;

use repl_support::Server;
use std::path::Path;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
const PROMPT: &str = "rstmdb> ";

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    fn new() -> Self {
        Self {
            socket: format!("rstmdb-repl-test-{}", std::process::id()),
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts the REPL in a 100x30 pane with a clean environment and `state_dir` for history.
    fn start_repl(&self, session: &str, server: &Server, state_dir: &Path) {
        let command = format!(
            "env -i TERM=screen HOME={home} XDG_STATE_HOME={state} {binary} repl -s {addr}",
            home = state_dir.display(),
            state = state_dir.display(),
            binary = env!("CARGO_BIN_EXE_rstmdb"),
            addr = server.addr,
        );
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            &command,
        ]);
        // Keep the tmux server up when this session's REPL exits, so the next session does not
        // race with a server that is shutting down ("server exited unexpectedly").
        self.tmux(&["set-option", "-s", "exit-empty", "off"]);
    }

    fn send(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn screen(&self, session: &str) -> String {
        let output = self.tmux(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The last non-empty line of the pane, once it equals `expected`.
    fn wait_for_last_line(&self, session: &str, expected: &str) {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen(session);
            let last = screen.lines().rev().find(|line| !line.trim().is_empty());
            if last.map(str::trim_end) == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never ended with {expected:?}; it shows:\n{screen}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_text(&self, session: &str, expected: &str) {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen(session);
            if screen.contains(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {expected:?}; it shows:\n{screen}"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
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
    let tmux = Tmux::new();

    tmux.start_repl("first", &server, state_dir.path());
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    // Tab completes a command name.
    tmux.send("first", &["wal-r", "Tab"]);
    tmux.wait_for_last_line("first", "rstmdb> wal-read");
    tmux.send("first", &["C-u"]);
    // Enter inside an open JSON value continues the command on the next line.
    tmux.send("first", &["apply order-42 PAY {", "Enter"]);
    tmux.wait_for_last_line("first", "rstmdb> apply order-42 PAY {");
    tmux.send("first", &["\"amount\": 5}", "Enter"]);
    tmux.wait_for_text("first", "to_state    paid");
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    // Tab completes an instance id fetched from the server.
    tmux.send("first", &["get ord", "Tab"]);
    tmux.wait_for_last_line("first", "rstmdb> get order-42");
    tmux.send("first", &["Enter"]);
    tmux.wait_for_text("first", "state            paid");
    tmux.wait_for_last_line("first", PROMPT.trim_end());
    tmux.send("first", &["C-d"]);

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

    tmux.start_repl("second", &server, state_dir.path());
    tmux.wait_for_last_line("second", PROMPT.trim_end());
    tmux.send("second", &["Up"]);
    tmux.wait_for_last_line("second", "rstmdb> get order-42");
}
