//! Watch streams: filters, ordering, resuming from an offset, delivery pacing, and durability
//! before publish (with the real binary killed mid-stream).

mod watch_catch_up_reader;
mod watch_delivery_budget;
mod watch_filters;
mod watch_ordering;
mod watch_publishes_only_durable_events;
mod watch_resumes_from_offset;
mod watch_survives_crash;
