//! The dashboard's state and the one place it changes: [`App::update`].
//!
//! Counts: the STATS poll is the truth (creates and deletes produce no events, §6.9), the
//! stream is the live delta between polls. A poll's counts cover exactly the records below its
//! `counts_offset`: an event below it is already counted and is not applied again, and the
//! events at or above it that arrived before the poll's answer are applied again on top of the
//! new counts. So the counts stay exact whatever the order in which polls and events arrive.

mod feed;

use std::collections::{BTreeMap, VecDeque};

use rstmdb_client::Event;
use rstmdb_client::limits::{position_of, segment_of};
use rstmdb_client::results::{ClusterStatusResult, StatsResult};

pub use feed::{FEED_CAPACITY_ENTRIES, Feed, FeedEntry, RateHistory, SPARKLINE_SECONDS};

/// (machine, version, state).
pub type CountKey = (String, u32, String);

/// Transitions applied to the counts and not yet known to be in a poll. At 10,000
/// transitions/s and one poll a second this holds about 10,000; past the bound the oldest are
/// dropped (a poll that late covers them anyway).
const UNPOLLED_CAPACITY_EVENTS: usize = 100_000;

/// A transition as the counts see it.
#[derive(Debug, Clone, PartialEq)]
struct CountMove {
    wal_offset: u64,
    from: CountKey,
    to: CountKey,
}

/// The panels, in `tab` order; Cluster only when the server is a cluster node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Panel {
    #[default]
    Instances,
    Transitions,
    Wal,
    Server,
    Cluster,
}

impl Panel {
    fn next(self, clustered: bool) -> Panel {
        match self {
            Panel::Instances => Panel::Transitions,
            Panel::Transitions => Panel::Wal,
            Panel::Wal => Panel::Server,
            Panel::Server if clustered => Panel::Cluster,
            Panel::Server | Panel::Cluster => Panel::Instances,
        }
    }
}

/// How the instances table is ordered (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Machine, version, state.
    #[default]
    ByName,
    /// Largest count first.
    ByCountDesc,
}

/// A key press, already decoded from the terminal (kept free of crossterm so tests can
/// build them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Tab,
    Enter,
    Esc,
    Backspace,
    Up,
    Down,
    PageUp,
    PageDown,
    /// Ctrl-C: quit, like `q`, even while typing a filter.
    Interrupt,
}

/// Everything that can change the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transition from the WATCH_ALL stream.
    Event(Box<Event>),
    /// A STATS poll answered.
    Stats(Box<StatsResult>),
    /// A STATS poll failed (the text is shown in the status line).
    StatsFailed(String),
    /// A CLUSTER_STATUS poll answered (the server is a cluster node).
    Cluster(Box<ClusterStatusResult>),
    /// The live stream is (again) subscribed.
    StreamUp,
    /// The live stream is down; the text says why (shown in the status line).
    StreamDown(String),
    /// Whether the client's connection is up (false while it reconnects).
    Link(bool),
    Key(Key),
    /// Mouse wheel over the screen: scroll the feed.
    ScrollUp,
    ScrollDown,
    /// The wall clock, in milliseconds since the Unix epoch.
    Tick {
        unix_ms: u64,
    },
}

/// The server's totals at one poll, for per-second rates.
#[derive(Debug, Clone, Default, PartialEq)]
struct PollMark {
    uptime_secs: u64,
    requests_total: u64,
    errors_total: BTreeMap<String, u64>,
}

/// The whole dashboard state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct App {
    pub server_addr: String,
    pub focus: Panel,
    pub sort: SortOrder,
    pub show_help: bool,
    pub paused: bool,
    pub should_quit: bool,
    /// The applied feed filter (`/`).
    pub filter: String,
    /// The filter being typed, while `/` is active.
    pub filter_input: Option<String>,
    /// Feed rows scrolled away from the newest.
    pub feed_scroll: usize,
    pub counts: BTreeMap<CountKey, u64>,
    pub feed: Feed,
    pub rates: RateHistory,
    pub stats: Option<StatsResult>,
    /// The last CLUSTER_STATUS; `None` on a standalone server.
    pub cluster: Option<ClusterStatusResult>,
    pub requests_per_sec: f64,
    pub errors_per_sec: BTreeMap<String, f64>,
    /// The highest `wal_offset` received from the stream.
    pub last_event_offset: Option<u64>,
    pub events_received: u64,
    pub connected: bool,
    pub stream_up: bool,
    /// Why the stream or the poll is unhappy; empty when all is well.
    pub stream_problem: String,
    pub poll_problem: String,
    pub unix_ms: u64,
    previous_poll: Option<PollMark>,
    unpolled: VecDeque<CountMove>,
    /// The checkpoint offset last polled, and when the dashboard first saw it (`None`: it was
    /// already there at the first poll, so its age is unknown). WAL_STATS has no checkpoint
    /// time, so the age is measured from here.
    checkpoint_seen: Option<(Option<u64>, Option<u64>)>,
}

impl App {
    pub fn new(server_addr: impl Into<String>) -> App {
        App {
            server_addr: server_addr.into(),
            ..App::default()
        }
    }

    pub fn update(&mut self, message: Message) {
        match message {
            Message::Event(event) => self.on_event(*event),
            Message::Stats(stats) => self.on_stats(*stats),
            Message::StatsFailed(reason) => self.poll_problem = reason,
            Message::Cluster(status) => self.cluster = Some(*status),
            Message::StreamUp => {
                self.stream_up = true;
                self.stream_problem.clear();
            }
            Message::StreamDown(reason) => {
                self.stream_up = false;
                self.stream_problem = reason;
            }
            Message::Link(up) => self.connected = up,
            Message::Key(key) => self.on_key(key),
            Message::ScrollUp => self.scroll_by(-3),
            Message::ScrollDown => self.scroll_by(3),
            Message::Tick { unix_ms } => {
                self.unix_ms = unix_ms;
                self.rates.advance_to(unix_ms / 1000);
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        self.events_received += 1;
        self.rates.record();
        self.last_event_offset = Some(self.last_event_offset.unwrap_or(0).max(event.wal_offset));
        let counted_by_poll = self
            .stats
            .as_ref()
            .is_some_and(|stats| event.wal_offset < stats.counts_offset);
        if !counted_by_poll {
            let movement = CountMove {
                wal_offset: event.wal_offset,
                from: (
                    event.machine.clone(),
                    event.version,
                    event.from_state.clone(),
                ),
                to: (event.machine.clone(), event.version, event.to_state.clone()),
            };
            self.apply_move(&movement);
            if self.unpolled.len() == UNPOLLED_CAPACITY_EVENTS {
                self.unpolled.pop_front();
            }
            self.unpolled.push_back(movement);
        }
        if self.paused {
            return;
        }
        self.feed.push(FeedEntry {
            time: clock_text(self.unix_ms),
            instance_id: event.instance_id,
            machine: event.machine,
            version: event.version,
            from_state: event.from_state,
            to_state: event.to_state,
            event: event.event,
            wal_offset: event.wal_offset,
        });
        // Keep the rows the operator scrolled to in place while new ones arrive on top.
        if self.feed_scroll > 0 {
            self.feed_scroll = (self.feed_scroll + 1).min(self.feed.len().saturating_sub(1));
        }
    }

    fn apply_move(&mut self, movement: &CountMove) {
        if let Some(count) = self.counts.get_mut(&movement.from) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.counts.remove(&movement.from);
            }
        }
        *self.counts.entry(movement.to.clone()).or_insert(0) += 1;
    }

    fn on_stats(&mut self, stats: StatsResult) {
        self.poll_problem.clear();
        self.counts = stats
            .instances
            .iter()
            .map(|entry| {
                let key = (entry.machine.clone(), entry.version, entry.state.clone());
                (key, entry.count)
            })
            .collect();
        // Events newer than the poll's counts arrived first: they still apply on top.
        self.unpolled
            .retain(|movement| movement.wal_offset >= stats.counts_offset);
        let unpolled = std::mem::take(&mut self.unpolled);
        for movement in &unpolled {
            self.apply_move(movement);
        }
        self.unpolled = unpolled;
        let mark = PollMark {
            uptime_secs: stats.uptime_secs,
            requests_total: stats.requests_total.unwrap_or(0),
            errors_total: stats.errors_total.clone().unwrap_or_default(),
        };
        if let Some(previous) = &self.previous_poll {
            // A restarted server starts its counters again; its first poll gives no rate.
            if mark.uptime_secs >= previous.uptime_secs {
                let secs = (mark.uptime_secs - previous.uptime_secs).max(1) as f64;
                self.requests_per_sec =
                    mark.requests_total.saturating_sub(previous.requests_total) as f64 / secs;
                self.errors_per_sec = mark
                    .errors_total
                    .iter()
                    .map(|(code, total)| {
                        let before = previous.errors_total.get(code).copied().unwrap_or(0);
                        (code.clone(), total.saturating_sub(before) as f64 / secs)
                    })
                    .filter(|(_, rate)| *rate > 0.0)
                    .collect();
            }
        }
        self.previous_poll = Some(mark);
        let checkpoint = stats.wal.checkpoint_offset;
        match self.checkpoint_seen {
            None => self.checkpoint_seen = Some((checkpoint, None)),
            Some((seen, _)) if seen != checkpoint => {
                self.checkpoint_seen = Some((checkpoint, Some(self.unix_ms)));
            }
            Some(_) => {}
        }
        self.stats = Some(stats);
    }

    fn on_key(&mut self, key: Key) {
        if key == Key::Interrupt {
            self.should_quit = true;
            return;
        }
        if let Some(input) = &mut self.filter_input {
            match key {
                Key::Char(c) => input.push(c),
                Key::Backspace => {
                    input.pop();
                }
                Key::Enter => {
                    self.filter = std::mem::take(input);
                    self.filter_input = None;
                    self.feed_scroll = 0;
                }
                Key::Esc => {
                    self.filter.clear();
                    self.filter_input = None;
                    self.feed_scroll = 0;
                }
                _ => {}
            }
            return;
        }
        if self.show_help {
            // Any key closes the overlay; `q` still quits.
            self.show_help = false;
            if key == Key::Char('q') {
                self.should_quit = true;
            }
            return;
        }
        match key {
            Key::Char('q') => self.should_quit = true,
            Key::Char('?') => self.show_help = true,
            Key::Char('p') => self.paused = !self.paused,
            Key::Char('/') => self.filter_input = Some(self.filter.clone()),
            Key::Char('s') => {
                self.sort = match self.sort {
                    SortOrder::ByName => SortOrder::ByCountDesc,
                    SortOrder::ByCountDesc => SortOrder::ByName,
                }
            }
            Key::Tab => self.focus = self.focus.next(self.cluster.is_some()),
            Key::Up => self.scroll_by(-1),
            Key::Down => self.scroll_by(1),
            Key::PageUp => self.scroll_by(-10),
            Key::PageDown => self.scroll_by(10),
            Key::Esc => self.filter.clear(),
            _ => {}
        }
    }

    /// Positive moves toward older entries.
    fn scroll_by(&mut self, rows: isize) {
        let visible = self.feed.visible(&self.filter).count();
        let max = visible.saturating_sub(1);
        self.feed_scroll = self.feed_scroll.saturating_add_signed(rows).min(max);
    }

    /// The instances table rows in the chosen order.
    pub fn sorted_counts(&self) -> Vec<(&CountKey, u64)> {
        let mut rows: Vec<(&CountKey, u64)> = self.counts.iter().map(|(k, v)| (k, *v)).collect();
        if self.sort == SortOrder::ByCountDesc {
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        }
        rows
    }

    /// Per machine: its states with their counts, summed over versions, in state-name order.
    pub fn spread_by_machine(&self) -> BTreeMap<&str, BTreeMap<&str, u64>> {
        let mut spread: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for ((machine, _, state), count) in &self.counts {
            *spread
                .entry(machine.as_str())
                .or_default()
                .entry(state.as_str())
                .or_insert(0) += count;
        }
        spread
    }

    /// Bytes between the newest WAL record and the last event the stream delivered; `None`
    /// before both are known. Only meaningful while transitions are being written.
    pub fn stream_lag_bytes(&self) -> Option<u64> {
        let latest = self.stats.as_ref()?.wal.latest_offset;
        Some(offset_distance(self.last_event_offset?, latest))
    }

    /// Bytes written but not yet durable.
    pub fn write_lag_bytes(&self) -> Option<u64> {
        let wal = &self.stats.as_ref()?.wal;
        Some(offset_distance(wal.durable_offset, wal.latest_offset))
    }

    /// Seconds since the newest checkpoint appeared, when the dashboard saw it appear.
    pub fn checkpoint_age_secs(&self) -> Option<u64> {
        let (_, seen_ms) = self.checkpoint_seen?;
        Some(self.unix_ms.saturating_sub(seen_ms?) / 1000)
    }

    /// Records written but not yet durable, estimated from the mean record size since the
    /// server started (WAL_STATS gives no durable sequence number to count them exactly).
    pub fn write_lag_records_estimate(&self) -> Option<u64> {
        let io = &self.stats.as_ref()?.wal.io_stats;
        let mean_record_bytes = io.bytes_written.checked_div(io.writes)?.max(1);
        Some(self.write_lag_bytes()?.div_ceil(mean_record_bytes))
    }

    /// The status line's text: the worst problem first, else a summary.
    pub fn status_text(&self) -> String {
        if !self.connected {
            return format!("reconnecting to {} ...", self.server_addr);
        }
        if !self.stream_problem.is_empty() {
            return format!("live feed: {}", self.stream_problem);
        }
        if !self.poll_problem.is_empty() {
            return format!("stats: {}", self.poll_problem);
        }
        let mut text = format!("connected to {}", self.server_addr);
        if self.paused {
            text.push_str(" | PAUSED");
        }
        if !self.filter.is_empty() {
            text.push_str(&format!(" | filter: {}", self.filter));
        }
        text
    }
}

/// Bytes from `from` to `to` when both are in one segment (§6.10); across segments, the bytes
/// of `to`'s segment (a lower bound).
pub fn offset_distance(from: u64, to: u64) -> u64 {
    if to <= from {
        return 0;
    }
    if segment_of(from) == segment_of(to) {
        to - from
    } else {
        position_of(to)
    }
}

/// `HH:MM:SS` UTC of a Unix time in milliseconds.
pub fn clock_text(unix_ms: u64) -> String {
    let secs_of_day = (unix_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        (secs_of_day / 60) % 60,
        secs_of_day % 60
    )
}
