//! The dashboard's tests, in one binary: state updates from messages and snapshots of the
//! rendered panels (`snapshots/`, named after this binary's module paths).

mod dashboard_snapshots;
mod dashboard_state;

mod support;
