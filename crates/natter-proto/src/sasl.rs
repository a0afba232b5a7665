//! SASL messages (RFC 4422) as IRCv3 carries them in `AUTHENTICATE`: the 400-byte base64
//! chunks, PLAIN's (RFC 4616) single message, and the SCRAM-SHA-256 (RFC 5802, RFC 7677)
//! exchange's messages. Pure parsing and formatting: what a credential is worth is decided by
//! the hub.

use base64ct::{Base64, Encoding};

/// Bytes of base64 in one `AUTHENTICATE` line; a line of exactly this length says more follows.
pub const CHUNK: usize = 400;

/// Most bytes of base64 a client may send for one SASL message: PLAIN with a long password,
/// or a SCRAM message, fits many times over.
pub const MAX_MESSAGE: usize = 4 * CHUNK;

/// What is wrong with a SASL message (the client is told, and the attempt fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The message is longer than [`MAX_MESSAGE`].
    #[error("the SASL message is too long")]
    TooLong,
    /// Not base64.
    #[error("the SASL message is not valid base64")]
    NotBase64,
    /// Base64 of something that is not what the mechanism expects.
    #[error("malformed {mechanism} message: {problem}")]
    Malformed {
        /// The mechanism.
        mechanism: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Collects one SASL message from its `AUTHENTICATE` lines.
#[derive(Debug, Default)]
pub struct Chunks {
    base64: String,
}

impl Chunks {
    /// Adds a line's parameter. `Ok(None)`: more lines follow; `Ok(Some(bytes))`: the whole
    /// message, decoded (`+` alone is the empty message, or ends one whose length was a
    /// multiple of [`CHUNK`]).
    pub fn push(&mut self, line: &str) -> Result<Option<Vec<u8>>, SaslError> {
        if line != "+" {
            if self.base64.len() + line.len() > MAX_MESSAGE {
                self.base64.clear();
                return Err(SaslError::TooLong);
            }
            self.base64.push_str(line);
            if line.len() == CHUNK {
                return Ok(None);
            }
        }
        let all = std::mem::take(&mut self.base64);
        Base64::decode_vec(&all).map(Some).map_err(|_| SaslError::NotBase64)
    }

    /// Forgets a message in progress (the exchange was aborted).
    pub fn clear(&mut self) {
        self.base64.clear();
    }
}

/// A message split into the `AUTHENTICATE` parameters that carry it.
pub fn to_chunks(message: &[u8]) -> Vec<String> {
    if message.is_empty() {
        return vec!["+".into()];
    }
    let base64 = Base64::encode_string(message);
    let mut chunks: Vec<String> =
        base64.as_bytes().chunks(CHUNK).map(|c| String::from_utf8_lossy(c).into()).collect();
    if base64.len() % CHUNK == 0 {
        chunks.push("+".into());
    }
    chunks
}

/// A PLAIN message: who logs in and with which password.
#[derive(PartialEq, Eq)]
pub struct Plain {
    /// The identity to act as; empty, or the same as `authcid`, for natter.
    pub authzid: String,
    /// The account name.
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plain")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .finish_non_exhaustive()
    }
}

/// Reads a PLAIN message: `authzid NUL authcid NUL password`.
pub fn parse_plain(message: &[u8]) -> Result<Plain, SaslError> {
    let malformed = |problem| SaslError::Malformed { mechanism: "PLAIN", problem };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("expected authzid, authcid and password separated by NUL"));
    };
    if authcid.is_empty() || password.is_empty() {
        return Err(malformed("empty account name or password"));
    }
    Ok(Plain { authzid: authzid.into(), authcid: authcid.into(), password: password.into() })
}

/// A SCRAM client's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramFirst {
    /// The account name (`n=`, unescaped).
    pub name: String,
    /// The client's nonce (`r=`).
    pub nonce: String,
    /// The message without its GS2 header (`n=...,r=...`): the start of the signed message.
    pub bare: String,
    /// The GS2 header (`n,,` or `y,,`), which the final message must carry back in `c=`.
    pub gs2_header: String,
}

/// Reads a SCRAM client-first message. Channel binding (`p=`) is refused: natter's TLS does
/// not export the binding data, and a client that asks for it must not be let through without.
pub fn parse_scram_first(message: &[u8]) -> Result<ScramFirst, SaslError> {
    let malformed = |problem| SaslError::Malformed { mechanism: "SCRAM-SHA-256", problem };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let (flag, rest) = text.split_once(',').ok_or(malformed("no GS2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(malformed("channel binding is not supported")),
        _ => return Err(malformed("bad channel-binding flag")),
    }
    let (authzid, bare) = rest.split_once(',').ok_or(malformed("no GS2 header"))?;
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(malformed("bad authzid"));
    }
    let mut attrs = bare.split(',');
    let name = attrs.next().and_then(|a| a.strip_prefix("n=")).ok_or(malformed("expected n= first"))?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(malformed("expected r= after n="))?;
    if name.is_empty() || nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(malformed("empty name or bad nonce"));
    }
    let name = unescape_name(name).ok_or(malformed("bad escape in the name"))?;
    Ok(ScramFirst { name, nonce: nonce.into(), bare: bare.into(), gs2_header: format!("{flag},{authzid},") })
}

/// The exchange's nonce: the client's, followed by the server's random bytes in base64 (which
/// has no comma, as the nonce must not).
pub fn scram_nonce(client_nonce: &str, random: &[u8]) -> String {
    format!("{client_nonce}{}", Base64::encode_string(random))
}

/// The server's first message: the combined nonce, the salt and the iteration count.
pub fn scram_server_first(nonce: &str, salt: &[u8], iterations: u32) -> String {
    format!("r={nonce},s={},i={iterations}", Base64::encode_string(salt))
}

/// A SCRAM client's final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramFinal {
    /// The message without its proof: the end of the signed message.
    pub without_proof: String,
    /// The proof (`p=`, decoded).
    pub proof: Vec<u8>,
}

/// Reads a SCRAM client-final message, checking it carries back the GS2 header and the
/// combined nonce of this exchange.
pub fn parse_scram_final(message: &[u8], gs2_header: &str, nonce: &str) -> Result<ScramFinal, SaslError> {
    let malformed = |problem| SaslError::Malformed { mechanism: "SCRAM-SHA-256", problem };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or(malformed("no proof"))?;
    let mut attrs = without_proof.split(',');
    let binding = attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or(malformed("expected c= first"))?;
    if Base64::decode_vec(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
        return Err(malformed("the channel binding does not match the first message"));
    }
    if attrs.next().and_then(|a| a.strip_prefix("r=")) != Some(nonce) {
        return Err(malformed("the nonce does not match"));
    }
    let proof = Base64::decode_vec(proof).map_err(|_| malformed("the proof is not base64"))?;
    Ok(ScramFinal { without_proof: without_proof.into(), proof })
}

/// The message the client signs: the three messages joined (RFC 5802 §3).
pub fn scram_auth_message(first: &ScramFirst, server_first: &str, last: &ScramFinal) -> String {
    format!("{},{server_first},{}", first.bare, last.without_proof)
}

/// The server's final message: its signature, which proves it knew the password too.
pub fn scram_server_final(signature: &[u8]) -> String {
    format!("v={}", Base64::encode_string(signature))
}

/// `=2C` is `,` and `=3D` is `=` in a SCRAM name; any other `=` is an error.
fn unescape_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_and_split_at_400() {
        for len in [0, 1, 299, 300, 301, 600, 900] {
            let message: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let lines = to_chunks(&message);
            assert!(lines.iter().all(|l| l.len() <= CHUNK));
            let mut chunks = Chunks::default();
            let mut got = None;
            for (i, line) in lines.iter().enumerate() {
                got = chunks.push(line).unwrap();
                assert_eq!(got.is_some(), i + 1 == lines.len(), "len {len} line {i}");
            }
            assert_eq!(got.unwrap(), message, "len {len}");
        }
    }

    #[test]
    fn oversized_and_bad_base64_are_refused_and_forgotten() {
        let mut chunks = Chunks::default();
        let line = "A".repeat(CHUNK);
        for _ in 0..MAX_MESSAGE / CHUNK {
            assert_eq!(chunks.push(&line), Ok(None));
        }
        assert_eq!(chunks.push(&line), Err(SaslError::TooLong));
        assert_eq!(chunks.push("AAAA"), Ok(Some(vec![0, 0, 0])), "the next message starts afresh");
        assert_eq!(chunks.push("not base64!"), Err(SaslError::NotBase64));
        assert_eq!(chunks.push("+"), Ok(Some(Vec::new())));
    }

    #[test]
    fn plain_reads_its_three_parts() {
        let p = parse_plain(b"\0ann\0secret pw").unwrap();
        assert_eq!((p.authzid.as_str(), p.authcid.as_str(), p.password.as_str()), ("", "ann", "secret pw"));
        assert_eq!(parse_plain(b"ann\0ann\0x").unwrap().authzid, "ann");
        for bad in [&b""[..], b"ann", b"\0ann", b"\0\0pw", b"\0ann\0", b"a\0b\0c\0d", b"\0\xff\0pw"] {
            assert!(parse_plain(bad).is_err(), "{bad:?}");
        }
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn scram_first_reads_name_and_nonce() {
        let first = parse_scram_first(b"n,,n=us=2Cer=3D,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(first.name, "us,er=");
        assert_eq!(first.nonce, "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(first.bare, "n=us=2Cer=3D,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(first.gs2_header, "n,,");
        for bad in [
            &b""[..],
            b"n,,",
            b"p=tls-unique,,n=u,r=abc",
            b"x,,n=u,r=abc",
            b"n,,r=abc,n=u",
            b"n,,n=,r=abc",
            b"n,,n=u,r=",
            b"n,,n=u=,r=abc",
            b"n,,n=u,r=a b",
            b"n,,n=\xff,r=abc",
        ] {
            assert!(parse_scram_first(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn scram_final_must_carry_back_the_header_and_nonce() {
        let ok = b"c=biws,r=abcXYZ,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let last = parse_scram_final(ok, "n,,", "abcXYZ").unwrap();
        assert_eq!(last.without_proof, "c=biws,r=abcXYZ");
        assert_eq!(last.proof.len(), 32);
        assert!(parse_scram_final(ok, "y,,", "abcXYZ").is_err());
        assert!(parse_scram_final(ok, "n,,", "abc").is_err());
        assert!(parse_scram_final(b"c=biws,r=abcXYZ", "n,,", "abcXYZ").is_err());
        assert!(parse_scram_final(b"c=biws,r=abcXYZ,p=!!", "n,,", "abcXYZ").is_err());
    }
}
