//! Moving a database from one backend to another (`kith migrate`): the rows as neutral
//! values, the plan of what is copied, and the checksum both sides compute alike.
//!
//! The source backend exports each table of the [`Plan`] as rows of [`Cell`]s in the
//! plan's column order; the target writes them; then each side reads its rows back in
//! the plan's key order and hands a [`TableSummary`] (rows and a SHA-256 over the
//! canonical encoding of every cell, [`Checksum`]), which must agree table for table.
//! No SQL here: each backend says its own tables and columns ([`SourceTable`],
//! [`TargetTable`]), and [`plan`] checks that every table and column of the source has
//! a place in the target, so that a table added later is refused, never dropped.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// One value of a row, as both backends store it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A table as the source database has it: its columns in the source's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<String>,
}

/// A table as the target database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTable {
    pub name: String,
    /// In the target's order.
    pub columns: Vec<String>,
    /// Its primary key's columns, in the key's order.
    pub key: Vec<String>,
    /// The tables its foreign keys refer to (itself left out).
    pub parents: Vec<String>,
}

/// Which rows of a table belong to the shop copied by `--shop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `shops`: the shop's own row (`id`).
    ShopRow,
    /// A tenant table: rows whose `shop_id` is the shop's.
    Tenant,
    /// `api_keys`: the shop's keys, and the admin keys (`shop_id` NULL), which
    /// administer only what the copy brings to an empty target.
    TenantOrGlobal,
    /// The plugin catalogue (`plugins`, `plugin_blobs`): copied whole, whatever the shop.
    Global,
}

/// One table to copy: its columns (the target's, in the target's order) and the key
/// both sides read it back in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlan {
    pub name: String,
    pub columns: Vec<String>,
    pub key: Vec<String>,
    pub scope: Scope,
    /// Columns the target has and the source lacks, which the source derives (the
    /// `shop_id` of a child table, from its parent row).
    pub derived: Vec<String>,
}

/// The tables to copy, parents before children.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    /// Tables of the target the source does not have: left as the target has them (empty).
    pub target_only: Vec<String>,
}

/// Tables neither side copies: the engines' own, schema versions, and leases (held by a
/// running node for seconds; a new database starts without).
pub fn is_bookkeeping(table: &str) -> bool {
    table.starts_with("sqlite_") || table.starts_with("pg_") || matches!(table, "kith_schema" | "leases")
}

/// A table's scope, from its name and columns; `None` when the copy of one shop
/// cannot tell which of its rows are the shop's.
fn scope_of(name: &str, columns: &[String]) -> Option<Scope> {
    match name {
        "shops" => Some(Scope::ShopRow),
        "api_keys" => Some(Scope::TenantOrGlobal),
        "plugins" | "plugin_blobs" => Some(Scope::Global),
        _ if columns.iter().any(|c| c == "shop_id") => Some(Scope::Tenant),
        _ => None,
    }
}

/// The plan of a copy from `source` into `target`. Refused when a table of the source
/// is not in the target, a column of the source has no column in the target, or a
/// column of the target is neither in the source nor one `derivable(table, column)`
/// says the source derives.
pub fn plan(source: &[SourceTable], target: &[TargetTable], derivable: impl Fn(&str, &str) -> bool) -> Result<Plan, String> {
    let by_name: BTreeMap<&str, &TargetTable> = target.iter().filter(|t| !is_bookkeeping(&t.name)).map(|t| (t.name.as_str(), t)).collect();
    let mut problems = Vec::new();
    let mut planned: BTreeMap<&str, TablePlan> = BTreeMap::new();
    for table in source.iter().filter(|t| !is_bookkeeping(&t.name)) {
        let Some(into) = by_name.get(table.name.as_str()) else {
            problems.push(format!("table {} has no table in the target: the copy would drop it", table.name));
            continue;
        };
        let source_columns: BTreeSet<&str> = table.columns.iter().map(String::as_str).collect();
        let target_columns: BTreeSet<&str> = into.columns.iter().map(String::as_str).collect();
        for missing in source_columns.difference(&target_columns) {
            problems.push(format!("column {}.{missing} has no column in the target: the copy would drop it", table.name));
        }
        let mut derived = Vec::new();
        for extra in target_columns.difference(&source_columns) {
            if derivable(&table.name, extra) {
                derived.push(extra.to_string());
            } else {
                problems.push(format!("column {}.{extra} of the target has no source column", table.name));
            }
        }
        let Some(scope) = scope_of(&table.name, &into.columns) else {
            problems.push(format!("table {} has no shop_id: which of its rows belong to a shop is unknown", table.name));
            continue;
        };
        if into.key.is_empty() {
            problems.push(format!("table {} has no primary key in the target", table.name));
        }
        planned.insert(
            &into.name,
            TablePlan { name: into.name.clone(), columns: into.columns.clone(), key: into.key.clone(), scope, derived },
        );
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    // Parents first (Kahn's order, by name among the ready): foreign keys hold after each table.
    let mut order = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < planned.len() {
        let ready: Vec<&str> = planned
            .keys()
            .copied()
            .filter(|name| !done.contains(name))
            .filter(|name| {
                by_name[name].parents.iter().all(|p| p == name || done.contains(p.as_str()) || !planned.contains_key(p.as_str()))
            })
            .collect();
        if ready.is_empty() {
            let left: Vec<&str> = planned.keys().copied().filter(|n| !done.contains(n)).collect();
            return Err(format!("the target's foreign keys form a circle among {}", left.join(", ")));
        }
        for name in ready {
            done.insert(name);
            order.push(planned[name].clone());
        }
    }
    let target_only = by_name.keys().filter(|name| !planned.contains_key(*name)).map(|name| name.to_string()).collect();
    Ok(Plan { tables: order, target_only })
}

/// What one side holds of a table: its rows and their checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub table: String,
    pub rows: u64,
    /// SHA-256 in hex: see [`Checksum`].
    pub checksum: String,
}

/// SHA-256 over a table's column names, then each row's cells in order: one tag byte
/// per cell (0 null, 1 integer, 2 real, 3 text, 4 blob), then integers and reals as
/// 8 big-endian bytes (a real's IEEE bits), texts and blobs as their length (8 bytes)
/// and bytes. Rows must come in the plan's key order.
pub struct Checksum {
    table: String,
    hasher: Sha256,
    rows: u64,
}

impl Checksum {
    pub fn new(table: &TablePlan) -> Checksum {
        let mut hasher = Sha256::new();
        for column in &table.columns {
            hasher.update((column.len() as u64).to_be_bytes());
            hasher.update(column.as_bytes());
        }
        Checksum { table: table.name.clone(), hasher, rows: 0 }
    }

    pub fn add(&mut self, row: &[Cell]) {
        for cell in row {
            match cell {
                Cell::Null => self.hasher.update([0]),
                Cell::Int(v) => {
                    self.hasher.update([1]);
                    self.hasher.update(v.to_be_bytes());
                }
                Cell::Real(v) => {
                    self.hasher.update([2]);
                    self.hasher.update(v.to_bits().to_be_bytes());
                }
                Cell::Text(s) => {
                    self.hasher.update([3]);
                    self.hasher.update((s.len() as u64).to_be_bytes());
                    self.hasher.update(s.as_bytes());
                }
                Cell::Blob(b) => {
                    self.hasher.update([4]);
                    self.hasher.update((b.len() as u64).to_be_bytes());
                    self.hasher.update(b);
                }
            }
        }
        self.rows += 1;
    }

    pub fn finish(self) -> TableSummary {
        TableSummary { table: self.table, rows: self.rows, checksum: hex(&self.hasher.finalize()) }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where an export hands a table's rows, a chunk at a time (the target's writer).
pub type Sink<'a> = dyn FnMut(&TablePlan, Vec<Vec<Cell>>) -> anyhow::Result<()> + 'a;

/// How many rows an export hands its sink at once.
pub const CHUNK_ROWS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, columns: &[&str]) -> SourceTable {
        SourceTable { name: name.into(), columns: columns.iter().map(|c| c.to_string()).collect() }
    }

    fn target(name: &str, columns: &[&str], key: &[&str], parents: &[&str]) -> TargetTable {
        let strings = |v: &[&str]| v.iter().map(|c| c.to_string()).collect();
        TargetTable { name: name.into(), columns: strings(columns), key: strings(key), parents: strings(parents) }
    }

    fn targets() -> Vec<TargetTable> {
        vec![
            target("orders", &["id", "shop_id"], &["shop_id", "id"], &["shops"]),
            target("order_items", &["shop_id", "order_id", "line"], &["shop_id", "order_id", "line"], &["orders"]),
            target("shops", &["id", "name"], &["id"], &[]),
            target("plugins", &["id"], &["id"], &[]),
            target("kith_schema", &["version"], &["version"], &[]),
            target("leases", &["name"], &["name"], &[]),
        ]
    }

    #[test]
    fn parents_come_first_and_a_childs_shop_id_is_derived() {
        let sources = [
            source("order_items", &["order_id", "line"]),
            source("orders", &["id", "shop_id"]),
            source("shops", &["id", "name"]),
            source("sqlite_sequence", &["name", "seq"]),
        ];
        let plan = plan(&sources, &targets(), |t, c| t == "order_items" && c == "shop_id").unwrap();
        let names: Vec<&str> = plan.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["shops", "orders", "order_items"]);
        assert_eq!(plan.tables[2].derived, ["shop_id"]);
        assert_eq!(plan.tables[2].scope, Scope::Tenant);
        assert_eq!(plan.tables[0].scope, Scope::ShopRow);
        assert_eq!(plan.target_only, ["plugins"]);
    }

    #[test]
    fn a_table_or_column_the_target_lacks_is_refused() {
        let sources = [source("shops", &["id", "name", "logo"]), source("wishlists", &["id", "shop_id"])];
        let err = plan(&sources, &targets(), |_, _| false).unwrap_err();
        assert!(err.contains("table wishlists has no table in the target"), "{err}");
        assert!(err.contains("column shops.logo has no column in the target"), "{err}");
        let err = plan(&[source("order_items", &["order_id", "line"])], &targets(), |_, _| false).unwrap_err();
        assert!(err.contains("column order_items.shop_id of the target has no source column"), "{err}");
    }

    fn summary(rows: &[Vec<Cell>]) -> TableSummary {
        let table =
            TablePlan { name: "t".into(), columns: vec!["a".into(), "b".into()], key: vec![], scope: Scope::Global, derived: vec![] };
        let mut sum = Checksum::new(&table);
        rows.iter().for_each(|r| sum.add(r));
        sum.finish()
    }

    #[test]
    fn the_checksum_tells_every_change_of_a_value_type_or_order() {
        let base = vec![vec![Cell::Int(1), Cell::Text("ab".into())], vec![Cell::Int(2), Cell::Null]];
        let reference = summary(&base);
        assert_eq!(reference, summary(&base.clone()));
        assert_eq!(reference.rows, 2);
        let changed = [
            vec![vec![Cell::Int(1), Cell::Text("ac".into())], base[1].clone()],
            vec![vec![Cell::Int(1), Cell::Blob(b"ab".to_vec())], base[1].clone()],
            vec![vec![Cell::Real(1.0), Cell::Text("ab".into())], base[1].clone()],
            vec![base[0].clone(), vec![Cell::Int(2), Cell::Text(String::new())]],
            vec![base[1].clone(), base[0].clone()],
            vec![base[0].clone()],
            // Cells moved across a boundary: ("a", "b") against ("ab", "").
            vec![vec![Cell::Text("a".into()), Cell::Text("bab".into())], base[1].clone()],
        ];
        for rows in changed {
            assert_ne!(summary(&rows).checksum, reference.checksum, "{rows:?}");
        }
    }
}
