//! `natter user add|passwd|del|list|cert`: account administration against the store, also while a
//! server runs on it (`natter_store::open_beside_server`: the server reads an account from the
//! store at every login, so a change takes effect at the next one; a PostgreSQL database is
//! shared by design, and the servers on it notice the change through `outside_writes`).
//!
//! Passwords are read from the terminal without echo, or from standard input when it is not a
//! terminal (one line, for scripts); never from the command line, where `ps` and the shell's
//! history would show them.

use anyhow::{Context as _, bail};
use natter_core::Store;
use natter_core::password::{Password, check_new_password, password_secrets};
use natter_core::store::AccountRecord;
use natter_proto::names::{fold, validate_nick};
use std::io::{BufRead, IsTerminal};

/// `natter user`: manage registered accounts.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Debug, clap::Subcommand)]
enum UserAction {
    /// Register an account (asks for its password).
    Add {
        /// The account name: a nickname, which registering protects.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set an account's password (asks for the new one); the account's saved logins (resume
    /// tokens) stop working.
    Passwd {
        /// The account name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Delete an account (its nickname is free again), with its saved logins.
    Del {
        /// The account name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the accounts: name, when registered, last login.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Register, unregister or list the TLS client certificates an account logs in with
    /// (SASL EXTERNAL), by SHA-256 fingerprint.
    Cert {
        /// The account name.
        name: String,
        #[command(subcommand)]
        action: CertAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum CertAction {
    /// Register a certificate's fingerprint (as `openssl x509 -noout -fingerprint -sha256`
    /// prints it, with or without colons).
    Add {
        /// The fingerprint.
        fingerprint: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Unregister a fingerprint.
    Del {
        /// The fingerprint.
        fingerprint: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the account's fingerprints.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, clap::Args)]
struct DbArg {
    /// The server's SQLite database file, or its PostgreSQL URL
    /// (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`).
    #[arg(long, default_value = "natter.db")]
    db: String,
}

/// Runs one `natter user` command.
pub fn run(args: UserArgs) -> anyhow::Result<()> {
    let stdout = &mut std::io::stdout().lock();
    match args.action {
        UserAction::Add { name, db } => {
            let folded = checked_name(&name)?;
            let store = open(&db.db)?;
            if store.account(&folded)?.is_some() {
                bail!("the account {name} already exists; `natter user passwd {name}` changes its password");
            }
            let password = read_new_password(&format!("password for {name}: "))?;
            let secrets = password_secrets(password.expose())?;
            let record = AccountRecord {
                folded,
                name: name.clone(),
                hash: secrets.hash,
                created_ts: natter_core::time::now_ms(),
                last_login_ts: None,
                scram: Some(secrets.scram),
            };
            if !store.create_account(&record)? {
                bail!("the account {name} already exists; `natter user passwd {name}` changes its password");
            }
            writeln_ok(stdout, &format!("registered {name}"))
        }
        UserAction::Passwd { name, db } => {
            let folded = checked_name(&name)?;
            let store = open(&db.db)?;
            if store.account(&folded)?.is_none() {
                bail!("no account {name}; `natter user add {name}` registers it");
            }
            let password = read_new_password(&format!("new password for {name}: "))?;
            let secrets = password_secrets(password.expose())?;
            if !store.set_account_hash(&folded, &secrets.hash, Some(&secrets.scram))? {
                bail!("no account {name} (it was deleted meanwhile)");
            }
            // Clients that kept a resume token must log in with the new password.
            let revoked = store.revoke_resume_tokens(&folded)?;
            writeln_ok(stdout, &format!("changed the password of {name}"))?;
            if revoked > 0 {
                writeln_ok(stdout, &format!("logged out {revoked} saved login(s) of {name}"))?;
            }
            Ok(())
        }
        UserAction::Del { name, db } => {
            let store = open(&db.db)?;
            if !store.delete_account(&fold(&name))? {
                bail!("no account {name}; `natter user list` shows the accounts");
            }
            writeln_ok(stdout, &format!("deleted {name}"))
        }
        UserAction::List { db } => {
            let store = open(&db.db)?;
            let accounts = store.accounts()?;
            for a in &accounts {
                let last = a.last_login_ts.map_or_else(|| "never".to_string(), date);
                writeln_ok(
                    stdout,
                    &format!("{}\tregistered {}\tlast login {last}", a.name, date(a.created_ts)),
                )?;
            }
            if accounts.is_empty() {
                eprintln!("no accounts; `natter user add NAME` registers one");
            }
            Ok(())
        }
        UserAction::Cert { name, action } => certificates(&name, action, stdout),
    }
}

/// `natter user cert NAME add|del|list`.
fn certificates(name: &str, action: CertAction, stdout: &mut impl std::io::Write) -> anyhow::Result<()> {
    let folded = fold(name);
    let db = match &action {
        CertAction::Add { db, .. } | CertAction::Del { db, .. } | CertAction::List { db } => &db.db,
    };
    let store = open(db)?;
    if store.account(&folded)?.is_none() {
        bail!("no account {name}; `natter user list` shows the accounts");
    }
    let fingerprint = |text: &str| {
        natter_proto::fingerprint::parse_sha256(text).ok_or_else(|| {
            anyhow::anyhow!(
                "{text:?} is not a SHA-256 fingerprint: expected 64 hexadecimal digits, colons allowed"
            )
        })
    };
    match action {
        CertAction::Add { fingerprint: text, .. } => {
            let fp = fingerprint(&text)?;
            if !store.add_certificate(&folded, &fp, natter_core::time::now_ms())? {
                match store.account_by_certificate(&fp)? {
                    Some(owner) => bail!("that certificate is already registered to {}", owner.name),
                    None => bail!("no account {name} (it was deleted meanwhile)"),
                }
            }
            writeln_ok(stdout, &format!("{name} can now log in with the certificate {fp}"))
        }
        CertAction::Del { fingerprint: text, .. } => {
            let fp = fingerprint(&text)?;
            if !store.remove_certificate(&folded, &fp)? {
                bail!(
                    "the certificate {fp} is not registered to {name}; `natter user cert {name} list` shows them"
                );
            }
            writeln_ok(stdout, &format!("removed the certificate {fp} from {name}"))
        }
        CertAction::List { .. } => {
            let certs = store.certificates(&folded)?;
            for fp in &certs {
                writeln_ok(stdout, fp)?;
            }
            if certs.is_empty() {
                eprintln!(
                    "{name} has no certificates; `natter user cert {name} add FINGERPRINT` registers one"
                );
            }
            Ok(())
        }
    }
}

fn writeln_ok(out: &mut impl std::io::Write, line: &str) -> anyhow::Result<()> {
    writeln!(out, "{line}").context("writing to standard output")
}

/// A time as UTC, to the minute.
fn date(ms: u64) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)) else {
        return ms.to_string();
    };
    ts.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The folded account name, or why the name cannot be an account.
fn checked_name(name: &str) -> anyhow::Result<String> {
    validate_nick(name).map_err(|e| anyhow::anyhow!("{name:?} cannot be an account name: {e}"))?;
    let folded = fold(name);
    if natter_core::hub::SERVICE_NICKS.iter().any(|s| fold(s) == folded) {
        bail!("{name} is reserved for the server and its services; choose another name");
    }
    Ok(folded)
}

fn open(db: &str) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    Ok(natter_store::open_beside_server(db)?)
}

/// Reads a new password: twice without echo on a terminal, one line from standard input
/// otherwise. Refuses one that breaks the rules.
fn read_new_password(prompt: &str) -> anyhow::Result<Password> {
    let password = if std::io::stdin().is_terminal() {
        let first = Password::new(rpassword::prompt_password(prompt).context("reading the password")?);
        let again = Password::new(rpassword::prompt_password("again: ").context("reading the password")?);
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = zeroize::Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        Password::from(trimmed)
    };
    check_new_password(password.expose()).map_err(|p| anyhow::anyhow!("{p}; nothing was changed"))?;
    Ok(password)
}
