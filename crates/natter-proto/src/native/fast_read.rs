//! The fast reader: the native `send` frame, nearly all of what clients send, read by hand in
//! the shape every JSON serializer writes it: no whitespace, no escapes, known fields once each.
//! Anything else (an escape in the text, spaces, an unknown field, a number that is not an
//! integer) is left to serde, which reads every valid frame and words every error; a
//! property test holds the two to the same answers.

use super::{ClientFrame, RequestId};

/// The `send` frame in `line`, or `None` when `line` is not in the plain shape this reads.
pub(crate) fn parse_send(line: &[u8]) -> Option<ClientFrame> {
    let mut p = Reader { s: std::str::from_utf8(line).ok()?, i: 0 };
    p.expect(b'{')?;
    let mut fields = Fields::default();
    loop {
        let key = p.string()?;
        p.expect(b':')?;
        match key {
            "type" => once(&mut fields.kind, p.string()?)?,
            "room" => once(&mut fields.room, p.string()?)?,
            "to" => once(&mut fields.to, p.string()?)?,
            "text" => once(&mut fields.text, p.string()?)?,
            "cid" => once(&mut fields.cid, p.string()?)?,
            "action" => once(&mut fields.action, p.boolean()?)?,
            "notice" => once(&mut fields.notice, p.boolean()?)?,
            "id" => once(&mut fields.id, p.request_id()?)?,
            _ => return None,
        }
        match p.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    if p.i != p.s.len() || fields.kind? != "send" {
        return None;
    }
    Some(ClientFrame::Send {
        room: fields.room.map(str::to_owned),
        to: fields.to.map(str::to_owned),
        text: fields.text?.to_owned(),
        action: fields.action.unwrap_or(false),
        notice: fields.notice.unwrap_or(false),
        cid: fields.cid.map(str::to_owned),
        id: fields.id,
    })
}

#[derive(Default)]
struct Fields<'a> {
    kind: Option<&'a str>,
    room: Option<&'a str>,
    to: Option<&'a str>,
    text: Option<&'a str>,
    cid: Option<&'a str>,
    action: Option<bool>,
    notice: Option<bool>,
    id: Option<RequestId>,
}

/// Stores a field's value; `None` when it was already there (serde refuses duplicates).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.s.as_bytes().get(self.i)?;
        self.i += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = &self.s.as_bytes()[self.i..];
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] != b'"' || rest[..len].iter().any(|&b| b < 0x20) {
            return None;
        }
        // The quote is ASCII, so both ends are character boundaries.
        let value = &self.s[self.i..self.i + len];
        self.i += len + 1;
        Some(value)
    }

    fn boolean(&mut self) -> Option<bool> {
        let rest = &self.s[self.i..];
        let (value, len) = if rest.starts_with("true") {
            (true, 4)
        } else if rest.starts_with("false") {
            (false, 5)
        } else {
            return None;
        };
        self.i += len;
        Some(value)
    }

    /// A string id, or an integer id written as JSON writes integers.
    fn request_id(&mut self) -> Option<RequestId> {
        if self.s.as_bytes().get(self.i) == Some(&b'"') {
            return self.string().map(|s| RequestId::Text(s.to_owned()));
        }
        let rest = &self.s.as_bytes()[self.i..];
        let sign = usize::from(rest.first() == Some(&b'-'));
        let digits = rest[sign..].iter().take_while(|b| b.is_ascii_digit()).count();
        // JSON has no leading zeros (serde words that error), and serde reads `-0` as a
        // float, which is no request id.
        if digits == 0 || (rest[sign] == b'0' && (digits > 1 || sign == 1)) {
            return None;
        }
        let n = self.s[self.i..self.i + sign + digits].parse::<i64>().ok()?;
        self.i += sign + digits;
        Some(RequestId::Num(n))
    }
}

#[cfg(test)]
mod tests {
    use crate::native::{ClientFrame, ErrorCode, RequestId, parse_client_frame};

    #[test]
    fn the_send_fast_path_reads_what_the_general_path_reads() {
        let lines: &[&str] = &[
            r##"{"type":"send","room":"#lobby","text":"hi"}"##,
            r##"{"type":"send","to":"bob","text":"psst \u00e9\n","action":true,"notice":true,"cid":"c-1","id":7}"##,
            r##"{"type":"send","room":"#a","text":"x","id":"req","extra":[1,{"a":null}]}"##,
            r##"{"type":"send","text":"no target"}"##,
        ];
        for line in lines {
            let general = serde_json::from_slice::<ClientFrame>(line.as_bytes()).unwrap();
            assert_eq!(parse_client_frame(line.as_bytes()).unwrap(), general, "{line}");
        }
        // Refusals come from the general path, with its codes.
        for (line, code) in [
            (r##"{"type":"send","room":"#a"}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","room":"#a","text":5,"id":3}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","text":"a","text":"b"}"##, ErrorCode::BadFrame),
            (r##"{"type":"send","text":"open"##, ErrorCode::InvalidJson),
        ] {
            assert_eq!(parse_client_frame(line.as_bytes()).unwrap_err().code, code, "{line}");
        }
        assert_eq!(
            parse_client_frame(br##"{"type":"send","room":"#a","text":5,"id":3}"##).unwrap_err().id,
            Some(RequestId::Num(3))
        );
    }
}
