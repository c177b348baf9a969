//! rstmdb-tui: the live terminal dashboard (`rstmdb dashboard`).
//!
//! Module map:
//! - [`app`]: [`App`], the whole dashboard state, changed only by [`App::update`] with a
//!   [`Message`] (a stream event, a STATS poll, a key, a clock tick). Start here.
//! - [`ui`]: [`ui::draw`], a pure function of `&App` onto a ratatui frame; one file per panel.
//! - [`event_loop`]: the impure edge: terminal setup and restore, crossterm input, the
//!   WATCH_ALL stream, the once-a-second STATS poll, and redraws; [`run`] is the entry point.
#![forbid(unsafe_code)]

pub mod app;
pub mod event_loop;
pub mod ui;

pub use app::{App, Key, Message, Panel};
pub use event_loop::{DashboardError, run};
