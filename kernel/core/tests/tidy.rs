//! The layout's rules, read from the sources: the core holds no SQL and links no driver,
//! the api and the bus name no backend, and no crate of the kernel has an import circle
//! among its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn kernel() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("kernel/").to_path_buf()
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// The text without comments and without the unit tests at the end of a file.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The `[dependencies]` table of a crate's manifest (not its dev-dependencies).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(kernel().join(krate).join("Cargo.toml")).unwrap();
    let mut inside = false;
    let mut names = Vec::new();
    for line in manifest.lines() {
        if line.starts_with('[') {
            inside = line.trim() == "[dependencies]";
        } else if inside && let Some((name, _)) = line.split_once(['=', '.']) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

const DRIVERS: [&str; 8] = ["rusqlite", "libsqlite3-sys", "sqlx", "postgres", "tokio-postgres", "deadpool-postgres", "diesel", "sea-orm"];

#[test]
fn the_core_links_no_database_driver_and_runs_no_sql() {
    let deps = dependencies("core");
    assert!(!deps.is_empty(), "the core's manifest was read");
    for driver in DRIVERS {
        assert!(!deps.iter().any(|d| d == driver), "kith-core depends on {driver}");
    }
    for (path, text) in sources(&kernel().join("core/src")) {
        let code = code(&text);
        for sql in ["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "rusqlite", "CREATE TABLE"] {
            assert!(!code.contains(sql), "{} holds `{sql}`: SQL belongs to a backend crate", path.display());
        }
    }
}

#[test]
fn only_the_binary_names_a_backend() {
    for krate in ["core", "domain", "api", "bus", "host", "conformance"] {
        let deps = dependencies(krate);
        assert!(!deps.iter().any(|d| d == "kith-sqlite"), "kith-{krate} depends on kith-sqlite: it must use the core's Backend");
        for driver in DRIVERS {
            assert!(!deps.iter().any(|d| d == driver), "kith-{krate} depends on {driver}");
        }
    }
    assert!(dependencies("kith").iter().any(|d| d == "kith-sqlite"), "the binary wires the SQLite backend");
}

/// The modules of a crate (the first path segment under `src/`) and those each uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources(src) {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        let module = if first == "lib" || first == "main" { "lib".to_owned() } else { first };
        let code = code(&text);
        let mut used = BTreeSet::new();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let head = item.trim().split("::").next().unwrap_or("").trim();
                    used.insert(head.to_owned());
                }
            } else {
                let head: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                used.insert(head);
            }
        }
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(used.into_iter().filter(|m| *m != module && is_module(src, m)));
    }
    graph
}

fn is_module(src: &Path, name: &str) -> bool {
    !name.is_empty() && (src.join(format!("{name}.rs")).is_file() || src.join(name).join("mod.rs").is_file())
}

/// A circle of modules, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, bool>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), false);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(false) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut found = stack[from..].to_vec();
                    found.push(next.clone());
                    return Some(found);
                }
                Some(true) => {}
                None => {
                    if let Some(found) = visit(next, graph, state, stack) {
                        return Some(found);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node)
            && let Some(found) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_crate_of_the_kernel_has_an_import_circle_among_its_modules() {
    for krate in ["core", "sqlite", "domain", "api", "bus", "host"] {
        let graph = module_graph(&kernel().join(krate).join("src"));
        assert!(graph.len() > 1, "kith-{krate}'s modules were read");
        if let Some(found) = circle(&graph) {
            panic!("kith-{krate} has an import circle: {}", found.join(" → "));
        }
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(circle(&acyclic), None);
}
