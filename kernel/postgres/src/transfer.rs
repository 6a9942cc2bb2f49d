//! The PostgreSQL side of `kith migrate`: the tables as this database has them (its
//! catalog), the rows of another backend written with `COPY … FROM STDIN (FORMAT binary)`
//! in one transaction under the global write lock, and the rows read back as the core's
//! neutral values (`kith_core::transfer`) for the checksums.

use std::collections::BTreeMap;
use std::error::Error as StdError;

use futures::{StreamExt, pin_mut};
use kith_core::transfer::{Cell, Checksum, Plan, Scope, Sink, TablePlan, TableSummary, TargetTable};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::private::BytesMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{GenericClient, IsolationLevel};

use crate::pg::{CoreResult, error, wait};
use crate::{Postgres, WRITE_LOCK};

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn internal(message: String) -> kith_core::Error {
    kith_core::Error::Internal(anyhow::anyhow!(message))
}

/// A cell as a parameter of its column's type; a cell of another type is refused.
#[derive(Debug)]
struct Param<'a>(&'a Cell);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self.0 {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Int(v) => match *ty {
                Type::INT8 => v.to_sql_checked(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql_checked(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql_checked(ty, out),
                _ => Err(format!("an integer ({v}) for a column of type {ty}").into()),
            },
            Cell::Real(v) => v.to_sql_checked(ty, out),
            Cell::Text(v) => v.as_str().to_sql_checked(ty, out),
            Cell::Blob(v) => v.as_slice().to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Column `i` of `row` as a cell, by its type.
fn cell(row: &tokio_postgres::Row, i: usize) -> Result<Cell, tokio_postgres::Error> {
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map_or(Cell::Null, Cell::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map_or(Cell::Null, |v| Cell::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map_or(Cell::Null, |v| Cell::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map_or(Cell::Null, Cell::Real),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Cell::Null, Cell::Blob),
        _ => row.try_get::<_, Option<String>>(i)?.map_or(Cell::Null, Cell::Text),
    })
}

/// The statement reading `table`'s rows of `shop` (all without one), in the plan's
/// columns and key order.
fn select(table: &TablePlan, shop: Option<i64>) -> String {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let key: Vec<String> = table.key.iter().map(|c| quote(c)).collect();
    let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&table.name));
    if shop.is_some() {
        sql += match table.scope {
            Scope::ShopRow => " WHERE id = $1",
            Scope::Tenant => " WHERE shop_id = $1",
            Scope::TenantOrGlobal => " WHERE (shop_id = $1 OR shop_id IS NULL)",
            Scope::Global => "",
        };
    }
    if !key.is_empty() {
        sql += &format!(" ORDER BY {}", key.join(", "));
    }
    sql
}

/// The parameters of [`select`]'s statement.
fn params(table: &TablePlan, shop: Option<i64>) -> Vec<i64> {
    match shop {
        Some(shop) if table.scope != Scope::Global => vec![shop],
        _ => vec![],
    }
}

async fn summarize(client: &impl GenericClient, table: &TablePlan, shop: Option<i64>) -> Result<TableSummary, tokio_postgres::Error> {
    let stream = client.query_raw(select(table, shop).as_str(), params(table, shop)).await?;
    pin_mut!(stream);
    let mut checksum = Checksum::new(table);
    let mut cells = Vec::with_capacity(table.columns.len());
    while let Some(row) = stream.next().await {
        let row = row?;
        cells.clear();
        for i in 0..table.columns.len() {
            cells.push(cell(&row, i)?);
        }
        checksum.add(&cells);
    }
    Ok(checksum.finish())
}

/// What `sink` failed with, or what the driver failed with.
enum CopyError {
    Driver(tokio_postgres::Error),
    Row(String),
}

/// Write `rows` into `table` with one binary `COPY`.
async fn copy(client: &tokio_postgres::Transaction<'_>, table: &TablePlan, types: &[Type], rows: &[Vec<Cell>]) -> Result<(), CopyError> {
    let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
    let sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", quote(&table.name), columns.join(", "));
    let sink = client.copy_in(sql.as_str()).await.map_err(CopyError::Driver)?;
    let writer = BinaryCopyInWriter::new(sink, types);
    pin_mut!(writer);
    let mut values: Vec<Param<'_>> = Vec::with_capacity(types.len());
    for row in rows {
        if row.len() != types.len() {
            return Err(CopyError::Row(format!("a row of {} has {} cells for {} columns", table.name, row.len(), types.len())));
        }
        values.clear();
        values.extend(row.iter().map(Param));
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&refs).await.map_err(CopyError::Driver)?;
    }
    writer.finish().await.map_err(CopyError::Driver)?;
    Ok(())
}

impl Postgres {
    /// Every table of the current schema: its columns, primary key and the tables its
    /// foreign keys refer to (`kith_core::transfer::plan` leaves bookkeeping out).
    pub fn transfer_tables(&self) -> CoreResult<Vec<TargetTable>> {
        let client = self.client()?;
        let (columns, keys, parents) = wait(async {
            let columns = client
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
                    &[],
                )
                .await?;
            let keys = client
                .query(
                    "SELECT c.relname::text, a.attname::text FROM pg_index i
                     JOIN pg_class c ON c.oid = i.indrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
                     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                     WHERE i.indisprimary ORDER BY c.relname, k.n",
                    &[],
                )
                .await?;
            let parents = client
                .query(
                    "SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
                     JOIN pg_namespace n ON n.oid = c.connamespace AND n.nspname = current_schema()
                     WHERE c.contype = 'f' AND c.conrelid <> c.confrelid",
                    &[],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>((columns, keys, parents))
        })
        .map_err(error)?;
        let mut tables: BTreeMap<String, TargetTable> = BTreeMap::new();
        for row in &columns {
            let name: String = row.get(0);
            let entry = tables.entry(name.clone()).or_insert_with(|| TargetTable { name, columns: vec![], key: vec![], parents: vec![] });
            entry.columns.push(row.get(1));
        }
        for row in &keys {
            if let Some(table) = tables.get_mut(row.get::<_, &str>(0)) {
                table.key.push(row.get(1));
            }
        }
        for row in &parents {
            let parent: String = row.get::<_, String>(1).trim_matches('"').to_string();
            if let Some(table) = tables.get_mut(row.get::<_, String>(0).trim_matches('"')) {
                table.parents.push(parent);
            }
        }
        Ok(tables.into_values().collect())
    }

    /// Copy rows into the tables of `plan`, in one transaction under the global write
    /// lock: refused (`Conflict`) unless every one of them is empty. `source` is handed a
    /// sink that writes each chunk of a table's rows with one binary `COPY`; once it
    /// returns, each identity column is set past the largest id copied, and the
    /// transaction commits. Nothing is written when `source` or a copy fails.
    pub fn import(&self, plan: &Plan, source: &mut dyn FnMut(&mut Sink<'_>) -> anyhow::Result<()>) -> CoreResult<()> {
        let mut client = self.client()?;
        let tx = wait(client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start()).map_err(error)?;
        wait(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])).map_err(error)?;
        let mut holding = Vec::new();
        let mut types: BTreeMap<String, Vec<Type>> = BTreeMap::new();
        for table in &plan.tables {
            let columns: Vec<String> = table.columns.iter().map(|c| quote(c)).collect();
            let sql = format!("SELECT {} FROM {} LIMIT 1", columns.join(", "), quote(&table.name));
            let statement = wait(tx.prepare(&sql)).map_err(error)?;
            if wait(tx.query_opt(&statement, &[])).map_err(error)?.is_some() {
                holding.push(table.name.clone());
            }
            types.insert(table.name.clone(), statement.columns().iter().map(|c| c.type_().clone()).collect());
        }
        if !holding.is_empty() {
            return Err(kith_core::Error::Conflict(format!(
                "the target database already holds rows in {}: kith migrate copies into an empty database only",
                holding.join(", ")
            )));
        }
        let mut failed: Option<kith_core::Error> = None;
        let result = source(&mut |table, rows| {
            let types = types.get(&table.name).ok_or_else(|| anyhow::anyhow!("{} is not in the plan", table.name))?;
            match wait(copy(&tx, table, types, &rows)) {
                Ok(()) => Ok(()),
                Err(CopyError::Row(message)) => Err(anyhow::anyhow!(message)),
                Err(CopyError::Driver(e)) => {
                    let message = format!("copying into {}: {e}", table.name);
                    failed = Some(error(e));
                    Err(anyhow::anyhow!(message))
                }
            }
        });
        if let Err(e) = result {
            // The transaction rolls back when dropped. A failure of the server keeps its kind.
            return Err(match failed {
                Some(kith_core::Error::Unavailable(kind, _)) => kith_core::Error::Unavailable(kind, e),
                _ => kith_core::Error::Internal(e),
            });
        }
        let identities = wait(tx.query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        ))
        .map_err(error)?;
        for row in identities {
            let (table, column): (String, String) = (row.get(0), row.get(1));
            if !plan.tables.iter().any(|t| t.name == table) {
                continue;
            }
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({}) FROM {}), 0) + 1, false)",
                quote(&column),
                quote(&table)
            );
            wait(tx.execute(sql.as_str(), &[&quote(&table), &column])).map_err(error)?;
        }
        wait(tx.commit()).map_err(error)?;
        // The planner's statistics of the copied tables, at once: until autovacuum's first
        // pass (up to a minute, longer on a busy server) they say "empty", and a node's
        // first statements would keep plans made for empty tables (sequential scans) in
        // its statement cache. The copy is committed whatever happens here.
        let tables: Vec<String> = plan.tables.iter().map(|t| quote(&t.name)).collect();
        if !tables.is_empty()
            && let Err(e) = wait(client.batch_execute(&format!("ANALYZE {}", tables.join(", "))))
        {
            tracing::warn!(error = %e, "the copy is committed, but ANALYZE of the copied tables failed: autovacuum will analyze them");
        }
        Ok(())
    }

    /// Each table's rows and checksum (those of `shop`, or all), read in key order from
    /// one snapshot.
    pub fn transfer_summaries(&self, plan: &Plan, shop: Option<i64>) -> CoreResult<Vec<TableSummary>> {
        let mut client = self.client()?;
        let tx = wait(client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()).map_err(error)?;
        let mut summaries = Vec::with_capacity(plan.tables.len());
        for table in &plan.tables {
            let summary = wait(summarize(&*tx, table, shop)).map_err(|e| match error(e) {
                kith_core::Error::Unavailable(kind, e) => kith_core::Error::Unavailable(kind, e),
                other => internal(format!("reading {} back: {other}", table.name)),
            })?;
            summaries.push(summary);
        }
        wait(tx.commit()).map_err(error)?;
        Ok(summaries)
    }
}

#[cfg(test)]
mod tests {
    use kith_core::transfer::{SourceTable, plan};

    use super::*;
    use crate::PgOptions;
    use crate::cluster::Cluster;

    /// Rows written through `import` read back as the same cells, reals to the bit and texts
    /// byte for byte, so that the checksum of what was exported is the checksum read back;
    /// a second import into the now non-empty tables is refused and writes nothing.
    #[test]
    fn imported_rows_read_back_with_the_checksum_of_what_was_written() {
        let cluster = Cluster::start().unwrap();
        let url = cluster.migrated_database("transfer").unwrap();
        let store = Postgres::open(&url, PgOptions { pool_size: 2, ..Default::default() }).unwrap();
        let targets = store.transfer_tables().unwrap();
        let customers = targets.iter().find(|t| t.name == "customers").unwrap();
        assert_eq!(customers.key, ["shop_id", "id"]);
        assert!(customers.parents.contains(&"shops".to_string()), "{customers:?}");
        let source =
            |name: &str| SourceTable { name: name.into(), columns: targets.iter().find(|t| t.name == name).unwrap().columns.clone() };
        let sources = [source("scores"), source("customers"), source("shops"), source("plugin_kv")];
        let plan = plan(&sources, &targets, |_, _| false).unwrap();
        let names: Vec<&str> = plan.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["plugin_kv", "shops", "customers", "scores"]);

        // Rows of each table in the plan's columns, by column name.
        let row = |table: &TablePlan, cells: &[(&str, Cell)]| -> Vec<Cell> {
            table.columns.iter().map(|c| cells.iter().find(|(name, _)| name == c).map_or(Cell::Null, |(_, cell)| cell.clone())).collect()
        };
        let mut rows: BTreeMap<String, Vec<Vec<Cell>>> = BTreeMap::new();
        for table in &plan.tables {
            let text = |s: &str| Cell::Text(s.into());
            let made = match table.name.as_str() {
                "shops" => vec![row(
                    table,
                    &[
                        ("id", Cell::Int(7)),
                        ("name", text("店 \"one\"\n")),
                        ("time_zone", text("Asia/Shanghai")),
                        ("currency", text("CNY")),
                        ("region", text("CN")),
                        ("created_at", Cell::Int(1)),
                    ],
                )],
                "customers" => (1..=3)
                    .map(|id| {
                        row(
                            table,
                            &[
                                ("id", Cell::Int(id * 10)),
                                ("shop_id", Cell::Int(7)),
                                ("attributes", text("{}")),
                                ("created_at", Cell::Int(-5)),
                                ("updated_at", Cell::Int(i64::MAX)),
                                ("total_spent", Cell::Int(0)),
                                ("order_count", Cell::Int(0)),
                                ("refund_count", Cell::Int(0)),
                                ("refund_amount", Cell::Int(0)),
                            ],
                        )
                    })
                    .collect(),
                "scores" => [0.1 + 0.2, -0.0, f64::MIN_POSITIVE]
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        row(
                            table,
                            &[
                                ("customer_id", Cell::Int(10)),
                                ("model", text(&format!("m{i}"))),
                                ("shop_id", Cell::Int(7)),
                                ("value", Cell::Real(*v)),
                                ("scored_at", Cell::Int(0)),
                            ],
                        )
                    })
                    .collect(),
                "plugin_kv" => vec![row(
                    table,
                    &[("shop_id", Cell::Int(7)), ("plugin_id", text("p")), ("key", text("k")), ("value", Cell::Blob(vec![0, 255, 1]))],
                )],
                other => panic!("{other}"),
            };
            rows.insert(table.name.clone(), made);
        }
        let expected: Vec<TableSummary> = plan
            .tables
            .iter()
            .map(|table| {
                let mut sum = Checksum::new(table);
                rows[&table.name].iter().for_each(|r| sum.add(r));
                sum.finish()
            })
            .collect();
        store
            .import(&plan, &mut |sink| {
                for table in &plan.tables {
                    // Two chunks for a table of several rows: two COPY statements.
                    let all = rows[&table.name].clone();
                    let (a, b) = all.split_at(all.len() / 2);
                    sink(table, a.to_vec())?;
                    sink(table, b.to_vec())?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(store.transfer_summaries(&plan, None).unwrap(), expected);
        assert_eq!(store.transfer_summaries(&plan, Some(7)).unwrap(), expected);
        assert!(store.transfer_summaries(&plan, Some(8)).unwrap().iter().all(|s| s.rows == 0));

        // The copied tables are analyzed: the planner knows their rows (never analyzed, a
        // table's `reltuples` is -1).
        let client = store.client().unwrap();
        for table in &plan.tables {
            let row =
                wait(client.query_one("SELECT reltuples::float8 FROM pg_class WHERE oid = $1::text::regclass", &[&table.name])).unwrap();
            let reltuples: f64 = row.get(0);
            assert_eq!(reltuples, rows[&table.name].len() as f64, "{}", table.name);
        }
        drop(client);

        let again = store.import(&plan, &mut |_| Ok(())).unwrap_err();
        assert!(matches!(again, kith_core::Error::Conflict(_)), "{again}");
        assert!(again.to_string().contains("already holds rows in plugin_kv, shops, customers, scores"), "{again}");
        assert_eq!(store.transfer_summaries(&plan, None).unwrap(), expected);
    }
}
