//! Transitions: the live feed (time, instance, machine, from → to, event), newest on top,
//! with a sparkline of transitions per second above it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Row, Sparkline, Table};

use super::{panel_block, safe};
use crate::app::{App, Panel};

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let mut title = format!(" Transitions {}/s ", app.rates.last_second());
    if app.paused {
        title.push_str("[paused] ");
    }
    if !app.filter.is_empty() {
        title.push_str(&format!("[/{}] ", safe(&app.filter)));
    }
    let block = panel_block(app, Panel::Transitions, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let [spark_area, feed_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    // The newest seconds that fit, right-aligned like a scrolling chart.
    let history = app.rates.per_second();
    let shown = history.len().min(spark_area.width as usize);
    let data = &history[history.len() - shown..];
    frame.render_widget(
        Sparkline::default()
            .data(data)
            .style(Style::default().fg(Color::Green)),
        spark_area,
    );

    let header = Row::new(["time", "instance", "machine", "from → to", "event"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = app
        .feed
        .visible(&app.filter)
        .skip(app.feed_scroll)
        .take(feed_area.height as usize)
        .map(|entry| {
            Row::new([
                entry.time.clone(),
                safe(&entry.instance_id),
                safe(&entry.machine),
                format!("{} → {}", safe(&entry.from_state), safe(&entry.to_state)),
                safe(&entry.event),
            ])
        });
    // from → to gets the most room: it is what the operator reads first.
    let widths = [
        Constraint::Length(8),
        Constraint::Fill(2),
        Constraint::Fill(1),
        Constraint::Fill(4),
        Constraint::Fill(1),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), feed_area);
}
