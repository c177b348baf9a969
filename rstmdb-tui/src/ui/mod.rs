//! [`draw`]: the whole screen as a pure function of the [`App`]. One file per panel; this one
//! lays them out and adds the status line and the help overlay.
//!
//! Layout: status line on top; below it Instances | Transitions over WAL | Server, and
//! | Cluster when the server is a cluster node. At 80×24 every panel keeps a few rows; larger
//! terminals give the tables and the feed the room.
//!
//! Every string that comes from the server (instance ids, machine names, states, events, error
//! texts) is drawn through [`safe`], which escapes control characters: stored data must not
//! drive the operator's terminal.

mod cluster;
mod instances;
mod server;
mod transitions;
mod wal;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::app::{App, Panel};

pub fn draw(app: &App, frame: &mut Frame) {
    let [status, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(frame.area());
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
    let [instances_area, transitions_area] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    draw_status(app, frame, status);
    instances::draw(app, frame, instances_area);
    transitions::draw(app, frame, transitions_area);
    if app.cluster.is_some() {
        let [wal_area, server_area, cluster_area] = Layout::horizontal([
            Constraint::Percentage(30),
            Constraint::Percentage(30),
            Constraint::Percentage(40),
        ])
        .areas(bottom);
        wal::draw(app, frame, wal_area);
        server::draw(app, frame, server_area);
        cluster::draw(app, frame, cluster_area);
    } else {
        let [wal_area, server_area] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(bottom);
        wal::draw(app, frame, wal_area);
        server::draw(app, frame, server_area);
    }
    if app.show_help {
        draw_help(frame, frame.area());
    }
}

/// One panel over the whole frame (snapshot tests render each panel alone).
pub fn draw_panel(app: &App, panel: Panel, frame: &mut Frame) {
    let area = frame.area();
    match panel {
        Panel::Instances => instances::draw(app, frame, area),
        Panel::Transitions => transitions::draw(app, frame, area),
        Panel::Wal => wal::draw(app, frame, area),
        Panel::Server => server::draw(app, frame, area),
        Panel::Cluster => cluster::draw(app, frame, area),
    }
}

/// `text` with control characters escaped (`\x1b`), ready to draw.
pub(crate) fn safe(text: &str) -> String {
    rstmdb_client::terminal_text::escape_controls(text).into_owned()
}

/// A panel's frame, highlighted when it has the focus.
pub(crate) fn panel_block(app: &App, panel: Panel, title: String) -> Block<'static> {
    let style = if app.focus == panel {
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(title)
}

fn draw_status(app: &App, frame: &mut Frame, area: Rect) {
    let text = match &app.filter_input {
        Some(input) => format!("/{}_  (enter: apply, esc: clear)", safe(input)),
        None => format!("rstmdb dashboard | {} | ?: help", safe(&app.status_text())),
    };
    let style = if !app.connected || !app.stream_problem.is_empty() {
        Style::default().fg(Color::Black).bg(Color::Yellow)
    } else {
        Style::default().fg(Color::Black).bg(Color::Cyan)
    };
    frame.render_widget(Paragraph::new(text).style(style), area);
}

const HELP: [&str; 10] = [
    "q        quit",
    "tab      next panel",
    "/        filter the feed by machine, state or event",
    "p        pause / resume the feed",
    "s        sort instances by name / by count",
    "up/down  scroll the feed (also the mouse wheel)",
    "pgup/dn  scroll the feed by a page",
    "esc      clear the filter",
    "?        this help",
    "(any key closes it)",
];

fn draw_help(frame: &mut Frame, area: Rect) {
    let width = 56.min(area.width);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let overlay = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = HELP.iter().map(|line| Line::from(*line)).collect();
    frame.render_widget(Clear, overlay);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        overlay,
    );
}

/// `1234567` as `1.2M`, for narrow columns.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
