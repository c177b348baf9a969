//! WAL: segments and bytes, write lag (latest vs durable), the dashboard's stream lag, fsync
//! count, latency and batching, the fsync policy and the distance from the last checkpoint.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{human_bytes, panel_block};
use crate::app::{App, Panel};
use rstmdb_client::limits::{position_of, segment_of};

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let block = panel_block(app, Panel::Wal, " WAL ".to_owned());
    let Some(stats) = &app.stats else {
        frame.render_widget(Paragraph::new("waiting for STATS ...").block(block), area);
        return;
    };
    let wal = &stats.wal;
    let stream_lag = match app.stream_lag_bytes() {
        Some(bytes) => human_bytes(bytes),
        None => "-".to_owned(),
    };
    let checkpoint = match wal.checkpoint_offset {
        Some(_) => format!(
            "{} since checkpoint",
            human_bytes(wal.bytes_since_checkpoint)
        ),
        None => "no checkpoint yet".to_owned(),
    };
    let lines = vec![
        Line::from(format!(
            "segments {}  size {}  records {}",
            wal.segment_count,
            human_bytes(wal.total_size_bytes),
            wal.entry_count
        )),
        Line::from(format!(
            "latest {}  durable {}",
            offset_text(wal.latest_offset),
            offset_text(wal.durable_offset)
        )),
        Line::from(format!(
            "write lag {} (~{} records)",
            human_bytes(app.write_lag_bytes().unwrap_or(0)),
            app.write_lag_records_estimate().unwrap_or(0),
        )),
        Line::from(format!("stream lag {stream_lag}")),
        Line::from(format!(
            "fsyncs {}  p50 {} us  p99 {} us",
            wal.io_stats.fsyncs, wal.fsync_latency_us.p50, wal.fsync_latency_us.p99
        )),
        Line::from(format!(
            "records/fsync {:.1}  policy {}",
            wal.records_per_fsync,
            super::safe(&wal.fsync_policy)
        )),
        Line::from(checkpoint),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// An offset as `segment:byte` (§6.10), shorter and clearer than the 13-digit number.
pub(super) fn offset_text(offset: u64) -> String {
    format!("{}:{}", segment_of(offset), position_of(offset))
}
