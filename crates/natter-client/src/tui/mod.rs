//! The full-screen client: [`state`] holds what is shown and reacts to keys and events,
//! [`view`] draws it, [`input`] edits the input line. This module owns the terminal: it
//! connects first (so a wrong address is a plain error message), then switches to the
//! alternate screen, and restores the terminal on every way out, panics and signals included.
//!
//! Keys are read on a thread of their own and events arrive from the connection task, so
//! typing never waits for the network and arriving messages never wait for typing.

pub mod input;
pub mod state;
pub mod view;

use crate::config::Settings;
use crate::conn::{Client, ConnectOptions, Event as ConnEvent, LOBBY, Status};
use natter_proto::names::fold;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use state::{Action, App};
use std::io::Stdout;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Whether the terminal is in full-screen mode now (read by the panic hook).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether mouse capture was enabled.
static MOUSE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was: idempotent, callable from the panic hook.
fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        if MOUSE.load(Ordering::SeqCst) {
            let _ = execute!(out, DisableMouseCapture);
        }
        let _ = execute!(out, DisableBracketedPaste, LeaveAlternateScreen, ratatui::crossterm::cursor::Show);
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal when dropped, so early returns and errors leave it usable.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn enter_terminal(mouse: bool) -> std::io::Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard;
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
    if mouse {
        MOUSE.store(true, Ordering::SeqCst);
        execute!(out, EnableMouseCapture)?;
    }
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    Ok((guard, terminal))
}

/// Reads terminal events on a thread: `event::read` blocks, and must not block the runtime.
fn terminal_events() -> mpsc::Receiver<TermEvent> {
    let (tx, rx) = mpsc::channel(256);
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the TUI until the user quits or the session ends.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let mut opts = ConnectOptions::new(&settings.addr, &settings.nick);
    opts.reconnect = settings.reconnect;
    if fold(&settings.room) != fold(LOBBY) {
        opts.rooms.push(settings.room.clone());
    }
    eprintln!("connecting to {} as {}…", settings.addr, settings.nick);
    let (client, mut events) = Client::connect(opts).await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let (_guard, mut terminal) = enter_terminal(settings.mouse)?;
    let mut app = App::new(&settings.addr, &client.nick(), &settings.room);
    if let Ok(size) = terminal.size() {
        app.size = (size.width, size.height);
    }
    let mut keys = terminal_events();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut term_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut closed: Option<String> = None;
    let mut quit: Option<Option<String>> = None;

    loop {
        terminal.draw(|f| view::draw(f, &app))?;
        let mut actions = Vec::new();
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    if let ConnEvent::Status(Status::Closed { reason }) = &ev {
                        closed = Some(reason.clone());
                    }
                    app.on_event(ev);
                    // Take whatever else is waiting before drawing again.
                    while let Ok(ev) = events.try_recv() {
                        app.on_event(ev);
                    }
                }
                None => closed = Some("the connection task ended".into()),
            },
            key = keys.recv() => match key {
                Some(ev) => {
                    actions.extend(on_terminal_event(&mut app, ev));
                    while let Ok(ev) = keys.try_recv() {
                        actions.extend(on_terminal_event(&mut app, ev));
                    }
                }
                None => quit = Some(None),
            },
            _ = tick.tick() => {}
            _ = term_signal.recv() => quit = Some(Some("terminated".into())),
            _ = hup_signal.recv() => quit = Some(Some("terminal closed".into())),
        }
        for action in actions {
            match action {
                Action::Send { target, text, action } => {
                    let cid = client.send(target.clone(), text.clone(), action);
                    app.queued(&target, &text, action, cid);
                }
                Action::Submit(frame) => client.submit(frame),
                Action::Quit(reason) => quit = Some(reason),
            }
        }
        if let Some(reason) = quit.take() {
            terminal.draw(|f| view::draw(f, &app))?;
            let _ = tokio::time::timeout(Duration::from_secs(3), client.quit(reason)).await;
            break;
        }
        if let Some(reason) = closed.take() {
            terminal.draw(|f| view::draw(f, &app))?;
            restore_terminal();
            anyhow::bail!("the session ended: {reason}");
        }
    }
    restore_terminal();
    Ok(())
}

fn on_terminal_event(app: &mut App, ev: TermEvent) -> Vec<Action> {
    match ev {
        TermEvent::Key(k) => app.on_key(k),
        TermEvent::Mouse(m) => app.on_mouse(m),
        TermEvent::Paste(text) => {
            app.on_paste(&text);
            Vec::new()
        }
        TermEvent::Resize(w, h) => {
            app.size = (w, h);
            // Keep the scroll position within the new bounds.
            let b = app.current;
            let max = view::buffer_rows(app, b).saturating_sub(view::message_area(app).height as usize);
            app.buffers[b].scroll = app.buffers[b].scroll.min(max);
            Vec::new()
        }
        _ => Vec::new(),
    }
}
