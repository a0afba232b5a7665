//! TLS for `natter connect` (and `natter bench`): which certificates the client trusts.
//!
//! A certificate that the system's roots vouch for is trusted, as a browser would. One they
//! do not vouch for (a self-signed certificate from `natter cert`) is trusted on first use,
//! like ssh's known hosts: its SHA-256 fingerprint is announced and remembered in
//! `$XDG_DATA_HOME/natter/known_hosts` (mode 0600), and from then on only that certificate is
//! accepted for that `host:port`; a changed one is refused with both fingerprints and the line
//! to delete. `--fingerprint` pins a certificate explicitly (nothing else is accepted, whoever
//! vouches for it). Either way the server must prove it holds the certificate's key: the
//! handshake signature is always checked.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// How the client decides to trust a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots, else trust on first use with this known-hosts file (`None`: no
    /// data directory; the fingerprint is then remembered for this run only).
    RootsOrFirstUse(Option<PathBuf>),
    /// Exactly this certificate (SHA-256 fingerprint, `AA:BB:...`).
    Fingerprint(String),
    /// Any certificate at all: `natter bench --tls-insecure` against a server on this machine.
    /// Encrypts, proves nothing.
    Anything,
}

/// Where trust-on-first-use fingerprints are kept: `$XDG_DATA_HOME/natter/known_hosts`.
pub fn default_known_hosts() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::data_dir)?;
    Some(base.join("natter").join("known_hosts"))
}

/// What a certificate check found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    /// The system's roots vouch for it.
    Verified,
    /// It is the pinned (given or remembered) certificate.
    Pinned,
    /// Not vouched for and never seen: trusted now, to be remembered.
    FirstUse {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// Not the certificate expected: refused.
    Changed {
        /// The fingerprint expected.
        expected: String,
        /// The fingerprint presented.
        presented: String,
        /// Where the expected one is remembered (file, line from 1); `None` for `--fingerprint`.
        remembered: Option<(PathBuf, usize)>,
    },
}

/// A TLS client for one server address.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    verifier: Arc<Verifier>,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("addr", &self.verifier.addr)
            .field("trust", &self.verifier.trust)
            .finish()
    }
}

/// Why a TLS connection was not made; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The address has no usable host name.
    #[error("{0:?} has no host name TLS can check; give HOST:PORT")]
    BadHost(String),
    /// The certificate is not the one expected.
    #[error("{0}")]
    Refused(String),
    /// The handshake failed (not TLS, no shared protocol, the server's own refusal...).
    #[error("TLS handshake with {addr} failed: {source}; is TLS on there (natter serve --tls-cert)?")]
    Handshake {
        /// The server.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// *ring*: builds with a C compiler alone (rustls 0.23.48 deprecates it only for lacking
/// post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The host part of `host:port` (IPv6 brackets removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

impl ClientTls {
    /// A client for `addr` (`host:port`) trusting as `trust` says.
    pub fn new(addr: &str, trust: Trust) -> Result<Self, TlsError> {
        let provider = provider();
        let server_name = ServerName::try_from(host_of(addr).to_string())
            .map_err(|_| TlsError::BadHost(addr.to_string()))?;
        let roots = match trust {
            Trust::RootsOrFirstUse(_) => system_roots(&provider),
            _ => None,
        };
        let verifier = Arc::new(Verifier {
            addr: addr.to_string(),
            trust,
            roots,
            provider: provider.clone(),
            remembered: Mutex::new(None),
            first_use: Mutex::new(None),
            refused: Mutex::new(None),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Self { connector: tokio_rustls::TlsConnector::from(Arc::new(config)), verifier, server_name })
    }

    /// Runs the handshake on `tcp`. A certificate trusted on first use is remembered (in the
    /// known-hosts file when there is one) once the handshake proved the server holds its key,
    /// and its fingerprint returned for the caller to announce (once, however many handshakes
    /// run at once: `natter bench` shares one client).
    pub async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Option<String>), TlsError> {
        match self.connector.connect(self.server_name.clone(), tcp).await {
            Ok(stream) => {
                let presented = stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
                let presented = presented.map(|cert| natter_proto::fingerprint::sha256(cert));
                let candidate = self.verifier.first_use.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let first_use = match (presented, candidate) {
                    (Some(presented), Some(candidate)) if presented == candidate => {
                        self.verifier.remember(&presented).then_some(presented)
                    }
                    _ => None,
                };
                Ok((stream, first_use))
            }
            Err(source) => match self.verifier.refused.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                Some(Checked::Changed { expected, presented, remembered }) => Err(TlsError::Refused(
                    changed_message(&self.verifier.addr, &expected, &presented, remembered),
                )),
                _ => Err(TlsError::Handshake { addr: self.verifier.addr.clone(), source }),
            },
        }
    }

    /// What to tell the user about a certificate trusted on first use.
    pub fn first_use_message(&self, fingerprint: &str) -> String {
        let place = match &self.verifier.trust {
            Trust::RootsOrFirstUse(Some(file)) => format!("remembered in {}", file.display()),
            _ => "remembered for this session".to_string(),
        };
        format!(
            "{} presented a certificate no certificate authority vouches for (self-signed?); \
             trusting it on first use, SHA-256 fingerprint {fingerprint}, {place}; \
             compare it with the one the server's operator gives you",
            self.verifier.addr
        )
    }
}

fn changed_message(
    addr: &str,
    expected: &str,
    presented: &str,
    remembered: Option<(PathBuf, usize)>,
) -> String {
    match remembered {
        Some((file, line)) => format!(
            "WARNING: the certificate of {addr} has changed: it was SHA-256 {expected}, it is now {presented}. \
             Someone may be intercepting the connection, or the server has a new certificate. Not connected. \
             If the server's operator confirms the new fingerprint, delete line {line} of {} and connect again",
            file.display()
        ),
        None => format!(
            "the certificate of {addr} has SHA-256 fingerprint {presented}, not the {expected} given with \
             --fingerprint; not connected (someone may be intercepting the connection, or the server has a new \
             certificate: ask its operator)"
        ),
    }
}

/// The system's trusted roots; `None` (logged nowhere: first use then decides) when there
/// are none to load.
fn system_roots(provider: &Arc<CryptoProvider>) -> Option<Arc<WebPkiServerVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().ok()
}

/// The certificate check itself (see the module docs).
#[derive(Debug)]
struct Verifier {
    addr: String,
    trust: Trust,
    roots: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    /// A fingerprint trusted on first use in this process (when there is no file to keep it).
    remembered: Mutex<Option<String>>,
    /// The last certificate trusted on first use by a check, remembered once a handshake
    /// with it succeeds.
    first_use: Mutex<Option<String>>,
    /// The last certificate refused, for the message that says why.
    refused: Mutex<Option<Checked>>,
}

impl Verifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Checked {
        let presented = natter_proto::fingerprint::sha256(end_entity);
        let file = match &self.trust {
            Trust::Anything => return Checked::Pinned,
            Trust::Fingerprint(expected) if *expected == presented => return Checked::Pinned,
            Trust::Fingerprint(expected) => {
                return Checked::Changed { expected: expected.clone(), presented, remembered: None };
            }
            Trust::RootsOrFirstUse(file) => file,
        };
        if let Some(roots) = &self.roots
            && roots.verify_server_cert(end_entity, intermediates, name, &[], now).is_ok()
        {
            return Checked::Verified;
        }
        if let Some(known) = self.remembered.lock().unwrap_or_else(|p| p.into_inner()).clone()
            && known == presented
        {
            return Checked::Pinned;
        }
        match file.as_deref().and_then(|file| known_host(file, &self.addr).map(|(line, fp)| (file, line, fp)))
        {
            Some((_, _, known)) if known == presented => Checked::Pinned,
            Some((file, line, known)) => {
                Checked::Changed { expected: known, presented, remembered: Some((file.to_path_buf(), line)) }
            }
            None => Checked::FirstUse { fingerprint: presented },
        }
    }

    /// Keeps a fingerprint trusted on first use: in memory, and in the known-hosts file.
    /// True when this call remembered it (the first use to announce).
    fn remember(&self, fingerprint: &str) -> bool {
        let mut remembered = self.remembered.lock().unwrap_or_else(|p| p.into_inner());
        if remembered.is_some() {
            return false;
        }
        *remembered = Some(fingerprint.to_string());
        if let Trust::RootsOrFirstUse(Some(file)) = &self.trust {
            // Not fatal: the fingerprint is still pinned for this session.
            let _ = append_known_host(file, &self.addr, fingerprint);
        }
        true
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, server_name, now) {
            Checked::FirstUse { fingerprint } => {
                *self.first_use.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
            }
            changed @ Checked::Changed { .. } => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(changed);
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ));
            }
            Checked::Verified | Checked::Pinned => {}
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The line (from 1) and fingerprint remembered for `addr` in a known-hosts file: lines of
/// `HOST:PORT FINGERPRINT`, `#` comments and blank lines ignored.
pub fn known_host(file: &Path, addr: &str) -> Option<(usize, String)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().enumerate().find_map(|(i, line)| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some(host), Some(fp)) if host == addr && !host.starts_with('#') => Some((i + 1, fp.to_string())),
            _ => None,
        }
    })
}

/// Adds `addr fingerprint` to the known-hosts file, creating it (and its directory) readable
/// by its owner only.
fn append_known_host(file: &Path, addr: &str, fingerprint: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(file)?;
    writeln!(out, "{addr} {fingerprint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_found_by_address_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("natter").join("known_hosts");
        assert_eq!(known_host(&file, "a:1"), None);
        append_known_host(&file, "a:1", "AA").unwrap();
        append_known_host(&file, "[::1]:7878", "BB").unwrap();
        assert_eq!(known_host(&file, "[::1]:7878"), Some((2, "BB".into())));
        assert_eq!(known_host(&file, "a:1"), Some((1, "AA".into())));
        assert_eq!(known_host(&file, "a:2"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn host_names_are_taken_from_addresses() {
        assert_eq!(host_of("chat.example:7878"), "chat.example");
        assert_eq!(host_of("[::1]:7878"), "::1");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
    }
}
