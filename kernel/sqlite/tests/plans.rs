//! The shop filter never steers SQLite away from a customer's or a row's own index.
//!
//! Every statement on a shop's rows filters `shop_id`. Where it also names one customer
//! (`customer_id = ?`) or one row (`id = ?`), that is what must find the rows: had SQLite
//! chosen an index on the shop instead, it would step through every row of the shop for
//! each call (a plain `shop_id = ?` beside `customer_id = ?` made plugin deliveries three
//! times slower at `small` before the shop term was written `+shop_id`). This reads every
//! SQL text in the crate's sources, asks SQLite for its plan on a migrated database, and
//! fails on any such statement planned on the shop alone.

use std::path::{Path, PathBuf};

use kith_sqlite::{Store, StoreOptions};

/// The string literals of a Rust source (plain and raw), as written.
fn literals(src: &str) -> Vec<String> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('"', '\'') or a lifetime: step over the quoted char only.
                if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') {
                    i += 4;
                } else {
                    i += 1;
                }
            }
            b'r' if bytes.get(i + 1) == Some(&b'#') && bytes.get(i + 2) == Some(&b'"') => {
                let start = i + 3;
                let end = src[start..].find("\"#").map_or(bytes.len(), |e| start + e);
                out.push(src[start..end].to_owned());
                i = end + 2;
            }
            b'"' => {
                let mut text = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        // `\` at a line's end continues the string; other escapes stand for one char.
                        i += 1;
                        match bytes.get(i) {
                            Some(&b'\n') => text.push(' '),
                            Some(&c) => text.push(c as char),
                            None => {}
                        }
                    } else {
                        text.push(bytes[i] as char);
                    }
                    i += 1;
                }
                out.push(text);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `?`, `?N` parameters as literals (EXPLAIN needs none bound).
fn bind_all(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('1');
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `sql` names one customer or one row by a parameter (`customer_id = ?1`, `id = ?2`);
/// an optional filter of a list (`?3 IS NULL OR customer_id = ?3`) names none.
fn names_one_row(sql: &str) -> bool {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ").replace("IS NULL OR customer_id = ?", "");
    ["customer_id = ?", " id = ?", ".id = ?", "(id = ?"].iter().any(|term| flat.contains(term))
}

/// A plan step searching an index on the shop alone: `shop_id=?` its only equality, any
/// other term a range (`(shop_id=?)`, `(shop_id=? AND id<?)`).
fn on_the_shop_alone(step: &str) -> bool {
    let Some(terms) = step.strip_prefix("SEARCH").and_then(|s| s.rsplit_once('(')).map(|(_, t)| t.trim_end_matches(')')) else {
        return false;
    };
    let mut terms = terms.split(" AND ");
    terms.next() == Some("shop_id=?") && terms.all(|t| !t.contains('=') || t.contains("<=") || t.contains(">="))
}

/// A database Kith created and migrated, opened beside the store.
fn migrated() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    drop(Store::open(&path, StoreOptions::default()).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    (dir, conn)
}

/// SQLite's plan of `sql` (parameters bound as literals), one step a line; `None` when
/// the text does not prepare (a fragment, a statement on a table of another crate).
fn plan(conn: &rusqlite::Connection, sql: &str) -> Option<Vec<String>> {
    let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", bind_all(sql))).ok()?;
    Some(explain.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect())
}

#[test]
fn no_statement_naming_a_customer_or_a_row_is_planned_on_the_shop_alone() {
    let (_dir, conn) = migrated();
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let (mut planned, mut faults) = (0, Vec::new());
    for file in &files {
        for sql in literals(&std::fs::read_to_string(file).unwrap()) {
            let upper = sql.to_ascii_uppercase();
            let statement = ["SELECT ", "UPDATE ", "DELETE ", "INSERT "].iter().any(|w| upper.contains(w));
            // Texts completed at run time (`{…}`) are not whole statements.
            if !statement || !sql.contains("shop_id") || sql.contains('{') || !names_one_row(&sql) {
                continue;
            }
            let Some(steps) = plan(&conn, &sql) else { continue };
            planned += 1;
            if let Some(step) = steps.iter().find(|s| on_the_shop_alone(s)) {
                let name = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display().to_string();
                faults.push(format!("{name}: {step}\n    {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
        }
    }
    assert!(planned > 100, "the scan found the crate's statements ({planned} planned)");
    assert!(faults.is_empty(), "statements planned on the shop alone (write the shop term `+shop_id`):\n{}", faults.join("\n"));
}

#[test]
fn the_check_finds_a_statement_planned_on_the_shop_alone() {
    let (_dir, conn) = migrated();
    let plan = |sql: &str| plan(&conn, sql).expect("the statement prepares");
    let bad = "SELECT COUNT(*) FROM tags WHERE customer_id = ?1 AND source = ?2 AND shop_id = ?3";
    let good = "SELECT COUNT(*) FROM tags WHERE customer_id = ?1 AND source = ?2 AND +shop_id = ?3";
    assert!(names_one_row(bad) && plan(bad).iter().any(|s| on_the_shop_alone(s)), "{:?}", plan(bad));
    assert!(!plan(good).iter().any(|s| on_the_shop_alone(s)), "{:?}", plan(good));
    let flat = |s: &String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let found = literals("let a = \"x = ?1 \\\n  AND y\"; let b = r#\"q \"z\"\"#; // \"no\"\n");
    assert_eq!(found.iter().map(flat).collect::<Vec<_>>(), ["x = ?1 AND y", "q \"z\""]);
}
