//! `rstmdb check` as a user runs it: exit codes, the summary line, diagnostics that underline
//! the offending text in the file, and `--format json`.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

const FIXTURES: &str = "rstmdb/tests/fixtures/definitions";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Run {
    let output = Command::cargo_bin("rstmdb")
        .expect("binary is built")
        .current_dir(workspace_root())
        .arg("check")
        .args(args)
        .output()
        .expect("rstmdb runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Asserts that source line `line` is printed with `expected` at `column` (1-based, in
/// characters), and that the underline drawn just below it starts there and is exactly as wide.
fn assert_underlined(stderr: &str, line: usize, column: usize, expected: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    let source_marker = format!("{line} │ ");
    let index = lines
        .iter()
        .position(|text| text.trim_start().starts_with(&source_marker))
        .unwrap_or_else(|| panic!("line {line} is not shown in:\n{stderr}"));
    let source: Vec<char> = lines[index].chars().collect();
    let bar = source.iter().position(|&c| c == '│').expect("gutter bar");
    let content: String = source[bar + 2..].iter().skip(column - 1).collect();
    assert!(
        content.starts_with(expected),
        "{expected:?} is not at {line}:{column}:\n{stderr}"
    );

    let underline: Vec<char> = lines
        .get(index + 1)
        .unwrap_or_else(|| panic!("no underline below line {line}:\n{stderr}"))
        .chars()
        .collect();
    assert_eq!(underline.get(bar), Some(&'·'), "underline row:\n{stderr}");
    let marks: Vec<char> = underline[bar + 2..].to_vec();
    let start = marks
        .iter()
        .position(|c| !c.is_whitespace())
        .unwrap_or_else(|| panic!("empty underline below line {line}:\n{stderr}"));
    let width = marks[start..]
        .iter()
        .take_while(|&&c| c == '─' || c == '┬')
        .count();
    assert_eq!(
        (start + 1, width),
        (column, expected.chars().count()),
        "underline of {expected:?} on line {line}:\n{stderr}"
    );
}

#[test]
fn examples_directory_is_valid_and_prints_one_summary_per_file() {
    let run = check(&["examples/"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() >= 4, "{}", run.stdout);
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "files are checked in name order");
    assert!(lines.contains(
        &"ok  examples/document_approval.json  (7 states, 8 transitions, checksum f980d651)"
    ));
    for line in lines {
        assert!(line.starts_with("ok  examples/"), "{line}");
    }
}

#[test]
fn wrapper_form_is_accepted() {
    let run = check(&["examples/support_ticket.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("ok  examples/support_ticket.json  (6 states, 8 transitions, checksum ")
    );
}

struct Broken {
    file: &'static str,
    line: usize,
    column: usize,
    underlined: &'static str,
    message: &'static str,
    help: Option<&'static str>,
}

fn assert_broken(case: &Broken) {
    let path = fixture(case.file);
    let run = check(&[&path]);
    assert_eq!(
        run.code, 1,
        "{} should be refused:\n{}",
        case.file, run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let header = format!("╭─[{path}:{}:{}]", case.line, case.column);
    assert!(
        run.stderr.contains(&header),
        "expected {header} in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(case.message),
        "expected {:?} in:\n{}",
        case.message,
        run.stderr
    );
    assert_underlined(&run.stderr, case.line, case.column, case.underlined);
    if let Some(help) = case.help {
        assert!(
            run.stderr.contains(&format!("help: {help}")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn json_syntax_error_points_at_the_unexpected_character() {
    assert_broken(&Broken {
        file: "syntax_error.json",
        line: 4,
        column: 3,
        underlined: "\"",
        message: "invalid JSON: expected `,` or `}`",
        help: None,
    });
}

#[test]
fn non_object_definition_is_underlined_whole() {
    assert_broken(&Broken {
        file: "not_object.json",
        line: 1,
        column: 1,
        underlined: "[\"created\", \"paid\", \"shipped\"]",
        message: "the definition must be a JSON object",
        help: None,
    });
}

#[test]
fn missing_field_underlines_the_object_that_lacks_it() {
    assert_broken(&Broken {
        file: "missing_field.json",
        line: 6,
        column: 5,
        underlined: "{\"from\": \"paid\", \"event\": \"REFUND\"}",
        message: "invalid definition at /transitions/1: missing field 'to'",
        help: Some("add a \"to\" key"),
    });
}

#[test]
fn wrong_type_underlines_the_offending_entry() {
    assert_broken(&Broken {
        file: "wrong_type.json",
        line: 5,
        column: 26,
        underlined: "7",
        message: "invalid definition at /transitions/0/from/1: wrong type, expected a string",
        help: None,
    });
}

#[test]
fn unknown_initial_underlines_the_name() {
    assert_broken(&Broken {
        file: "unknown_initial.json",
        line: 3,
        column: 15,
        underlined: "new",
        message: "initial state 'new' is not one of states",
        help: Some("the states are `created`, `paid`"),
    });
}

#[test]
fn unknown_target_underlines_the_typo_and_suggests_the_close_name() {
    assert_broken(&Broken {
        file: "unknown_target.json",
        line: 6,
        column: 46,
        underlined: "shiped",
        message: "invalid definition at /transitions/1/to: target state 'shiped' is not one of states",
        help: Some("did you mean `shipped`?"),
    });
}

#[test]
fn unknown_source_in_the_wrapper_form_points_under_definition() {
    assert_broken(&Broken {
        file: "unknown_source.json",
        line: 8,
        column: 29,
        underlined: "payed",
        message: "invalid definition at /definition/transitions/0/from/1: source state 'payed'",
        help: Some("did you mean `paid`?"),
    });
}

#[test]
fn unreachable_transition_underlines_it_and_the_transition_that_wins() {
    let case = Broken {
        file: "unreachable_transition.json",
        line: 6,
        column: 5,
        underlined: "{\"from\": \"review\", \"event\": \"DECIDE\", \"to\": \"approved\", \"guard\": \"payload.score >= 80\"}",
        message: "invalid definition at /transitions/1: unreachable transition",
        help: Some("give transition 0 a guard, or move this transition before it"),
    };
    assert_broken(&case);
    let run = check(&[&fixture(case.file)]);
    assert_underlined(
        &run.stderr,
        5,
        5,
        "{\"from\": \"review\", \"event\": \"DECIDE\", \"to\": \"rejected\"}",
    );
    assert!(
        run.stderr
            .contains("transition 0 has no guard and always wins")
    );
}

#[test]
fn empty_guard_underlines_the_guard_characters_as_written() {
    // The guard ` \t ` is three characters decoded, four as written.
    assert_broken(&Broken {
        file: "empty_guard.json",
        line: 5,
        column: 55,
        underlined: " \\t ",
        message: "invalid guard at /transitions/0/guard: the guard is empty",
        help: None,
    });
}

#[test]
fn guard_error_underlines_the_exact_characters_past_escapes() {
    assert_broken(&Broken {
        file: "invalid_guard.json",
        line: 5,
        column: 78,
        underlined: "foo",
        message: "invalid guard at /transitions/0/guard: unexpected trailing text 'foo'",
        help: None,
    });
}

#[test]
fn unreadable_file_names_the_path_and_the_os_error() {
    let run = check(&["examples/order.json", "no/such/file.json"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with("ok  examples/order.json"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("cannot read no/such/file.json: No such file or directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn directory_without_definitions_is_an_error() {
    let empty = tempfile::tempdir().expect("temp dir");
    let path = empty.path().to_string_lossy().into_owned();
    let run = check(&[&path]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("no *.json file in directory"),
        "{}",
        run.stderr
    );
}

#[test]
fn one_invalid_file_among_valid_ones_fails_the_run() {
    let run = check(&["examples/", &fixture("unknown_target.json")]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.lines().count() >= 4);
    assert!(run.stderr.contains("unknown_target.json"));
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{line}: {error}")))
        .collect()
}

#[test]
fn json_format_prints_one_object_per_valid_file() {
    let run = check(&["--format", "json", "examples"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .all(|line| line.starts_with("{\"file\":")),
        "each line starts with the file name: {}",
        run.stdout
    );
    let lines = json_lines(&run.stdout);
    assert!(lines.len() >= 4);
    let approval = lines
        .iter()
        .find(|line| line["file"] == "examples/document_approval.json")
        .expect("document_approval.json is listed");
    assert_eq!(
        approval,
        &serde_json::json!({"file": "examples/document_approval.json", "valid": true,
            "checksum": "f980d651", "states": 7, "transitions": 8})
    );
}

#[test]
fn json_format_reports_each_broken_file_with_its_position() {
    let run = check(&["--format", "json", FIXTURES]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let by_file = |name: &str| {
        lines
            .iter()
            .find(|line| line["file"] == fixture(name))
            .unwrap_or_else(|| panic!("{name} missing from {}", run.stdout))
            .clone()
    };
    let target = by_file("unknown_target.json");
    assert_eq!(target["valid"], false);
    assert_eq!(
        target["error"],
        serde_json::json!({"reason": "invalid_definition", "kind": "unknown_target",
            "pointer": "/transitions/1/to", "line": 6, "column": 46, "text": "shiped",
            "message": "invalid definition at /transitions/1/to: target state 'shiped' is not one of states"})
    );
    let syntax = by_file("syntax_error.json");
    assert_eq!(syntax["error"]["reason"], "invalid_json");
    assert_eq!(
        (
            syntax["error"]["line"].as_u64(),
            syntax["error"]["column"].as_u64()
        ),
        (Some(4), Some(3))
    );
    let missing = by_file("missing_field.json");
    assert_eq!(missing["error"]["field"], "to");
    assert_eq!(missing["error"]["pointer"], "/transitions/1");
    let unreachable = by_file("unreachable_transition.json");
    assert_eq!(unreachable["error"]["shadowed_by"], 0);
    let source = by_file("unknown_source.json");
    assert_eq!(
        source["error"]["pointer"],
        "/definition/transitions/0/from/1"
    );
    let guard = by_file("empty_guard.json");
    assert_eq!(guard["error"]["reason"], "invalid_guard");
    assert_eq!(guard["error"]["kind"], "empty_guard");
    assert_eq!(guard["error"]["guard"], " \t ");
    assert_eq!(
        guard["error"]["span"],
        serde_json::json!({"offset": 0, "length": 3})
    );
    assert_eq!(
        (
            guard["error"]["line"].as_u64(),
            guard["error"]["column"].as_u64()
        ),
        (Some(5), Some(55))
    );
}

#[test]
fn truncated_file_points_at_its_last_character() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("truncated.json");
    std::fs::write(&path, "{\n  \"states\": [\"a\"],\n  \"initial\": \"a\"\n\n").expect("write");
    let path = path.to_string_lossy().into_owned();
    let run = check(&[&path]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("invalid JSON: EOF while parsing an object"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("╭─[{path}:3:16]")),
        "{}",
        run.stderr
    );
    assert_underlined(&run.stderr, 3, 16, "\"");
}
