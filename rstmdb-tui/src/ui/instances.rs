//! Instances: machine / version / state / count, and per machine a bar of how its instances
//! spread over states (one fill character per state, so it reads without colour too).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use super::{panel_block, safe};
use crate::app::{App, Panel, SortOrder};

const FILLS: [(char, Color); 6] = [
    ('█', Color::Green),
    ('▓', Color::Blue),
    ('▒', Color::Magenta),
    ('░', Color::Yellow),
    ('#', Color::Cyan),
    ('=', Color::Red),
];

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let total: u64 = app.counts.values().sum();
    let sort = match app.sort {
        SortOrder::ByName => "name",
        SortOrder::ByCountDesc => "count",
    };
    let block = panel_block(
        app,
        Panel::Instances,
        format!(" Instances {total} (by {sort}) "),
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let spread = app.spread_by_machine();
    let bars_height = (spread.len() as u16).min(inner.height / 2);
    let [table_area, bars_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(bars_height)]).areas(inner);

    let header = Row::new(["machine", "ver", "state", "count"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows = app
        .sorted_counts()
        .into_iter()
        .map(|((machine, version, state), count)| {
            Row::new([
                safe(machine),
                version.to_string(),
                safe(state),
                count.to_string(),
            ])
        });
    let widths = [
        Constraint::Fill(2),
        Constraint::Length(4),
        Constraint::Fill(2),
        Constraint::Length(8),
    ];
    frame.render_widget(Table::new(rows, widths).header(header), table_area);

    let label_width = 10usize;
    let bar_width = (bars_area.width as usize).saturating_sub(label_width + 1);
    let lines: Vec<Line> = spread
        .iter()
        .map(|(machine, states)| {
            let machine_total: u64 = states.values().sum();
            let mut spans = vec![Span::raw(format!(
                "{:<label_width$.label_width$} ",
                safe(machine)
            ))];
            let mut used = 0usize;
            for (index, count) in states.values().enumerate() {
                let (fill, color) = FILLS[index % FILLS.len()];
                let cells = if index + 1 == states.len() {
                    bar_width - used
                } else {
                    (*count as usize * bar_width)
                        .checked_div(machine_total as usize)
                        .unwrap_or(0)
                };
                used += cells;
                spans.push(Span::styled(
                    fill.to_string().repeat(cells),
                    Style::default().fg(color),
                ));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), bars_area);
}
