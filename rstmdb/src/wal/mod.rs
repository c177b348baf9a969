//! The write-ahead log. See `docs/wal-format.md`.
