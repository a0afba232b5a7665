//! Owning the terminal: full-screen mode in, and back out on every way out (normal return,
//! early `?`, panic). Shared by `natter connect` and `natter direct`, so both restore the
//! terminal the same way and neither can leave a shell in raw mode.

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
use std::io::{BufWriter, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// The terminal type the full-screen interfaces draw on (stdout through crossterm). The
/// buffer holds a whole frame, which ratatui flushes once drawn: the terminal gets each frame
/// in one write. Straight to `Stdout` (a line buffer of 1 KiB) a frame that moves every row,
/// as a new message does, went out in pieces, and a terminal could show (and `capture-pane`
/// read) the top rows of the new frame over the bottom rows of the old one: a torn frame,
/// with a line shown twice.
pub type Term = Terminal<CrosstermBackend<BufWriter<Stdout>>>;

/// Room for one frame's escape sequences and text (a large, colourful screen takes tens of
/// KiB; a bigger frame still goes out whole, just in more than one write).
const FRAME_BUFFER: usize = 256 * 1024;

/// Whether the terminal is in full-screen mode now (read by the panic hook).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether mouse capture was enabled.
static MOUSE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was. Idempotent and callable from a panic hook, so callers
/// may restore early (to print an error on the normal screen) and still keep the guard.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        if MOUSE.swap(false, Ordering::SeqCst) {
            let _ = execute!(out, DisableMouseCapture);
        }
        let _ = execute!(out, DisableBracketedPaste, LeaveAlternateScreen, ratatui::crossterm::cursor::Show);
        let _ = disable_raw_mode();
    }
}

/// Restores the terminal when dropped, so early returns and errors leave it usable.
/// Only [`enter`] makes one.
pub struct TerminalGuard(());

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Switches to raw mode and the alternate screen with bracketed paste (and mouse capture when
/// `mouse`), after installing a panic hook that restores the terminal before the panic
/// message is printed. Keep the guard alive as long as the screen is in use.
pub fn enter(mouse: bool) -> std::io::Result<(TerminalGuard, Term)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = TerminalGuard(());
    let mut out = std::io::stdout();
    execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
    if mouse {
        MOUSE.store(true, Ordering::SeqCst);
        execute!(out, EnableMouseCapture)?;
    }
    let out = BufWriter::with_capacity(FRAME_BUFFER, std::io::stdout());
    let terminal = Terminal::new(CrosstermBackend::new(out))?;
    Ok((guard, terminal))
}

/// Reads terminal events (keys, paste, resize, mouse) on a thread of its own: `event::read`
/// blocks, and must never block the async runtime. The channel closes when input ends.
pub fn events() -> mpsc::Receiver<TermEvent> {
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
