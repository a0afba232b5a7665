//! UTF-8 checking of a text message that arrives in pieces (frames, reads): a character may
//! be split anywhere, so the few bytes of an unfinished one are carried to the next piece.

/// The state of one message's check.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Check {
    /// The start of a character the last piece ended inside.
    carry: [u8; 4],
    carried: u8,
}

impl Utf8Check {
    /// Checks the next piece; `Err` at the first byte that cannot be UTF-8.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) -> Result<(), ()> {
        if self.carried > 0 {
            let have = usize::from(self.carried);
            let width = char_width(self.carry[0]);
            let take = (width - have).min(piece.len());
            self.carry[have..have + take].copy_from_slice(&piece[..take]);
            piece = &piece[take..];
            if have + take < width {
                self.carried = (have + take) as u8;
                // The bytes so far must still be able to start this character.
                return match std::str::from_utf8(&self.carry[..have + take]) {
                    Err(e) if e.error_len().is_some() => Err(()),
                    _ => Ok(()),
                };
            }
            std::str::from_utf8(&self.carry[..width]).map_err(|_| ())?;
            self.carried = 0;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &piece[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carried = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// True when the message may end here: no character left unfinished.
    pub(crate) fn is_complete(&self) -> bool {
        self.carried == 0
    }
}

/// The length of the character a lead byte starts (one the standard check accepted as the
/// start of an unfinished character: 2 to 4).
fn char_width(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Check;
    use proptest::prelude::*;

    proptest! {
        /// Split anywhere, the answer is the standard library's on the whole.
        #[test]
        fn pieces_check_as_the_whole(bytes in proptest::collection::vec(any::<u8>(), 0..40), cuts in proptest::collection::vec(0usize..40, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut check = Utf8Check::default();
            let mut ok = true;
            let mut from = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                if check.feed(&bytes[from..cut]).is_err() { ok = false; break; }
                from = cut;
            }
            let ok = ok && check.is_complete();
            prop_assert_eq!(ok, std::str::from_utf8(&bytes).is_ok());
        }

        #[test]
        fn valid_text_split_anywhere_passes(text in "[a-zé€😀]{0,20}", cut in 0usize..80) {
            let bytes = text.as_bytes();
            let cut = cut.min(bytes.len());
            let mut check = Utf8Check::default();
            prop_assert!(check.feed(&bytes[..cut]).is_ok());
            prop_assert!(check.feed(&bytes[cut..]).is_ok());
            prop_assert!(check.is_complete());
        }
    }
}
