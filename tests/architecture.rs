//! The parts of `src/` import only what ARCHITECTURE.md allows: every `crate::` path in the
//! code (comments excluded) is attributed to the part it names, and each edge between two
//! parts must be in the "Allowed imports" table or, from exactly the files it lists, in
//! "Narrow edges"; the allowed directions form no circle.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const PARTS: [&str; 7] = [
    "wire",
    "stores",
    "legacy",
    "session",
    "server",
    "adapters",
    "diagnostics",
];

/// Crate-internal names that stand for a part: the public modules re-exported at the root,
/// and the conformance macro.
const ALIASES: [(&str, &str); 6] = [
    ("actix", "adapters"),
    ("beaker", "legacy"),
    ("http", "adapters"),
    ("tower", "adapters"),
    ("events", "server"),
    ("store_conformance", "stores"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "bin" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The part a file of `src/` belongs to (`None` for `lib.rs`).
fn part_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root().join("src")).unwrap();
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_owned();
    let part = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (part != "lib").then_some(part)
}

/// Root re-exports (`pub use part::...::{A, B}`): the part behind each name.
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(rest) = statement.trim().split("pub use ").nth(1) else {
            continue;
        };
        let part = rest.split("::").next().unwrap().trim().to_owned();
        if !PARTS.contains(&part.as_str()) {
            continue;
        }
        let items = rest.rsplit("::").next().unwrap();
        for name in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), part.clone());
            }
        }
    }
    names
}

/// The first path segment after each `crate::` in `code` (a `crate::{a, b}` group gives
/// each of its members). A macro's `$crate::` paths expand in the user's crate, so they
/// name public paths, not parts: they are not imports of the part that defines the macro.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let pieces: Vec<&str> = code.split("crate::").collect();
    for (before, piece) in pieces.iter().zip(pieces.iter().skip(1)) {
        if before.ends_with('$') {
            continue;
        }
        if let Some(group) = piece.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for member in group.split(',') {
                let first = member.trim().split("::").next().unwrap_or_default();
                if !first.is_empty() {
                    found.push(first.to_owned());
                }
            }
        } else {
            let first: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(first);
        }
    }
    found
}

/// Every edge between two parts, with the files it comes from.
fn edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let names = reexports();
    let aliases: BTreeMap<&str, &str> = ALIASES.into_iter().collect();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(from) = part_of(&file) else { continue };
        assert!(
            PARTS.contains(&from.as_str()),
            "{}: not in a part",
            file.display()
        );
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or_default();
            for segment in crate_paths(code) {
                let to = if PARTS.contains(&segment.as_str()) {
                    segment.clone()
                } else if let Some(part) = aliases.get(segment.as_str()) {
                    (*part).to_owned()
                } else if let Some(part) = names.get(&segment) {
                    part.clone()
                } else {
                    panic!(
                        "{}: `crate::{segment}` is not a part, an alias or a root re-export",
                        file.display()
                    );
                };
                if to != from {
                    let relative = file.strip_prefix(root()).unwrap().display().to_string();
                    edges
                        .entry((from.clone(), to))
                        .or_default()
                        .insert(relative);
                }
            }
        }
    }
    edges
}

/// The rows of the markdown table under `heading` in ARCHITECTURE.md, as cells.
fn table(heading: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split(&format!("## {heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no section {heading:?}"));
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .skip(1)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn allowed() -> BTreeSet<(String, String)> {
    let mut allowed = BTreeSet::new();
    for row in table("Allowed imports") {
        for to in row[1].split(',').map(str::trim) {
            if PARTS.contains(&to) {
                allowed.insert((row[0].clone(), to.to_owned()));
            }
        }
    }
    allowed
}

fn known() -> BTreeMap<(String, String), BTreeSet<String>> {
    table("Narrow edges")
        .into_iter()
        .map(|row| {
            let files = row[2].split(',').map(|f| f.trim().to_owned()).collect();
            ((row[0].clone(), row[1].clone()), files)
        })
        .collect()
}

#[test]
fn every_import_runs_the_way_architecture_md_allows() {
    let (allowed, known) = (allowed(), known());
    assert_eq!(
        allowed
            .iter()
            .map(|(from, _)| from.as_str())
            .collect::<BTreeSet<_>>()
            .len()
            + 1,
        PARTS.len(),
        "every part but wire has a row of what it may import"
    );
    let mut wrong = Vec::new();
    for (edge, files) in edges() {
        if allowed.contains(&edge) {
            continue;
        }
        match known.get(&edge) {
            Some(listed) if listed == &files => {}
            Some(listed) => wrong.push(format!(
                "{} -> {}: from {files:?}, but ARCHITECTURE.md lists {listed:?}",
                edge.0, edge.1
            )),
            None => wrong.push(format!(
                "{} -> {} is not allowed (from {files:?})",
                edge.0, edge.1
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_narrow_edge_still_exists() {
    let edges = edges();
    for edge in known().keys() {
        assert!(
            edges.contains_key(edge),
            "{} -> {} is gone: remove it from ARCHITECTURE.md's narrow edges",
            edge.0,
            edge.1
        );
    }
}

#[test]
fn the_wire_imports_no_other_part() {
    let from_wire: Vec<_> = edges()
        .into_keys()
        .filter(|(from, _)| from == "wire")
        .collect();
    assert!(from_wire.is_empty(), "{from_wire:?}");
}

/// The checker finds a wrong-way import: a line as it would be written, attributed.
#[test]
fn the_checker_reads_imports_as_written() {
    assert_eq!(
        crate_paths("use crate::session::{Session, Sessions};"),
        ["session"]
    );
    assert_eq!(
        crate_paths("use crate::{Mode, store::StoreKey};"),
        ["Mode", "store"]
    );
    assert_eq!(
        crate_paths("let k = crate::wire::key::Key::generate(); crate::tower::x()"),
        ["wire", "tower"]
    );
    assert_eq!(
        crate_paths("$crate::store::conformance::f(); crate::wire::x()"),
        ["wire"]
    );
    assert_eq!(
        reexports().get("SessionConfig").map(String::as_str),
        Some("session")
    );
    assert!(!allowed().contains(&("wire".to_owned(), "session".to_owned())));
    assert!(!allowed().contains(&("stores".to_owned(), "session".to_owned())));
}

/// The parts in an order where each imports only parts before it, if there is one.
fn layering(edges: &BTreeSet<(String, String)>) -> Result<Vec<String>, Vec<String>> {
    let mut left: BTreeSet<String> = PARTS.iter().map(|p| (*p).to_owned()).collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|p| {
                !edges
                    .iter()
                    .any(|(from, to)| &from == p && to != *p && left.contains(to))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(left.into_iter().collect());
        }
        for p in ready {
            left.remove(&p);
            order.push(p);
        }
    }
    Ok(order)
}

#[test]
fn the_allowed_directions_form_no_circle() {
    let mut edges = allowed();
    edges.extend(known().into_keys());
    let order = layering(&edges).unwrap_or_else(|parts| panic!("a circle among {parts:?}"));
    assert_eq!(order.first().map(String::as_str), Some("wire"));
    assert_eq!(order.last().map(String::as_str), Some("adapters"));
}

/// The circle check finds one: adding the edge the re-layout removed brings it back.
#[test]
fn the_circle_check_catches_a_circle() {
    let mut edges = allowed();
    edges.insert(("session".to_owned(), "server".to_owned()));
    assert!(layering(&edges).is_err());
    let mut edges = allowed();
    edges.insert(("diagnostics".to_owned(), "session".to_owned()));
    let stuck = layering(&edges).unwrap_err();
    assert!(stuck.contains(&"diagnostics".to_owned()) && stuck.contains(&"session".to_owned()));
}
