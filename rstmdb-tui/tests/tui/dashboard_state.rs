//! State updates: sequences of messages give the right counts, feed, sparkline and lag.

use crate::support::{SEGMENT_1, T0_MS, event, fixed_app, stats};
use rstmdb_tui::app::offset_distance;
use rstmdb_tui::{App, Key, Message};

fn count(app: &App, machine: &str, state: &str) -> u64 {
    app.counts
        .get(&(machine.to_owned(), 1, state.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[test]
fn transitions_after_the_poll_move_one_instance_between_states() {
    let mut app = App::new("db");
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    app.update(event("order-1", "created", "paid", "PAY", SEGMENT_1 + 1000));
    app.update(event("order-2", "created", "paid", "PAY", SEGMENT_1 + 1100));
    assert_eq!(count(&app, "order", "created"), 1);
    assert_eq!(count(&app, "order", "paid"), 3);
}

#[test]
fn an_event_already_in_the_polled_counts_is_not_applied_twice() {
    let mut app = App::new("db");
    app.update(event("order-1", "created", "paid", "PAY", SEGMENT_1 + 500));
    // The poll was taken after that event was written: its counts include it.
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    app.update(event("order-1", "created", "paid", "PAY", SEGMENT_1 + 500));
    assert_eq!(count(&app, "order", "created"), 3);
    assert_eq!(count(&app, "order", "paid"), 1);
}

#[test]
fn events_newer_than_a_poll_that_arrived_before_it_are_applied_on_top_of_it() {
    let mut app = App::new("db");
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    // Both delivered before the next poll's answer; that poll read its counts (created 3,
    // paid 1) after the first was written and before the second.
    app.update(event("order-1", "created", "paid", "PAY", SEGMENT_1 + 2000));
    app.update(event("order-2", "created", "paid", "PAY", SEGMENT_1 + 2100));
    app.update(stats(SEGMENT_1 + 2050, 2, 0));
    // The poll's numbers, plus order-2's move, which they do not hold yet.
    assert_eq!(count(&app, "order", "created"), 2);
    assert_eq!(count(&app, "order", "paid"), 2);
    // A later poll that covers both leaves its own numbers.
    app.update(stats(SEGMENT_1 + 3000, 3, 0));
    assert_eq!(count(&app, "order", "created"), 3);
    assert_eq!(count(&app, "order", "paid"), 1);
}

#[test]
fn a_poll_replaces_the_counts_so_creates_and_deletes_show_up() {
    let mut app = App::new("db");
    app.update(event("x-1", "a", "b", "GO", SEGMENT_1 + 10));
    assert_eq!(app.counts.len(), 1);
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    assert_eq!(app.counts.len(), 3);
    assert_eq!(count(&app, "order", "created"), 3);
}

#[test]
fn the_feed_is_newest_first_and_a_filter_keeps_matching_transitions() {
    let mut app = fixed_app();
    let events: Vec<&str> = app.feed.visible("").map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["PAY", "SHIP", "PAY", "PAY"]);

    for key in [Key::Char('/'), Key::Char('S'), Key::Char('H'), Key::Enter] {
        app.update(Message::Key(key));
    }
    assert_eq!(app.filter, "SH");
    let shown: Vec<&str> = app
        .feed
        .visible(&app.filter)
        .map(|e| e.instance_id.as_str())
        .collect();
    assert_eq!(shown, ["order-1"]);
    assert!(app.status_text().contains("filter: SH"));
}

#[test]
fn paused_feed_keeps_counting_but_shows_nothing_new() {
    let mut app = fixed_app();
    app.update(Message::Key(Key::Char('p')));
    app.update(event("order-4", "created", "paid", "PAY", SEGMENT_1 + 4000));
    assert_eq!(app.feed.len(), 4);
    assert_eq!(count(&app, "order", "paid"), 2 + 1);
    assert!(app.status_text().contains("PAUSED"));
}

#[test]
fn the_sparkline_counts_transitions_per_second_with_zeros_for_quiet_seconds() {
    let mut app = App::new("db");
    app.update(Message::Tick { unix_ms: T0_MS });
    for offset in 0..5 {
        app.update(event("i", "a", "b", "GO", SEGMENT_1 + offset));
    }
    app.update(Message::Tick {
        unix_ms: T0_MS + 1000,
    });
    app.update(event("i", "a", "b", "GO", SEGMENT_1 + 10));
    app.update(Message::Tick {
        unix_ms: T0_MS + 4000,
    });
    assert_eq!(app.rates.per_second(), [5, 1, 0, 0]);
    assert_eq!(app.rates.last_second(), 0);
}

#[test]
fn stream_lag_is_the_distance_from_the_last_event_to_the_newest_record() {
    let mut app = App::new("db");
    app.update(event("i", "a", "b", "GO", SEGMENT_1 + 100));
    assert_eq!(app.stream_lag_bytes(), None);
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    assert_eq!(app.stream_lag_bytes(), Some(900));
    assert_eq!(app.write_lag_bytes(), Some(200));
    // 3,000 bytes over 12 records: 250 a record, so 200 bytes are about one record.
    assert_eq!(app.write_lag_records_estimate(), Some(1));
    assert_eq!(offset_distance(SEGMENT_1 + 10, (2 << 40) + 70), 70);
}

#[test]
fn request_and_error_rates_come_from_successive_polls() {
    let app = fixed_app();
    assert_eq!(app.requests_per_sec, 20.0);
    assert_eq!(app.errors_per_sec.get("NOT_FOUND"), Some(&2.0));
}

#[test]
fn a_dropped_stream_and_a_lost_link_show_in_the_status_line() {
    let mut app = fixed_app();
    app.update(Message::StreamDown(
        "server error INTERNAL_ERROR: not available".into(),
    ));
    assert!(app.status_text().contains("not available"));
    app.update(Message::Link(false));
    assert!(
        app.status_text()
            .starts_with("reconnecting to 127.0.0.1:7401")
    );
    app.update(Message::Link(true));
    app.update(Message::StreamUp);
    assert!(app.status_text().starts_with("connected"));
}

#[test]
fn keys_quit_cycle_panels_open_help_and_sort() {
    let mut app = fixed_app();
    app.update(Message::Key(Key::Tab));
    assert_eq!(app.focus, rstmdb_tui::Panel::Transitions);
    app.update(Message::Key(Key::Char('?')));
    assert!(app.show_help);
    app.update(Message::Key(Key::Char('x')));
    assert!(!app.show_help && !app.should_quit);
    app.update(Message::Key(Key::Char('s')));
    // order/created and order/paid both hold 2 (a tie goes by name), ticket/open holds 1.
    let by_count: Vec<(String, u64)> = app
        .sorted_counts()
        .into_iter()
        .map(|((machine, _, state), count)| (format!("{machine}/{state}"), count))
        .collect();
    assert_eq!(
        by_count,
        [
            ("order/created".to_owned(), 2),
            ("order/paid".to_owned(), 2),
            ("ticket/open".to_owned(), 1)
        ]
    );
    app.update(Message::Key(Key::Char('q')));
    assert!(app.should_quit);
}

#[test]
fn scrolling_stays_within_the_feed() {
    let mut app = fixed_app();
    app.update(Message::ScrollDown);
    assert_eq!(app.feed_scroll, 3);
    app.update(Message::ScrollDown);
    assert_eq!(app.feed_scroll, 3);
    app.update(Message::Key(Key::Up));
    app.update(Message::ScrollUp);
    assert_eq!(app.feed_scroll, 0);
}

#[test]
fn checkpoint_age_counts_from_when_a_new_checkpoint_was_polled() {
    let mut app = App::new("db");
    app.update(Message::Tick { unix_ms: T0_MS });
    app.update(stats(SEGMENT_1 + 1000, 1, 0));
    assert_eq!(app.checkpoint_age_secs(), None);

    let Message::Stats(mut later) = stats(SEGMENT_1 + 2000, 2, 0) else {
        unreachable!("stats() builds a Stats message")
    };
    later.wal.checkpoint_offset = Some(SEGMENT_1 + 1500);
    app.update(Message::Tick {
        unix_ms: T0_MS + 1000,
    });
    app.update(Message::Stats(later.clone()));
    app.update(Message::Tick {
        unix_ms: T0_MS + 31_000,
    });
    app.update(Message::Stats(later));
    assert_eq!(app.checkpoint_age_secs(), Some(30));
}
