//! What handles a request, above the database and below the network layer (spec §4, §6.9).
//!
//! - [`handler`]: the narrow boundary the server calls — the [`OpHandler`] trait and the
//!   [`ConnectionContext`] a handler gets (event push, subscriptions, close notification).
//!   Start reading here.
//! - `outbound`: the pushed messages (events pre-serialised once per transition, spliced per
//!   subscription) and the bounded queue that carries them to the connection's writer.
//! - [`dispatch`]: [`DatabaseHandler`], every data op on top of the database; `commands`
//!   turns typed params into engine commands; `stats`: the STATS extension op.
//! - [`watch`]: watch streams — the subscription hub, one task per subscription, filters,
//!   the delivery budget (docs/watch-streams.md).
//! - [`value_depth`]: the nesting limit of stored JSON values (ctx, payload, definitions).
//! - [`identity`]: the server name, version and features HELLO, INFO and STATS report.
//! - `echo` (feature `testing`): a stand-in handler that tests the network layer alone.

mod commands;
pub mod dispatch;
#[cfg(any(test, feature = "testing"))]
pub mod echo;
mod forwarding;
pub mod handler;
pub mod identity;
mod outbound;
mod stats;
pub mod value_depth;
pub mod watch;

pub use dispatch::DatabaseHandler;
#[cfg(any(test, feature = "testing"))]
pub use echo::EchoHandler;
pub use handler::{
    ConnectionContext, OUTBOUND_QUEUE_MESSAGES, OpHandler, Outbound, PushError, ResponseFuture,
};
pub use identity::{SERVER_FEATURES, SERVER_NAME, SERVER_VERSION};
pub(crate) use outbound::OutboundReceiver;
pub use outbound::{EventBatch, EventHead};
pub use stats::{ServerCounters, ServerTotals};
