//! Datagrams in and out: a received datagram's lines, and a rendering cut into datagrams that
//! each stay whole (never a character cut in two).

/// Largest datagram natter sends: fits an IPv6 minimum-MTU path with room for headers.
pub const MAX_DATAGRAM: usize = 1200;

/// Lines of a datagram: a datagram is a message; embedded newlines separate several.
pub(crate) fn lines(datagram: &[u8]) -> impl Iterator<Item = &[u8]> {
    datagram.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

/// Splits text into pieces of at most `max` bytes, preferring newline boundaries and never
/// cutting a UTF-8 character.
pub fn split_datagrams(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > max {
        let window = &rest[..max];
        let cut = match window.iter().rposition(|&b| b == b'\n') {
            Some(i) if i > 0 => i + 1,
            _ => {
                // Back up to the start of a UTF-8 character.
                let mut i = max;
                while i > 0 && (rest[i] & 0xC0) == 0x80 {
                    i -= 1;
                }
                if i == 0 { max } else { i }
            }
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// [`split_datagrams`] for GB18030 bytes (a member that reads GBK): newline boundaries first,
/// else the last GB18030 character boundary, so that every datagram decodes on its own.
pub fn split_datagrams_gb18030(bytes: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() > max {
        // A newline byte is always a newline in GB18030: trail bytes are 0x30 and up.
        let cut = match rest[..max].iter().rposition(|&b| b == b'\n') {
            Some(i) if i > 0 => i + 1,
            _ => match natter_proto::decode::gb18030_cut(rest, max) {
                0 => max,
                cut => cut,
            },
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_splitting_keeps_every_character_whole() {
        let text = "a你好世界😀".repeat(200);
        let bytes = natter_proto::decode::encode_gb18030(&text);
        let parts = split_datagrams_gb18030(&bytes, 101);
        for p in &parts {
            assert!(p.len() <= 101);
            assert!(!encoding_rs::GB18030.decode_without_bom_handling(p).1, "a character was cut");
        }
        assert_eq!(parts.concat(), &bytes[..]);
        assert_eq!(
            split_datagrams_gb18030(b"aaaa\nbbbb\ncccc\n", 10),
            vec![&b"aaaa\nbbbb\n"[..], &b"cccc\n"[..]]
        );
    }

    #[test]
    fn splitting_keeps_every_byte_and_every_character_whole() {
        let text = "你好世界".repeat(200);
        let parts = split_datagrams(text.as_bytes(), 100);
        assert!(parts.iter().all(|p| p.len() <= 100 && std::str::from_utf8(p).is_ok()));
        assert_eq!(parts.concat(), text.as_bytes());
        let lines = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(split_datagrams(lines, 10), vec![&b"aaaa\nbbbb\n"[..], &b"cccc\n"[..]]);
    }

    #[test]
    fn datagram_lines() {
        let got: Vec<&[u8]> = lines(b"hi\r\nthere\n\n").collect();
        assert_eq!(got, vec![&b"hi"[..], &b"there"[..]]);
    }
}
