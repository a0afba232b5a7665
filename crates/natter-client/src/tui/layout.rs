//! Screen geometry, and how chat lines break into rows: what both the state (which pages and
//! scrolls by rows) and the view (which draws those rows) need, so that neither depends on the
//! other for it. Wrapping goes by display width (CJK and emoji take two columns).
//!
//! The chat line types live here because a line's rows are computed from them; `natter
//! direct` builds the same lines and draws them with the same code.

use crate::format::hhmm;
use natter_proto::names::fold;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line as Row, Span};
use unicode_width::UnicodeWidthChar;

/// What one line of a conversation shows.
#[derive(Debug, Clone, PartialEq)]
pub enum LineKind {
    /// A chat message.
    Msg {
        /// Sender.
        from: String,
        /// Text (sanitized).
        text: String,
        /// `/me`.
        action: bool,
        /// Mentions our nick.
        mention: bool,
    },
    /// Our message, typed but not acknowledged yet.
    Pending {
        /// Text.
        text: String,
        /// `/me`.
        action: bool,
        /// Client id, to match the acknowledgement or refusal.
        cid: String,
    },
    /// Something that happened (joins, topics, connection state).
    Info(String),
    /// Something that went wrong.
    Error(String),
}

/// One line of a conversation, as the state keeps it and the view draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    /// Timestamp, ms since the epoch.
    pub ts: u64,
    /// Server message id, for history paging and order.
    pub mid: Option<u64>,
    /// What it shows.
    pub kind: LineKind,
}

/// Width of the member list, border included: most nicks fit, and a 60-column screen keeps 42
/// columns for messages.
pub const MEMBERS_WIDTH: u16 = 18;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The conversation list.
    pub tabs: Rect,
    /// The room topic.
    pub topic: Rect,
    /// The messages.
    pub messages: Rect,
    /// The member list (zero-sized when hidden).
    pub members: Rect,
    /// Server, nick, connection, lag.
    pub status: Rect,
    /// What is being typed.
    pub input: Rect,
}

/// Splits a `w`×`h` screen; the member list shows for rooms on screens at least 60 wide. One
/// function, so that the view draws and the state pages with the same areas.
pub fn layout(w: u16, h: u16, members: bool) -> Areas {
    let row = |y: u16| Rect::new(0, y.min(h.saturating_sub(1)), w, u16::from(y < h));
    let body_h = h.saturating_sub(4);
    let members_w = if members && w >= 60 { MEMBERS_WIDTH } else { 0 };
    Areas {
        tabs: row(0),
        topic: row(1),
        messages: Rect::new(0, 2.min(h), w - members_w, body_h),
        members: Rect::new(w - members_w, 2.min(h), members_w, body_h),
        status: row(h.saturating_sub(2)),
        input: row(h.saturating_sub(1)),
    }
}

/// The message pane of a `size` (columns, rows) screen showing a room (`room`: with its
/// member list) or a private conversation.
pub fn message_area(size: (u16, u16), room: bool) -> Rect {
    layout(size.0, size.1, room).messages
}

const NICK_COLORS: [Color; 10] = [
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::LightRed,
    Color::LightGreen,
    Color::LightBlue,
    Color::LightMagenta,
];

/// A stable color per nick, so people are recognisable at a glance.
pub fn nick_color(nick: &str) -> Color {
    let h = fold(nick).bytes().fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    NICK_COLORS[h as usize % NICK_COLORS.len()]
}

/// Display width of `s` in terminal columns (wide characters count two).
pub fn text_width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Splits `text` into rows: the first at most `first` columns wide, the others `rest` wide,
/// breaking after spaces when a word fits on the next row, inside words otherwise. Never cuts
/// a wide character in two.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let (first, rest) = (first.max(1), rest.max(2));
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut row_w = 0;
    let mut limit = first;
    let mut last_space: Option<(usize, usize)> = None; // (byte index after the space, width up to it)
    for c in text.chars() {
        let cw = c.width().unwrap_or(0);
        if row_w + cw > limit {
            match last_space {
                Some((idx, w)) if idx < row.len() && w > 0 => {
                    let tail = row.split_off(idx);
                    rows.push(std::mem::take(&mut row));
                    row_w -= w;
                    row = tail;
                }
                _ => {
                    rows.push(std::mem::take(&mut row));
                    row_w = 0;
                }
            }
            limit = rest;
            last_space = None;
            while row_w + cw > limit && !row.is_empty() {
                // The carried-over word is longer than a row: cut it.
                let mut cut = String::new();
                let mut w = 0;
                for ch in row.chars() {
                    let chw = ch.width().unwrap_or(0);
                    if w + chw > limit {
                        break;
                    }
                    cut.push(ch);
                    w += chw;
                }
                row = row[cut.len()..].to_string();
                row_w -= w;
                rows.push(cut);
            }
        }
        row.push(c);
        row_w += cw;
        if c == ' ' {
            last_space = Some((row.len(), row_w));
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

/// The prefix and body of one chat line, as styled spans, before wrapping; `own_nick` marks
/// our own messages (underlined) and names pending ones.
fn line_parts(own_nick: &str, line: &ChatLine) -> (Vec<Span<'static>>, String, Style) {
    let time = Span::styled(format!("{} ", hhmm(line.ts)), Style::default().fg(Color::DarkGray));
    match &line.kind {
        LineKind::Msg { from, text, action, mention } => {
            let own = fold(from) == fold(own_nick);
            let mut nick_style = Style::default().fg(nick_color(from)).add_modifier(Modifier::BOLD);
            if own {
                nick_style = nick_style.add_modifier(Modifier::UNDERLINED);
            }
            let body_style = if *mention { Style::default().fg(Color::Yellow) } else { Style::default() };
            if *action {
                (
                    vec![
                        time,
                        Span::styled("* ", body_style),
                        Span::styled(from.clone(), nick_style),
                        Span::raw(" "),
                    ],
                    text.clone(),
                    body_style.add_modifier(Modifier::ITALIC),
                )
            } else {
                (
                    vec![time, Span::raw("<"), Span::styled(from.clone(), nick_style), Span::raw("> ")],
                    text.clone(),
                    body_style,
                )
            }
        }
        LineKind::Pending { text, action, .. } => {
            let dim = Style::default().fg(Color::DarkGray);
            let who = if *action { format!("* {own_nick} ") } else { format!("<{own_nick}> ") };
            (vec![time, Span::styled(format!("… {who}"), dim)], text.clone(), dim)
        }
        LineKind::Info(text) => (
            vec![time, Span::styled("-- ", Style::default().fg(Color::DarkGray))],
            text.clone(),
            Style::default().fg(Color::Cyan),
        ),
        LineKind::Error(text) => (
            vec![time, Span::styled("!! ", Style::default().fg(Color::Red))],
            text.clone(),
            Style::default().fg(Color::LightRed),
        ),
    }
}

/// One chat line as the rows it occupies in a pane `width` wide; continuation rows are
/// indented under the text when the prefix is narrow enough. `own_nick` is whose messages
/// are ours.
pub fn render_chat_line(line: &ChatLine, own_nick: &str, width: usize) -> Vec<Row<'static>> {
    let (prefix, body, style) = line_parts(own_nick, line);
    let prefix_w: usize = prefix.iter().map(|s| text_width(&s.content)).sum();
    let (first_w, indent) =
        if prefix_w + 8 <= width { (width - prefix_w, prefix_w.min(width / 2)) } else { (width, 0) };
    let rows = if prefix_w + 8 <= width {
        wrap(&body, first_w, width - indent)
    } else {
        // Very narrow: the prefix takes its own row.
        let mut r = vec![String::new()];
        r.extend(wrap(&body, width, width));
        r
    };
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            if i == 0 {
                let mut spans = prefix.clone();
                spans.push(Span::styled(r, style));
                Row::from(spans)
            } else {
                Row::from(vec![Span::raw(" ".repeat(indent)), Span::styled(r, style)])
            }
        })
        .collect()
}

/// How many rows `lines` take in a pane `width` wide: the bound for scrolling, counted by the
/// same function that draws them.
pub fn chat_rows(lines: &[ChatLine], own_nick: &str, width: usize) -> usize {
    lines.iter().map(|l| render_chat_line(l, own_nick, width).len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_respects_widths() {
        assert_eq!(wrap("hello world", 8, 8), ["hello ", "world"]);
        assert_eq!(wrap("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4, 4), [""]);
        // Wide characters are two columns and never split.
        let rows = wrap("你好世界你好", 5, 5);
        assert_eq!(rows, ["你好", "世界", "你好"]);
        for r in wrap("a😀b😀c😀d😀 e😀f", 5, 4) {
            assert!(text_width(&r) <= 5, "{r}");
        }
        assert_eq!(wrap("aa bbbbbbbbbb", 5, 5), ["aa ", "bbbbb", "bbbbb"]);
    }

    #[test]
    fn wrap_never_overflows_nor_loses_text() {
        let alphabet = ['a', ' ', '你', '😀', 'é', '\u{301}', 'b', ' '];
        let mut seed = 12345u64;
        for _ in 0..2000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (seed >> 33) as usize % 40;
            let text: String =
                (0..len).map(|i| alphabet[((seed >> (i % 50)) as usize + i) % alphabet.len()]).collect();
            let (first, rest) = (1 + (seed >> 20) as usize % 12, 2 + (seed >> 28) as usize % 12);
            let rows = wrap(&text, first, rest);
            assert_eq!(rows.concat(), text);
            for (i, r) in rows.iter().enumerate() {
                let limit = if i == 0 { first } else { rest };
                assert!(text_width(r) <= limit.max(1), "{text:?} {first} {rest}: {rows:?}");
            }
        }
    }

    #[test]
    fn layout_fits_any_size() {
        for (w, h) in [(80, 24), (20, 5), (1, 1), (0, 0), (200, 60)] {
            let a = layout(w, h, true);
            assert!(a.messages.right() <= w && a.members.right() <= w.max(a.members.right()));
            assert!(a.input.y < h.max(1));
        }
        assert_eq!(layout(80, 24, true).members.width, MEMBERS_WIDTH);
        assert_eq!(layout(50, 24, true).members.width, 0);
    }

    #[test]
    fn nick_colors_are_stable_and_case_blind() {
        assert_eq!(nick_color("Ann"), nick_color("ann"));
    }
}
