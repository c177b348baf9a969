//! Server: version, uptime, connections, subscriptions, requests/s and errors/s by code.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{panel_block, safe};
use crate::app::{App, Panel};

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let block = panel_block(app, Panel::Server, " Server ".to_owned());
    let Some(stats) = &app.stats else {
        frame.render_widget(Paragraph::new("waiting for STATS ...").block(block), area);
        return;
    };
    let or_dash = |value: Option<u64>| value.map_or("-".to_owned(), |v| v.to_string());
    let mut lines = vec![
        Line::from(format!(
            "version {}  up {}",
            safe(&stats.server_version),
            uptime_text(stats.uptime_secs)
        )),
        Line::from(format!(
            "machines {} ({} versions)  instances {}",
            stats.machine_count, stats.machine_version_count, stats.instance_count
        )),
        Line::from(format!(
            "connections {}  subscriptions {}",
            or_dash(stats.connections),
            stats.subscriptions
        )),
        Line::from(format!("requests/s {:.1}", app.requests_per_sec)),
    ];
    if app.errors_per_sec.is_empty() {
        lines.push(Line::from("errors/s 0"));
    } else {
        for (code, rate) in &app.errors_per_sec {
            lines.push(Line::from(format!("errors/s {} {rate:.1}", safe(code))));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn uptime_text(secs: u64) -> String {
    format!("{}h{:02}m{:02}s", secs / 3600, (secs / 60) % 60, secs % 60)
}
