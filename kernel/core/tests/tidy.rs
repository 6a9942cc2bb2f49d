//! The layout's rules, read from the sources: the core holds no SQL and links no driver,
//! only the binary names a backend, and no crate of the kernel has an import circle
//! among its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn kernel() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("kernel/").to_path_buf()
}

/// Every `.rs` file under `dir`, with its text; a `tests.rs` (unit tests in a file of
/// their own) is left out.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// A source file lexed just enough: its code without comments, with each string or
/// character literal left as `""`, and the literals' contents apart.
#[derive(Debug, PartialEq)]
struct Lexed {
    code: String,
    strings: Vec<String>,
}

fn lex(text: &str) -> Lexed {
    let chars: Vec<char> = text.chars().collect();
    let (mut code, mut strings) = (String::new(), Vec::new());
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        match c {
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut depth = 0;
                while let Some(c) = at(i) {
                    if c == '/' && at(i + 1) == Some('*') {
                        depth += 1;
                        i += 2;
                    } else if c == '*' && at(i + 1) == Some('/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                code.push(' ');
            }
            'r' if matches!(at(i + 1), Some('"' | '#')) && !at(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || p == '_') => {
                // A raw string: r"…", r#"…"#, …
                let mut j = i + 1;
                let mut hashes = 0;
                while at(j) == Some('#') {
                    hashes += 1;
                    j += 1;
                }
                if at(j) != Some('"') {
                    code.push(c);
                    i += 1;
                    continue;
                }
                let end: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let rest: String = chars[j + 1..].iter().collect();
                let len = rest.find(&end).unwrap_or(rest.len());
                strings.push(rest[..len].to_owned());
                code.push_str("\"\"");
                i = j + 1 + rest[..len].chars().count() + end.chars().count();
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while let Some(c) = at(i) {
                    match c {
                        '\\' => {
                            s.push(c);
                            if let Some(next) = at(i + 1) {
                                s.push(next);
                            }
                            i += 2;
                        }
                        '"' => {
                            i += 1;
                            break;
                        }
                        _ => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                strings.push(s);
                code.push_str("\"\"");
            }
            '\'' => {
                // A character literal ('x', '\n', '\u{7f}', '"'), or a lifetime ('a).
                let close = if at(i + 1) == Some('\\') {
                    (i + 2..chars.len().min(i + 12)).find(|&j| at(j) == Some('\''))
                } else if at(i + 2) == Some('\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match close {
                    Some(j) => {
                        code.push_str("''");
                        i = j + 1;
                    }
                    None => {
                        code.push(c);
                        i += 1;
                    }
                }
            }
            _ => {
                code.push(c);
                i += 1;
            }
        }
    }
    Lexed { code, strings }
}

/// Code without its `#[cfg(test)] mod … { … }` blocks (unit tests may use what the
/// module itself may not).
fn without_unit_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ")
            && let Some(open) = after.find(['{', ';'])
            && after.as_bytes()[open] == b'{'
        {
            let mut depth = 0;
            let mut end = after.len();
            for (j, c) in after.char_indices().skip(open) {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The dependencies a crate's manifest names for its build (not its dev-dependencies),
/// as the packages they are: `[dependencies]`, `[dependencies.x]`, target-specific
/// tables, renames with `package = …`, and `workspace = true` resolved through the
/// workspace's table.
fn dependencies(krate: &str) -> Vec<String> {
    let read = |path: PathBuf| -> toml::Table { std::fs::read_to_string(&path).unwrap().parse().unwrap() };
    let root = read(kernel().parent().unwrap().join("Cargo.toml"));
    let workspace = root.get("workspace").and_then(|w| w.get("dependencies")).and_then(|d| d.as_table()).cloned().unwrap_or_default();
    let manifest = read(kernel().join(krate).join("Cargo.toml"));
    let mut tables: Vec<&toml::Table> = manifest.get("dependencies").and_then(|d| d.as_table()).into_iter().collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        tables.extend(targets.values().filter_map(|t| t.get("dependencies")).filter_map(|d| d.as_table()));
    }
    let package = |name: &str, spec: &toml::Value| -> String {
        let renamed = |spec: &toml::Value| spec.get("package").and_then(|p| p.as_str()).map(str::to_owned);
        if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
            return workspace.get(name).and_then(renamed).unwrap_or_else(|| name.to_owned());
        }
        renamed(spec).unwrap_or_else(|| name.to_owned())
    };
    tables.into_iter().flat_map(|t| t.iter().map(|(name, spec)| package(name, spec))).collect()
}

const DRIVERS: [&str; 9] =
    ["rusqlite", "libsqlite3-sys", "sqlx", "postgres", "tokio-postgres", "deadpool-postgres", "r2d2_postgres", "diesel", "sea-orm"];

/// Whether a string literal reads as SQL: a statement's keywords in their order, in
/// any case and spacing.
fn is_sql(literal: &str) -> bool {
    let words: Vec<String> =
        literal.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '*').filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    let has = |w: &str| words.iter().any(|x| x == w);
    let pair = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
    let select = has("select") && has("from") && words.iter().position(|w| w == "select") < words.iter().rposition(|w| w == "from");
    select
        || pair("insert", "into")
        || pair("insert", "or")
        || pair("replace", "into")
        || pair("delete", "from")
        || (has("update") && has("set") && words.iter().position(|w| w == "update") < words.iter().rposition(|w| w == "set"))
        || ["table", "index", "trigger", "view"].iter().any(|o| pair("create", o) || pair("alter", o) || pair("drop", o))
        || has("pragma")
}

#[test]
fn the_core_links_no_database_driver_and_runs_no_sql() {
    let deps = dependencies("core");
    assert!(deps.iter().any(|d| d == "kith-domain"), "the core's manifest was read: {deps:?}");
    for driver in DRIVERS {
        assert!(!deps.iter().any(|d| d == driver), "kith-core depends on {driver}");
    }
    for (path, text) in sources(&kernel().join("core/src")) {
        let lexed = lex(&text);
        for literal in &lexed.strings {
            assert!(!is_sql(literal), "{} holds SQL ({literal:?}): SQL belongs to a backend crate", path.display());
        }
        for driver in ["rusqlite", "postgres", "sqlx"] {
            assert!(!lexed.code.contains(&format!("{driver}::")), "{} names {driver}", path.display());
        }
    }
}

#[test]
fn only_the_binary_names_a_backend() {
    for krate in ["core", "domain", "api", "bus", "host", "conformance"] {
        let deps = dependencies(krate);
        assert!(!deps.is_empty(), "kith-{krate}'s manifest was read");
        for backend in ["kith-sqlite", "kith-postgres"] {
            assert!(!deps.iter().any(|d| d == backend), "kith-{krate} depends on {backend}: it must use the core's Backend");
        }
        for driver in DRIVERS {
            assert!(!deps.iter().any(|d| d == driver), "kith-{krate} depends on {driver}");
        }
    }
    let binary = dependencies("kith");
    assert!(binary.iter().any(|d| d == "kith-sqlite"), "the binary wires the SQLite backend");
    assert!(binary.iter().any(|d| d == "kith-postgres"), "the binary wires the PostgreSQL backend");
}

/// The first segment of each path a `use` tree or a path names after `crate::`:
/// `crate::a::B` → a; `crate::{a::{B, C}, d}` → a, d.
fn heads(after_crate: &str) -> Vec<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let Some(group) = after_crate.strip_prefix('{') else { return vec![ident(after_crate)] };
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (j, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(ident(group[start..j].trim()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(ident(group[start..j].trim()));
                start = j + 1;
            }
            _ => {}
        }
    }
    out.into_iter().filter(|h| !h.is_empty()).collect()
}

/// What the crate root re-exports from its modules (`pub use m::{A, b::C}` → A and C
/// are m's), so that `crate::A` is an edge to m.
fn reexports(root: &str, is_module: &dyn Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in root.split(';') {
        let Some(tree) = statement.trim().strip_prefix("pub use ") else { continue };
        let tree = tree.trim().trim_start_matches("crate::").trim_start_matches("self::");
        let module: String = tree.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !is_module(&module) {
            continue;
        }
        for name in tree.split(|c: char| !c.is_alphanumeric() && c != '_').filter(|w| !w.is_empty() && *w != module && *w != "as") {
            out.insert(name.to_owned(), module.clone());
        }
    }
    out
}

/// The modules of a crate (the first path segment under `src/`) and those each uses.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let is_module = |name: &str| !name.is_empty() && (src.join(format!("{name}.rs")).is_file() || src.join(name).join("mod.rs").is_file());
    let root = ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).find(|p| p.is_file()).expect("a crate root");
    let root = without_unit_tests(&lex(&std::fs::read_to_string(root).unwrap()).code);
    let reexported = reexports(&root, &is_module);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources(src) {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        let module = if first == "lib" || first == "main" { "lib".to_owned() } else { first };
        let code = without_unit_tests(&lex(&text).code);
        let entry = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            for head in heads(&code[at + "crate::".len()..]) {
                let target = if is_module(&head) { Some(head) } else { reexported.get(&head).cloned() };
                if let Some(target) = target.filter(|t| *t != module) {
                    entry.insert(target);
                }
            }
        }
    }
    graph
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
    for krate in ["core", "sqlite", "postgres", "domain", "api", "bus", "host", "conformance", "kith"] {
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

#[test]
fn the_lexer_keeps_code_and_strings_apart() {
    let lexed = lex(
        "let url = \"http://x/*y*/\"; crate::a::f(); // crate::b::g()\n/* crate::c /* nested */ */ let r = r#\"SELECT \"q\" FROM t\"#; let c = '\"'; fn f<'a>(x: &'a str) {}",
    );
    assert_eq!(lexed.strings, ["http://x/*y*/", "SELECT \"q\" FROM t"]);
    assert!(lexed.code.contains("crate::a::f()"), "{}", lexed.code);
    assert!(!lexed.code.contains("crate::b") && !lexed.code.contains("crate::c"), "{}", lexed.code);
    assert!(lexed.code.contains("fn f<'a>(x: &'a str)"), "{}", lexed.code);
    assert_eq!(heads("{a::{B, C}, d, self}"), ["a", "d", "self"]);
    assert_eq!(heads("x::Y;"), ["x"]);
    assert_eq!(without_unit_tests("fn a() {}\n#[cfg(test)]\nmod tests { fn b() { {} } }\nfn c() {}"), "fn a() {}\n\nfn c() {}");
}

#[test]
fn sql_is_told_from_prose() {
    for sql in [
        "SELECT id FROM shops",
        "select\n  count(*)\nfrom t",
        "INSERT OR IGNORE INTO t",
        "update t set x = 1",
        "DELETE\nFROM t",
        "CREATE INDEX i ON t",
        "PRAGMA user_version",
    ] {
        assert!(is_sql(sql), "{sql}");
    }
    for prose in ["shop {0} not found", "the update was refused", "a selected segment", "drop the table first"] {
        assert!(!is_sql(prose), "{prose}");
    }
}
