//! Drawing the state: tabs with unread counts, topic, messages, member list, status line and
//! input line. How lines break into rows is [`super::layout`]'s, shared with the state so that
//! it pages by the same rows that are drawn.
//!
//! The message pane ([`draw_chat`], [`chat_rows`]), the input line ([`draw_input`]) and the
//! bar style ([`bar_style`]) take plain data, not the client's [`App`], so `natter direct`
//! draws its conversation with the same code and looks the same.

use super::input::InputLine;
use super::layout::{ChatLine, MEMBERS_WIDTH, layout, nick_color, text_width, wrap};
use super::state::{App, ConnState};
use natter_proto::display::safe_line;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthChar;

/// Re-exported where `natter direct` has always found them: it sizes its scrollback with them.
pub use super::layout::{chat_rows, render_chat_line};

/// The style of the title and status bars, shared so every natter screen looks alike.
pub fn bar_style() -> Style {
    Style::default().bg(Color::Blue).fg(Color::White)
}

/// Draws a conversation into `area`: the rows ending `scroll` rows above the newest line,
/// newest at the bottom, the top padded when there is little to show.
pub fn draw_chat(frame: &mut Frame<'_>, area: Rect, lines: &[ChatLine], scroll: usize, own_nick: &str) {
    let width = area.width.max(1) as usize;
    let height = area.height as usize;
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut needed = height + scroll;
    for line in lines.iter().rev() {
        let mut r = render_chat_line(line, own_nick, width);
        needed = needed.saturating_sub(r.len());
        r.append(&mut rows);
        rows = r;
        if needed == 0 {
            break;
        }
    }
    let end = rows.len().saturating_sub(scroll);
    let start = end.saturating_sub(height);
    let mut visible: Vec<Line<'static>> = rows[start..end].to_vec();
    let mut padded = vec![Line::default(); height.saturating_sub(visible.len())];
    padded.append(&mut visible);
    frame.render_widget(Paragraph::new(padded), area);
}

/// Draws the input line into `area`: `prompt` (cyan), then the text scrolled sideways so the
/// cursor stays visible, and places the terminal cursor.
pub fn draw_input(frame: &mut Frame<'_>, area: Rect, prompt: &str, input: &InputLine) {
    let prompt_w = text_width(prompt).min(area.width as usize / 2);
    let avail = (area.width as usize).saturating_sub(prompt_w + 1).max(1);
    let text = input.text();
    let cursor_w = input.cursor_width();
    let skip_w = cursor_w.saturating_sub(avail);
    let mut shown = String::new();
    let mut w = 0;
    let mut shown_w = 0;
    for c in text.chars() {
        let cw = c.width().unwrap_or(0);
        if w >= skip_w {
            if shown_w + cw > avail {
                break;
            }
            shown.push(c);
            shown_w += cw;
        }
        w += cw;
    }
    let prompt: String = wrap(prompt, prompt_w, prompt_w).into_iter().next().unwrap_or_default();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(prompt, Style::default().fg(Color::Cyan)),
            Span::raw(shown),
        ])),
        area,
    );
    let x = area.x + (prompt_w + cursor_w - skip_w).min(area.width.saturating_sub(1) as usize) as u16;
    frame.set_cursor_position(Position::new(x, area.y));
}

fn tabs(app: &App) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, b) in app.buffers.iter().enumerate() {
        let mut label = format!(" {}:{}", i + 1, safe_line(&b.name));
        if b.unread > 0 {
            label.push_str(&format!("({})", b.unread));
        }
        if b.highlight {
            label.push('!');
        }
        label.push(' ');
        let style = if i == app.current {
            Style::default().fg(Color::Black).bg(Color::White).add_modifier(Modifier::BOLD)
        } else if b.highlight {
            Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else if b.unread > 0 {
            Style::default().fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Gray)
        };
        spans.push(Span::styled(label, style));
    }
    Line::from(spans)
}

fn status(app: &App) -> Line<'static> {
    let conn = match &app.conn {
        ConnState::Connected => Span::styled("connected", Style::default().fg(Color::Green)),
        ConnState::Reconnecting { attempt, .. } => {
            Span::styled(format!("reconnecting (attempt {attempt})"), Style::default().fg(Color::Yellow))
        }
        ConnState::Closed => Span::styled("closed", Style::default().fg(Color::Red)),
    };
    let lag = match app.lag {
        Some(d) => format!("lag {} ms", d.as_millis()),
        None => "lag -".into(),
    };
    let b = app.current();
    let scroll = if b.scroll > 0 {
        if b.loading { " │ loading older…".to_string() } else { format!(" │ scrolled up {}", b.scroll) }
    } else {
        String::new()
    };
    Line::from(vec![
        Span::raw(format!(" {} │ {} │ ", app.server, app.nick)),
        conn,
        Span::raw(format!(" │ {lag}{scroll}")),
    ])
}

/// Draws the whole screen and places the cursor in the input line.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let size = frame.area();
    let b = app.current();
    let a = layout(size.width, size.height, b.is_room);
    let bar = bar_style();

    frame.render_widget(Paragraph::new(tabs(app)).style(Style::default().bg(Color::Black)), a.tabs);
    // Conversation names are the server's (rooms) or other people's (nicks): shown safe.
    let name = safe_line(&b.name);
    let topic = if b.is_room {
        if b.topic.is_empty() { format!("{name} (no topic)") } else { format!("{name}: {}", b.topic) }
    } else {
        format!("private conversation with {name} (/close to close it)")
    };
    frame.render_widget(Paragraph::new(Line::from(Span::raw(topic))).style(bar), a.topic);

    draw_chat(frame, a.messages, &b.lines, b.scroll, &app.nick);

    if a.members.width > 0 {
        let mut lines = vec![Line::from(Span::styled(
            format!("│ members ({})", b.members.len()),
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        for m in b.members.iter().take(a.members.height.saturating_sub(1) as usize) {
            let w = (MEMBERS_WIDTH as usize).saturating_sub(2);
            let marked = format!("{}{}", b.mark(m), safe_line(m));
            let name: String = wrap(&marked, w, w).into_iter().next().unwrap_or_default();
            lines.push(Line::from(vec![
                Span::raw("│ "),
                Span::styled(name, Style::default().fg(nick_color(m))),
            ]));
        }
        while lines.len() < a.members.height as usize {
            lines.push(Line::from("│"));
        }
        frame.render_widget(Paragraph::new(lines), a.members);
    }

    frame.render_widget(Paragraph::new(status(app)).style(bar), a.status);

    draw_input(frame, a.input, &format!("[{name}] "), &app.input);
}
