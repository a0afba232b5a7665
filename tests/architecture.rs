//! The seams the code is built around, checked on the source so that they stay:
//!
//! - the core knows no wire format: natter-core uses nothing from `natter_proto::native` or
//!   `natter_proto::irc`;
//! - no front door decides anything by reading the hub's wording of a refusal;
//! - the modules of each crate use each other without cycles (a module may use its parent and
//!   its children; among siblings, the uses form no loop).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The source with comments removed (line comments, doc comments and block comments), so that
/// a word in prose never counts as a use.
fn code_of(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let code = match line.find("//") {
            // A `//` inside a string literal is rare in this code base and harmless here.
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The module path of a source file relative to its crate's `src` (`hub/mod.rs` is `hub`,
/// `hub/delivery.rs` is `hub::delivery`, `lib.rs` and `main.rs` are the root).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_string());
    }
    parts
}

/// The module paths that `code` (in module `at`) refers to through `crate::` and `super::`
/// paths, each cut to the longest prefix that is a module.
fn references(code: &str, at: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    for start in (0..bytes.len()).filter(|&i| code.is_char_boundary(i)) {
        let rest = &code[start..];
        if !(rest.starts_with("crate::") || rest.starts_with("super::"))
            || (start > 0 && ident(bytes[start - 1]))
        {
            continue;
        }
        // The path as written: segments separated by `::`, possibly ending in a `{...}` group.
        let end =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(':');
        let mut heads: Vec<String> = vec![path.to_string()];
        if rest[end..].starts_with('{') {
            let group = &rest[end + 1..rest[end..].find('}').map_or(rest.len(), |i| end + i)];
            heads = group.split(',').map(|item| format!("{path}::{}", item.trim())).collect();
        }
        for head in heads {
            let segments: Vec<&str> = head.split("::").filter(|s| !s.is_empty()).collect();
            // `crate::` starts at the root; each `super::` goes one module up from this one.
            let mut base: Vec<String> = Vec::new();
            let mut rest_segments = segments.as_slice();
            if rest_segments.first() == Some(&"crate") {
                rest_segments = &rest_segments[1..];
            } else {
                base = at.to_vec();
                while rest_segments.first() == Some(&"super") {
                    base.pop();
                    rest_segments = &rest_segments[1..];
                }
            }
            let mut target = base;
            for s in rest_segments {
                let mut next = target.clone();
                next.push(s.split_whitespace().next().unwrap_or("").to_string());
                if modules.contains(&next) {
                    target = next;
                } else {
                    break;
                }
            }
            found.insert(target);
        }
    }
    found
}

/// Cycles among sibling modules of one crate, as lists of module paths.
fn sibling_cycles(src: &Path) -> Vec<Vec<String>> {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    // Edges between siblings: from the child of the common ancestor on the user's side to the
    // child on the used side. Uses of an ancestor or a descendant are not sibling edges.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let at = module_of(src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for target in references(&code, &at, &modules) {
            let common = at.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == at.len() || common == target.len() {
                continue;
            }
            edges.entry(at[..=common].to_vec()).or_default().insert(target[..=common].to_vec());
        }
    }
    // Depth-first search for a back edge.
    let mut cycles = Vec::new();
    let mut state: BTreeMap<Vec<String>, u8> = BTreeMap::new();
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    cycles.push(stack[from..].iter().map(|m| m.join("::")).collect());
                }
                Some(_) => {}
                None => visit(next, edges, state, stack, cycles),
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
    }
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    cycles
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_core_knows_no_wire_format() {
    for file in rust_files(&root().join("crates/natter-core/src")) {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for forbidden in ["natter_proto::native", "natter_proto::irc", "natter_proto::{"] {
            assert!(!code.contains(forbidden), "{} uses {forbidden}", file.display());
        }
    }
}

#[test]
fn no_front_door_reads_the_wording_of_a_refusal() {
    for file in rust_files(&root().join("crates/natter-server/src")) {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for (i, line) in code.lines().enumerate() {
            let reads_text =
                ["starts_with", "contains(", "split", "find(", "ends_with", "==", "strip_prefix"]
                    .iter()
                    .any(|op| line.contains(op));
            let wording = line.contains("refusal.to_string()") || line.contains("message.");
            assert!(
                !(reads_text && wording),
                "{}:{}: decides on a refusal's wording: {line}",
                file.display(),
                i + 1
            );
        }
    }
}

#[test]
fn module_uses_form_no_cycles() {
    let mut found = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap() {
        let krate = krate.unwrap().path();
        let cycles = sibling_cycles(&krate.join("src"));
        if !cycles.is_empty() {
            found.push(format!("{}: {cycles:?}", krate.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(sibling_cycles(&root().join("src")).is_empty());
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

/// The checker itself finds a cycle when there is one.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::c::{C, D};\npub struct B;\n").unwrap();
    std::fs::write(src.join("c.rs"), "// use crate::x::Y;\npub fn f() { crate::a::g() }\n").unwrap();
    let cycles = sibling_cycles(src);
    assert_eq!(cycles, [vec!["a".to_string(), "b".into(), "c".into()]]);
    std::fs::write(src.join("c.rs"), "// crate::a::g() in a comment is not a use\n").unwrap();
    assert!(sibling_cycles(src).is_empty());
}
