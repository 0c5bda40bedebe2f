//! The docs say what is true: the invariant table is the one the batteries
//! generate, and every path the docs name exists.

use nncheck::check::run::{battery::Batteries, table};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_invariants_is_the_generated_table() {
    let file = std::fs::read_to_string(root().join("docs/INVARIANTS.md")).unwrap();
    assert!(
        file == table::invariants_markdown(&Batteries::default()),
        "docs/INVARIANTS.md is stale: cargo run --release -- invariants > docs/INVARIANTS.md"
    );
}

/// The repository paths `text` names: words starting with a top-level folder
/// of the repository, up to the first character no path has.
fn paths_named(text: &str) -> Vec<String> {
    const TOP: [&str; 10] = [
        "src/",
        "tests/",
        "docs/",
        "benches/",
        "examples/",
        "fuzz/",
        "python/",
        ".ci/",
        ".github/",
        ".clusterfuzzlite/",
    ];
    let mut found = Vec::new();
    for (i, _) in text.char_indices() {
        let rest = &text[i..];
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '/' || c == '.') {
            continue;
        }
        if let Some(top) = TOP.iter().find(|t| rest.starts_with(**t)) {
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || "_-./".contains(*c))
                .collect();
            // A pattern (`tests/properties_*.rs`, `fuzz/corpus/<target>/`) names no one path.
            let next = rest[path.len()..].chars().next();
            let path = path.trim_end_matches(['.', '/']).to_string();
            if path.len() > top.len() && !matches!(next, Some('*' | '<' | '{')) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut docs = vec![
        root().join("README.md"),
        root().join("SPEC.md"),
        root().join("tests/README.md"),
    ];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for path in paths_named(&text) {
            if !root().join(&path).exists() {
                missing.push(format!("{}: {path}", doc.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths the docs name that do not exist: {missing:#?}"
    );
}

#[test]
fn the_path_reader_finds_paths_in_prose_and_code() {
    assert_eq!(
        paths_named("see `src/check/run/battery.rs`, and tests/twins/ (the twins)."),
        ["src/check/run/battery.rs", "tests/twins"]
    );
    assert!(paths_named("a foo/src/x.rs path inside another").is_empty());
    assert!(paths_named("tests/properties_*.rs and fuzz/corpus/<target>/").is_empty());
}

/// Every test `tests/README.md` names (`file.rs::test`, a macro module's as
/// `file.rs::module::row`) exists in the file it names.
#[test]
fn every_test_the_trace_names_exists() {
    let trace = std::fs::read_to_string(root().join("tests/README.md")).unwrap();
    let macro_rows = std::fs::read_to_string(root().join("src/conform/macros.rs")).unwrap();
    let mut missing = Vec::new();
    for piece in trace.split('`').skip(1).step_by(2) {
        let Some((file, rest)) = piece.split_once(".rs::") else {
            continue;
        };
        let file = format!("{file}.rs");
        let path = if file.starts_with("src/") || file.starts_with("tests/") {
            root().join(&file)
        } else {
            root().join("tests").join(&file)
        };
        let mut names = rest.split("::");
        let name = names.next().unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // A module a conformance macro made holds one test per row the macros list.
        let made_by_macro = text.contains(&format!("_conformance_tests!({name},"))
            && names.next().is_none_or(|row| {
                macro_rows
                    .lines()
                    .any(|l| l.trim() == format!("{row},") || l.trim() == row)
            });
        let defined = text.contains(&format!("fn {name}("))
            || text.contains(&format!("fn {name}<"))
            || text.contains(&format!("mod {name} "))
            || text.lines().any(|l| l.trim() == format!("{name},"))
            || made_by_macro;
        if !defined {
            missing.push(piece.to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "tests/README.md names tests that do not exist: {missing:#?}"
    );
}
