//! One-time codes: `7-orbit-lantern`, a number and two words.
//!
//! The code is the password of the PAKE (see `pake`). A PAKE does not let an eavesdropper
//! test guesses offline, and the listener accepts a single attempt, so an attacker gets one
//! online guess out of 999 × 256 × 256 (about 2^26): short enough to read over the phone,
//! strong enough for one attempt.

use std::fmt;

use crate::words::{WORDS, index_of};

/// Largest number part of a code (the smallest is 1).
pub const MAX_NUMBER: u16 = 999;

/// A parsed, validated one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    number: u16,
    words: [u8; 2],
}

/// Why a typed code was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    /// The code does not have the `NUMBER-WORD-WORD` shape.
    #[error("a code looks like 7-orbit-lantern (a number and two words); check what you typed")]
    Shape,
    /// The number part is not a number between 1 and 999.
    #[error("the number at the start of the code must be between 1 and {MAX_NUMBER}")]
    Number,
    /// A word is not in natter's word list (probably a typo).
    #[error("'{0}' is not one of natter's code words; check the spelling with the other side")]
    Word(String),
    /// The operating system random source failed.
    #[error("could not get random bytes from the operating system: {0}")]
    Random(String),
}

impl Code {
    /// Builds a code from its parts; `number` must be 1..=999.
    pub fn from_parts(number: u16, words: [u8; 2]) -> Result<Self, CodeError> {
        if !(1..=MAX_NUMBER).contains(&number) {
            return Err(CodeError::Number);
        }
        Ok(Self { number, words })
    }

    /// Draws a fresh code from the operating system's secure random source.
    pub fn generate() -> Result<Self, CodeError> {
        let mut bytes = [0u8; 4];
        loop {
            getrandom::fill(&mut bytes).map_err(|e| CodeError::Random(e.to_string()))?;
            // Rejection sampling keeps the number uniform: accept only below a multiple of 999.
            let raw = u16::from_be_bytes([bytes[0], bytes[1]]);
            if raw >= MAX_NUMBER * 65 {
                continue;
            }
            return Self::from_parts(raw % MAX_NUMBER + 1, [bytes[2], bytes[3]]);
        }
    }

    /// Parses a typed code, tolerating case, surrounding spaces and spaces instead of dashes.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let parts: Vec<&str> = text.trim().split(['-', ' ']).filter(|p| !p.is_empty()).collect();
        let [number, first, second] = parts[..] else {
            return Err(CodeError::Shape);
        };
        if number.len() > 3 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::Number);
        }
        let number: u16 = number.parse().map_err(|_| CodeError::Number)?;
        let word = |w: &str| index_of(w).ok_or_else(|| CodeError::Word(w.to_string()));
        Self::from_parts(number, [word(first)?, word(second)?])
    }

    /// The canonical bytes fed to the PAKE, identical on both sides whatever was typed.
    pub fn password(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b] = self.words;
        write!(f, "{}-{}-{}", self.number, WORDS[a as usize], WORDS[b as usize])
    }
}

/// Never print the code in debug output by accident (it is a password).
impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_sloppy_forms() {
        let c = Code::parse("7-orbit-lantern").unwrap();
        assert_eq!(c.to_string(), "7-orbit-lantern");
        assert_eq!(Code::parse("  7 Orbit LANTERN ").unwrap(), c);
        assert_eq!(Code::parse("7--orbit-lantern").unwrap(), c);
        assert_eq!(c.password(), b"7-orbit-lantern");
    }

    #[test]
    fn rejects_bad_codes_with_reasons() {
        assert_eq!(Code::parse(""), Err(CodeError::Shape));
        assert_eq!(Code::parse("7-orbit"), Err(CodeError::Shape));
        assert_eq!(Code::parse("7-orbit-lantern-x"), Err(CodeError::Shape));
        assert_eq!(Code::parse("0-orbit-lantern"), Err(CodeError::Number));
        assert_eq!(Code::parse("1000-orbit-lantern"), Err(CodeError::Number));
        assert_eq!(Code::parse("x-orbit-lantern"), Err(CodeError::Number));
        assert_eq!(Code::parse("+7-orbit-lantern"), Err(CodeError::Number));
        assert_eq!(Code::parse("7-orbitt-lantern"), Err(CodeError::Word("orbitt".into())));
    }

    #[test]
    fn generated_codes_round_trip_and_vary() {
        let codes: Vec<Code> = (0..20).map(|_| Code::generate().unwrap()).collect();
        for c in &codes {
            assert_eq!(&Code::parse(&c.to_string()).unwrap(), c);
        }
        assert!(codes.iter().any(|c| c != &codes[0]));
        assert_eq!(format!("{:?}", codes[0]), "Code(<redacted>)");
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Code::parse(&s);
        }

        #[test]
        fn every_valid_code_round_trips(n in 1u16..=999, a: u8, b: u8) {
            let c = Code::from_parts(n, [a, b]).unwrap();
            proptest::prop_assert_eq!(Code::parse(&c.to_string()).unwrap(), c);
        }
    }
}
