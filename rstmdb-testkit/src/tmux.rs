//! A private tmux server for tests of interactive terminal programs (the REPL, the dashboard):
//! panes of a fixed size, keystrokes sent in, the screen read back.
//!
//! Each [`Tmux`] has its own socket, so tests running at the same time (threads of one test
//! process, or separate processes) never share a tmux server; it is killed on drop.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a test waits for the screen to show what it expects.
pub const SCREEN_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Whether a `tmux` binary can be run (`scripts/test-deps` installs it).
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// A tmux server of its own, on a socket named after `label`, this process and a counter.
    pub fn new(label: &str) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Tmux {
            socket: format!("rstmdb-{label}-test-{}-{n}", std::process::id()),
        }
    }

    /// Runs `tmux ARGS` against this server (without any tmux configuration file) and asserts
    /// that it succeeds.
    pub fn run(&self, args: &[&str]) -> Output {
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

    /// Starts `command` (a shell command line) in a new detached session of `width`×`height`.
    pub fn new_session(&self, session: &str, width: u16, height: u16, command: &str) {
        let (width, height) = (width.to_string(), height.to_string());
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            &width,
            "-y",
            &height,
            command,
        ]);
    }

    /// Sends keys as `tmux send-keys` names them (`Enter`, `Tab`, `C-d`, or literal text).
    pub fn send_keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// What the pane shows now.
    pub fn screen(&self, session: &str) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the pane shows every one of `needles`; returns that screen. Panics with the
    /// last screen after [`SCREEN_TIMEOUT`].
    pub fn wait_for_text(&self, session: &str, needles: &[&str]) -> String {
        self.wait_for_screen(session, &format!("{needles:?}"), |screen| {
            needles.iter().all(|needle| screen.contains(needle))
        })
    }

    /// Waits until the last non-empty line of the pane, without trailing blanks, is `expected`.
    pub fn wait_for_last_line(&self, session: &str, expected: &str) -> String {
        self.wait_for_screen(session, &format!("a last line {expected:?}"), |screen| {
            let last = screen.lines().rev().find(|line| !line.trim().is_empty());
            last.map(str::trim_end) == Some(expected)
        })
    }

    fn wait_for_screen(&self, session: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen(session);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}; it shows:\n{screen}"
            );
            sleep(POLL_INTERVAL);
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
