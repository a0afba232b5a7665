//! Request tokens and door notes: what a front door hands the hub to get back unchanged, so
//! that an answer finds its request, and a door's own output keeps its place, without the
//! core knowing what either looks like on any wire.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// A value of a front door's own type that the core carries without looking inside; `Role`
/// keeps request tokens and door notes apart. Cheap to clone (one reference count).
pub struct Opaque<Role>(Arc<dyn Any + Send + Sync>, PhantomData<fn() -> Role>);

impl<Role> Opaque<Role> {
    /// Wraps a door's value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self(Arc::new(value), PhantomData)
    }

    /// The door's value, when it is of type `T` (a door only ever reads its own).
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl<Role> Clone for Opaque<Role> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), PhantomData)
    }
}

impl<Role> fmt::Debug for Opaque<Role> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opaque(..)")
    }
}

/// Two values are equal when they are the same one (clones of one).
impl<Role> PartialEq for Opaque<Role> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The role of a [`RequestToken`].
#[derive(Debug)]
pub enum RequestRole {}

/// The role of a [`DoorNote`].
#[derive(Debug)]
pub enum NoteRole {}

/// A door's own record of one request, carried by the hub from a command to every answer and
/// refusal it causes. The door that sends the command builds it from its own typed value (the
/// native door: the client's JSON `id`; the IRC door: which command asked, for which target,
/// under which label) and reads it back with [`Opaque::get`] when it renders the answer.
///
/// The token *is* the door's ledger entry: it lives exactly as long as the last event that
/// carries it, so nothing has to be forgotten by hand and no answer can leak an entry.
pub type RequestToken = Opaque<RequestRole>;

/// The request an event answers, if any: every command and answer carries one of these.
pub type Req = Option<RequestToken>;

/// Output a front door produces by itself (an IRC numeric, a `pong`, a labeled-response
/// marker), handed through the hub with `Command::Echo` so that it keeps its place behind the
/// hub's answers to the session's earlier commands. Only the door that made it reads it.
pub type DoorNote = Opaque<NoteRole>;

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
