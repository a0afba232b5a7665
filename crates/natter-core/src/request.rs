//! Request tokens: how an answer finds the request it answers without the core knowing what
//! a request looks like on any wire.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A door's own record of one request, carried by the hub from a command to every answer and
/// refusal it causes. The door that sends the command builds it from its own typed value (the
/// native door: the client's JSON `id`; the IRC door: which command asked, for which target,
/// under which label) and reads it back with [`RequestToken::get`] when it renders the answer.
///
/// The token *is* the door's ledger entry: it lives exactly as long as the last event that
/// carries it, so nothing has to be forgotten by hand and no answer can leak an entry. The
/// core never looks inside.
#[derive(Clone)]
pub struct RequestToken(Arc<dyn Any + Send + Sync>);

impl RequestToken {
    /// Wraps a door's request record.
    pub fn new<T: Any + Send + Sync>(record: T) -> Self {
        Self(Arc::new(record))
    }

    /// The door's record, when it is of type `T` (a door only ever reads its own tokens).
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for RequestToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestToken(..)")
    }
}

/// Two tokens are equal when they are the same request (clones of one token).
impl PartialEq for RequestToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The request an event answers, if any: every command and answer carries one of these.
pub type Req = Option<RequestToken>;

/// Output a front door produces by itself (an IRC numeric, a `pong`, a labeled-response
/// marker), handed through the hub with `Command::Local` so that it keeps its place behind the
/// hub's answers to the session's earlier commands. Only the door that made it reads it.
#[derive(Clone)]
pub struct DoorNote(Arc<dyn Any + Send + Sync>);

impl DoorNote {
    /// Wraps a door's own output.
    pub fn new<T: Any + Send + Sync>(note: T) -> Self {
        Self(Arc::new(note))
    }

    /// The door's output, when it is of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for DoorNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DoorNote(..)")
    }
}

/// Notes are equal when they are the same note.
impl PartialEq for DoorNote {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gives_back_its_own_type_only() {
        let t = RequestToken::new(7u32);
        assert_eq!(t.get::<u32>(), Some(&7));
        assert_eq!(t.get::<String>(), None);
        assert_eq!(t.clone(), t);
        assert_ne!(RequestToken::new(7u32), t);
    }
}
