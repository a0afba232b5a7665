//! The WebSocket front door: a transport ([`transport::WsTransport`]) under the same
//! connection loop and doors as TCP, so native JSON and IRC run over WebSocket unchanged, with
//! the same limits. The HTTP side (`crate::http`) does the handshake and hands the connection
//! over here.

pub(crate) mod decoder;
pub(crate) mod transport;
mod utf8;

/// What a WebSocket connection speaks, chosen by its `Sec-WebSocket-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subprotocol {
    /// None offered (browsers' `new WebSocket(url)`): the first message picks the door, as
    /// on the TCP port: `{` is the native protocol, an IRC registration command IRC.
    Sniff,
    /// IRCv3's `text.ircv3.net`: IRC lines in text messages.
    IrcText,
    /// IRCv3's `binary.ircv3.net`: IRC lines in binary messages (any bytes).
    IrcBinary,
}

impl Subprotocol {
    /// The protocol a `Sec-WebSocket-Protocol` name stands for, when natter speaks it.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "text.ircv3.net" => Some(Self::IrcText),
            "binary.ircv3.net" => Some(Self::IrcBinary),
            _ => None,
        }
    }

    /// The name the `101` answer confirms, when one was chosen.
    pub(crate) fn name(self) -> Option<&'static str> {
        match self {
            Self::Sniff => None,
            Self::IrcText => Some("text.ircv3.net"),
            Self::IrcBinary => Some("binary.ircv3.net"),
        }
    }
}
