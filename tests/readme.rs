//! The README stays true to the code: its sample configuration is one the server accepts,
//! with every key it shows.

use std::path::PathBuf;

#[test]
fn the_sample_configuration_is_accepted() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml block in the README") + "```toml\n".len();
    let sample = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.toml");
    std::fs::write(&path, sample).unwrap();
    let args = natter_server::Args { config: Some(path), ..Default::default() };
    let settings = natter_server::Settings::resolve(args).unwrap_or_else(|e| panic!("{e}\n{sample}"));
    assert_eq!(settings.irc.as_deref(), Some("0.0.0.0:6667"));
    assert_eq!(settings.log_format, natter_server::LogFormat::Text);
    // The commented-out keys are real keys too.
    let uncommented = sample
        .replace("# password", "password")
        .replace("# opers", "opers")
        .replace("# cloak_secret", "cloak_secret");
    std::fs::write(dir.path().join("all.toml"), uncommented).unwrap();
    let args = natter_server::Args { config: Some(dir.path().join("all.toml")), ..Default::default() };
    let settings = natter_server::Settings::resolve(args).unwrap();
    assert_eq!(settings.password.as_deref(), Some("s3cret"));
    assert_eq!(settings.operators, vec![("admin".to_string(), "pw".to_string())]);
    assert_eq!(settings.cloak.secret.as_deref(), Some("long random text"));
}

/// Every command of the help table (what `/help` lists) is in the README's command table.
#[test]
fn the_command_table_lists_every_command() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let table: Vec<&str> = readme.lines().filter(|l| l.starts_with("| `")).collect();
    for (usage, _) in natter_proto::command::HELP {
        let word = usage.split_whitespace().next().unwrap();
        if word == "text" || word.starts_with('@') {
            continue;
        }
        assert!(
            table.iter().any(|row| row.contains(&format!("`{word}"))),
            "{word} is not in the README's table"
        );
    }
}
