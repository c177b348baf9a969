//! Secrets stay out of `ps`, shell history and logs: `--token-file` on the client tools,
//! `hash-token` reading standard input, and malformed token hashes reported by position and
//! length, never by value.

use crate::repl_support::{Server, repl_command, write};
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use rstmdb_testkit::binary::{rstmdb_env_names, says};
use rstmdb_testkit::{TOKEN, TOKEN_HASH};
use std::time::Duration;

/// `rstmdb ARGS...` without the developer's RSTMDB_* variables and with a time limit.
fn rstmdb(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rstmdb"));
    for name in rstmdb_env_names() {
        command.env_remove(name);
    }
    command.args(args).timeout(Duration::from_secs(60));
    command
}

#[test]
fn the_repl_reads_its_token_from_a_file_without_the_trailing_newline() {
    let server = Server::start_with_token("s3cret");
    let file = server.path("token");
    write(&file, "s3cret\n");
    server
        .repl()
        .arg("--token-file")
        .arg(&file)
        .args(["-c", "machines"])
        .assert()
        .success()
        .stdout("machine  versions\n(0 machines)\n");
}

#[test]
fn an_unusable_token_file_is_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty-token");
    write(&empty, " \n");
    let missing = dir.path().join("missing-token");
    let two_lines = dir.path().join("two-lines");
    write(&two_lines, "first\nsecond\n");
    // No server is needed: the file is read before connecting.
    let unreachable = "127.0.0.1:1";
    for (file, problem) in [
        (&empty, "is empty".to_owned()),
        (&missing, "cannot read token file".to_owned()),
        (&two_lines, "holds more than one line".to_owned()),
    ] {
        let path = file.display().to_string();
        repl_command()
            .args(["-s", unreachable, "--token-file", &path, "-c", "ping"])
            .assert()
            .code(2)
            .stderr(contains(problem.as_str()).and(contains(path.as_str())))
            .stderr(contains("second").not());
        rstmdb(&["dashboard", "-s", unreachable, "--token-file", &path])
            .assert()
            .code(2)
            .stderr(contains(problem.as_str()).and(contains(path.as_str())));
        rstmdb(&["bench", "-s", unreachable, "--token-file", &path, "-n", "1"])
            .assert()
            .code(1)
            .stderr(contains(problem.as_str()).and(contains(path.as_str())));
    }
}

#[test]
fn a_token_file_overrides_rstmdb_token() {
    let server = Server::start_with_token("from-file");
    let file = server.path("token");
    write(&file, "from-file");
    server
        .repl()
        .env("RSTMDB_TOKEN", "from-env")
        .arg("--token-file")
        .arg(&file)
        .args(["-c", "ping"])
        .assert()
        .success();
}

#[test]
fn a_token_file_and_a_token_flag_are_refused_together() {
    repl_command()
        .args(["-t", "x", "--token-file", "/dev/null", "-c", "ping"])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn hash_token_reads_the_token_from_standard_input() {
    // The spec's worked example (§8.1), with the newline `echo` adds.
    rstmdb(&["hash-token"])
        .write_stdin(format!("{TOKEN}\n"))
        .assert()
        .success()
        .stdout(format!("{TOKEN_HASH}\n"));
    rstmdb(&["hash-token"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(contains("standard input is empty"))
        .stdout("");
}

/// `rstmdb serve` in a temp dir with `env`; asserts it refuses to start and returns stderr.
fn serve_refuses(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let output = rstmdb(&["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(args)
        .env("RSTMDB_METRICS_ENABLED", "false")
        .envs(env.iter().copied())
        .output()
        .expect("run serve");
    assert!(!output.status.success(), "serve started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_raw_token_configured_as_a_hash_is_reported_by_position_never_echoed() {
    let raw = "my-secret-token-x"; // 17 characters, pasted where its hash belongs
    let dir = tempfile::tempdir().expect("temp dir");

    let config = dir.path().join("rstmdb.toml");
    write(
        &config,
        &format!(
            "[auth]\nrequired = true\ntoken_hashes = [\"{TOKEN_HASH}\", \"{TOKEN_HASH}\", \"{raw}\"]\n"
        ),
    );
    let stderr = serve_refuses(&["--config", &config.display().to_string()], &[]);
    assert!(
        says(
            &stderr,
            "auth.token_hashes[2]: not a SHA-256 hex digest (17 characters; expected 64)"
        ),
        "{stderr}"
    );
    assert!(!says(&stderr, raw), "the value was echoed: {stderr}");

    let stderr = serve_refuses(
        &[],
        &[
            ("RSTMDB_AUTH_REQUIRED", "true"),
            ("RSTMDB_AUTH_TOKEN_HASH", raw),
        ],
    );
    assert!(
        says(
            &stderr,
            "RSTMDB_AUTH_TOKEN_HASH: not a SHA-256 hex digest (17 characters; expected 64)"
        ),
        "{stderr}"
    );
    assert!(!says(&stderr, raw), "the value was echoed: {stderr}");

    let secrets = dir.path().join("token-hashes.txt");
    write(&secrets, &format!("# hashes\n{TOKEN_HASH}\n{raw}\n"));
    let stderr = serve_refuses(
        &[],
        &[
            ("RSTMDB_AUTH_REQUIRED", "true"),
            ("RSTMDB_AUTH_SECRETS_FILE", &secrets.display().to_string()),
        ],
    );
    assert!(
        says(
            &stderr,
            &format!(
                "{} line 3: not a SHA-256 hex digest (17 characters; expected 64)",
                secrets.display()
            )
        ),
        "{stderr}"
    );
    assert!(!says(&stderr, raw), "the value was echoed: {stderr}");
}
