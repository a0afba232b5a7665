//! TLS for the TCP doors: the certificate the server presents (read from PEM files, swapped on
//! SIGHUP without touching established connections), the handshake, and the stream type TLS
//! connections use ([`TlsTransport`]). Plain connections never see any of it: the listener
//! picks TLS from the first byte of a connection (a TLS record starts with 0x16), and the
//! connection loop is generic over the stream.

mod files;
mod transport;

pub use files::CertError;
pub(crate) use transport::TlsTransport;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::net::TcpStream;

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
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
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
#[allow(deprecated)]
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
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
