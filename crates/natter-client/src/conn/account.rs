//! Staying logged in to an account: after a login, registration or password change the actor
//! asks the server for a resume token and saves it ([`crate::saved_login`]); it gives the
//! token in `hello` at every reconnect and at the next start, so the session is logged in
//! again without the password, which the client never keeps (and takes its nickname back
//! when a session it left behind still holds it). Logging out deletes the saved
//! token; one the server refuses is deleted too (the server's error tells the user, once, to
//! log in again).

use super::Actor;
use super::requests::Pending;
use super::wire::Conn;
use crate::saved_login::SavedLogin;
use natter_proto::names::fold;
use natter_proto::native::{AccountChangeFrame, ClientFrame, ErrorCode, RequestId};

/// The request id of the login's `hello`: its resume's answer carries it.
pub(super) const HELLO_ID: i64 = 0;

impl Actor {
    /// The address a saved login is filed under: the first server's, so that every node of a
    /// cluster is given the same token (tokens are the cluster's, in its shared store).
    pub(super) fn saved_login_key(&self) -> &str {
        &self.opts.servers[0].addr
    }

    /// The token to give in `hello`, when a login is saved.
    pub(super) fn resume_token(&self) -> Option<String> {
        self.saved_login.as_ref().map(|s| s.token.clone())
    }

    /// An `account` frame came: keep the saved login in step with what it says.
    pub(super) async fn on_account_change(
        &mut self,
        id: Option<&RequestId>,
        change: AccountChangeFrame,
        account: &str,
        conn: &mut Conn,
    ) -> Result<(), String> {
        if self.opts.saved_logins.is_none() {
            return Ok(());
        }
        match change {
            // The resume at login: the saved token stays good. When the nickname wanted is
            // the account's and another session holds it (the one a dropped connection left
            // behind), the server gives it back to its owner.
            AccountChangeFrame::LoggedIn if id == Some(&RequestId::Num(HELLO_ID)) => {
                let wanted = &self.opts.nick;
                if fold(&self.nick) == fold(wanted) || fold(account) != fold(wanted) {
                    return Ok(());
                }
                let id = self.requests.register(Pending::Reclaim);
                conn.write(&ClientFrame::Nick { nick: wanted.clone(), id: Some(id) }).await
            }
            AccountChangeFrame::LoggedIn
            | AccountChangeFrame::Registered
            | AccountChangeFrame::PasswordChanged => {
                // A password change revoked every token: ask again either way.
                let id = self.requests.register(Pending::Token);
                conn.write(&ClientFrame::ResumeToken { id: Some(id) }).await
            }
            AccountChangeFrame::LoggedOut => {
                self.forget_saved_login();
                Ok(())
            }
        }
    }

    /// The server's answer to our `resume_token`: saved for the next login.
    pub(super) fn on_token(&mut self, account: &str, token: &str) {
        let Some(logins) = &self.opts.saved_logins else { return };
        let login = SavedLogin { account: account.to_string(), token: token.to_string() };
        match logins.save(self.saved_login_key(), &self.opts.nick, &login) {
            Ok(()) => self.saved_login = Some(login),
            Err(e) => self.emit(super::Event::Warning(format!(
                "could not save your login in {} ({e}): you will have to /login again after a restart",
                logins.dir().display()
            ))),
        }
    }

    /// An error answering the `hello`: a refused token is deleted, so that it is not given
    /// again (the server's error, shown once, says to log in again).
    pub(super) fn on_hello_error(&mut self, code: ErrorCode) {
        if code == ErrorCode::BadResumeToken {
            self.forget_saved_login();
        }
    }

    fn forget_saved_login(&mut self) {
        self.saved_login = None;
        let Some(logins) = &self.opts.saved_logins else { return };
        if let Err(e) = logins.forget(self.saved_login_key(), &self.opts.nick) {
            self.emit(super::Event::Warning(format!(
                "could not delete your saved login in {} ({e}); delete it yourself",
                logins.dir().display()
            )));
        }
    }
}
