//! The deterministic state machine engine. Pure: no I/O, no clock, no tokio.
