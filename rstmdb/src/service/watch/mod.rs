//! Watch streams (spec §3.5–3.7, §4.20–4.22, §6.9; docs/watch-streams.md).
//!
//! - [`hub`]: every live subscription, the `[watch]` limits, WATCH/UNWATCH entry points;
//! - `subscription`: one task per subscription, a cursor over the committed WAL fed from the
//!   database's recent-events ring or, when it lags, from the WAL;
//! - [`filter`]: which transitions a subscription matches;
//! - [`budget`]: the bound on the CPU share of delivery;
//! - `stats`: the counters behind the watch metrics.

pub mod budget;
pub mod filter;
pub mod hub;
pub mod ops;
mod stats;
mod subscription;

pub use filter::{Filter, SubscriptionKind};
pub use hub::{WatchHub, WatchLimits, WatchRequest};
pub use stats::WatchStats;
