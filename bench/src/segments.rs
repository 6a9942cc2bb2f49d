//! Segments: five definitions (stats only; tag + RFM group; a behaviour
//! window; bought A not B in 30 days; nested and/or/not) over the ingested
//! shop, each as `POST /v1/segments/preview` (the count and the first page).
//! Baseline: the same queries in DuckDB (the `duckdb` Python package) over the
//! same data, exported from Kith's database (SQLite or PostgreSQL) as CSV. The
//! counts must agree.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{Timelike, Utc};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::ingest::Ingested;
use crate::kith::{Database, Kith};
use crate::report::Report;

fn definitions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "stats only",
            json!({"and": [{"stat": "total_spent", "op": "gte", "value": 50_000}, {"stat": "order_count", "op": "gte", "value": 3}]}),
        ),
        ("tag + RFM group", json!({"and": [{"tag": "high-value"}, {"score": "rfm", "label": "important-value"}]})),
        ("behaviour window", json!({"behaviour": "cart", "category": "skincare", "window": {"last_days": 30}})),
        (
            "bought A not B in 30 days",
            json!({"and": [{"purchase": {"category": "skincare"}, "window": {"last_days": 30}},
                {"not": {"purchase": {"category": "consumable"}, "window": {"last_days": 30}}}]}),
        ),
        (
            "nested and/or/not",
            json!({"or": [{"and": [{"profile": "city", "op": "in", "value": ["杭州", "上海"]}, {"stat": "order_count", "op": "gte", "value": 2}]},
                {"not": {"stat": "days_since_last_order", "op": "lt", "value": 180}}]}),
        ),
    ]
}

/// The tables the queries read, as the export selects them.
const TABLES: [(&str, &str); 6] = [
    ("customers", "SELECT id, merged_into, city, total_spent, order_count, first_order_at, last_order_at FROM customers"),
    ("tags", "SELECT customer_id, tag, source FROM tags"),
    ("scores", "SELECT customer_id, model, value, label FROM scores"),
    ("behaviours", "SELECT customer_id, kind, sku, category, occurred_at FROM behaviours"),
    ("orders", "SELECT id, customer_id, status, amount, refunded_amount, paid_at FROM orders"),
    ("order_items", "SELECT order_id, sku, category, quantity, unit_price, discount FROM order_items"),
];

/// Write the tables the queries read as CSV, from Kith's database.
async fn export(database: &Database, dir: &Path) -> Result<()> {
    let database = match database {
        Database::Sqlite(path) => path,
        Database::Postgres(url) => {
            let client = crate::pg::connect(url).await?;
            for (name, sql) in TABLES {
                crate::pg::export(&client, sql, &dir.join(format!("{name}.csv"))).await?;
            }
            return Ok(());
        }
    };
    let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    for (name, sql) in TABLES {
        let mut stmt = conn.prepare(sql)?;
        let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{name}.csv")))?);
        use std::io::Write;
        writeln!(out, "{}", columns.join(","))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let cells: Vec<String> = (0..columns.len())
                .map(|i| match row.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Integer(v)) => v.to_string(),
                    Ok(rusqlite::types::ValueRef::Real(v)) => v.to_string(),
                    Ok(rusqlite::types::ValueRef::Text(t)) => {
                        let t = String::from_utf8_lossy(t);
                        format!("\"{}\"", t.replace('"', "\"\""))
                    }
                    _ => String::new(),
                })
                .collect();
            writeln!(out, "{}", cells.join(","))?;
        }
    }
    Ok(())
}

/// Wait until a minute boundary is not about to pass: window edges move with the clock,
/// and Kith's "now" and the one handed to DuckDB must see the same side of each.
async fn away_from_minute_edges() {
    let s = Utc::now().second();
    if s >= 45 {
        tokio::time::sleep(Duration::from_secs(u64::from(62 - s))).await;
    }
}

/// A definition's count and first page, as the benchmark asks for them.
async fn preview(kith: &Kith, definition: Value) -> Result<Value> {
    kith.send(reqwest::Method::POST, "/v1/segments/preview", &kith.owner, &json!({"definition": definition, "limit": 20})).await
}

pub async fn run(ingested: &Ingested, python: &Path, runs: usize, prefix: &str, report: &mut Report) -> Result<()> {
    let kith = &ingested.kith;
    // RFM scores each customer against the shop's averages as they stand when its events
    // are delivered, so right after an ingest the groups depend on the order of delivery
    // (one seed gave 965 and 640 members of "tag + RFM group" in two runs). Its run over
    // every customer, which its manifest schedules daily, scores them all against the
    // same averages: the segments are measured on the shop as it stands after it.
    kith.send(reqwest::Method::POST, "/v1/shop/plugins/rfm/runs", &kith.owner, &json!({})).await.context("starting rfm's run")?;
    kith.drained(Duration::from_secs(3600)).await?;
    let csv = tempfile::tempdir()?;
    export(&kith.database, csv.path()).await?;
    let mut nows: BTreeMap<&str, i64> = BTreeMap::new();
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    let mut timings: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    // One pass untimed first, as DuckDB's tables are loaded before its clock starts: at
    // `large` the export (gigabytes of CSV) has just pushed much of Kith's database out
    // of the page cache, and the first query of each definition read it back from disk.
    for (_, definition) in definitions() {
        preview(kith, definition).await?;
    }
    for run in 0..runs {
        for (name, definition) in definitions() {
            away_from_minute_edges().await;
            let now = Utc::now().timestamp_millis();
            let start = Instant::now();
            let preview = preview(kith, definition).await?;
            timings.entry(name).or_default().push(start.elapsed().as_secs_f64() * 1e3);
            if run == 0 {
                nows.insert(name, now);
                counts.insert(name, preview["count"].as_i64().context("count")?);
            }
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("segments.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(csv.path())
        .arg(runs.to_string())
        .arg(serde_json::to_string(&nows)?)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("DuckDB baseline failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let duck: Value = serde_json::from_slice(&out.stdout)?;
    for (name, _) in definitions() {
        let theirs = &duck[name];
        if theirs["count"].as_i64() != counts.get(name).copied() {
            bail!("`{name}`: Kith counts {:?}, DuckDB {}: the baseline is not the same query", counts.get(name), theirs["count"]);
        }
        let baseline: Vec<f64> =
            theirs["seconds"].as_array().context("seconds")?.iter().filter_map(Value::as_f64).map(|s| s * 1e3).collect();
        report.add(
            "segments",
            &format!("{prefix}{name}: count + first page ({} members)", counts[name]),
            "ms",
            &timings[name],
            Some(("DuckDB", &baseline)),
            Some("≤ 2× DuckDB"),
        );
    }
    Ok(())
}
