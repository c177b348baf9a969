//! The server in this process, over the echo handler or a real database: framing, sessions,
//! limits, TLS, every op, metrics, hostile input that does not measure memory, a client across a
//! restart, and the Python client against the real binary.

mod client_resumes_after_server_restart;
mod cluster_replication;
mod cluster_serve;
mod hostile_auth_flood;
mod hostile_before_auth;
mod hostile_disk_and_logs;
mod hostile_frames;
mod hostile_metrics;
mod hostile_pending_bytes;
mod hostile_watch;
mod metrics_endpoint;
mod python_interop;
mod server_framing_faults;
mod server_limits;
mod server_ops_apply_event;
mod server_ops_apply_event_replays;
mod server_ops_batch;
mod server_ops_batch_rollback;
mod server_ops_compact;
mod server_ops_delete_and_list;
mod server_ops_framing;
mod server_ops_fsync_policies;
mod server_ops_instances;
mod server_ops_machines;
mod server_ops_restart;
mod server_ops_session_and_flush;
mod server_ops_wal;
mod server_ops_wal_faults;
mod server_session;
mod server_tls;
mod server_wire;
