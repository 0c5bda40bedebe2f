//! The shape of `src/`: the modules' import graph has no circle, and no core
//! module (the model, its layers, optimizers, losses, fitting, errors) imports
//! the checks, the conformance adapters, the scenario or the command line.
//!
//! The graph is read from the source: every `crate::...` and `super::...` path
//! in a file (outside comments and `pub use` re-exports, which are a module's
//! facade, not a dependency) is an edge to the deepest module that path names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/` with its module path (`check::dropout`).
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect()
}

/// The module paths `text` (the source of module `me`) refers to.
fn references(me: &str, text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim_start();
        if trimmed.starts_with("pub use") || trimmed.starts_with("pub(crate) use") {
            continue;
        }
        for (start, prefix) in code
            .match_indices("crate::")
            .map(|(i, _)| (i, "crate::"))
            .chain(code.match_indices("super::").map(|(i, _)| (i, "super::")))
        {
            // Skip `$crate::` in macros and `super::` inside a longer word.
            let before = code[..start].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if prefix == "super::" && code[..start].ends_with("super::") {
                continue;
            }
            let rest = &code[start..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = Vec::new();
            match segments.first() {
                Some(&"crate") => {
                    segments.remove(0);
                }
                Some(&"super") => {
                    base = me.split("::").map(String::from).collect();
                    while segments.first() == Some(&"super") {
                        segments.remove(0);
                        base.pop();
                    }
                }
                _ => continue,
            }
            let mut full = base;
            full.extend(segments.iter().map(|s| s.to_string()));
            found.insert(full.join("::"));
        }
    }
    found
}

/// The deepest module among `modules` that `path` lies in.
fn resolve(path: &str, modules: &BTreeMap<String, PathBuf>) -> String {
    let mut parts: Vec<&str> = path.split("::").collect();
    while !parts.is_empty() {
        let candidate = parts.join("::");
        if modules.contains_key(&candidate) {
            return candidate;
        }
        parts.pop();
    }
    String::new()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    modules
        .iter()
        .map(|(me, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            // Tests inside a module may reach anywhere; they are not its shape.
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            let edges = references(me, text)
                .iter()
                .map(|p| resolve(p, &modules))
                .filter(|m| m != me && !m.is_empty() && !me.starts_with(&format!("{m}::")))
                .collect();
            (me.clone(), edges)
        })
        .collect()
}

/// The strongly connected components of more than one module.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules share a circle when each reaches the other.
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if done.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let component: Vec<String> = graph
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        done.extend(component.iter().cloned());
        out.push(component);
    }
    out
}

#[test]
fn the_import_graph_has_no_circle() {
    let found = circles(&graph());
    assert!(found.is_empty(), "modules importing each other: {found:#?}");
}

#[test]
fn no_core_module_imports_the_checks_adapters_scenario_or_command_line() {
    const OUTER: [&str; 4] = ["check", "conform", "scenario", "inspect"];
    let core = |m: &str| {
        !OUTER
            .iter()
            .any(|o| m == *o || m.starts_with(&format!("{o}::")))
    };
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        if !core(&from) || from.is_empty() {
            continue;
        }
        for t in to.iter().filter(|t| !core(t)) {
            wrong.push(format!("{from} -> {t}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "core modules importing outer ones: {wrong:#?}"
    );
}

/// The reader sees what it should: a circle and an outward import, planted.
#[test]
fn the_graph_reader_finds_a_planted_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["c".to_string()].into());
    g.insert("c".into(), ["a".to_string()].into());
    g.insert("d".into(), ["a".to_string()].into());
    assert_eq!(
        circles(&g),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
    let refs = references(
        "check::dropout",
        "use super::report::CheckReport;\nlet x = crate::tensor::bits_equal(a, b); // crate::fake::x\npub use super::other::Y;\n",
    );
    assert_eq!(
        refs,
        [
            "check::report::CheckReport".to_string(),
            "tensor::bits_equal".into()
        ]
        .into()
    );
}
