//! Registration: `CAP` negotiation, `PASS`, `NICK` and `USER`, and logging in once all are in.

use super::super::IrcDoor;
use super::super::caps::CAPS;
use super::super::requests::Op;
use crate::door::{Credentials, Flow, SessionCtx};
use natter_core::{Command, Refusal};
use natter_proto::irc;
use natter_proto::names::validate_nick;

impl IrcDoor {
    /// `PASS`: kept until registration, where the hub checks it against the server password.
    pub(super) fn pass(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_some() {
            return self.bad(ctx, "462", &["You may not reregister"]);
        }
        if m.params.is_empty() {
            return self.need_more(ctx, "PASS");
        }
        self.registering.get_or_insert_default().password = m.param(0).map(str::to_string);
        Flow::Continue
    }

    /// `NICK`: the nickname to register with, or a change of nickname.
    pub(super) async fn nick_command(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(nick) = m.param(0).filter(|n| !n.is_empty()) else {
            return self.bad(ctx, "431", &["No nickname given"]);
        };
        if let Err(e) = validate_nick(nick) {
            return self.bad(ctx, "432", &[nick, &format!("Erroneous nickname: {e}")]);
        }
        if ctx.session.is_some() {
            let req = Op::Nick { nick: nick.to_string() }.token();
            return ctx.command(Command::Nick { nick: nick.to_string(), req }).await;
        }
        self.registering.get_or_insert_default().pending_nick = Some(nick.to_string());
        self.try_register(ctx).await
    }

    /// `USER`: the user name and real name to register with.
    pub(super) async fn user_command(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_some() {
            return self.bad(ctx, "462", &["You may not reregister"]);
        }
        if m.params.len() < 4 || m.params[0].is_empty() || m.params[3].is_empty() {
            return self.need_more(ctx, "USER");
        }
        self.registering.get_or_insert_default().user = Some(m.params[0].clone());
        self.realname = m.params[3].clone();
        self.try_register(ctx).await
    }

    pub(super) async fn cap(&mut self, m: &irc::Message, ctx: &mut SessionCtx) -> Flow {
        let Some(sub) = m.param(0) else { return self.need_more(ctx, "CAP") };
        let me = self.me().to_string();
        let registered = ctx.session.is_some();
        match sub.to_ascii_uppercase().as_str() {
            "LS" => {
                if !registered {
                    self.negotiating = true;
                }
                // CAP LS 302 shows values, and implies cap-notify.
                if m.param(1).and_then(|v| v.parse::<u32>().ok()).is_some_and(|v| v >= 302) {
                    self.cap_302 = true;
                }
                let mechanisms = super::sasl::mechanisms(self.sasl.as_deref());
                let mut offered = CAPS
                    .iter()
                    .map(|&c| match c {
                        "sasl" if self.cap_302 => format!("sasl={mechanisms}"),
                        c => c.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                if let Some(sts) = ctx.settings.tls.and_then(|policy| policy.sts) {
                    // IRCv3 STS: plain sessions learn where TLS is, TLS sessions for how long
                    // to keep to it.
                    match ctx.secure {
                        true => offered.push_str(&format!(" sts=duration={}", sts.duration)),
                        false => offered.push_str(&format!(" sts=port={}", sts.port)),
                    }
                }
                self.reply().line("CAP", &[&me, "LS", &offered]).send(ctx)
            }
            "LIST" => self.reply().line("CAP", &[&me, "LIST", &self.caps.list()]).send(ctx),
            "REQ" => {
                if !registered {
                    self.negotiating = true;
                }
                let asked = m.param(1).unwrap_or("");
                let mut caps = self.caps;
                let all_known =
                    asked.split(' ').filter(|c| !c.is_empty()).all(|c| match c.strip_prefix('-') {
                        Some(name) => caps.set(name, false),
                        None => caps.set(c, true),
                    });
                if all_known && !asked.trim().is_empty() {
                    self.caps = caps;
                    self.reply().line("CAP", &[&me, "ACK", asked]).send(ctx)
                } else {
                    self.reply().line("CAP", &[&me, "NAK", asked]).send(ctx)
                }
            }
            "END" => {
                if registered {
                    return Flow::Continue;
                }
                self.negotiating = false;
                if self.abort_sasl_for_registration(ctx) != Flow::Continue {
                    return Flow::Close("too slow".into());
                }
                self.try_register(ctx).await
            }
            _ => self.bad(ctx, "410", &[sub, "Invalid CAP command"]),
        }
    }

    async fn try_register(&mut self, ctx: &mut SessionCtx) -> Flow {
        if ctx.session.is_some() || self.negotiating {
            return Flow::Continue;
        }
        let Some(registering) = self.registering.as_mut().filter(|r| r.user.is_some()) else {
            return Flow::Continue;
        };
        let Some(nick) = registering.pending_nick.take() else { return Flow::Continue };
        // The USER name shows in prefixes when it is a plain word; else the door's name.
        let user = registering
            .user
            .as_deref()
            .map(|u| u.trim_start_matches('~'))
            .filter(|u| {
                !u.is_empty()
                    && u.len() <= 10
                    && u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
            .unwrap_or("irc")
            .to_string();
        self.ident = ctx.ident(&user).0;
        let given = Credentials {
            user: Some(&user),
            realname: self.realname.clone(),
            password: registering.password.clone(),
            client_secret: None,
            // Cloned, not taken: a nick refused here is retried with the same login.
            account: self.sasl.as_ref().and_then(|s| s.account.clone()),
        };
        let (flow, password_refused) =
            ctx.register_as(nick.clone(), given, Op::Register { nick: nick.clone() }.token()).await;
        if let Some(refusal) = password_refused {
            // Counted as a refused login unless the refusal's strike already ended the session.
            if flow == Flow::Continue {
                ctx.hub.metrics().disconnected(natter_core::metrics::Disconnect::LoginRefused);
            }
            return Flow::Close(match refusal {
                Refusal::BadPassword => "Bad password".into(),
                refusal => refusal.to_string(),
            });
        }
        if ctx.session.is_none() {
            return flow;
        }
        self.nick = nick;
        self.registering = None;
        if let Some(sasl) = self.sasl.as_mut() {
            sasl.account = None;
        }
        self.lobby = ctx.lobby();
        // The counts end the registration burst (LUSERS, then the MOTD).
        ctx.command(Command::ServerStats { req: Op::Lusers { welcome: true }.token() }).await
    }
}
