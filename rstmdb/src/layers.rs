//! The layer drawing of `lib.rs`, enforced: each module of this crate imports only the modules
//! below it, the configuration is read only at the top, and the engine stays pure. A new import
//! that points up fails here with the file and line, before it becomes a cycle.

use std::path::Path;

/// Every module and what it may import. The order of `lib.rs`, bottom up: `data_files`, `dsl`;
/// `engine`, `wal`, `checkpoint`; `database`; `cluster`; `service`; `server`; `metrics`; `assemble`; `cli`.
/// `config` is a leaf that only `assemble` and `cli` read.
#[rustfmt::skip] // one line a module, so the drawing reads as a table
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("data_files", &[]),
    ("dsl", &[]),
    ("engine", &["dsl"]),
    ("wal", &["data_files"]),
    ("checkpoint", &["data_files"]),
    ("database", &["dsl", "engine", "wal", "checkpoint"]),
    ("cluster", &["data_files", "dsl", "engine", "wal", "checkpoint", "database"]),
    ("service", &["dsl", "engine", "wal", "checkpoint", "database", "cluster"]),
    ("server", &["dsl", "engine", "wal", "checkpoint", "database", "service"]),
    ("metrics", &["dsl", "engine", "wal", "checkpoint", "database", "cluster", "service",
                  "server"]),
    ("config", &[]),
    ("assemble", &["dsl", "engine", "wal", "checkpoint", "database", "cluster", "service",
                   "server", "metrics", "config"]),
];

/// Crates a module must not use, and why.
const FORBIDDEN_CRATES: &[(&str, &str, &str)] = &[
    ("engine", "tokio", "the engine is pure: no runtime"),
    ("engine", "std::fs", "the engine is pure: no I/O"),
    ("dsl", "tokio", "definitions and guards are pure"),
    ("dsl", "std::fs", "definitions and guards are pure"),
];

/// `module::` names after `crate::` (or `rstmdb::`) on the code lines of `text`, with their
/// line numbers. Comment lines are skipped: a doc comment may name any module.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((index + 1, name));
            }
            rest = after;
        }
    }
    found
}

fn rust_files(path: &Path, files: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .expect("readable source directory")
            .map(|entry| entry.expect("readable directory entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, files);
        }
    } else if path.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
        files.push(path.to_path_buf());
    }
}

/// The files of one module: `src/<name>/**/*.rs` or `src/<name>.rs`.
fn module_files(name: &str) -> Vec<(std::path::PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src.join(name), &mut files);
    rust_files(&src.join(format!("{name}.rs")), &mut files);
    assert!(!files.is_empty(), "module {name} has no source files");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable source file");
            (path, text)
        })
        .collect()
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let mut violations = Vec::new();
    let modules: Vec<&str> = MAY_IMPORT.iter().map(|(name, _)| *name).collect();
    for (module, allowed) in MAY_IMPORT {
        for (path, text) in module_files(module) {
            for (line, name) in crate_paths(&text) {
                if name != *module && modules.contains(&name.as_str()) && !allowed.contains(&&*name)
                {
                    violations.push(format!(
                        "{}:{line}: {module} imports crate::{name}",
                        path.display()
                    ));
                }
            }
            let client_crate = "rstmdb_client";
            for (index, code) in text.lines().enumerate() {
                if !code.trim_start().starts_with("//") && code.contains(client_crate) {
                    violations.push(format!(
                        "{}:{}: {module} uses the client crate; the library speaks rstmdb_protocol",
                        path.display(),
                        index + 1
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_pure_modules_use_no_runtime_and_no_files() {
    let mut violations = Vec::new();
    for (module, forbidden, why) in FORBIDDEN_CRATES {
        for (path, text) in module_files(module) {
            for (index, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if !code.starts_with("//") && code.contains(forbidden) {
                    violations.push(format!(
                        "{}:{}: {module} uses {forbidden} ({why})",
                        path.display(),
                        index + 1
                    ));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_import_scanner_sees_paths_in_code_and_not_in_comments() {
    let text = "use crate::wal::Wal;\n// crate::server in a comment\nlet x = crate::engine::Engine::new(c);\n";
    let found = crate_paths(text);
    assert_eq!(found, vec![(1, "wal".to_owned()), (3, "engine".to_owned())]);
}
