//! Showing text that someone else chose on one terminal line, so that it cannot act on the
//! reader's terminal or pass for something the server said.
//!
//! A terminal obeys what it is sent: ESC starts a sequence that clears the screen, moves the
//! cursor or (OSC 52) writes the clipboard, BEL rings, a line break starts a line that can
//! look like the server's own `*** ` notices, and a right-to-left override reverses whatever
//! follows on the line. Text mode, UDP, the help desk and the terminal client show other
//! people's text through [`SafeLine`] (or [`safe_line`]), which keeps the text readable and
//! makes each of those inert:
//!
//! - C0 control characters (but TAB) and DEL are shown as their pictures (`␛`, `␇`, `␀`,
//!   `␡`): an escape sequence reads as `␛[2J`, harmless and visible.
//! - C1 control characters (U+0080 to U+009F, which some terminals take as CSI or OSC) are
//!   shown as `�`.
//! - A line break (LF, CR, CRLF, NEL, U+2028, U+2029) is shown as [`LINE_BREAK`]: the text
//!   stays on one line, whatever it holds.
//! - Bidi embeddings, overrides and isolates (U+202A to U+202E, U+2066 to U+2069) are kept
//!   when they pair up and closed at the end of the text when they do not; a closer without
//!   its opener is left out. Right-to-left text can still be written, but its direction
//!   never reaches past the text into the nick, time or notice around it.
//!
//! Text without any of these is written unchanged, and borrowed when asked for a `str`.
//! The native JSON and IRC wires carry text as is: their clients show it themselves.

use std::borrow::Cow;
use std::fmt;

/// What a line break inside someone's text is shown as: the text stays one line.
pub const LINE_BREAK: &str = " ⏎ ";

/// Shown for a C1 control character, which has no picture of its own.
const C1_SHOWN: char = '\u{FFFD}';

/// How deep bidi embeddings and isolates nest before further openers are left out: far more
/// than any real text uses, and the stack fits in one `u64`.
const MAX_BIDI_DEPTH: u32 = 64;

/// `text` ready for a terminal line (see the module documentation), written without
/// allocating: `write!(out, "<{nick}> {}", SafeLine(&text))`.
#[derive(Debug, Clone, Copy)]
pub struct SafeLine<'a>(pub &'a str);

impl fmt::Display for SafeLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_safe(self.0, f)
    }
}

/// `text` ready for a terminal line, borrowed when it already is (most text).
pub fn safe_line(text: &str) -> Cow<'_, str> {
    if is_safe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    // Writing to a String cannot fail.
    let _ = write_safe(text, &mut out);
    Cow::Owned(out)
}

/// Whether `text` would be shown unchanged: no control character but TAB, no line break,
/// and only bidi controls that pair up.
pub fn is_safe(text: &str) -> bool {
    if plain(text) {
        return true;
    }
    let mut bidi = BidiStack::default();
    for c in text.chars() {
        match shown(c) {
            Shown::Same => {}
            Shown::Bidi(kind) => {
                if !bidi.accept(kind).emitted() {
                    return false;
                }
            }
            Shown::LineBreak | Shown::As(_) => return false,
        }
    }
    bidi.depth == 0
}

/// The quick test that most text passes: no byte that could begin a character this module
/// changes. C1 controls are encoded from 0xC2, line separators and bidi controls from 0xE2;
/// text with those bytes (accents, CJK, emoji...) gets the exact test.
fn plain(text: &str) -> bool {
    text.bytes().all(|b| (b >= 0x20 && b != 0x7F && b != 0xC2 && b != 0xE2) || b == b'\t')
}

/// What one character becomes.
enum Shown {
    /// Itself.
    Same,
    /// A line break.
    LineBreak,
    /// Another character.
    As(char),
    /// A bidi control, kept or left out by [`BidiStack`].
    Bidi(Bidi),
}

/// The bidi controls that open or close a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bidi {
    /// LRE, RLE, LRO, RLO: closed by PDF.
    OpenEmbedding,
    /// LRI, RLI, FSI: closed by PDI.
    OpenIsolate,
    /// PDF (U+202C).
    CloseEmbedding,
    /// PDI (U+2069).
    CloseIsolate,
}

const PDF: char = '\u{202C}';
const PDI: char = '\u{2069}';

fn shown(c: char) -> Shown {
    match c {
        '\t' => Shown::Same,
        '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => Shown::LineBreak,
        // The Control Pictures block has one for each C0 control, in order, then DEL's.
        '\0'..='\u{1f}' => Shown::As(char::from_u32(0x2400 + c as u32).unwrap_or(C1_SHOWN)),
        '\u{7f}' => Shown::As('\u{2421}'),
        '\u{80}'..='\u{9f}' => Shown::As(C1_SHOWN),
        '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{202E}' => Shown::Bidi(Bidi::OpenEmbedding),
        '\u{2066}'..='\u{2068}' => Shown::Bidi(Bidi::OpenIsolate),
        PDF => Shown::Bidi(Bidi::CloseEmbedding),
        PDI => Shown::Bidi(Bidi::CloseIsolate),
        _ => Shown::Same,
    }
}

/// The open bidi runs of a text, innermost last, as the Unicode bidi algorithm (UAX #9, X1 to
/// X8) counts them: a PDI closes its isolate and every embedding opened inside it; a PDF
/// closes only an embedding opened inside the innermost isolate; openers past
/// [`MAX_BIDI_DEPTH`] overflow, and so do their closers.
#[derive(Default)]
struct BidiStack {
    /// Bit `i` is set when run `i` (from the outermost) is an isolate.
    isolates: u64,
    depth: u32,
    overflow_isolates: u32,
    overflow_embeddings: u32,
}

/// What [`BidiStack::accept`] does with a bidi control.
enum BidiStep {
    /// Write it.
    Keep,
    /// Leave it out.
    Drop,
    /// Write a PDF for each of this many embeddings, then the PDI.
    CloseIsolate { embeddings: u32 },
}

impl BidiStep {
    fn emitted(&self) -> bool {
        matches!(self, BidiStep::Keep | BidiStep::CloseIsolate { embeddings: 0 })
    }
}

impl BidiStack {
    fn top_is_isolate(&self) -> bool {
        self.depth > 0 && self.isolates & (1 << (self.depth - 1)) != 0
    }

    fn open_isolates(&self) -> bool {
        self.depth > 0 && self.isolates & (u64::MAX >> (64 - self.depth)) != 0
    }

    fn accept(&mut self, kind: Bidi) -> BidiStep {
        match kind {
            Bidi::OpenEmbedding | Bidi::OpenIsolate => {
                let isolate = kind == Bidi::OpenIsolate;
                if self.depth < MAX_BIDI_DEPTH && self.overflow_isolates == 0 && self.overflow_embeddings == 0
                {
                    if isolate {
                        self.isolates |= 1 << self.depth;
                    } else {
                        self.isolates &= !(1 << self.depth);
                    }
                    self.depth += 1;
                    BidiStep::Keep
                } else {
                    if isolate {
                        self.overflow_isolates += 1;
                    } else if self.overflow_isolates == 0 {
                        self.overflow_embeddings += 1;
                    }
                    BidiStep::Drop
                }
            }
            Bidi::CloseIsolate => {
                if self.overflow_isolates > 0 {
                    self.overflow_isolates -= 1;
                    return BidiStep::Drop;
                }
                if !self.open_isolates() {
                    return BidiStep::Drop;
                }
                self.overflow_embeddings = 0;
                let mut embeddings = 0;
                while !self.top_is_isolate() {
                    self.depth -= 1;
                    embeddings += 1;
                }
                self.depth -= 1;
                BidiStep::CloseIsolate { embeddings }
            }
            Bidi::CloseEmbedding => {
                if self.overflow_isolates > 0 {
                    return BidiStep::Drop;
                }
                if self.overflow_embeddings > 0 {
                    self.overflow_embeddings -= 1;
                    return BidiStep::Drop;
                }
                if self.depth == 0 || self.top_is_isolate() {
                    return BidiStep::Drop;
                }
                self.depth -= 1;
                BidiStep::Keep
            }
        }
    }

    /// Closes every run still open, innermost first.
    fn close_all(&mut self, out: &mut impl fmt::Write) -> fmt::Result {
        while self.depth > 0 {
            out.write_char(if self.top_is_isolate() { PDI } else { PDF })?;
            self.depth -= 1;
        }
        Ok(())
    }
}

/// Writes `text` as [`SafeLine`] shows it: unchanged runs as slices, each changed character
/// in its place.
fn write_safe(text: &str, out: &mut impl fmt::Write) -> fmt::Result {
    if plain(text) {
        return out.write_str(text);
    }
    let mut bidi = BidiStack::default();
    // Start of the run of unchanged text not written yet.
    let mut run = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let shown = shown(c);
        if matches!(shown, Shown::Same) {
            continue;
        }
        out.write_str(&text[run..i])?;
        run = i + c.len_utf8();
        match shown {
            Shown::Same => {}
            Shown::LineBreak => {
                // CRLF is one break.
                if c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n') {
                    chars.next();
                    run += 1;
                }
                out.write_str(LINE_BREAK)?;
            }
            Shown::As(picture) => out.write_char(picture)?,
            Shown::Bidi(kind) => match bidi.accept(kind) {
                BidiStep::Keep => out.write_char(c)?,
                BidiStep::Drop => {}
                BidiStep::CloseIsolate { embeddings } => {
                    for _ in 0..embeddings {
                        out.write_char(PDF)?;
                    }
                    out.write_char(PDI)?;
                }
            },
        }
    }
    out.write_str(&text[run..])?;
    bidi.close_all(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        safe_line(text).into_owned()
    }

    #[test]
    fn escape_sequences_and_bells_are_shown_not_obeyed() {
        assert_eq!(shown("\u{1b}[2Jgone"), "␛[2Jgone");
        assert_eq!(shown("\u{1b}]52;c;aGk=\u{7}"), "␛]52;c;aGk=␇");
        assert_eq!(shown("a\0b\u{7f}"), "a␀b␡");
        // C1 CSI and OSC, which some terminals obey like ESC [ and ESC ].
        assert_eq!(shown("\u{9b}2J\u{9d}0;x"), "�2J�0;x");
        assert_eq!(shown("tab\there"), "tab\there");
    }

    #[test]
    fn line_breaks_keep_the_text_on_one_line() {
        assert_eq!(shown("hi\n*** fake notice"), "hi ⏎ *** fake notice");
        assert_eq!(shown("a\r\nb\rc\u{2028}d\u{85}e"), "a ⏎ b ⏎ c ⏎ d ⏎ e");
        assert_eq!(shown("\r\n"), " ⏎ ");
    }

    #[test]
    fn bidi_runs_are_closed_where_the_text_ends() {
        // An override left open is closed at the end.
        assert_eq!(shown("abc\u{202E}def"), "abc\u{202E}def\u{202C}");
        assert_eq!(shown("\u{2067}x"), "\u{2067}x\u{2069}");
        // Closers without an opener are left out; pairs are kept.
        assert_eq!(shown("\u{202C}\u{2069}x"), "x");
        assert!(is_safe("\u{202B}x\u{202C} \u{2066}y\u{2069}"));
        // A PDI closes the embeddings opened inside its isolate; a PDF cannot close an isolate.
        assert_eq!(shown("\u{2067}\u{202E}x\u{2069}"), "\u{2067}\u{202E}x\u{202C}\u{2069}");
        assert_eq!(shown("\u{2067}x\u{202C}"), "\u{2067}x\u{2069}");
        // Left-to-right and right-to-left marks are not runs: kept as they are.
        assert!(is_safe("\u{200F}שלום\u{200E}"));
    }

    #[test]
    fn deep_nesting_overflows_like_the_bidi_algorithm() {
        let deep = "\u{2066}".repeat(200) + "x" + &"\u{2069}".repeat(200);
        let safe = shown(&deep);
        assert_eq!(safe, "\u{2066}".repeat(64) + "x" + &"\u{2069}".repeat(64));
        assert!(is_safe(&safe));
    }

    #[test]
    fn safe_text_is_borrowed() {
        for text in ["plain", "héllo 漢字 🦀", "\u{202B}x\u{202C}", ""] {
            assert!(matches!(safe_line(text), Cow::Borrowed(_)), "{text:?}");
            assert_eq!(SafeLine(text).to_string(), text);
        }
    }
}
