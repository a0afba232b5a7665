//! Wire formats of natter, kept free of I/O so that every parser can be unit-tested,
//! property-tested and fuzzed on plain byte slices.
//!
//! - [`native`]: the newline-delimited JSON frames spoken by natter's own clients.
//! - [`command`]: the slash commands people type (text mode, the terminal client, UDP).
//! - [`line`]: splitting a byte stream into bounded lines, whatever the read boundaries.
//! - [`decode`]: turning peer bytes into text (UTF-8, else GB18030, else lossy).
//! - [`irc`]: IRC message lines (tags, prefix, command, parameters).
//! - [`names`]: the rules for nicknames and room names, shared by server and clients.
//! - [`text`]: cutting text to byte limits.
//! - [`display`]: showing someone else's text on one terminal line, inert.

pub mod command;
pub mod decode;
pub mod display;
pub mod fingerprint;
pub mod irc;
pub mod line;
pub mod names;
pub mod native;
pub mod sasl;
pub mod text;

/// Version of the native protocol spoken by this build; sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
