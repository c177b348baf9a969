//! Snapshots of each panel and of the whole screen, at 80×24 and 160×48, from a fixed state.

use crate::support::fixed_app;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rstmdb_tui::{App, Key, Message, ui};

fn render(app: &App, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw(app, frame))
        .expect("drawing never fails on a test backend");
    terminal.backend().clone()
}

#[test]
fn whole_screen_at_80_by_24() {
    insta::assert_snapshot!(render(&fixed_app(), 80, 24));
}

#[test]
fn whole_screen_at_160_by_48() {
    insta::assert_snapshot!(render(&fixed_app(), 160, 48));
}

#[test]
fn help_overlay_at_80_by_24() {
    let mut app = fixed_app();
    app.update(Message::Key(Key::Char('?')));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn before_the_first_poll_panels_say_they_are_waiting() {
    let mut app = App::new("127.0.0.1:7401");
    app.update(Message::Link(false));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn instances_panel_alone() {
    let app = fixed_app();
    let mut terminal = Terminal::new(TestBackend::new(60, 12)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw_panel(&app, rstmdb_tui::Panel::Instances, frame))
        .expect("draw");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn transitions_panel_alone() {
    let app = fixed_app();
    let mut terminal = Terminal::new(TestBackend::new(70, 10)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw_panel(&app, rstmdb_tui::Panel::Transitions, frame))
        .expect("draw");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn wal_panel_alone() {
    let app = fixed_app();
    let mut terminal = Terminal::new(TestBackend::new(50, 8)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw_panel(&app, rstmdb_tui::Panel::Wal, frame))
        .expect("draw");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn server_panel_alone() {
    let app = fixed_app();
    let mut terminal = Terminal::new(TestBackend::new(50, 8)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw_panel(&app, rstmdb_tui::Panel::Server, frame))
        .expect("draw");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn cluster_panel_alone() {
    let mut app = fixed_app();
    app.update(Message::Cluster(Box::new(crate::support::cluster_status())));
    let mut terminal = Terminal::new(TestBackend::new(44, 10)).expect("test terminal");
    terminal
        .draw(|frame| ui::draw_panel(&app, rstmdb_tui::Panel::Cluster, frame))
        .expect("draw");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn a_cluster_node_gets_a_cluster_panel_beside_wal_and_server() {
    let mut app = fixed_app();
    app.update(Message::Cluster(Box::new(crate::support::cluster_status())));
    insta::assert_snapshot!(render(&app, 160, 48));
    // Tab reaches the Cluster panel after Server, then wraps to Instances.
    for _ in 0..4 {
        app.update(Message::Key(Key::Tab));
    }
    assert_eq!(app.focus, rstmdb_tui::Panel::Cluster);
    app.update(Message::Key(Key::Tab));
    assert_eq!(app.focus, rstmdb_tui::Panel::Instances);
}

/// Every cell of the rendered screen, row by row.
fn screen_text(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    text
}

#[test]
fn control_characters_in_stored_names_are_drawn_escaped() {
    const HOSTILE: &str = "\x1b[2J\x1b]0;pwned\x07";
    let mut app = fixed_app();
    app.update(crate::support::event(
        &format!("o{HOSTILE}"),
        "created",
        &format!("s{HOSTILE}"),
        "PAY",
        crate::support::SEGMENT_1 + 3300,
    ));
    let screen = screen_text(&render(&app, 240, 48));
    // Shown as text the operator can read, in the feed's instance and to-state columns...
    assert!(screen.contains("o\\x1b[2J\\x1b]0;pwned\\x07"), "{screen}");
    assert!(screen.contains("s\\x1b[2J\\x1b]0;pwned\\x07"), "{screen}");
    // ...and never as a control character a terminal would obey.
    let obeyed = screen.chars().filter(|c| *c != '\n').any(char::is_control);
    assert!(!obeyed, "{screen:?}");
}
