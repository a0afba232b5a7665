//! `natter cert`: a self-signed certificate and key for a host name, so that a first
//! deployment needs no certificate authority. The fingerprint it prints is what clients pin
//! (`natter connect --tls --fingerprint`), and what they show on first use.

use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Flags of `natter cert`.
#[derive(Debug, clap::Args)]
pub struct CertArgs {
    /// Host name (or IP address) clients connect to; repeat for several.
    #[arg(long = "host", value_name = "NAME", required = true)]
    pub hosts: Vec<String>,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "PATH", default_value = "natter-cert.pem")]
    pub cert: PathBuf,
    /// Where to write the private key (PEM, PKCS#8, readable by its owner only).
    #[arg(long, value_name = "PATH", default_value = "natter-key.pem")]
    pub key: PathBuf,
    /// Days the certificate is valid from today.
    #[arg(long, value_name = "N", default_value_t = 3650)]
    pub days: u32,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

/// Runs `natter cert`.
pub fn run(args: CertArgs) -> anyhow::Result<()> {
    if !args.force {
        for path in [&args.cert, &args.key] {
            if path.exists() {
                anyhow::bail!(
                    "{} already exists; choose another path with --cert/--key, or replace it with --force",
                    path.display()
                );
            }
        }
    }
    let made = make(&args.hosts, args.days)?;
    write_file(&args.key, made.key_pem.as_bytes(), 0o600, args.force)?;
    write_file(&args.cert, made.cert_pem.as_bytes(), 0o644, args.force)?;
    let (cert, key) = (args.cert.display(), args.key.display());
    // The files are written: a reader of this report that went away (`| head -1`) changes
    // nothing.
    say!("certificate: {cert} (self-signed for {}, {} days)", args.hosts.join(", "), args.days);
    say!("key:         {key} (readable by you only)");
    say!("sha256 fingerprint: {}", made.fingerprint);
    say!("serve with:  natter serve --tcp 0.0.0.0:7878 --tls-cert {cert} --tls-key {key}");
    say!("clients:     natter connect --tls {}:7878 --fingerprint {}", args.hosts[0], made.fingerprint);
    Ok(())
}

/// A certificate and key, as PEM, and the certificate's fingerprint.
pub struct SelfSigned {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
    /// SHA-256 of the certificate, `AA:BB:...`.
    pub fingerprint: String,
}

/// Makes a self-signed ECDSA P-256 certificate for `hosts`, valid for `days` from today.
pub fn make(hosts: &[String], days: u32) -> anyhow::Result<SelfSigned> {
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).with_context(|| {
        format!("{} is not a host name or IP address; give one with --host", hosts.join(", "))
    })?;
    params.distinguished_name.push(rcgen::DnType::CommonName, hosts[0].clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let today = now.as_secs() / 86_400;
    let (y, m, d) = civil_date(today);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_date(today + u64::from(days));
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let cert = params.self_signed(&key).context("signing the certificate")?;
    Ok(SelfSigned {
        fingerprint: natter_proto::fingerprint::sha256(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The calendar date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> (i32, u8, u8) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// Writes a new file with `mode` (unix), refusing to replace one unless `force`.
fn write_file(path: &Path, bytes: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    // A replaced file keeps its old mode: set it, so an old key file readable by others is not.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))?;
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right_around_leap_years() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_819), (2027, 1, 1));
    }

    #[test]
    fn an_existing_file_is_not_replaced_without_force_and_a_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        write_file(&key, b"first", 0o600, false).unwrap();
        assert!(write_file(&key, b"second", 0o600, false).is_err());
        assert_eq!(std::fs::read(&key).unwrap(), b"first");
        write_file(&key, b"third", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&key).unwrap(), b"third");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
