//! The input line: editing, history (Up/Down) and Tab completion. Pure, so every key's effect
//! is unit-tested without a terminal. Public because `natter direct` uses the same editor and
//! the same editing keys ([`InputLine::edit_key`]) as `natter connect`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use unicode_width::UnicodeWidthChar;

/// Commands offered by Tab completion after `/`.
pub const COMMANDS: &[&str] = &[
    "/ephemeral",
    "/help",
    "/history",
    "/i",
    "/ignore",
    "/join",
    "/ls",
    "/me",
    "/msg",
    "/nick",
    "/part",
    "/quit",
    "/rooms",
    "/topic",
    "/unignore",
    "/who",
];

/// The line as it may be shown, when it is a command carrying a password (see
/// [`natter_proto::command::SlashCommand::masked`]).
pub(super) fn masked(line: &str) -> Option<String> {
    match natter_proto::command::parse_input(line) {
        Ok(natter_proto::command::Input::SlashCommand(cmd)) => cmd.masked(),
        _ => None,
    }
}

/// How many typed lines the history keeps.
const HISTORY_MAX: usize = 500;

#[derive(Debug, Clone, Default)]
struct Completion {
    /// Char index where the completed word starts.
    start: usize,
    /// What was inserted last (match plus suffix), to be replaced by the next match.
    inserted_len: usize,
    matches: Vec<String>,
    index: usize,
}

/// The line being typed, with its cursor, history and completion state.
#[derive(Debug, Clone, Default)]
pub struct InputLine {
    chars: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history; `None` when editing a fresh line.
    browsing: Option<usize>,
    /// The fresh line saved while browsing history.
    draft: String,
    completion: Option<Completion>,
}

impl InputLine {
    /// The text typed so far.
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// Cursor position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Display width of the text before the cursor, for placing the terminal cursor.
    pub fn cursor_width(&self) -> usize {
        self.chars[..self.cursor].iter().map(|c| c.width().unwrap_or(0)).sum()
    }

    /// Replaces the text and puts the cursor at its end.
    pub fn set(&mut self, text: &str) {
        self.chars = text.chars().collect();
        self.cursor = self.chars.len();
        self.completion = None;
    }

    /// Takes the line for sending: clears it and records it in the history, unless it holds a
    /// password (`/login`, `/register`, `/passwd`): those are never kept.
    pub fn take(&mut self) -> String {
        let text = self.text();
        self.set("");
        self.browsing = None;
        if !text.trim().is_empty() && self.history.last() != Some(&text) && masked(&text).is_none() {
            self.history.push(text.clone());
            if self.history.len() > HISTORY_MAX {
                self.history.remove(0);
            }
        }
        text
    }

    fn edited(&mut self) {
        self.completion = None;
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
        self.edited();
    }

    /// Inserts pasted text (newlines become spaces: one line is one message).
    pub fn insert_str(&mut self, s: &str) {
        for c in s.chars() {
            self.insert(if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c });
        }
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
        self.edited();
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
        self.edited();
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
        self.edited();
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
        self.edited();
    }

    /// Moves the cursor to the start of the line.
    pub fn home(&mut self) {
        self.cursor = 0;
        self.edited();
    }

    /// Moves the cursor to the end of the line.
    pub fn end(&mut self) {
        self.cursor = self.chars.len();
        self.edited();
    }

    /// Deletes from the start of the line to the cursor (Ctrl-U).
    pub fn kill_to_start(&mut self) {
        self.chars.drain(..self.cursor);
        self.cursor = 0;
        self.edited();
    }

    /// Deletes from the cursor to the end of the line (Ctrl-K).
    pub fn kill_to_end(&mut self) {
        self.chars.truncate(self.cursor);
        self.edited();
    }

    /// Deletes the word before the cursor (Ctrl-W).
    pub fn delete_word(&mut self) {
        let mut i = self.cursor;
        while i > 0 && self.chars[i - 1] == ' ' {
            i -= 1;
        }
        while i > 0 && self.chars[i - 1] != ' ' {
            i -= 1;
        }
        self.chars.drain(i..self.cursor);
        self.cursor = i;
        self.edited();
    }

    /// Shows the previous line of the history (Up).
    pub fn history_up(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let pos = match self.browsing {
            None => {
                self.draft = self.text();
                self.history.len() - 1
            }
            Some(0) => 0,
            Some(p) => p - 1,
        };
        self.browsing = Some(pos);
        let text = self.history[pos].clone();
        self.set(&text);
    }

    /// Shows the next line of the history, then the draft (Down).
    pub fn history_down(&mut self) {
        let Some(pos) = self.browsing else { return };
        if pos + 1 < self.history.len() {
            self.browsing = Some(pos + 1);
            let text = self.history[pos + 1].clone();
            self.set(&text);
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.set(&draft);
        }
    }

    /// Applies one of the editing keys shared by every natter input line: characters,
    /// Backspace/Delete, Left/Right, Home/End, Ctrl-A/E/U/K/W, Up/Down (history) and Ctrl-L
    /// (nothing). Returns false for any other key, which the caller handles (Enter, Tab,
    /// paging, quitting...). One function, so both front ends edit exactly alike.
    pub fn edit_key(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('a') if ctrl => self.home(),
            KeyCode::Char('e') if ctrl => self.end(),
            KeyCode::Char('u') if ctrl => self.kill_to_start(),
            KeyCode::Char('k') if ctrl => self.kill_to_end(),
            KeyCode::Char('w') if ctrl => self.delete_word(),
            KeyCode::Char('l') if ctrl => {}
            KeyCode::Char(c) if !ctrl && !alt => self.insert(c),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.left(),
            KeyCode::Right => self.right(),
            KeyCode::Home => self.home(),
            KeyCode::End => self.end(),
            KeyCode::Up => self.history_up(),
            KeyCode::Down => self.history_down(),
            _ => return false,
        }
        true
    }

    /// Completes the word before the cursor (Tab); pressing Tab again cycles through the
    /// matches. Commands after `/`, rooms after `#`, otherwise nicks (`@nick` too); a nick at
    /// the start of the line gets `: ` after it, other completions a space.
    pub fn complete(&mut self, nicks: &[String], rooms: &[String]) {
        self.complete_from(COMMANDS, nicks, rooms);
    }

    /// [`InputLine::complete`] with another command list, for front ends whose commands differ
    /// from a chat server's (`natter direct` has only `/help` and `/quit`).
    pub fn complete_from(&mut self, commands: &[&str], nicks: &[String], rooms: &[String]) {
        if let Some(c) = &mut self.completion {
            if c.matches.len() < 2 {
                return;
            }
            c.index = (c.index + 1) % c.matches.len();
            let (start, old_len, replacement) = (c.start, c.inserted_len, c.matches[c.index].clone());
            self.replace(start, old_len, &replacement);
            if let Some(c) = &mut self.completion {
                c.inserted_len = replacement.chars().count();
            }
            return;
        }
        let mut start = self.cursor;
        while start > 0 && self.chars[start - 1] != ' ' {
            start -= 1;
        }
        let word: String = self.chars[start..self.cursor].iter().collect();
        if word.is_empty() {
            return;
        }
        let lower = word.to_lowercase();
        let suffix = |w: String, at_start: bool| if at_start { format!("{w}: ") } else { format!("{w} ") };
        let matches: Vec<String> = if word.starts_with('/') && start == 0 {
            commands.iter().filter(|c| c.starts_with(&lower)).map(|c| format!("{c} ")).collect()
        } else if word.starts_with('#') {
            rooms.iter().filter(|r| r.to_lowercase().starts_with(&lower)).map(|r| format!("{r} ")).collect()
        } else if let Some(rest) = lower.strip_prefix('@') {
            nicks.iter().filter(|n| n.to_lowercase().starts_with(rest)).map(|n| format!("@{n} ")).collect()
        } else {
            nicks
                .iter()
                .filter(|n| n.to_lowercase().starts_with(&lower))
                .map(|n| suffix(n.clone(), start == 0))
                .collect()
        };
        let Some(first) = matches.first().cloned() else { return };
        let old_len = self.cursor - start;
        self.replace(start, old_len, &first);
        self.completion = Some(Completion { start, inserted_len: first.chars().count(), matches, index: 0 });
    }

    fn replace(&mut self, start: usize, len: usize, with: &str) {
        let end = (start + len).min(self.chars.len());
        self.chars.splice(start..end, with.chars());
        self.cursor = start + with.chars().count();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> InputLine {
        let mut i = InputLine::default();
        i.insert_str(s);
        i
    }

    #[test]
    fn editing_keys() {
        let mut i = typed("hello world");
        i.delete_word();
        assert_eq!(i.text(), "hello ");
        i.home();
        i.insert('>');
        assert_eq!((i.text().as_str(), i.cursor()), (">hello ", 1));
        i.end();
        i.backspace();
        i.left();
        i.delete();
        assert_eq!(i.text(), ">hell");
        i.home();
        i.right();
        i.kill_to_end();
        assert_eq!(i.text(), ">");
        i.insert_str("a\nb");
        assert_eq!(i.text(), ">a b");
        i.kill_to_start();
        assert_eq!(i.text(), "");
    }

    #[test]
    fn edit_keys_are_shared_and_others_left_to_the_caller() {
        let mut i = InputLine::default();
        let k = |c, m| KeyEvent::new(c, m);
        for c in "hi there".chars() {
            assert!(i.edit_key(k(KeyCode::Char(c), KeyModifiers::NONE)));
        }
        assert!(i.edit_key(k(KeyCode::Char('w'), KeyModifiers::CONTROL)));
        assert_eq!(i.text(), "hi ");
        assert!(i.edit_key(k(KeyCode::Char('a'), KeyModifiers::CONTROL)));
        assert_eq!(i.cursor(), 0);
        for other in [KeyCode::Enter, KeyCode::Tab, KeyCode::PageUp, KeyCode::Esc] {
            assert!(!i.edit_key(k(other, KeyModifiers::NONE)), "{other:?}");
        }
        assert!(!i.edit_key(k(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!i.edit_key(k(KeyCode::Char('1'), KeyModifiers::ALT)));
        assert_eq!(i.text(), "hi ");
        let mut i = typed("/q");
        i.complete_from(&["/help", "/quit"], &[], &[]);
        assert_eq!(i.text(), "/quit ");
    }

    #[test]
    fn wide_characters_move_the_cursor_two_columns() {
        let i = typed("a你好😀");
        assert_eq!(i.cursor_width(), 1 + 2 + 2 + 2);
    }

    #[test]
    fn history_browses_and_restores_the_draft() {
        let mut i = InputLine::default();
        for l in ["one", "two"] {
            i.insert_str(l);
            i.take();
        }
        i.insert_str("draft");
        i.history_up();
        assert_eq!(i.text(), "two");
        i.history_up();
        i.history_up();
        assert_eq!(i.text(), "one");
        i.history_down();
        assert_eq!(i.text(), "two");
        i.history_down();
        assert_eq!(i.text(), "draft");
    }

    #[test]
    fn tab_completes_nicks_commands_and_rooms_and_cycles() {
        let nicks = vec!["alice".to_string(), "albert".to_string(), "bob".to_string()];
        let rooms = vec!["#lobby".to_string(), "#rust".to_string()];
        let mut i = typed("al");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "alice: ");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "albert: ");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "alice: ");
        let mut i = typed("hi b");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "hi bob ");
        let mut i = typed("/jo");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "/join ");
        i.insert_str("#ru");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "/join #rust ");
        let mut i = typed("@bo");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "@bob ");
        let mut i = typed("zz");
        i.complete(&nicks, &rooms);
        assert_eq!(i.text(), "zz");
    }
}
