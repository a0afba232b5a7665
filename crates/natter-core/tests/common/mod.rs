//! What the hub's tests share.

use natter_core::{Outbox, Registration, SessionKind};

/// A native session `nick` logging in with nothing else to give, its deliveries going to
/// `outbox`; tests change the fields they need.
pub fn registration(nick: &str, outbox: &Outbox) -> Registration {
    Registration {
        nick: nick.into(),
        ident: format!("{nick}@test"),
        real_host: None,
        kind: SessionKind::Native,
        outbox: outbox.clone(),
        realname: String::new(),
        lobby: true,
        password: None,
        addr: None,
        client_secret: None,
        resume: None,
        account: None,
        req: None,
    }
}
