//! The full-screen client: [`state`] holds what is shown; `events`, `keys` and `commands`
//! change it (connection events, key presses, typed commands); [`layout`] says where things go
//! and how lines wrap; [`view`] draws it; [`input`] edits the input line; [`term`] enters and
//! restores the terminal. [`term`], [`input`] and the pane-drawing functions of [`view`] are public so that
//! `natter direct` looks and types the same without a second copy. This module: it
//! connects first (so a wrong address is a plain error message), then switches to the
//! alternate screen, and restores the terminal on every way out, panics and signals included.
//!
//! Keys are read on a thread of their own and events arrive from the connection task, so
//! typing never waits for the network and arriving messages never wait for typing.

mod commands;
mod events;
pub mod input;
mod keys;
pub mod layout;
pub mod state;
pub mod term;
pub mod view;

#[cfg(test)]
mod screen_tests;
#[cfg(test)]
mod testing;

use crate::config::Settings;
use crate::conn::{Client, Event as ConnEvent, LOBBY, Status};
use natter_proto::names::fold;
use ratatui::crossterm::event::Event as TermEvent;
use state::{Action, App};
use std::time::Duration;
use term::restore as restore_terminal;

/// Runs the TUI until the user quits or the session ends.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let mut opts = settings.connect_options()?;
    if fold(&settings.room) != fold(LOBBY) {
        opts.rooms.push(settings.room.clone());
    }
    eprintln!("connecting to {} as {}…", settings.addrs_text(), settings.nick);
    let (client, mut events) = Client::connect(opts).await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let (_guard, mut terminal) = term::enter(settings.mouse)?;
    // The status line names the server connected to: the first event says which.
    let mut app = App::new(&settings.addrs[0], &client.nick(), &settings.room);
    if let Ok(size) = terminal.size() {
        app.size = (size.width, size.height);
    }
    let mut keys = term::events();
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
        actions.extend(app.load_shown_history());
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
            app.resize(w, h);
            Vec::new()
        }
        _ => Vec::new(),
    }
}
