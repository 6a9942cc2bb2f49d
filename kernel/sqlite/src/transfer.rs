//! The SQLite side of `kith migrate`: the tables as this file has them, and their rows
//! as the core's neutral values (`kith_core::transfer`), read in one snapshot.

use kith_core::transfer::{CHUNK_ROWS, Cell, Checksum, Plan, Scope, Sink, SourceTable, TablePlan, TableSummary};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, params_from_iter};

use crate::{Result, Store, StoreError};

/// Child tables that keep no `shop_id` here: the parent each one's shop is read from,
/// and the column naming the parent's `id`.
const CHILDREN: &[(&str, &str, &str)] = &[
    ("order_items", "orders", "order_id"),
    ("refunds", "orders", "order_id"),
    ("message_events", "messages", "message_id"),
    ("segment_versions", "segments", "segment_id"),
    ("segment_members", "segments", "segment_id"),
    ("segment_counts", "segments", "segment_id"),
    ("segment_snapshot_members", "segment_snapshots", "snapshot_id"),
    ("journey_versions", "journeys", "journey_id"),
    ("journey_steps", "journey_runs", "run_id"),
];

/// Whether the export derives `column` of `table` though the file has no such column:
/// the `shop_id` of a child table, from its parent row.
pub fn derivable(table: &str, column: &str) -> bool {
    column == "shop_id" && parent(table).is_some()
}

fn parent(table: &str) -> Option<(&'static str, &'static str)> {
    CHILDREN.iter().find(|(child, _, _)| *child == table).map(|(_, parent, fk)| (*parent, *fk))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statement reading `table`'s rows of `shop` (all rows without one) in the plan's
/// column order and key order.
fn select(table: &TablePlan, shop: Option<i64>) -> Result<String> {
    let join = if table.derived.is_empty() {
        None
    } else {
        let Some((parent, fk)) = parent(&table.name) else {
            return Err(StoreError::Internal(anyhow::anyhow!("{} has derived columns but no parent", table.name)));
        };
        Some((parent, fk))
    };
    let expr = |column: &str| -> String {
        if table.derived.iter().any(|d| d == column) { format!("p.{}", quote(column)) } else { format!("t.{}", quote(column)) }
    };
    let columns: Vec<String> = table.columns.iter().map(|c| expr(c)).collect();
    let key: Vec<String> = table.key.iter().map(|c| expr(c)).collect();
    let mut sql = format!("SELECT {} FROM {} t", columns.join(", "), quote(&table.name));
    if let Some((parent, fk)) = join {
        sql += &format!(" JOIN {} p ON p.id = t.{}", quote(parent), quote(fk));
    }
    if shop.is_some() {
        sql += &match table.scope {
            Scope::ShopRow => " WHERE t.id = ?1".to_string(),
            Scope::Tenant => format!(" WHERE {} = ?1", expr("shop_id")),
            Scope::TenantOrGlobal => " WHERE (t.shop_id = ?1 OR t.shop_id IS NULL)".to_string(),
            Scope::Global => String::new(),
        };
    }
    if !key.is_empty() {
        sql += &format!(" ORDER BY {}", key.join(", "));
    }
    Ok(sql)
}

fn cell(value: ValueRef<'_>) -> Result<Cell> {
    Ok(match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Int(v),
        ValueRef::Real(v) => Cell::Real(v),
        ValueRef::Text(bytes) => Cell::Text(
            String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::Internal(anyhow::anyhow!("a text that is not UTF-8: {e}")))?,
        ),
        ValueRef::Blob(bytes) => Cell::Blob(bytes.to_vec()),
    })
}

/// Read every table of `plan` (the rows of `shop`, or all) from `conn`, handing rows to
/// `sink` in chunks when there is one; each table's summary.
fn read_tables(conn: &Connection, plan: &Plan, shop: Option<i64>, mut sink: Option<&mut Sink<'_>>) -> Result<Vec<TableSummary>> {
    let mut summaries = Vec::with_capacity(plan.tables.len());
    for table in &plan.tables {
        let sql = select(table, shop)?;
        let mut statement = conn.prepare(&sql).map_err(|e| StoreError::Internal(anyhow::anyhow!("reading {}: {e}", table.name)))?;
        let params: Vec<i64> = if shop.is_some() && table.scope != Scope::Global { shop.into_iter().collect() } else { vec![] };
        let mut rows = statement.query(params_from_iter(params))?;
        let mut checksum = Checksum::new(table);
        let mut chunk = Vec::new();
        let width = table.columns.len();
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(cell(row.get_ref(i)?)?);
            }
            checksum.add(&cells);
            if let Some(sink) = sink.as_mut() {
                chunk.push(cells);
                if chunk.len() == CHUNK_ROWS {
                    sink(table, std::mem::take(&mut chunk)).map_err(StoreError::Internal)?;
                }
            }
        }
        if let Some(sink) = sink.as_mut()
            && !chunk.is_empty()
        {
            sink(table, chunk).map_err(StoreError::Internal)?;
        }
        summaries.push(checksum.finish());
    }
    Ok(summaries)
}

impl Store {
    /// Every table of the file with its columns (`PRAGMA table_info`), bookkeeping included
    /// (`kith_core::transfer::plan` leaves it out).
    pub fn transfer_tables(&self) -> Result<Vec<SourceTable>> {
        self.read(|conn| {
            let names: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut tables = Vec::with_capacity(names.len());
            for name in names {
                let columns: Vec<String> = conn
                    .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
                    .query_map([&name], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                tables.push(SourceTable { name, columns });
            }
            Ok(tables)
        })
    }

    /// Hand the rows of every table of `plan` (those of `shop`, or all) to `sink`, table by
    /// table in the plan's order, in chunks of at most `CHUNK_ROWS`, all from one snapshot;
    /// each table's summary of what it handed.
    pub fn export(&self, plan: &Plan, shop: Option<i64>, sink: &mut Sink<'_>) -> Result<Vec<TableSummary>> {
        self.read(|conn| read_tables(conn, plan, shop, Some(sink)))
    }

    /// Each table's rows and checksum (those of `shop`, or all), from one snapshot.
    pub fn transfer_summaries(&self, plan: &Plan, shop: Option<i64>) -> Result<Vec<TableSummary>> {
        self.read(|conn| read_tables(conn, plan, shop, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::transfer::plan;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db"), Default::default()).unwrap();
        (dir, store)
    }

    /// The file's tables as a target with `shop_id` in every child, keyed by shop first.
    fn as_target(tables: &[SourceTable]) -> Vec<kith_core::transfer::TargetTable> {
        tables
            .iter()
            .map(|t| {
                let mut columns = t.columns.clone();
                if derivable(&t.name, "shop_id") {
                    columns.insert(0, "shop_id".into());
                }
                let key = if t.columns.contains(&"id".to_string()) { vec!["id".to_string()] } else { columns.clone() };
                kith_core::transfer::TargetTable { name: t.name.clone(), columns, key, parents: vec![] }
            })
            .collect()
    }

    #[test]
    fn every_table_of_the_file_is_planned_and_a_child_reads_its_parents_shop() {
        let (_dir, store) = store();
        let tables = store.transfer_tables().unwrap();
        let plan = plan(&tables, &as_target(&tables), derivable).unwrap();
        assert!(plan.tables.iter().any(|t| t.name == "order_items" && t.derived == ["shop_id"]));
        let copied = plan.tables.len() + tables.iter().filter(|t| kith_core::transfer::is_bookkeeping(&t.name)).count();
        assert_eq!(copied, tables.len());
        {
            let conn = store.writer.lock().unwrap();
            conn.execute_batch(
                "INSERT INTO shops (id, name, time_zone, currency, region, created_at) VALUES (1, 'A', 'UTC', 'CNY', 'CN', 0), (2, 'B', 'UTC', 'CNY', 'CN', 0);
                 INSERT INTO customers (id, shop_id, created_at, updated_at) VALUES (1, 1, 0, 0), (2, 2, 0, 0);
                 INSERT INTO orders (id, shop_id, customer_id, external_id, status, amount, paid_at, created_at) VALUES (1, 1, 1, 'a', 'paid', 5, 0, 0), (2, 2, 2, 'b', 'paid', 7, 0, 0);
                 INSERT INTO order_items (order_id, line, sku, quantity, unit_price, discount) VALUES (1, 1, 'x', 1, 5, 0), (2, 1, 'y', 1, 7, 0), (2, 2, 'z', 1, 0, 0);",
            )
            .unwrap();
        }
        let mut seen = Vec::new();
        let summaries = store
            .export(&plan, Some(2), &mut |table, rows| {
                if table.name == "order_items" {
                    seen.extend(rows);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|row| row[0] == Cell::Int(2)), "{seen:?}");
        let items = summaries.iter().find(|s| s.table == "order_items").unwrap();
        assert_eq!(items.rows, 2);
        assert_eq!(summaries, store.transfer_summaries(&plan, Some(2)).unwrap());
        let all = store.transfer_summaries(&plan, None).unwrap();
        assert_eq!(all.iter().find(|s| s.table == "order_items").unwrap().rows, 3);
        assert_eq!(all.iter().find(|s| s.table == "shops").unwrap().rows, 2);
        // A changed value changes the table's checksum, and only that table's.
        store.writer.lock().unwrap().execute("UPDATE order_items SET sku = 'w' WHERE order_id = 2 AND line = 2", []).unwrap();
        let after = store.transfer_summaries(&plan, None).unwrap();
        for (before, after) in all.iter().zip(&after) {
            assert_eq!(before.checksum == after.checksum, before.table != "order_items", "{}", before.table);
        }
    }
}
