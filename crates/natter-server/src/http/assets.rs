//! The chat page's files, embedded in the binary at build time (`cargo build` alone makes a
//! server with its page; nothing is read or fetched at run time). Each answer carries an ETag
//! (a hash of the file), so a browser revalidates instead of downloading again.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file.
pub(crate) struct Asset {
    /// The name under `/assets/` (the page itself is `index.html`, served at `/`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset { name: $name, content_type: $content_type, body: include_bytes!(concat!("../../web/", $name)) }
    };
}

/// Every file of the page.
pub(crate) static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("conn.js", "text/javascript; charset=utf-8"),
    asset!("commands.js", "text/javascript; charset=utf-8"),
    asset!("render.js", "text/javascript; charset=utf-8"),
];

/// The file called `name`, if the page has one.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

impl Asset {
    /// The file's entity tag (quoted), computed once.
    pub(crate) fn etag(&self) -> &'static str {
        static TAGS: OnceLock<Vec<String>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|asset| {
                    let digest = Sha256::digest(asset.body);
                    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                    format!("\"{hex}\"")
                })
                .collect()
        });
        let index = ASSETS.iter().position(|asset| std::ptr::eq(asset, self)).unwrap_or(0);
        &tags[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_found_with_its_own_tag() {
        let mut tags = std::collections::HashSet::new();
        for asset in ASSETS {
            assert!(std::ptr::eq(find(asset.name).unwrap(), asset));
            assert!(tags.insert(asset.etag()), "{} shares a tag", asset.name);
        }
        assert!(find("../Cargo.toml").is_none());
    }
}
