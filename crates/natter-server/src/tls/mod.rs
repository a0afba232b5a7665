//! TLS for the TCP doors: the certificate the server presents (read from PEM files, swapped on
//! SIGHUP without touching established connections), the handshake, and the stream type TLS
//! connections use ([`TlsTransport`]). Plain connections never see any of it: the listener
//! picks TLS from the first byte of a connection (a TLS record starts with 0x16), and the
//! connection loop is generic over the stream.

mod client_cert;
mod files;
mod transport;

pub use files::CertError;
pub(crate) use transport::TlsTransport;
#[cfg(test)]
pub(crate) use transport::test_pair;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;

/// What sessions need to know about TLS, shared by all of them for the server's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsPolicy {
    /// The IRC STS policy advertised, when it is on.
    pub sts: Option<Sts>,
    /// Plain-text logins are refused, except from loopback and the Unix socket.
    pub require_tls: bool,
}

/// IRCv3 Strict Transport Security: plain IRC sessions are told the TLS port, TLS sessions
/// how long clients must keep to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sts {
    /// The IRC TLS port.
    pub port: u16,
    /// Seconds clients keep to TLS.
    pub duration: u64,
}

/// How long STS holds clients to TLS when the certificate comes with a chain (a CA's): 30
/// days, renewed at every TLS connection.
pub const DEFAULT_STS_DURATION: u64 = 30 * 24 * 3600;

/// The policy of a server with `tls` (its certificate), its IRC TLS port, the `sts_duration`
/// setting (`None`: automatic) and `require_tls`; `None` when there is nothing to say. STS is
/// automatic only for a certificate that comes with its issuers' chain: a lone (self-signed)
/// certificate fails the validation STS clients must do, and advertising STS with it would
/// lock them out.
pub fn policy(
    tls: Option<&Tls>,
    irc_tls_port: Option<u16>,
    sts_duration: Option<u64>,
    require_tls: bool,
) -> Option<&'static TlsPolicy> {
    let sts = match (tls, irc_tls_port, sts_duration) {
        (Some(_), Some(port), Some(duration)) if duration > 0 => Some(Sts { port, duration }),
        (Some(tls), Some(port), None) if tls.has_chain() => {
            Some(Sts { port, duration: DEFAULT_STS_DURATION })
        }
        _ => None,
    };
    if sts.is_none() && !require_tls {
        return None;
    }
    // Leaked once per server: every session borrows it for the server's lifetime.
    Some(Box::leak(Box::new(TlsPolicy { sts, require_tls })))
}

/// The first byte of every TLS connection (a handshake record).
pub const HANDSHAKE_RECORD: u8 = 0x16;

/// The server's TLS setup: one per server, shared by every listener.
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<CurrentCert>,
    provider: Arc<CryptoProvider>,
    cert: PathBuf,
    key: PathBuf,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate and key; fails with one sentence naming the file at fault.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, CertError> {
        let provider = Arc::new(provider());
        let certified = files::load(cert, key, &provider)?;
        log_loaded(&certified, cert, "TLS certificate loaded");
        let current = Arc::new(CurrentCert(RwLock::new(certified)));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_client_cert_verifier(Arc::new(client_cert::AnyClientCertificate::new(&provider)))
            .with_cert_resolver(current.clone());
        config.ignore_client_order = true;
        Ok(Arc::new(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            current,
            provider,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        }))
    }

    /// Reads the files again: new handshakes present the new certificate, connections already
    /// made keep theirs. On error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), CertError> {
        let certified = files::load(&self.cert, &self.key, &self.provider)?;
        log_loaded(&certified, &self.cert, "TLS certificate reloaded");
        *self.current.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = certified;
        Ok(())
    }

    /// True when the certificate came with more than itself (its issuers): a CA's certificate,
    /// not a self-signed one.
    pub fn has_chain(&self) -> bool {
        self.current.get().cert.len() > 1
    }

    /// The SHA-256 fingerprint of the certificate new handshakes present.
    pub fn fingerprint(&self) -> String {
        let current = self.current.get();
        current.cert.first().map(|der| natter_proto::fingerprint::sha256(der)).unwrap_or_default()
    }

    /// Runs the server side of the handshake on `tcp` (whose first bytes are still unread).
    /// The caller bounds it in time.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsTransport> {
        let stream = self.acceptor.accept(tcp).await?;
        Ok(TlsTransport::new(stream))
    }
}

/// The cryptography: *ring*, which builds with a C compiler alone. rustls 0.23.48 deprecates
/// it for lacking post-quantum key exchange (X25519MLKEM768 needs aws-lc-rs, whose build is
/// several times longer); classical X25519 is what chat clients negotiate today.
///
/// The server picks the cipher (`ignore_client_order`), AES-128-GCM first: fanout encrypts
/// every byte a room sends to every member, and AES-128 takes 10 rounds to AES-256's 14 with
/// the same hardware support (rustls' clients ask for AES-256 first; interleaved fanout runs
/// gave medians of 11.7M against 9.9M deliveries per server CPU-second, within the machine's
/// drift but in the expected direction).
#[allow(deprecated)]
fn provider() -> CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    use rustls::CipherSuite as C;
    let rank = |suite: C| match suite {
        C::TLS13_AES_128_GCM_SHA256 => 0,
        C::TLS13_AES_256_GCM_SHA384 => 1,
        C::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 3,
        _ => 4,
    };
    // Stable: the rest keeps ring's order.
    provider.cipher_suites.sort_by_key(|suite| rank(suite.suite()));
    provider
}

fn log_loaded(certified: &CertifiedKey, path: &Path, what: &'static str) {
    let fingerprint =
        certified.cert.first().map(|der| natter_proto::fingerprint::sha256(der)).unwrap_or_default();
    tracing::info!(cert = %path.display(), sha256 = %fingerprint, "{what}");
}

/// The certificate new handshakes present; replaced whole on reload.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_certificate_made_by_natter_cert_loads_and_its_fingerprint_is_the_one_served() {
        let dir = tempfile::tempdir().unwrap();
        let made = crate::cert::make(&["chat.example".into(), "127.0.0.1".into()], 30).unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, &made.cert_pem).unwrap();
        std::fs::write(&key, &made.key_pem).unwrap();
        let tls = super::Tls::load(&cert, &key).unwrap();
        assert_eq!(tls.fingerprint(), made.fingerprint);
        assert!(!tls.has_chain(), "a self-signed certificate comes alone");
    }
}
