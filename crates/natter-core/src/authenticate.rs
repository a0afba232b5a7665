//! Logging in to an account before a session exists: IRC's SASL, whose answer a client waits
//! for before it registers. The door asks the hub ([`crate::HubHandle::authenticate`]) with a
//! [`Credential`]; the hub applies the login throttle, has the credential checked off its task
//! (`hub/verifier.rs`), and answers with an [`Authentication`]. The [`Authenticated`] it
//! hands out is the only way to register a session already logged in
//! ([`crate::Registration::account`]): a door cannot make one up.

use crate::password::Password;
use crate::refusal::Refusal;
use crate::vocab::Name;

/// A credential offered before registering.
#[derive(Debug)]
pub enum Credential {
    /// An account name and its password (SASL PLAIN).
    Password {
        /// The account name.
        name: String,
        /// Its password.
        password: Password,
    },
    /// The start of a SCRAM-SHA-256 login: the salt and iteration count to derive the key
    /// with. An account that does not exist (or has no SCRAM credential yet) gets a stand-in
    /// salt, so the answer does not say which names are accounts.
    ScramStart {
        /// The account name.
        name: String,
    },
    /// The end of a SCRAM-SHA-256 login: the client's proof of the exchange.
    ScramProof {
        /// The account name.
        name: String,
        /// The three messages of the exchange, joined (RFC 5802 §3).
        auth_message: String,
        /// The client's proof.
        proof: Vec<u8>,
    },
    /// A TLS client certificate (SASL EXTERNAL): its SHA-256 fingerprint, in `natter_proto::fingerprint`'s `AA:BB:...` form.
    Certificate {
        /// The fingerprint.
        fingerprint: String,
    },
}

/// What the hub answers to a [`Credential`].
#[derive(Debug)]
pub enum Authentication {
    /// Logged in.
    LoggedIn(Authenticated),
    /// SCRAM's first answer: derive the key with this salt and count.
    ScramSalt {
        /// The salt.
        salt: Vec<u8>,
        /// The PBKDF2 iterations.
        iterations: u32,
    },
}

/// The answer to a [`Credential`], or why it was refused (wrong credentials, too many tries,
/// the accounts' store unavailable).
pub type AuthAnswer = Result<Authentication, Refusal>;

/// Proof that a connection logged in to an account: made only by the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    account: Name,
    server_signature: Option<[u8; 32]>,
}

impl Authenticated {
    pub(crate) fn new(account: Name, server_signature: Option<[u8; 32]>) -> Self {
        Self { account, server_signature }
    }

    /// The account, as registered.
    pub fn account(&self) -> &Name {
        &self.account
    }

    /// SCRAM's server signature, which the client checks (`v=`); `None` for other mechanisms.
    pub fn server_signature(&self) -> Option<&[u8; 32]> {
        self.server_signature.as_ref()
    }
}
