//! Ingest: the shop's events through `POST /v1/events` in batches of 500 from
//! several concurrent clients, with the first-party plugins enabled, timed
//! until every plugin has caught up. Baseline: the same rows inserted straight
//! into SQLite with rusqlite in one process (with Kith's durability settings),
//! the physical limit of the store; on PostgreSQL, the same rows through `COPY`
//! and through batched `INSERT` (`crate::pg`), the clients spread over the nodes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::data::{Customer, Shop};
use crate::kith::{Kith, Setup, first_party};
use crate::report::Report;

/// Events per request.
pub const BATCH: usize = 500;

/// Request bodies queued ahead of each client.
const QUEUED: usize = 16;

/// Client `client`'s request bodies (its share of the customers, every `clients`-th), generated
/// and serialised by a thread of their own just ahead of the client: at `large` the
/// whole shop's bodies would be about 10 GB, more than the page cache can spare. The
/// generator's work is inside the clock: at `small` the figures stayed within their
/// run-to-run spread (22.6k events/s acknowledged, 10.2k caught up).
fn bodies(shop: &Shop, client: usize, clients: usize) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUED);
    let shop = *shop;
    std::thread::spawn(move || {
        let mut events = Vec::with_capacity(BATCH + 64);
        let send = |events: &mut Vec<serde_json::Value>| {
            let body = serde_json::to_vec(&json!({"events": &*events})).expect("JSON");
            events.clear();
            tx.blocking_send(body).is_ok()
        };
        for c in (client..shop.customers).step_by(clients).map(|i| shop.customer(i)) {
            events.extend(c.events());
            while events.len() >= BATCH {
                let rest = events.split_off(BATCH);
                if !send(&mut events) {
                    return;
                }
                events = rest;
            }
        }
        if !events.is_empty() {
            send(&mut events);
        }
    });
    rx
}

/// What one measured ingest gives.
pub struct Ingested {
    pub kith: Kith,
    pub events: usize,
    pub acknowledged: Duration,
    pub drained: Duration,
}

/// Start Kith with the first-party plugins and ingest the whole shop.
pub async fn ingest(binary: &Path, shop: &Shop, clients: usize, setup: Setup<'_>) -> Result<Ingested> {
    let events = shop.all().map(|c| c.event_count()).sum();
    let kith = Kith::start(binary, 2, setup)?;
    kith.enable(&first_party()).await?;
    kith.drained(Duration::from_secs(600)).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let mut bodies = bodies(shop, client, clients);
        let http = kith.http.clone();
        let url = format!("{}/v1/events", kith.urls[client % kith.urls.len()]);
        let key = kith.owner.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(body) = bodies.recv().await {
                let reply =
                    http.post(&url).header("authorization", &key).header("content-type", "application/json").body(body).send().await?;
                if !reply.status().is_success() {
                    bail!("ingest: {}", reply.text().await?);
                }
                let report: serde_json::Value = reply.json().await?;
                if report["rejected"].as_u64() != Some(0) {
                    bail!("rejected events: {report}");
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let acknowledged = start.elapsed();
    kith.drained(Duration::from_secs(24 * 3600)).await?;
    Ok(Ingested { kith, events, acknowledged, drained: start.elapsed() })
}

/// Measure `runs` ingests; the last one's Kith, with the shop in it, is handed back for the read benchmarks.
/// `prefix` starts each figure's name (the setup, when a run has several); `baselines` were measured
/// in this run (rusqlite for SQLite, `COPY` and `INSERT` for PostgreSQL).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    binary: &Path,
    shop: &Shop,
    runs: usize,
    clients: usize,
    setup: Setup<'_>,
    prefix: &str,
    baselines: &[(&str, Vec<f64>)],
    report: &mut Report,
) -> Result<Ingested> {
    let (mut drained, mut acked, mut lag, mut rss, mut size) = (vec![], vec![], vec![], vec![], vec![]);
    let mut events = 0;
    let mut last = None;
    for _ in 0..runs.max(1) {
        let run = ingest(binary, shop, clients, setup).await?;
        events = run.events;
        drained.push(run.events as f64 / run.drained.as_secs_f64());
        acked.push(run.events as f64 / run.acknowledged.as_secs_f64());
        lag.push((run.drained - run.acknowledged).as_secs_f64());
        rss.push(run.kith.peak_rss()? as f64 / 1e6);
        size.push(run.kith.database_bytes().await? as f64 / 1e6);
        last = Some(run);
    }
    let note = format!("{events} events, {clients} clients");
    for (name, baseline) in baselines {
        report.add(
            "ingest",
            &format!("{prefix}events/s, plugins caught up ({note})"),
            "events/s",
            &drained,
            Some((name, baseline)),
            Some(&format!("≥ 1/3 of {name}")),
        );
    }
    for (name, baseline) in baselines {
        report.add("ingest", &format!("{prefix}events/s acknowledged"), "events/s", &acked, Some((name, baseline)), None);
    }
    report.add("ingest", &format!("{prefix}dispatch lag after the last batch"), "s", &lag, None, None);
    let rss_name =
        if setup.nodes() > 1 { "peak RSS of the largest kith serve after ingest" } else { "peak RSS of kith serve after ingest" };
    report.add("footprint", &format!("{prefix}{rss_name}"), "MB", &rss, None, Some("≤ 300 MB at large"));
    report.add("footprint", &format!("{prefix}database size after ingest"), "MB", &size, None, None);
    last.context("at least one run")
}

const SCHEMA: &str = "
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, birthday TEXT, total_spent INTEGER NOT NULL DEFAULT 0,
        order_count INTEGER NOT NULL DEFAULT 0, last_order_at INTEGER, created_at INTEGER NOT NULL);
    CREATE TABLE identities (kind TEXT NOT NULL, value TEXT NOT NULL, customer_id INTEGER NOT NULL, PRIMARY KEY (kind, value));
    CREATE TABLE orders (id INTEGER PRIMARY KEY, external_id TEXT NOT NULL UNIQUE, customer_id INTEGER NOT NULL, amount INTEGER NOT NULL,
        paid_at INTEGER NOT NULL);
    CREATE TABLE order_items (order_id INTEGER NOT NULL, sku TEXT, category TEXT, quantity INTEGER, unit_price INTEGER);
    CREATE TABLE behaviours (customer_id INTEGER NOT NULL, kind TEXT NOT NULL, sku TEXT, category TEXT, at INTEGER NOT NULL);
    CREATE INDEX behaviours_customer ON behaviours(customer_id, at);
    CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, customer_id INTEGER, payload TEXT NOT NULL);
";

/// The customer an identifier belongs to, created when new.
fn resolve(tx: &Connection, kind: &str, value: &str, now: i64) -> Result<i64> {
    if let Some(id) = tx
        .prepare_cached("SELECT customer_id FROM identities WHERE kind = ?1 AND value = ?2")?
        .query_row(params![kind, value], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO customers (created_at) VALUES (?1)")?.execute([now])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO identities (kind, value, customer_id) VALUES (?1, ?2, ?3)")?.execute(params![kind, value, id])?;
    Ok(id)
}

fn event(tx: &Connection, kind: &str, customer: i64, payload: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO events (type, customer_id, payload) VALUES (?1, ?2, ?3)")?.execute(params![kind, customer, payload])?;
    Ok(())
}

/// Insert one customer's rows; returns how many events they stand for.
fn insert(tx: &Connection, c: &Customer, now: i64) -> Result<usize> {
    let mut n = 0;
    if let Some(nick) = &c.nick_first {
        resolve(tx, "nick", nick, now)?;
        n += 1;
    }
    let id = resolve(tx, "phone", &c.phone, now)?;
    if let Some(email) = &c.email {
        tx.prepare_cached("INSERT OR IGNORE INTO identities (kind, value, customer_id) VALUES ('email', ?1, ?2)")?
            .execute(params![email, id])?;
    }
    tx.prepare_cached("UPDATE customers SET name = ?2, city = ?3, birthday = ?4 WHERE id = ?1")?.execute(params![
        id,
        c.name,
        c.city,
        c.birthday.map(|d| d.to_string())
    ])?;
    event(tx, "customer.updated", id, &format!("{{\"name\":\"{}\"}}", c.name))?;
    n += 1;
    for b in &c.behaviours {
        tx.prepare_cached("INSERT INTO behaviours (customer_id, kind, sku, category, at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![id, b.kind, b.sku, b.category, b.at.timestamp_millis()])?;
        event(tx, "behaviour.recorded", id, &format!("{{\"kind\":\"{}\",\"sku\":\"{}\"}}", b.kind, b.sku))?;
        n += 1;
    }
    for o in &c.orders {
        let paid = o.paid_at.timestamp_millis();
        tx.prepare_cached("INSERT INTO orders (external_id, customer_id, amount, paid_at) VALUES (?1, ?2, ?3, ?4)")?.execute(params![
            o.id,
            id,
            o.amount(),
            paid
        ])?;
        let order = tx.last_insert_rowid();
        for it in &o.items {
            tx.prepare_cached("INSERT INTO order_items (order_id, sku, category, quantity, unit_price) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![order, it.sku, it.category, it.quantity, it.unit_price])?;
        }
        tx.prepare_cached(
            "UPDATE customers SET total_spent = total_spent + ?2, order_count = order_count + 1, last_order_at = MAX(COALESCE(last_order_at, ?3), ?3) WHERE id = ?1",
        )?
        .execute(params![id, o.amount(), paid])?;
        event(tx, "order.paid", id, &format!("{{\"order_id\":\"{}\",\"amount\":{}}}", o.id, o.amount()))?;
        n += 1;
    }
    Ok(n)
}

/// The same rows straight into SQLite: events per second.
pub fn rusqlite_baseline(shop: &Shop) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("baseline.db"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    conn.execute_batch(SCHEMA)?;
    let now = 0;
    // Customers are generated a thousand at a time with the clock stopped (at `large`
    // the whole shop would take gigabytes of memory); only the inserts are timed.
    let mut timed = Duration::ZERO;
    let mut events = 0;
    let mut in_batch = 0;
    let mut tx = conn.transaction()?;
    let mut next = 0;
    while next < shop.customers {
        let chunk: Vec<Customer> = (next..(next + 1_000).min(shop.customers)).map(|i| shop.customer(i)).collect();
        next += chunk.len();
        let start = Instant::now();
        for c in &chunk {
            let n = insert(&tx, c, now).context("baseline insert")?;
            events += n;
            in_batch += n;
            if in_batch >= BATCH {
                tx.commit()?;
                tx = conn.transaction()?;
                in_batch = 0;
            }
        }
        timed += start.elapsed();
    }
    let start = Instant::now();
    tx.commit()?;
    timed += start.elapsed();
    Ok(events as f64 / timed.as_secs_f64())
}
