//! What lies on disk: WAL segments and group commit, checkpoints and snapshots, recovery at every
//! crash point, the commit pipeline, a full disk, and the inputs the fuzz targets found.

mod checkpoint_crash_points;
mod checkpoint_large_payload;
mod checkpoint_store;
mod cluster_commit_path;
mod compaction_checkpoints;
mod database_commit_pipeline;
mod full_disk;
mod fuzz_regressions;
mod raft_files;
mod raft_log_store;
mod recovery_after_crash;
mod recovery_holes_in_the_unsynced_tail;
mod recovery_keeps_every_acknowledged_write;
mod recovery_real_files;
mod recovery_replay_failures;
mod recovery_survives_a_second_crash;
mod recovery_syncs_directory_entries;
mod snapshot_store;
mod wal_appends_and_rotates;
mod wal_group_commit;
mod wal_out_of_descriptors;
mod wal_rotation_faults;
mod wal_support;
mod wal_truncate;
