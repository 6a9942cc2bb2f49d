//! PostgreSQL for the benchmarks: the baselines that write straight into it (the
//! ingest's rows through `COPY` and through batched `INSERT`, the journey steps'
//! rows), and the few reads of Kith's own database the harness makes (counts, the
//! segments' CSV export, its size). The server is a throwaway
//! [`kith_postgres::cluster::Cluster`] with durable settings (`fsync`,
//! `synchronous_commit` and `full_page_writes` on), as SQLite runs with
//! `synchronous=FULL`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use tokio_postgres::{Client, NoTls};

use crate::data::{Customer, Shop};
use crate::ingest::BATCH;
use crate::report::percentile;

pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A query's single `BIGINT` answer.
pub async fn scalar(client: &Client, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<i64> {
    Ok(client.query_one(sql, params).await?.get(0))
}

/// Write the result of `select` as CSV with a header into `file` (the segments' baseline reads it).
pub async fn export(client: &Client, select: &str, file: &Path) -> Result<()> {
    use std::io::Write;
    let stream = client.copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT csv, HEADER)")).await?;
    futures::pin_mut!(stream);
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk?)?;
    }
    out.flush()?;
    Ok(())
}

/// A fresh database for a baseline: its URL.
fn database(cluster: &kith_postgres::cluster::Cluster, prefix: &str) -> Result<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The cluster's admin statements run on a runtime of their own: outside this one's worker.
    tokio::task::block_in_place(|| cluster.create_database(&format!("{prefix}_{}_{n}", std::process::id())))
}

fn drop_database(cluster: &kith_postgres::cluster::Cluster, url: &str) -> Result<()> {
    let name = url.rsplit('/').next().unwrap_or_default();
    tokio::task::block_in_place(|| cluster.admin(&format!("DROP DATABASE \"{name}\"")))
}

const SCHEMA: &str = "
    CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT, city TEXT, birthday TEXT, total_spent BIGINT NOT NULL DEFAULT 0,
        order_count BIGINT NOT NULL DEFAULT 0, last_order_at BIGINT, created_at BIGINT NOT NULL);
    CREATE TABLE identities (kind TEXT NOT NULL, value TEXT NOT NULL, customer_id BIGINT NOT NULL, PRIMARY KEY (kind, value));
    CREATE TABLE orders (id BIGINT PRIMARY KEY, external_id TEXT NOT NULL UNIQUE, customer_id BIGINT NOT NULL, amount BIGINT NOT NULL,
        paid_at BIGINT NOT NULL);
    CREATE TABLE order_items (order_id BIGINT NOT NULL, sku TEXT, category TEXT, quantity BIGINT, unit_price BIGINT);
    CREATE TABLE behaviours (customer_id BIGINT NOT NULL, kind TEXT NOT NULL, sku TEXT, category TEXT, at BIGINT NOT NULL);
    CREATE INDEX behaviours_customer ON behaviours(customer_id, at);
    CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, type TEXT NOT NULL, customer_id BIGINT, payload TEXT NOT NULL);
";

/// A customer's row: id, name, city, birthday, total_spent, order_count, last_order_at, created_at.
type CustomerRow = (i64, Option<String>, Option<String>, Option<String>, i64, i64, Option<i64>, i64);

/// One transaction's rows (a batch of about 500 events), ids assigned by the client.
#[derive(Default)]
struct Rows {
    customers: Vec<CustomerRow>,
    identities: Vec<(String, String, i64)>,
    orders: Vec<(i64, String, i64, i64, i64)>,
    items: Vec<(i64, String, String, i64, i64)>,
    behaviours: Vec<(i64, String, String, String, i64)>,
    events: Vec<(String, i64, String)>,
}

/// Ids and identities across the whole load (the rows the rusqlite baseline looks up).
#[derive(Default)]
struct Ids {
    customer: i64,
    order: i64,
    identities: HashMap<(&'static str, String), i64>,
}

impl Rows {
    /// A customer's rows, as the rusqlite baseline writes them; how many events they stand for.
    fn add(&mut self, ids: &mut Ids, c: &Customer, now: i64) -> usize {
        let mut resolve = |rows: &mut Rows, kind: &'static str, value: &str| -> i64 {
            if let Some(id) = ids.identities.get(&(kind, value.to_owned())) {
                return *id;
            }
            ids.customer += 1;
            let id = ids.customer;
            rows.customers.push((id, None, None, None, 0, 0, None, now));
            rows.identities.push((kind.to_owned(), value.to_owned(), id));
            ids.identities.insert((kind, value.to_owned()), id);
            id
        };
        let mut n = 0;
        if let Some(nick) = &c.nick_first {
            resolve(self, "nick", nick);
            n += 1;
        }
        let id = resolve(self, "phone", &c.phone);
        if let Some(email) = &c.email
            && !ids.identities.contains_key(&("email", email.clone()))
        {
            ids.identities.insert(("email", email.clone()), id);
            self.identities.push(("email".into(), email.clone(), id));
        }
        let (mut total, mut count, mut last) = (0, 0, None::<i64>);
        self.events.push(("customer.updated".into(), id, format!("{{\"name\":\"{}\"}}", c.name)));
        n += 1;
        for b in &c.behaviours {
            self.behaviours.push((id, b.kind.into(), b.sku.clone(), b.category.into(), b.at.timestamp_millis()));
            self.events.push(("behaviour.recorded".into(), id, format!("{{\"kind\":\"{}\",\"sku\":\"{}\"}}", b.kind, b.sku)));
            n += 1;
        }
        for o in &c.orders {
            let paid = o.paid_at.timestamp_millis();
            ids.order += 1;
            self.orders.push((ids.order, o.id.clone(), id, o.amount(), paid));
            for it in &o.items {
                self.items.push((ids.order, it.sku.clone(), it.category.into(), it.quantity, it.unit_price));
            }
            total += o.amount();
            count += 1;
            last = Some(last.map_or(paid, |l| l.max(paid)));
            self.events.push(("order.paid".into(), id, format!("{{\"order_id\":\"{}\",\"amount\":{}}}", o.id, o.amount())));
            n += 1;
        }
        // The customer's row carries its profile and the order totals (the rusqlite baseline updates it).
        let birthday = c.birthday.map(|d| d.to_string());
        // (A phone written in an earlier batch would find no row here: every phone of the generator's shops is new.)
        if let Some(row) = self.customers.iter_mut().rev().find(|r| r.0 == id) {
            (row.1, row.2, row.3) = (Some(c.name.clone()), Some(c.city.into()), birthday);
            (row.4, row.5, row.6) = (row.4 + total, row.5 + count, last.max(row.6));
        }
        n
    }
}

/// A CSV field: quoted text (`None` is an unquoted empty field, COPY's NULL).
fn text(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    }
}

fn number(out: &mut String, value: Option<i64>) {
    if let Some(v) = value {
        out.push_str(&v.to_string());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Copy,
    Insert,
}

async fn copy(tx: &tokio_postgres::Transaction<'_>, table: &str, csv: String) -> Result<()> {
    let sink = tx.copy_in(&format!("COPY {table} FROM STDIN (FORMAT csv)")).await?;
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(csv)).await?;
    sink.as_mut().finish().await?;
    Ok(())
}

async fn write(client: &mut Client, rows: Rows, how: Load) -> Result<()> {
    let tx = client.transaction().await?;
    match how {
        Load::Copy => {
            let mut csv = String::new();
            for r in &rows.customers {
                number(&mut csv, Some(r.0));
                csv.push(',');
                text(&mut csv, r.1.as_deref());
                csv.push(',');
                text(&mut csv, r.2.as_deref());
                csv.push(',');
                text(&mut csv, r.3.as_deref());
                csv.push_str(&format!(",{},{},", r.4, r.5));
                number(&mut csv, r.6);
                csv.push_str(&format!(",{}\n", r.7));
            }
            copy(&tx, "customers", std::mem::take(&mut csv)).await?;
            for r in &rows.identities {
                text(&mut csv, Some(&r.0));
                csv.push(',');
                text(&mut csv, Some(&r.1));
                csv.push_str(&format!(",{}\n", r.2));
            }
            copy(&tx, "identities", std::mem::take(&mut csv)).await?;
            for r in &rows.orders {
                csv.push_str(&format!("{},", r.0));
                text(&mut csv, Some(&r.1));
                csv.push_str(&format!(",{},{},{}\n", r.2, r.3, r.4));
            }
            copy(&tx, "orders", std::mem::take(&mut csv)).await?;
            for r in &rows.items {
                csv.push_str(&format!("{},", r.0));
                text(&mut csv, Some(&r.1));
                csv.push(',');
                text(&mut csv, Some(&r.2));
                csv.push_str(&format!(",{},{}\n", r.3, r.4));
            }
            copy(&tx, "order_items", std::mem::take(&mut csv)).await?;
            for r in &rows.behaviours {
                csv.push_str(&format!("{},", r.0));
                for t in [&r.1, &r.2, &r.3] {
                    text(&mut csv, Some(t));
                    csv.push(',');
                }
                csv.push_str(&format!("{}\n", r.4));
            }
            copy(&tx, "behaviours", std::mem::take(&mut csv)).await?;
            for r in &rows.events {
                text(&mut csv, Some(&r.0));
                csv.push_str(&format!(",{},", r.1));
                text(&mut csv, Some(&r.2));
                csv.push('\n');
            }
            copy(&tx, "events (type, customer_id, payload)", csv).await?;
        }
        Load::Insert => {
            fn col<T, U>(rows: &[T], f: impl Fn(&T) -> U) -> Vec<U> {
                rows.iter().map(f).collect()
            }
            let c = &rows.customers;
            tx.execute(
                "INSERT INTO customers SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])",
                &[&col(c, |r| r.0), &col(c, |r| r.1.clone()), &col(c, |r| r.2.clone()), &col(c, |r| r.3.clone()), &col(c, |r| r.4), &col(c, |r| r.5), &col(c, |r| r.6), &col(c, |r| r.7)],
            )
            .await?;
            let i = &rows.identities;
            tx.execute(
                "INSERT INTO identities SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])",
                &[&col(i, |r| r.0.clone()), &col(i, |r| r.1.clone()), &col(i, |r| r.2)],
            )
            .await?;
            let o = &rows.orders;
            tx.execute(
                "INSERT INTO orders SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])",
                &[&col(o, |r| r.0), &col(o, |r| r.1.clone()), &col(o, |r| r.2), &col(o, |r| r.3), &col(o, |r| r.4)],
            )
            .await?;
            let it = &rows.items;
            tx.execute(
                "INSERT INTO order_items SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])",
                &[&col(it, |r| r.0), &col(it, |r| r.1.clone()), &col(it, |r| r.2.clone()), &col(it, |r| r.3), &col(it, |r| r.4)],
            )
            .await?;
            let b = &rows.behaviours;
            tx.execute(
                "INSERT INTO behaviours SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
                &[&col(b, |r| r.0), &col(b, |r| r.1.clone()), &col(b, |r| r.2.clone()), &col(b, |r| r.3.clone()), &col(b, |r| r.4)],
            )
            .await?;
            let e = &rows.events;
            tx.execute(
                "INSERT INTO events (type, customer_id, payload) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])",
                &[&col(e, |r| r.0.clone()), &col(e, |r| r.1), &col(e, |r| r.2.clone())],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The ingest's rows straight into PostgreSQL, a transaction per 500 events (as the rusqlite
/// baseline commits), through `COPY` or batched `INSERT … SELECT FROM unnest(…)`: events per second.
pub async fn ingest_baseline(cluster: &kith_postgres::cluster::Cluster, shop: &Shop, how: Load) -> Result<f64> {
    let url = database(cluster, "baseline")?;
    let mut client = connect(&url).await?;
    client.batch_execute(SCHEMA).await?;
    // Customers are generated a thousand at a time with the clock stopped; rows are built and written inside it.
    let (mut timed, mut events, mut ids, mut rows, mut in_batch, mut next) = (Duration::ZERO, 0, Ids::default(), Rows::default(), 0, 0);
    while next < shop.customers {
        let chunk: Vec<Customer> = (next..(next + 1_000).min(shop.customers)).map(|i| shop.customer(i)).collect();
        next += chunk.len();
        let start = Instant::now();
        for c in &chunk {
            let n = rows.add(&mut ids, c, 0);
            events += n;
            in_batch += n;
            if in_batch >= BATCH {
                write(&mut client, std::mem::take(&mut rows), how).await.context("baseline write")?;
                in_batch = 0;
            }
        }
        timed += start.elapsed();
    }
    let start = Instant::now();
    write(&mut client, rows, how).await?;
    timed += start.elapsed();
    drop(client);
    drop_database(cluster, &url)?;
    Ok(events as f64 / timed.as_secs_f64())
}

const JOURNEY_SCHEMA: &str = "
    CREATE TABLE journey_runs (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, customer_id BIGINT NOT NULL, status TEXT NOT NULL,
        step TEXT NOT NULL, due_at BIGINT, ended_at BIGINT);
    CREATE INDEX journey_runs_due ON journey_runs(due_at) WHERE status = 'active';
    CREATE TABLE journey_steps (run_id BIGINT NOT NULL, step TEXT NOT NULL, outcome TEXT NOT NULL, at BIGINT NOT NULL,
        PRIMARY KEY (run_id, step));
    CREATE TABLE tags (customer_id BIGINT NOT NULL, tag TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (customer_id, tag, source));
    CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, type TEXT NOT NULL, customer_id BIGINT, payload TEXT NOT NULL);
";

/// Lateness p50, p99, max (s) and steps/s.
pub type Lateness = (f64, f64, f64, f64);

/// The journeys benchmark's steps straight into PostgreSQL: the rusqlite baseline's rows, the
/// executor's batches of 200 runs per transaction, each batch's rows written set-wise.
pub async fn journeys_baseline(cluster: &kith_postgres::cluster::Cluster, runs: usize) -> Result<Lateness> {
    let url = database(cluster, "journeys")?;
    let mut client = connect(&url).await?;
    client.batch_execute(JOURNEY_SCHEMA).await?;
    client
        .batch_execute(&format!(
            "INSERT INTO journey_runs (customer_id, status, step, due_at) SELECT c, 'active', 'wait', 0 FROM generate_series(1, {runs}) c;
             INSERT INTO journey_steps (run_id, step, outcome, at) SELECT id, 'wait', 'waiting', 0 FROM journey_runs;
             ANALYZE;"
        ))
        .await?;
    let start = Instant::now();
    let mut late = Vec::with_capacity(runs);
    loop {
        let at = start.elapsed().as_secs_f64();
        let ms = (at * 1e3) as i64;
        let tx = client.transaction().await?;
        let due = tx
            .query("SELECT id, customer_id FROM journey_runs WHERE status = 'active' AND due_at <= 0 ORDER BY due_at, id LIMIT 200", &[])
            .await?;
        if due.is_empty() {
            break;
        }
        let runs: Vec<i64> = due.iter().map(|r| r.get(0)).collect();
        let customers: Vec<i64> = due.iter().map(|r| r.get(1)).collect();
        tx.execute(
            "INSERT INTO tags (customer_id, tag, source) SELECT c, 'timed', 'journey:1' FROM unnest($1::bigint[]) c ON CONFLICT DO NOTHING",
            &[&customers],
        )
        .await?;
        tx.execute(
            "INSERT INTO events (type, customer_id, payload) SELECT 'tag.added', c, $2 FROM unnest($1::bigint[]) c",
            &[&customers, &r#"{"tag":"timed","source":"journey:1"}"#],
        )
        .await?;
        tx.execute("UPDATE journey_steps SET outcome = 'waited', at = $2 WHERE run_id = ANY($1) AND step = 'wait'", &[&runs, &ms]).await?;
        tx.execute(
            "INSERT INTO journey_steps (run_id, step, outcome, at) SELECT r, 'tag', 'done', $2 FROM unnest($1::bigint[]) r",
            &[&runs, &ms],
        )
        .await?;
        tx.execute(
            "UPDATE journey_runs SET status = 'completed', step = 'tag', due_at = NULL, ended_at = $2 WHERE id = ANY($1)",
            &[&runs, &ms],
        )
        .await?;
        tx.commit().await?;
        late.extend(std::iter::repeat_n(at, runs.len()));
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(client);
    drop_database(cluster, &url)?;
    late.sort_by(f64::total_cmp);
    Ok((percentile(&late, 0.5), percentile(&late, 0.99), late.last().copied().unwrap_or(f64::NAN), late.len() as f64 / elapsed.max(1e-3)))
}
