//! `rstmdb repl < script`: commands from standard input, JSON values across lines, and the
//! first failing command ending the script with exit status 1.

use crate::repl_support::Server;
use predicates::prelude::*;

#[test]
fn a_script_runs_its_commands_in_order_with_json_across_lines_and_comments() {
    let server = Server::start();
    server.put_order_machine();
    let script = r#"
# set up one order
create order 1 order-1 --ctx {
    "customer": "alice",
    "items": [1, 2]
}
apply order-1 PAY {"note": "a } inside a string"}
get order-1
"#;
    let output = server
        .repl()
        .write_stdin(script)
        .output()
        .expect("run repl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created = stdout
        .find("state        created")
        .expect("create's output");
    let applied = stdout.find("to_state    paid").expect("apply's output");
    let fetched = stdout.find("state            paid").expect("get's output");
    assert!(created < applied && applied < fetched, "{stdout}");
    assert!(
        stdout.contains(r#"{"customer":"alice","items":[1,2],"note":"a } inside a string"}"#),
        "{stdout}"
    );
}

#[test]
fn the_first_failing_command_ends_the_script_with_exit_1() {
    let server = Server::start();
    server.put_order_machine();
    let script = "create order 1 first\napply first SHIP\ncreate order 1 never\n";
    server
        .repl()
        .write_stdin(script)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("first"))
        .stderr(predicate::str::starts_with("error: INVALID_TRANSITION: "));
    // The command after the failure did not run.
    server
        .repl()
        .args(["-c", "get never"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: INSTANCE_NOT_FOUND"));
}

#[test]
fn a_script_ending_inside_a_json_value_is_malformed() {
    let server = Server::start();
    server
        .repl()
        .write_stdin("ping\ncreate order 1 x --ctx {\"a\": 1\n")
        .assert()
        .code(2)
        .stdout("pong\n")
        .stderr("error: unclosed JSON value: a `{` or `[` is never closed\n");
}

#[test]
fn quit_ends_a_script_successfully() {
    let server = Server::start();
    server
        .repl()
        .write_stdin("ping\nquit\nget missing\n")
        .assert()
        .success()
        .stdout("pong\n");
}
