//! The real `rstmdb` binary and its subcommands (`CARGO_BIN_EXE_rstmdb`): `check`,
//! `wal-inspect`, `snapshot`, `repl`, `bench`, `dashboard`, `serve` (flags, configuration,
//! logging, metrics), the crash loop and the history checker against the binary, and the check
//! of every `§` reference in the repository.

mod bench_reports_errors;
mod bench_workloads;
mod check_cli;
mod cluster_config;
mod config_sources;
mod container_files;
mod crash_loop;
mod dashboard_cli;
mod dashboard_stats;
mod dashboard_terminal;
mod data_dir_files;
mod doc_references;
mod history_concurrent;
mod logging_json;
mod metrics_serve_binary;
mod repl_commands;
mod repl_scripts;
mod repl_terminal;
mod repl_tls;
mod repl_watch;
mod secrets_cli;
mod server_cli;
mod snapshot_cli;
mod terminal_safety;
mod wal_inspect_cli;

mod crash_support;
mod history_support;
mod repl_support;
