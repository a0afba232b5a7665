//! Reading a certificate chain and its private key from PEM files into what rustls serves,
//! with errors that name the file and say what to do: a server that cannot read its
//! certificate must say so in one sentence at start, and a bad reload must not be mistaken
//! for a good one.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The file could not be read.
    #[error(
        "cannot read the TLS {what} file {}: {problem}; give an existing PEM file with --tls-{what} (natter cert makes a self-signed pair)",
        path.display()
    )]
    Read {
        /// `cert` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (not a `source`: the one sentence already says it).
        problem: std::io::Error,
    },
    /// The file holds no usable PEM item of the kind wanted.
    #[error("the TLS {what} file {} {problem}; give a PEM file with --tls-{what} (natter cert makes a self-signed pair)", path.display())]
    Pem {
        /// `cert` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, as a phrase after the file's name.
        problem: String,
    },
    /// The key does not fit the certificate, or neither is one rustls can use.
    #[error(
        "the TLS key {} does not go with the certificate {}: {problem}; give the key the certificate was made for",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        problem: rustls::Error,
    },
}

/// Largest certificate or key file read: a chain is a few KiB; anything bigger is a mistake
/// (a wrong path to some large file), not a certificate.
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Reads `cert` (a PEM chain, the server's certificate first) and `key` (a PEM private key:
/// PKCS#8, PKCS#1 or SEC1) and checks that they go together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, CertError> {
    let cert_pem = read("cert", cert)?;
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(&cert_pem) {
        match item {
            Ok(der) => chain.push(der),
            Err(e) => return Err(pem_error("cert", cert, format!("is not valid PEM ({e})"))),
        }
    }
    if chain.is_empty() {
        return Err(pem_error("cert", cert, "holds no CERTIFICATE section".into()));
    }
    let key_pem = read("key", key)?;
    let private = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(der) => der,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(pem_error("key", key, "holds no PRIVATE KEY section".into()));
        }
        Err(e) => return Err(pem_error("key", key, format!("is not valid PEM ({e})"))),
    };
    let certified = CertifiedKey::from_der(chain, private, provider).map_err(|problem| {
        CertError::Mismatch { cert: cert.to_path_buf(), key: key.to_path_buf(), problem }
    })?;
    Ok(Arc::new(certified))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, CertError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|problem| CertError::Read {
        what,
        path: path.to_path_buf(),
        problem,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes).map_err(|problem| CertError::Read {
        what,
        path: path.to_path_buf(),
        problem,
    })?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(pem_error(what, path, "is larger than 1 MiB, which no certificate or key is".into()));
    }
    Ok(bytes)
}

fn pem_error(what: &'static str, path: &Path, problem: String) -> CertError {
    CertError::Pem { what, path: path.to_path_buf(), problem }
}
