//! The IRC parser and serializer against the shared ircdocs `parser-tests` vectors (vendored in
//! `tests/vectors/`, see the README there): every case of `msg-split`, `msg-join` and
//! `userhost-split`. A failure names the case and shows what natter produced.

use natter_proto::irc::{self, Message, UserHost};
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct File<T> {
    tests: Vec<T>,
}

/// The `atoms` of a case; absent keys mean none (params: empty).
#[derive(Deserialize)]
struct Atoms {
    #[serde(default)]
    tags: Option<Mapping>,
    #[serde(default)]
    source: Option<String>,
    verb: String,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Deserialize)]
struct SplitCase {
    input: String,
    atoms: Atoms,
}

#[derive(Deserialize)]
struct JoinCase {
    desc: String,
    atoms: Atoms,
    matches: Vec<String>,
}

#[derive(Deserialize)]
struct UserHostCase {
    source: String,
    atoms: UserHostAtoms,
}

/// Absent keys mean empty strings.
#[derive(Deserialize)]
struct UserHostAtoms {
    #[serde(default)]
    nick: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    host: String,
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: File<T> = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    file.tests
}

/// Tags of the atoms in file order; a missing value (YAML null) and an empty one are both `""`.
fn atom_tags(atoms: &Atoms) -> Vec<(String, String)> {
    let Some(map) = &atoms.tags else { return Vec::new() };
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().expect("tag key is a string").to_string();
            let value = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => panic!("tag {key}: unexpected value {other:?}"),
            };
            (key, value)
        })
        .collect()
}

/// The tags as the vectors see them: a map, no value being `""`.
fn tag_map(tags: &[(String, Option<String>)]) -> BTreeMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect()
}

/// Checks that `m` has exactly the atoms; returns a description of every difference.
fn differences(m: &Message, atoms: &Atoms) -> Vec<String> {
    let mut diffs = Vec::new();
    let want_tags: BTreeMap<String, String> = atom_tags(atoms).into_iter().collect();
    let got_tags = tag_map(&m.tags);
    if got_tags != want_tags {
        diffs.push(format!("tags: got {got_tags:?}, want {want_tags:?}"));
    }
    if got_tags.len() != m.tags.len() {
        diffs.push(format!("tags: a key repeats in {:?}", m.tags));
    }
    if m.prefix != atoms.source {
        diffs.push(format!("source: got {:?}, want {:?}", m.prefix, atoms.source));
    }
    if m.command != atoms.verb {
        diffs.push(format!("verb: got {:?}, want {:?}", m.command, atoms.verb));
    }
    if m.params != atoms.params {
        diffs.push(format!("params: got {:?}, want {:?}", m.params, atoms.params));
    }
    diffs
}

/// Runs `check` on every case and fails once, listing every failing case.
fn run_all<T>(file: &str, cases: &[T], expected: usize, check: impl Fn(&T) -> Result<(), String>) {
    assert_eq!(cases.len(), expected, "{file}: number of cases (update the count after updating the file)");
    let failures: Vec<String> = cases.iter().filter_map(|c| check(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{file}: {} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn msg_split() {
    let cases: Vec<SplitCase> = load("msg-split.yaml");
    run_all("msg-split", &cases, 35, |case| {
        let m = irc::parse(&case.input).map_err(|e| format!("{:?}: parse error {e}", case.input))?;
        let diffs = differences(&m, &case.atoms);
        if !diffs.is_empty() {
            return Err(format!("{:?}: {}", case.input, diffs.join("; ")));
        }
        // Whatever the vectors parse, natter must serialize to a line that parses the same.
        let again = irc::parse(&m.serialize());
        if again.as_ref() != Ok(&m) {
            return Err(format!("{:?}: reserialized {:?} parses as {again:?}", case.input, m.serialize()));
        }
        Ok(())
    });
}

/// Builds the message of a `msg-join` case. `empty_as_some` chooses how an empty tag value is
/// represented (`Some("")` or `None`); both must serialize alike.
fn message_of(atoms: &Atoms, empty_as_some: bool) -> Message {
    Message {
        tags: atom_tags(atoms)
            .into_iter()
            .map(|(k, v)| (k, if v.is_empty() && !empty_as_some { None } else { Some(v) }))
            .collect(),
        prefix: atoms.source.clone(),
        command: atoms.verb.clone(),
        params: atoms.params.clone(),
    }
}

#[test]
fn msg_join() {
    let cases: Vec<JoinCase> = load("msg-join.yaml");
    run_all("msg-join", &cases, 18, |case| {
        for empty_as_some in [false, true] {
            let line = message_of(&case.atoms, empty_as_some).serialize();
            if !case.matches.contains(&line) {
                return Err(format!("{}: serialized {line:?}, want one of {:?}", case.desc, case.matches));
            }
        }
        // Every accepted form must also parse back to the atoms.
        for accepted in &case.matches {
            let m =
                irc::parse(accepted).map_err(|e| format!("{}: {accepted:?}: parse error {e}", case.desc))?;
            let diffs = differences(&m, &case.atoms);
            if !diffs.is_empty() {
                return Err(format!("{}: {accepted:?} parses wrong: {}", case.desc, diffs.join("; ")));
            }
        }
        Ok(())
    });
}

#[test]
fn userhost_split() {
    let cases: Vec<UserHostCase> = load("userhost-split.yaml");
    run_all("userhost-split", &cases, 7, |case| {
        let got = irc::split_userhost(&case.source);
        let want = UserHost { nick: &case.atoms.nick, user: &case.atoms.user, host: &case.atoms.host };
        if got != want {
            return Err(format!("{:?}: got {got:?}, want {want:?}", case.source));
        }
        Ok(())
    });
}

/// Cases from the PyPI release 0.0.4 of `irc-parser-tests` that the git version dropped
/// (empty parts around `!` and `@`); natter keeps handling them.
#[test]
fn userhost_split_with_empty_parts() {
    let cases = [
        ("!ag@127.0.0.1", "", "ag", "127.0.0.1"),
        ("coolguy!@127.0.0.1", "coolguy", "", "127.0.0.1"),
        ("coolguy!ag@", "coolguy", "ag", ""),
        ("irc.example.com", "irc.example.com", "", ""),
    ];
    for (source, nick, user, host) in cases {
        assert_eq!(irc::split_userhost(source), UserHost { nick, user, host }, "{source:?}");
    }
}
