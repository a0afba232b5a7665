//! Settings: command-line flags over the config file over built-in defaults.
//!
//! The config file lives at `$XDG_CONFIG_HOME/natter/client.toml` (usually
//! `~/.config/natter/client.toml`) so that people who always use the same server and nick need
//! no flags:
//!
//! ```toml
//! nick = "ann"
//! room = "#rust"
//! server = "home"          # a saved server's name, or HOST[:PORT][,HOST[:PORT]...]
//! mouse = true             # mouse wheel scrolls (disables the terminal's own selection)
//!
//! [servers.home]
//! address = "chat.example.org:7878"   # or the nodes of a cluster: "a.example,b.example"
//! nick = "ann_home"        # optional, overrides the top-level nick
//! room = "#family"         # optional
//! tls = true               # optional: connect over TLS
//! fingerprint = "AA:BB:…"  # optional: accept exactly this certificate (implies tls)
//! ```

use crate::Args;
use crate::conn::{DEFAULT_PORT, LOBBY, MAX_SERVERS};
use natter_proto::names::{validate_nick, validate_room};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the settings could not be worked out; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file exists but cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// The nickname breaks the naming rules.
    #[error("invalid nickname {nick:?}: {reason}; choose another with --nick")]
    Nick {
        /// The nickname.
        nick: String,
        /// The rule broken.
        reason: String,
    },
    /// The room name breaks the naming rules.
    #[error("invalid room {room:?}: {reason}; use --room '#name'")]
    Room {
        /// The room.
        room: String,
        /// The rule broken.
        reason: String,
    },
    /// The fingerprint is not 32 bytes of hex.
    #[error(
        "invalid certificate fingerprint {0:?}: give the SHA-256 fingerprint natter serve prints (AA:BB:... , 64 hex digits)"
    )]
    Fingerprint(String),
    /// The server address cannot be understood.
    #[error("invalid server address {0:?}: use HOST, HOST:PORT or a server name from the config file")]
    Address(String),
    /// A list of servers has an empty item (`a,,b`, a trailing comma).
    #[error("the server list {0:?} has an empty address: separate HOST[:PORT] items with single commas")]
    EmptyAddress(String),
    /// A list of servers is longer than a client tries.
    #[error("the server list names {count} servers; give at most {max} (the nodes to try, in order)")]
    TooManyAddresses {
        /// How many were given.
        count: usize,
        /// The most accepted.
        max: usize,
    },
}

/// One saved server.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SavedServer {
    /// `HOST[:PORT]`, or several separated by commas (the nodes of a cluster, tried in order).
    pub address: String,
    /// Nickname to use on this server.
    pub nick: Option<String>,
    /// Room to open on this server.
    pub room: Option<String>,
    /// Connect over TLS.
    pub tls: Option<bool>,
    /// The SHA-256 fingerprint of the server's certificate (implies TLS).
    pub fingerprint: Option<String>,
}

/// The config file's contents.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Default nickname.
    pub nick: Option<String>,
    /// Default room.
    pub room: Option<String>,
    /// Default server: a saved server's name or `HOST[:PORT]` (or several, comma-separated).
    pub server: Option<String>,
    /// Whether the mouse wheel scrolls in the TUI (default true).
    pub mouse: Option<bool>,
    /// Saved servers by name.
    #[serde(default)]
    pub servers: BTreeMap<String, SavedServer>,
}

impl ConfigFile {
    /// Parses the file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_path_buf(), source }),
        }
    }
}

/// Where the config file is looked for when `--config` is not given.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(dirs::config_dir)?;
    Some(base.join("natter").join("client.toml"))
}

/// Everything the client needs to start, after flags, config file and defaults are merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `host:port` of each server to connect to, in the order they are tried (several are the
    /// nodes of one cluster); never empty, no duplicates.
    pub addrs: Vec<String>,
    /// Nickname.
    pub nick: String,
    /// Room to open.
    pub room: String,
    /// Reconnect when the connection drops.
    pub reconnect: bool,
    /// Mouse wheel scrolling in the TUI.
    pub mouse: bool,
    /// TLS, and which certificates to trust; `None` for plain TCP.
    pub tls: Option<crate::tls::Trust>,
}

/// Adds the default port to `HOST` (IPv6 addresses included); keeps `HOST:PORT`.
pub fn normalize_addr(addr: &str) -> Result<String, ConfigError> {
    let addr = addr.trim();
    let bad = || ConfigError::Address(addr.to_string());
    if addr.is_empty() || addr.contains(char::is_whitespace) {
        return Err(bad());
    }
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        return match tail {
            "" => Ok(format!("[{host}]:{DEFAULT_PORT}")),
            t => {
                let port = t.strip_prefix(':').ok_or_else(bad)?;
                port.parse::<u16>().map_err(|_| bad())?;
                Ok(addr.to_string())
            }
        };
    }
    match addr.matches(':').count() {
        0 => Ok(format!("{addr}:{DEFAULT_PORT}")),
        1 => {
            let (host, port) = addr.split_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
            Ok(addr.to_string())
        }
        _ => Ok(format!("[{addr}]:{DEFAULT_PORT}")),
    }
}

/// Splits a comma-separated list of servers and normalises each ([`normalize_addr`]); the
/// same server given twice is kept once, where it first appears. An empty item and more than
/// [`MAX_SERVERS`] servers are errors.
pub fn parse_addrs(list: &str) -> Result<Vec<String>, ConfigError> {
    let items: Vec<&str> = list.split(',').collect();
    if items.len() > MAX_SERVERS {
        return Err(ConfigError::TooManyAddresses { count: items.len(), max: MAX_SERVERS });
    }
    let mut addrs: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if item.trim().is_empty() {
            return Err(ConfigError::EmptyAddress(list.to_string()));
        }
        let addr = normalize_addr(item)?;
        if !addrs.iter().any(|a| a.eq_ignore_ascii_case(&addr)) {
            addrs.push(addr);
        }
    }
    Ok(addrs)
}

impl Settings {
    /// Merges the command line with the config file (loaded from `--config` or the XDG path).
    pub fn resolve(args: &Args) -> Result<Self, ConfigError> {
        let file = match args.config.clone().or_else(default_path) {
            Some(path) => ConfigFile::load(&path)?,
            None => ConfigFile::default(),
        };
        Self::merge(args, &file, std::env::var("USER").ok())
    }

    /// The pure part of [`Settings::resolve`]: flags over saved server over file over defaults.
    pub fn merge(args: &Args, file: &ConfigFile, user: Option<String>) -> Result<Self, ConfigError> {
        let server_name = args.server.clone().or_else(|| file.server.clone());
        let saved = server_name.as_deref().and_then(|n| file.servers.get(n));
        let addrs = match (saved, &server_name) {
            (Some(s), _) => parse_addrs(&s.address)?,
            (None, Some(a)) => parse_addrs(a)?,
            (None, None) => vec![format!("localhost:{DEFAULT_PORT}")],
        };
        let nick = args
            .nick
            .clone()
            .or_else(|| saved.and_then(|s| s.nick.clone()))
            .or_else(|| file.nick.clone())
            .or(user.filter(|u| validate_nick(u).is_ok()))
            .unwrap_or_else(|| "guest".to_string());
        validate_nick(&nick).map_err(|e| ConfigError::Nick { nick: nick.clone(), reason: e.to_string() })?;
        let room = args
            .room
            .clone()
            .or_else(|| saved.and_then(|s| s.room.clone()))
            .or_else(|| file.room.clone())
            .unwrap_or_else(|| LOBBY.to_string());
        let room = if room.starts_with('#') { room } else { format!("#{room}") };
        validate_room(&room).map_err(|e| ConfigError::Room { room: room.clone(), reason: e.to_string() })?;
        let fingerprint = match args.fingerprint.as_deref().or(saved.and_then(|s| s.fingerprint.as_deref())) {
            Some(text) => Some(
                natter_proto::fingerprint::parse_sha256(text)
                    .ok_or_else(|| ConfigError::Fingerprint(text.into()))?,
            ),
            None => None,
        };
        let tls = match fingerprint {
            Some(fingerprint) => Some(crate::tls::Trust::Fingerprint(fingerprint)),
            None if args.tls || saved.and_then(|s| s.tls).unwrap_or(false) => {
                Some(crate::tls::Trust::RootsOrFirstUse(crate::tls::default_known_hosts()))
            }
            None => None,
        };
        Ok(Settings {
            addrs,
            nick,
            room,
            reconnect: !args.no_reconnect,
            mouse: file.mouse.unwrap_or(true),
            tls,
        })
    }

    /// The connection options these settings ask for (servers, nick, TLS for each server).
    pub fn connect_options(&self) -> Result<crate::conn::ConnectOptions, crate::tls::TlsError> {
        let mut opts = crate::conn::ConnectOptions::new(self.addrs[0].clone(), &self.nick);
        opts.reconnect = self.reconnect;
        opts.saved_logins = crate::saved_login::SavedLogins::default_location();
        opts.servers = self
            .addrs
            .iter()
            .map(|addr| {
                let tls = match &self.tls {
                    Some(trust) => Some(crate::tls::ClientTls::new(addr, trust.clone())?),
                    None => None,
                };
                Ok(crate::conn::Endpoint { addr: addr.clone(), tls })
            })
            .collect::<Result<_, crate::tls::TlsError>>()?;
        Ok(opts)
    }

    /// The servers as the user gave them, for messages: `a:7878, b:7878`.
    pub fn addrs_text(&self) -> String {
        self.addrs.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: Option<&str>, nick: Option<&str>) -> Args {
        Args {
            server: server.map(Into::into),
            nick: nick.map(Into::into),
            room: None,
            line: false,
            json: false,
            no_reconnect: false,
            config: None,
            tls: false,
            fingerprint: None,
        }
    }

    #[test]
    fn addresses_get_the_default_port() {
        assert_eq!(normalize_addr("example.org").unwrap(), "example.org:7878");
        assert_eq!(normalize_addr("example.org:99").unwrap(), "example.org:99");
        assert_eq!(normalize_addr("::1").unwrap(), "[::1]:7878");
        assert_eq!(normalize_addr("[::1]").unwrap(), "[::1]:7878");
        assert_eq!(normalize_addr("[::1]:5").unwrap(), "[::1]:5");
        assert!(normalize_addr("host:port").is_err());
        assert!(normalize_addr(":7878").is_err());
        assert!(normalize_addr("").is_err());
    }

    #[test]
    fn server_lists_are_split_normalised_deduplicated_and_bounded() {
        assert_eq!(parse_addrs("a,b:99, [::1] ").unwrap(), ["a:7878", "b:99", "[::1]:7878"]);
        assert_eq!(parse_addrs("a,A:7878,b,a").unwrap(), ["a:7878", "b:7878"], "duplicates kept once");
        for bad in ["a,,b", "a,", ",a", " , "] {
            assert!(matches!(parse_addrs(bad), Err(ConfigError::EmptyAddress(_))), "{bad}");
        }
        let e = parse_addrs("a,b:70000").unwrap_err();
        assert!(matches!(&e, ConfigError::Address(a) if a == "b:70000"), "{e}");
        let many: Vec<String> = (0..100).map(|i| format!("h{i}")).collect();
        let e = parse_addrs(&many.join(",")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server list names 100 servers; give at most 16 (the nodes to try, in order)"
        );
        assert_eq!(parse_addrs(&many[..16].join(",")).unwrap().len(), 16);
        let file = ConfigFile::parse(
            "[servers.cluster]\naddress = \"n1.example, n2.example:7000\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let s = Settings::merge(&args(Some("cluster"), Some("ann")), &file, None).unwrap();
        assert_eq!(s.addrs, ["n1.example:7878", "n2.example:7000"]);
    }

    #[test]
    fn flags_beat_saved_servers_beat_file_beat_defaults() {
        let file = ConfigFile::parse(
            "nick = \"filenick\"\nserver = \"home\"\n[servers.home]\naddress = \"h.example\"\nroom = \"#fam\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let s = Settings::merge(&args(None, None), &file, Some("user".into())).unwrap();
        assert_eq!(
            (s.addrs.join(","), s.nick.as_str(), s.room.as_str()),
            ("h.example:7878".to_string(), "filenick", "#fam")
        );
        let s = Settings::merge(&args(Some("other:1"), Some("flag")), &file, None).unwrap();
        assert_eq!(
            (s.addrs.join(","), s.nick.as_str(), s.room.as_str()),
            ("other:1".into(), "flag", "#lobby")
        );
        let s = Settings::merge(&args(None, None), &ConfigFile::default(), Some("9bad".into())).unwrap();
        assert_eq!((s.addrs.join(","), s.nick.as_str()), ("localhost:7878".into(), "guest"));
        assert!(matches!(
            Settings::merge(&args(None, Some("a b")), &file, None),
            Err(ConfigError::Nick { .. })
        ));
    }

    #[test]
    fn bad_files_say_where() {
        let e = ConfigFile::parse("nick = 3\n", Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("x.toml"), "{e}");
        assert!(ConfigFile::parse("colour = true\n", Path::new("x.toml")).is_err());
    }

    #[test]
    fn tls_comes_from_the_flags_or_a_saved_server_and_a_fingerprint_implies_it() {
        use crate::tls::Trust;
        let fp = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let canonical = natter_proto::fingerprint::parse_sha256(fp).unwrap();
        let file = ConfigFile::parse(
            &format!(
                "[servers.home]\naddress = \"h.example\"\ntls = true\n\
                 [servers.pinned]\naddress = \"p.example\"\nfingerprint = \"{fp}\"\n"
            ),
            Path::new("c.toml"),
        )
        .unwrap();
        let s = Settings::merge(&args(Some("home"), Some("ann")), &file, None).unwrap();
        assert!(matches!(s.tls, Some(Trust::RootsOrFirstUse(_))), "{:?}", s.tls);
        let s = Settings::merge(&args(Some("pinned"), Some("ann")), &file, None).unwrap();
        assert_eq!(s.tls, Some(Trust::Fingerprint(canonical.clone())));
        let plain = Settings::merge(&args(Some("other:1"), Some("ann")), &file, None).unwrap();
        assert_eq!(plain.tls, None);
        let flagged = Args { tls: true, ..args(Some("other:1"), Some("ann")) };
        assert!(Settings::merge(&flagged, &file, None).unwrap().tls.is_some());
        let bad = Args { fingerprint: Some("AB:CD".into()), ..args(Some("other:1"), Some("ann")) };
        assert!(matches!(Settings::merge(&bad, &file, None), Err(ConfigError::Fingerprint(_))));

        // Several servers: each gets its own TLS client (its own host name to check, its own
        // remembered certificate).
        let pinned =
            Args { fingerprint: Some(fp.into()), ..args(Some("n1.example,n2.example:7000"), Some("ann")) };
        let opts = Settings::merge(&pinned, &file, None).unwrap().connect_options().unwrap();
        let servers: Vec<(String, String)> =
            opts.servers.iter().map(|e| (e.addr.clone(), format!("{:?}", e.tls.as_ref().unwrap()))).collect();
        assert_eq!(servers.len(), 2);
        for (addr, tls) in &servers {
            assert!(tls.contains(&format!("addr: {addr:?}")), "{addr}: {tls}");
        }
        assert_eq!(servers[0].0, "n1.example:7878");
        assert_eq!(servers[1].0, "n2.example:7000");
    }
}
