//! Certificate fingerprints as people compare them: SHA-256 of the certificate's DER bytes in
//! upper-case hex pairs joined by colons, exactly as `openssl x509 -fingerprint -sha256`
//! prints them, so that `natter cert`, the server's log, `natter connect`'s known-hosts file
//! and openssl all show the same string.

use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint of a DER-encoded certificate, `AA:BB:...` (95 characters).
pub fn sha256(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// Reads a fingerprint as a person may paste it: with or without colons, any case, with an
/// optional `SHA256:`/`sha256=` prefix as openssl prints it. `None` when it is not 32 bytes
/// of hex.
pub fn parse_sha256(text: &str) -> Option<String> {
    let text = text.trim();
    let text = match text.split_once(['=', ':']) {
        Some((prefix, rest))
            if prefix.eq_ignore_ascii_case("sha256") || prefix.eq_ignore_ascii_case("sha256 fingerprint") =>
        {
            rest
        }
        _ => text,
    };
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32).map(|i| &upper[2 * i..2 * i + 2]).collect();
    Some(pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_openssls() {
        // printf 'abc' | openssl dgst -sha256
        let f = sha256(b"abc");
        assert_eq!(
            f,
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn pasted_fingerprints_are_read_in_any_common_form() {
        let canonical = sha256(b"abc");
        let bare = canonical.replace(':', "").to_lowercase();
        for form in [
            canonical.clone(),
            bare.clone(),
            format!("SHA256:{bare}"),
            format!("sha256 Fingerprint={canonical}"),
            format!("  {canonical}\n"),
        ] {
            assert_eq!(parse_sha256(&form).as_deref(), Some(canonical.as_str()), "{form}");
        }
        for bad in ["", "AB:CD", &bare[..62], &format!("{bare}00"), &bare.replace('a', "g")] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }
}
