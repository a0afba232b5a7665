//! Logging in: the TCP connection and the `hello`/`welcome` handshake (with `nick_`,
//! `nick__`... while the nickname is taken), and the backoff between attempts when the
//! connection is lost.

use super::Actor;
use super::wire::{Conn, ReadError};
use super::{ClientError, Event};
use natter_proto::native::{ClientFrame, ErrorCode, RequestId, ServerFrame};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::net::TcpStream;

/// A random number without a random-number crate: for the backoff's jitter and the client id
/// prefix, neither of which needs to be unpredictable, only different per process.
pub(super) fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A fresh secret for `hello` (`client_secret`): 128 bits from the system's randomness, as 32
/// hex digits. Unlike the numbers above it must be unguessable: whoever knows it could match
/// our message ids. `None` when the system has no randomness to give.
pub(super) fn client_secret() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A delay for attempt `attempt` (from 1): exponential from `min`, capped at `max`, with jitter
/// so that many clients dropped at once do not reconnect in lockstep. Uniform in [d/2, d].
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: u64) -> Duration {
    let exp = min.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let d = exp.min(max).max(Duration::from_millis(1));
    let half = d / 2;
    let jitter_ns = (random % (half.as_nanos() as u64 + 1)) as u32 as u64;
    half + Duration::from_nanos(jitter_ns.min(half.as_nanos() as u64))
}

impl Actor {
    /// Connects to the current server ([`Actor::server_addr`]) and logs in; returns the
    /// connection and the server's name from `welcome`.
    pub(super) async fn login(&mut self) -> Result<(Conn, String), ClientError> {
        let endpoint = self.opts.servers[self.current].clone();
        let addr = endpoint.addr;
        let connect = tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(&addr));
        let stream = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
            Err(_) => {
                return Err(ClientError::Connect {
                    addr,
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                });
            }
        };
        let mut conn = match &endpoint.tls {
            None => Conn::new(stream),
            Some(tls) => {
                let handshake = tokio::time::timeout(self.opts.connect_timeout, tls.connect(stream));
                let (stream, first_use) = match handshake.await {
                    Ok(Ok(done)) => done,
                    Ok(Err(e @ crate::tls::TlsError::Refused(_))) => {
                        return Err(ClientError::CertificateRefused(e.to_string()));
                    }
                    Ok(Err(e)) => return Err(ClientError::Tls(e.to_string())),
                    Err(_) => {
                        return Err(ClientError::Tls(format!(
                            "the TLS handshake with {addr} did not finish in time; is TLS on there?"
                        )));
                    }
                };
                if let Some(fingerprint) = &first_use {
                    self.emit(Event::Warning(tls.first_use_message(fingerprint)));
                }
                Conn::tls(stream)
            }
        };
        let mut tries = 0;
        loop {
            let hello = ClientFrame::Hello {
                v: natter_proto::PROTOCOL_VERSION,
                nick: self.nick.clone(),
                password: None,
                account: None,
                account_password: None,
                resume: self.resume_token(),
                client_secret: self.client_secret.clone(),
                id: Some(RequestId::Num(super::account::HELLO_ID)),
            };
            conn.write(&hello).await.map_err(ClientError::Protocol)?;
            loop {
                let frame =
                    tokio::time::timeout(self.opts.connect_timeout, conn.next_frame(&self.events)).await;
                let frame = match frame {
                    Err(_) => {
                        return Err(ClientError::Protocol(format!(
                            "the server at {addr} did not answer the login in time; is it a natter server?"
                        )));
                    }
                    Ok(Err(ReadError::Closed(why))) => {
                        return Err(ClientError::Protocol(format!("{why} during login")));
                    }
                    Ok(Ok(f)) => f,
                };
                match frame {
                    ServerFrame::Welcome { nick, server, max_line, .. } => {
                        conn.max_line = max_line;
                        self.nick = nick.into_owned();
                        self.nick_taken_streak = 0;
                        return Ok((conn, server.into_owned()));
                    }
                    ServerFrame::Error { code: ErrorCode::NickInUse, message, .. } => {
                        // After a drop our old session may still hold the nick for a moment:
                        // wait for it a few times before picking another one.
                        self.nick_taken_streak += 1;
                        if self.connected_once && self.nick_taken_streak <= 3 {
                            return Err(ClientError::Login {
                                addr,
                                code: ErrorCode::NickInUse,
                                message: message.into(),
                            });
                        }
                        tries += 1;
                        if tries > self.opts.nick_retries {
                            return Err(ClientError::Login {
                                addr,
                                code: ErrorCode::NickInUse,
                                message: format!("{message}; pick another with --nick"),
                            });
                        }
                        let next = format!("{}_", self.nick);
                        self.emit(Event::Warning(format!("nickname {} is taken; trying {next}", self.nick)));
                        self.nick = next;
                        break;
                    }
                    ServerFrame::Error { code, message, .. } => {
                        return Err(ClientError::Login { addr, code, message: message.into_owned() });
                    }
                    ServerFrame::Bye { reason } => {
                        return Err(ClientError::Protocol(format!("the server ended the session: {reason}")));
                    }
                    other => self.emit(Event::Frame(other)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for r in [0, 1, 12345, u64::MAX] {
            let d1 = backoff_delay(1, min, max, r);
            assert!(d1 >= Duration::from_millis(50) && d1 <= min, "{d1:?}");
            let d3 = backoff_delay(3, min, max, r);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400), "{d3:?}");
            let d30 = backoff_delay(30, min, max, r);
            assert!(d30 >= max / 2 && d30 <= max, "{d30:?}");
        }
        assert_ne!(backoff_delay(5, min, max, 1), backoff_delay(5, min, max, 999_999_999));
    }
}
