//! Cluster (a cluster node only): this node's role and term, the leader, and each member with
//! its role and, as the leader sees it, how far behind it is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::wal::offset_text;
use super::{panel_block, safe};
use crate::app::{App, Panel};

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let block = panel_block(app, Panel::Cluster, " Cluster ".to_owned());
    let Some(status) = &app.cluster else {
        frame.render_widget(
            Paragraph::new("standalone (no [cluster] table)").block(block),
            area,
        );
        return;
    };
    let leader = match &status.leader {
        Some(leader) if leader.client_addr.is_empty() => format!("node {}", leader.node_id),
        Some(leader) => format!("node {} at {}", leader.node_id, safe(&leader.client_addr)),
        None => "none (election under way?)".to_owned(),
    };
    let or_dash = |value: Option<u64>| value.map_or("-".to_owned(), |v| v.to_string());
    let mut lines = vec![
        Line::from(format!(
            "node {}  {}  term {}",
            status.node_id,
            safe(&status.role),
            status.term
        )),
        Line::from(format!("leader {leader}")),
        Line::from(format!(
            "commit index {}  applied {}",
            or_dash(status.commit_index),
            offset_text(status.applied_offset)
        )),
        Line::from("node  role     matched  lag"),
    ];
    for member in &status.members {
        let role = match (member.voter, status.leader.as_ref()) {
            (_, Some(leader)) if leader.node_id == member.node_id => "leader",
            (true, _) => "voter",
            (false, _) => "learner",
        };
        lines.push(Line::from(format!(
            "{:<5} {:<8} {:<8} {}",
            member.node_id,
            role,
            or_dash(member.matched_index),
            or_dash(member.lag_entries)
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
