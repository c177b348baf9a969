//! The impure edge of the dashboard: the terminal, the client, the clock.
//!
//! Three producers feed one channel of [`Message`]s: a thread reading crossterm input, a task
//! keeping the WATCH_ALL stream alive, and a task polling STATS once a second. The loop applies
//! every queued message, then redraws at most [`FRAME_INTERVAL`] apart, so a burst of
//! thousands of events costs one frame, not thousands (no flicker, no lag).

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event as TermEvent, KeyCode, KeyEventKind,
    KeyModifiers, MouseEventKind,
};
use futures::StreamExt;
use rstmdb_client::params::WatchAllParams;
use rstmdb_client::{Client, ClientError, ClientOptions};
use tokio::sync::mpsc;

use crate::app::{App, Key, Message};

/// The shortest time between two redraws.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How often STATS is polled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait before subscribing again after the stream could not be (re)started.
pub const STREAM_RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// Messages that may wait for the loop; the stream task waits when it is full rather than
/// drop an event (the counts must stay exact).
const MESSAGE_QUEUE: usize = 8192;

/// Why the dashboard could not run.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The first connection failed (wrong address, token or TLS settings): shown before the
    /// screen is taken over.
    #[error("{0}")]
    Connect(#[from] ClientError),
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Connects, then runs the dashboard until the user quits. The terminal is restored on every
/// way out, panics included.
pub async fn run(options: ClientOptions) -> Result<(), DashboardError> {
    let addr = options.addr.clone();
    let client = Client::connect(options).await?;
    let (sender, receiver) = mpsc::channel(MESSAGE_QUEUE);
    spawn_input_thread(sender.clone());
    let stream_task = tokio::spawn(keep_stream(client.clone(), sender.clone()));
    let poll_task = tokio::spawn(poll_stats(client.clone(), sender));

    install_panic_hook();
    let outcome = match ratatui::try_init() {
        Ok(mut terminal) => match crossterm::execute!(io::stdout(), EnableMouseCapture) {
            Ok(()) => draw_loop(&mut terminal, App::new(addr), receiver).await,
            Err(error) => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    };
    restore_terminal();

    stream_task.abort();
    poll_task.abort();
    // Best effort: the server drops our subscription with the connection anyway.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.close()).await;
    outcome
}

async fn draw_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut app: App,
    mut receiver: mpsc::Receiver<Message>,
) -> Result<(), DashboardError> {
    app.update(Message::Link(true));
    app.update(tick());
    let mut frame_timer = tokio::time::interval(FRAME_INTERVAL);
    frame_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            message = receiver.recv() => {
                let Some(message) = message else { return Ok(()) };
                let is_input = matches!(
                    message,
                    Message::Key(_) | Message::ScrollUp | Message::ScrollDown
                );
                app.update(message);
                // Drain what else is queued before drawing once.
                while let Ok(message) = receiver.try_recv() {
                    app.update(message);
                }
                if app.should_quit {
                    return Ok(());
                }
                // Stream and poll messages wait for the next frame; keys answer at once.
                if !is_input {
                    continue;
                }
            }
            _ = frame_timer.tick() => app.update(tick()),
        }
        terminal.draw(|frame| crate::ui::draw(&app, frame))?;
    }
}

fn tick() -> Message {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    Message::Tick { unix_ms }
}

/// Keeps one WATCH_ALL subscription alive. The client resumes it across reconnects by
/// itself; when it ends for good (or cannot start, e.g. a server without watch streams),
/// the status line says why and a new one starts after the last offset seen.
async fn keep_stream(client: Client, sender: mpsc::Sender<Message>) {
    let mut last_offset: Option<u64> = None;
    loop {
        let filter = WatchAllParams {
            include_ctx: false,
            from_offset: last_offset.map(|offset| offset + 1),
            ..WatchAllParams::default()
        };
        match client.watch_all(filter).await {
            Ok(mut subscription) => {
                if sender.send(Message::StreamUp).await.is_err() {
                    return;
                }
                while let Some(item) = subscription.next().await {
                    match item {
                        Ok(event) => {
                            last_offset = Some(event.wal_offset);
                            if sender.send(Message::Event(Box::new(event))).await.is_err() {
                                return;
                            }
                        }
                        Err(error) => {
                            let down = Message::StreamDown(format!("{error} (resubscribing)"));
                            if sender.send(down).await.is_err() {
                                return;
                            }
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                let down = Message::StreamDown(format!("{error} (retrying)"));
                if sender.send(down).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(STREAM_RETRY_INTERVAL).await;
    }
}

/// STATS once a second, and the link state with it; the cluster's status too, unless the
/// server says it runs standalone.
async fn poll_stats(client: Client, sender: mpsc::Sender<Message>) {
    let mut standalone = false;
    let mut timer = tokio::time::interval(POLL_INTERVAL);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        timer.tick().await;
        if sender
            .send(Message::Link(client.is_connected()))
            .await
            .is_err()
        {
            return;
        }
        if !client.is_connected() {
            continue;
        }
        let polling = client.with_request_timeout(POLL_INTERVAL * 3);
        let message = match polling.stats().await {
            Ok(stats) => Message::Stats(Box::new(stats)),
            Err(error) => Message::StatsFailed(error.to_string()),
        };
        if sender.send(message).await.is_err() {
            return;
        }
        if standalone {
            continue;
        }
        // REPLICATION_STATUS answers on every server without an error: `standalone`, or on a
        // cluster node the CLUSTER_STATUS result under `cluster`.
        match polling.replication_status().await {
            Ok(status) if status.role == "standalone" => standalone = true,
            Ok(status) => {
                let cluster = status
                    .other
                    .get("cluster")
                    .cloned()
                    .and_then(|cluster| serde_json::from_value(cluster).ok());
                if let Some(cluster) = cluster
                    && sender
                        .send(Message::Cluster(Box::new(cluster)))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            Err(_) => {}
        }
    }
}

/// crossterm's reads block, so they get their own thread; it ends when the loop is gone.
fn spawn_input_thread(sender: mpsc::Sender<Message>) {
    std::thread::spawn(move || {
        loop {
            match crossterm::event::poll(Duration::from_millis(200)) {
                Ok(true) => {}
                Ok(false) => {
                    if sender.is_closed() {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            let Ok(event) = crossterm::event::read() else {
                return;
            };
            if let Some(message) = translate(event)
                && sender.blocking_send(message).is_err()
            {
                return;
            }
        }
    });
}

/// A terminal event as a [`Message`]; `None` for the ones the dashboard ignores (a resize
/// needs no message: the next draw takes the new size).
fn translate(event: TermEvent) -> Option<Message> {
    match event {
        TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            let key = match key.code {
                KeyCode::Char('c') if ctrl => Key::Interrupt,
                KeyCode::Char(c) => Key::Char(c),
                KeyCode::Tab => Key::Tab,
                KeyCode::Enter => Key::Enter,
                KeyCode::Esc => Key::Esc,
                KeyCode::Backspace => Key::Backspace,
                KeyCode::Up => Key::Up,
                KeyCode::Down => Key::Down,
                KeyCode::PageUp => Key::PageUp,
                KeyCode::PageDown => Key::PageDown,
                _ => return None,
            };
            Some(Message::Key(key))
        }
        TermEvent::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Message::ScrollUp),
            MouseEventKind::ScrollDown => Some(Message::ScrollDown),
            _ => None,
        },
        TermEvent::Resize(_, _) => Some(tick()),
        _ => None,
    }
}

fn restore_terminal() {
    let _ = crossterm::execute!(io::stdout(), DisableMouseCapture);
    ratatui::restore();
}

/// Restores the terminal before the default hook prints the panic, so the message is
/// readable and the shell usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}
