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

/// The paths a `use` tree (or a plain path) names, each as its segments:
/// `a::{b::{C, D as E}, f, self}` → a::b::C, a::b::D, a::f, a::self; `a::*` → a::*.
/// A rename is left out (the path is what it names); the tree ends where a path does.
fn expand(text: &str) -> Vec<Vec<String>> {
    fn skip_space(s: &[char], i: &mut usize) {
        while s.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    }
    fn ident(s: &[char], i: &mut usize) -> String {
        if s.get(*i) == Some(&'$') {
            *i += 1; // `$crate` in a macro
        }
        let start = *i;
        while s.get(*i).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
            *i += 1;
        }
        s[start..*i].iter().collect()
    }
    fn tree(s: &[char], i: &mut usize) -> Vec<Vec<String>> {
        let mut prefix: Vec<String> = Vec::new();
        loop {
            skip_space(s, i);
            match s.get(*i) {
                Some('{') => {
                    *i += 1;
                    let mut out = Vec::new();
                    loop {
                        skip_space(s, i);
                        match s.get(*i) {
                            Some('}') => {
                                *i += 1;
                                break;
                            }
                            Some(',') => *i += 1,
                            None => break,
                            _ => {
                                let before = *i;
                                out.extend(tree(s, i).into_iter().map(|p| prefix.iter().cloned().chain(p).collect()));
                                if *i == before {
                                    *i += 1;
                                }
                            }
                        }
                    }
                    return out;
                }
                Some('*') => {
                    *i += 1;
                    prefix.push("*".to_owned());
                    return vec![prefix];
                }
                _ => {}
            }
            let name = ident(s, i);
            if name.is_empty() {
                return if prefix.is_empty() { vec![] } else { vec![prefix] };
            }
            prefix.push(name);
            let mut j = *i;
            skip_space(s, &mut j);
            if s.get(j) == Some(&':') && s.get(j + 1) == Some(&':') {
                *i = j + 2;
                continue;
            }
            // `X as Y`
            let mut k = j;
            if ident(s, &mut k) == "as" {
                skip_space(s, &mut k);
                ident(s, &mut k);
                *i = k;
            }
            return vec![prefix];
        }
    }
    let chars: Vec<char> = text.chars().collect();
    tree(&chars, &mut 0)
}

/// A module's path from its file under `src/`: `lib.rs` / `main.rs` → the root,
/// `a.rs` and `a/mod.rs` → a, `a/b.rs` → a::b.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let file = parts.pop().expect("a file");
    let stem = file.trim_end_matches(".rs");
    if !(parts.is_empty() && (stem == "lib" || stem == "main") || stem == "mod") {
        parts.push(stem.to_owned());
    }
    parts
}

fn node(module: &[String]) -> String {
    if module.is_empty() { "crate".to_owned() } else { module.join("::") }
}

/// The names an item declaration makes public (`pub fn f`, `pub(crate) struct S` …), for
/// a glob re-export (`pub use m::*`).
fn declared(code: &str) -> BTreeSet<String> {
    let words: Vec<&str> = code.split(|c: char| !c.is_alphanumeric() && c != '_').filter(|w| !w.is_empty()).collect();
    let mut out = BTreeSet::new();
    for (i, word) in words.iter().enumerate() {
        if *word != "pub" {
            continue;
        }
        let mut j = i + 1;
        while words.get(j).is_some_and(|w| ["crate", "super", "self", "in", "async", "unsafe", "extern"].contains(w))
            || (words.get(j) == Some(&"const") && words.get(j + 1) == Some(&"fn"))
        {
            j += 1;
        }
        if words.get(j).is_some_and(|w| ["fn", "struct", "enum", "trait", "type", "const", "static", "union", "mod"].contains(w))
            && let Some(name) = words.get(j + 1)
        {
            out.insert((*name).to_owned());
        }
    }
    out
}

/// One `use` statement: whether it is public (a re-export) and the paths it names.
struct Use {
    public: bool,
    paths: Vec<Vec<String>>,
    span: std::ops::Range<usize>,
}

fn uses(code: &str) -> Vec<Use> {
    let bytes = code.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    for (at, _) in code.match_indices("use") {
        let boundary = (at == 0 || !word(bytes[at - 1])) && bytes.get(at + 3).is_some_and(|b| b.is_ascii_whitespace());
        if !boundary {
            continue;
        }
        let end = code[at..].find(';').map_or(code.len(), |e| at + e);
        let before = code[..at].trim_end();
        let public =
            before.ends_with("pub") || (before.ends_with(')') && before[..before.rfind('(').unwrap_or(0)].trim_end().ends_with("pub"));
        out.push(Use { public, paths: expand(&code[at + 3..end]), span: at..end });
    }
    out
}

/// The modules written inline (`mod name { … }`) in a file's code: their spans and names.
fn inline_modules(code: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = rest.trim_start()[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let open = code.len() - after.len();
        let mut depth = 0;
        let mut end = code.len();
        for (j, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((open..end, name));
    }
    out
}

/// A module's path from the crate root: `ports::journeys` → ["ports", "journeys"].
type ModulePath = Vec<String>;

/// What a module re-exports: a name → the path it names, and the modules it re-exports whole.
struct Reexports {
    named: BTreeMap<String, ModulePath>,
    globs: Vec<ModulePath>,
}

/// A crate's modules: each file's module, what it re-exports and what it declares.
struct Crate {
    modules: BTreeMap<Vec<String>, String>,
    reexports: BTreeMap<ModulePath, Reexports>,
    declared: BTreeMap<Vec<String>, BTreeSet<String>>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let modules: BTreeMap<Vec<String>, String> = sources(src)
            .into_iter()
            .map(|(path, text)| (module_path(path.strip_prefix(src).unwrap()), without_unit_tests(&lex(&text).code)))
            .collect();
        let mut krate = Crate { modules, reexports: BTreeMap::new(), declared: BTreeMap::new() };
        for (module, code) in &krate.modules {
            let mut named = BTreeMap::new();
            let mut globs = Vec::new();
            for statement in uses(code).into_iter().filter(|u| u.public) {
                for path in statement.paths {
                    let Some(absolute) = krate.absolute(module, &path, true) else { continue };
                    match path.last().map(String::as_str) {
                        Some("*") => globs.push(absolute[..absolute.len() - 1].to_vec()),
                        Some(last) => {
                            // A rename's new name is not kept: re-exports here are under their own names.
                            named.insert(last.to_owned(), absolute);
                        }
                        None => {}
                    }
                }
            }
            krate.reexports.insert(module.clone(), Reexports { named, globs });
            krate.declared.insert(module.clone(), declared(code));
        }
        krate
    }

    /// A path as seen from `module`, from the crate root: `crate::`, `super::`, `self::`,
    /// and (in a `use`) a child module's name; `None` for another crate's.
    fn absolute(&self, module: &[String], path: &[String], in_use: bool) -> Option<Vec<String>> {
        let first = path.first()?;
        let mut at = module.to_vec();
        let mut rest = path;
        match first.as_str() {
            "crate" => {
                at.clear();
                rest = &path[1..];
            }
            "self" => rest = &path[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    at.pop()?;
                    rest = &rest[1..];
                }
            }
            child if in_use && self.modules.contains_key(&[module, &[child.to_owned()]].concat()) => {}
            _ => return None,
        }
        at.extend(rest.iter().cloned());
        Some(at)
    }

    /// The module a path from the root lands in: down its modules, then through
    /// re-exports (named, then globs by what their module declares).
    fn resolve(&self, path: &[String], depth: usize) -> Vec<String> {
        let mut at: Vec<String> = Vec::new();
        for (k, segment) in path.iter().enumerate() {
            if segment == "self" {
                continue;
            }
            let child = [at.as_slice(), std::slice::from_ref(segment)].concat();
            if self.modules.contains_key(&child) {
                at = child;
                continue;
            }
            if depth < 8
                && let Some(Reexports { named, globs }) = self.reexports.get(&at)
            {
                if let Some(target) = named.get(segment) {
                    return self.resolve(&[target.as_slice(), &path[k + 1..]].concat(), depth + 1);
                }
                for glob in globs {
                    let names = |m: &Vec<String>| {
                        self.declared.get(m).is_some_and(|d| d.contains(segment))
                            || self.reexports.get(m).is_some_and(|r| r.named.contains_key(segment))
                    };
                    if names(glob) {
                        return self.resolve(&[glob.as_slice(), &path[k..]].concat(), depth + 1);
                    }
                }
            }
            break;
        }
        at
    }
}

/// The modules of a crate (each file's, submodules included: `ports::journeys`) and
/// those each uses through `crate::`, `super::` and `self::` paths and `use` of its own
/// submodules, through re-exports to the module that declares an item. A module's
/// re-export of its own submodules (`pub use engine::*`) is its face, not a use; so is
/// the crate root (an item it declares is no module's).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let krate = Crate::read(src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &krate.modules {
        let inline = inline_modules(code);
        // The module a path at `at` is written in: the file's, and the inline modules around it.
        let within = |at: usize| -> Vec<String> {
            let names = inline.iter().filter(|(span, _)| span.contains(&at)).map(|(_, name)| name.clone());
            module.iter().cloned().chain(names).collect()
        };
        let entry = graph.entry(node(module)).or_default();
        let mut add = |at: usize, path: &[String], in_use: bool, public: bool| {
            let Some(absolute) = krate.absolute(&within(at), path, in_use) else { return };
            let target = krate.resolve(&absolute, 0);
            let below = target.len() > module.len() && target.starts_with(module);
            // The crate root is the crate's face, as before submodules counted: what it
            // declares itself (a crate's main type, say) is no module's.
            if !target.is_empty() && target != *module && !(public && below) {
                entry.insert(node(&target));
            }
        };
        let statements = uses(code);
        for statement in &statements {
            for path in &statement.paths {
                add(statement.span.start, path, true, statement.public);
            }
        }
        let bytes = code.as_bytes();
        for start in ["crate::", "super::", "self::"] {
            for (at, _) in code.match_indices(start) {
                let before = at.checked_sub(1).map(|p| bytes[p]);
                if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                    || statements.iter().any(|u| u.span.contains(&at))
                {
                    continue;
                }
                for path in expand(&code[at..]) {
                    add(at, &path, false, false);
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
        if krate == "core" {
            let engine = graph.get("journeys::engine");
            assert!(engine.is_some_and(|uses| uses.contains("ports::journeys")), "submodules are nodes of their own: {engine:?}");
        }
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

/// A crate laid out in a temporary directory, for the module graph's own tests.
fn scratch_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let src = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tidy").join(name).join("src");
    let _ = std::fs::remove_dir_all(&src);
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    src
}

#[test]
fn submodules_are_nodes_and_super_and_self_are_followed() {
    let files = [
        ("lib.rs", "mod a;\nmod b;\npub use a::{Face, engine::run};\n"),
        // A face re-exporting its submodules is no use of them.
        ("a/mod.rs", "mod engine;\nmod rules;\npub use engine::*;\npub use rules::Rule;\npub struct Face;\n"),
        ("a/engine.rs", "use super::rules::Rule;\npub fn run() { let _ = self::step(); crate::b::helper(); }\nfn step() {}\n"),
        ("a/rules.rs", "pub struct Rule;\n"),
        ("b.rs", "pub fn helper() {}\npub fn outer() { crate::run(); let _ = crate::a::Rule; }\n"),
    ];
    let graph = module_graph(&scratch_crate("layered", &files));
    let edges = |n: &str| graph.get(n).cloned().unwrap_or_default().into_iter().collect::<Vec<_>>();
    assert_eq!(edges("crate"), Vec::<String>::new());
    assert_eq!(edges("a"), Vec::<String>::new(), "{graph:?}");
    assert_eq!(edges("a::engine"), ["a::rules", "b"], "{graph:?}");
    assert_eq!(edges("b"), ["a::engine", "a::rules"], "{graph:?}");
    assert_eq!(circle(&graph).unwrap(), ["a::engine", "b", "a::engine"]);

    // A submodule using its parent, whose own code uses the submodule: a circle the
    // top-level view (one node `a`) could not see.
    let files = [
        ("lib.rs", "mod a;\n"),
        ("a/mod.rs", "mod engine;\nuse engine::run;\npub struct Face;\npub fn go() { run() }\n"),
        ("a/engine.rs", "pub fn run() { let _ = super::Face; }\n"),
    ];
    let graph = module_graph(&scratch_crate("parent", &files));
    assert_eq!(circle(&graph).unwrap(), ["a", "a::engine", "a"], "{graph:?}");
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
    assert_eq!(expand("{a::{B, C as D}, d, self}"), [vec!["a", "B"], vec!["a", "C"], vec!["d"], vec!["self"]]);
    assert_eq!(expand("crate::x::Y;"), [["crate", "x", "Y"]]);
    assert_eq!(expand("super::super::m::*"), [["super", "super", "m", "*"]]);
    assert_eq!(expand("crate::ports::NewRun { shop_id }"), [["crate", "ports", "NewRun"]]);
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
