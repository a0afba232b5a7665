//! Saved logins: the resume tokens `natter connect` keeps so that a user who logged in to an
//! account stays logged in across reconnects and restarts, without the password ever being
//! written anywhere (`docs/accounts.md`).
//!
//! One file per server address and starting nickname in `$XDG_DATA_HOME/natter/resume/`
//! (usually `~/.local/share/natter/resume/`): the directory is made readable by its owner only
//! (0700), each file too (0600), and a file is written whole to a temporary file and renamed
//! into place, so that a crash never leaves half a token.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A saved login file larger than this is not one of ours: it is not read.
const MAX_FILE_BYTES: u64 = 4096;

/// What a saved login holds: the account and the token that logs in to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLogin {
    /// The account, as registered.
    pub account: String,
    /// The resume token (never shown: `Debug` hides it).
    pub token: String,
}

impl std::fmt::Debug for SavedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedLogin").field("account", &self.account).finish_non_exhaustive()
    }
}

/// The directory of saved logins, and which file is whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedLogins {
    dir: PathBuf,
}

impl SavedLogins {
    /// Saved logins in `dir` (tests use a temporary one).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_DATA_HOME/natter/resume`, or the platform's data directory's; `None` when the
    /// system names no home for data (then nothing is saved).
    pub fn default_location() -> Option<Self> {
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::data_dir)?;
        Some(Self::in_dir(base.join("natter").join("resume")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the login to `addr` started as `nick`.
    pub fn file(&self, addr: &str, nick: &str) -> PathBuf {
        self.dir.join(file_name(addr, &natter_proto::names::fold(nick)))
    }

    /// The saved login for `addr` and `nick`, if there is a readable one.
    pub fn load(&self, addr: &str, nick: &str) -> Option<SavedLogin> {
        let file = std::fs::File::open(self.file(addr, nick)).ok()?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES).read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves the login for `addr` and `nick`, replacing any: the directory is created (0700),
    /// the file written whole (0600) and renamed into place.
    pub fn save(&self, addr: &str, nick: &str, login: &SavedLogin) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let target = self.file(addr, nick);
        let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = self.dir.join(tmp_name);
        let written = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = options.open(&tmp)?;
            // A temporary file left by a crash may have been made with other permissions.
            set_mode(&tmp, 0o600)?;
            let json = serde_json::to_string(login).map_err(std::io::Error::other)?;
            out.write_all(json.as_bytes())?;
            out.write_all(b"\n")?;
            out.sync_all()?;
            std::fs::rename(&tmp, &target)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        // The rename is durable once the directory is.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Deletes the login for `addr` and `nick`; nothing when there is none.
    pub fn forget(&self, addr: &str, nick: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.file(addr, nick)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

/// `addr` and the folded `nick` as one file name: letters, digits, `.` and `-` as they are,
/// every other byte as `%XX`, so that no address or nickname can name a path elsewhere.
fn file_name(addr: &str, nick: &str) -> String {
    let mut name = String::new();
    for (i, part) in [addr, nick].into_iter().enumerate() {
        if i > 0 {
            name.push('_');
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
    }
    name
}

/// Creates `dir` (and its parents) and makes it its owner's alone (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    // It may have existed with other permissions.
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(token: &str) -> SavedLogin {
        SavedLogin { account: "Ann".into(), token: token.into() }
    }

    #[test]
    fn a_saved_login_is_read_back_replaced_and_forgotten_in_private_files() {
        let home = tempfile::tempdir().unwrap();
        let logins = SavedLogins::in_dir(home.path().join("natter").join("resume"));
        assert_eq!(logins.load("127.0.0.1:7878", "ann"), None);
        logins.save("127.0.0.1:7878", "Ann", &login("first")).unwrap();
        logins.save("127.0.0.1:7878", "ann", &login("second")).unwrap();
        assert_eq!(logins.load("127.0.0.1:7878", "ANN"), Some(login("second")), "one file per folded nick");
        assert_eq!(logins.load("127.0.0.1:7879", "ann"), None, "another server's is another file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(logins.dir()), 0o700);
            assert_eq!(mode(&logins.file("127.0.0.1:7878", "ann")), 0o600);
        }
        let entries: Vec<_> = std::fs::read_dir(logins.dir()).unwrap().collect();
        assert_eq!(entries.len(), 1, "no temporary file left: {entries:?}");
        logins.forget("127.0.0.1:7878", "ann").unwrap();
        logins.forget("127.0.0.1:7878", "ann").unwrap();
        assert_eq!(logins.load("127.0.0.1:7878", "ann"), None);
        assert_eq!(format!("{:?}", login("secret")), r#"SavedLogin { account: "Ann", .. }"#);
    }

    #[test]
    fn a_loose_directory_is_tightened_and_odd_names_stay_inside_it() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("resume");
        std::fs::create_dir(&dir).unwrap();
        #[cfg(unix)]
        set_mode(&dir, 0o755).unwrap();
        let logins = SavedLogins::in_dir(&dir);
        let name = file_name("[::1]:7878", "../../etc/passwd");
        assert!(!name.contains('/'), "{name}");
        logins.save("[::1]:7878", "../../etc/passwd", &login("t")).unwrap();
        assert!(logins.file("[::1]:7878", "../../etc/passwd").starts_with(&dir));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // Not ours: garbage or a huge file is not a saved login.
        std::fs::write(logins.file("h:1", "x"), "not json").unwrap();
        assert_eq!(logins.load("h:1", "x"), None);
        std::fs::write(logins.file("h:1", "y"), vec![b' '; 10_000]).unwrap();
        assert_eq!(logins.load("h:1", "y"), None);
    }
}
