//! Journeys: one run per customer waiting on a timer that falls due for all
//! of them at once (a wait `until` the same minute), then one step each (a
//! tag). Measured from the database: how late each step ran after the
//! timer (p50, p99, max) and steps per second through the backlog.
//!
//! Baseline: the rows those steps write, straight into SQLite with rusqlite
//! (Kith's durability settings, the executor's batch of 200 runs per
//! transaction): per run, the tag, its event, the wait's and the tag step's
//! records and the run ended, the runs taken from a due index in due order.
//! Its lateness is what the store itself allows, whatever the engine around
//! it does. On PostgreSQL (one or more nodes, the orders spread over them) the
//! baseline is the same rows straight into PostgreSQL, a batch's rows written
//! set-wise (`crate::pg::journeys_baseline`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, DurationRound, Utc};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};

use crate::data::Shop;
use crate::kith::{Database, Kith, Setup};
use crate::report::{Report, percentile};

/// One customer per run: an order each, nothing else.
fn orders(shop: &Shop) -> Vec<Value> {
    (0..shop.customers)
        .map(|i| {
            json!({"id": format!("j{i}"), "type": "order.paid", "identities": [{"kind": "phone", "value": format!("1{:010}", 3_000_000_000u64 + i as u64)}],
                "order": {"id": format!("J{i}"), "amount": 1000}})
        })
        .collect()
}

struct Measured {
    p50: f64,
    p99: f64,
    max: f64,
    steps_per_s: f64,
}

/// Kith's database, for the harness's counts (SQL with `$1`, which SQLite reads as the first parameter too).
enum Reader {
    Sqlite(Connection),
    Postgres(tokio_postgres::Client),
}

impl Reader {
    async fn open(database: &Database) -> Result<Reader> {
        Ok(match database {
            Database::Sqlite(path) => Reader::Sqlite(Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?),
            Database::Postgres(url) => Reader::Postgres(crate::pg::connect(url).await?),
        })
    }

    async fn count(&self, sql: &str, param: i64) -> Result<i64> {
        match self {
            Reader::Sqlite(conn) => Ok(conn.query_row(sql, [param], |r| r.get(0))?),
            Reader::Postgres(client) => crate::pg::scalar(client, sql, &[&param]).await,
        }
    }

    async fn steps_at(&self) -> Result<Vec<i64>> {
        let sql = "SELECT at FROM journey_steps WHERE step = 'tag'";
        match self {
            Reader::Sqlite(conn) => Ok(conn.prepare(sql)?.query_map([], |r| r.get::<_, i64>(0))?.collect::<rusqlite::Result<_>>()?),
            Reader::Postgres(client) => Ok(client.query(sql, &[]).await?.iter().map(|r| r.get(0)).collect()),
        }
    }
}

/// Runs still entering when their timer fell due: the margin given per run was too small.
struct Short {
    waiting: i64,
    /// From the first order posted to the timer.
    entering: Duration,
}

/// The margin allowed per run (µs) before the timer, at first: enough on this machine with
/// room to spare (at `small`, 10,000 runs entered within 55 s on one PostgreSQL node and
/// 3,100 did on two, where every node's bus and executor share the write lock and the 2 cores).
fn first_margin(setup: Setup<'_>) -> i64 {
    match setup {
        Setup::Sqlite => 500,
        Setup::Postgres { nodes, .. } => 10_000 * nodes as i64,
    }
}

async fn once(binary: &Path, shop: &Shop, setup: Setup<'_>, per_run: i64) -> Result<Result<Measured, Short>> {
    let kith = Kith::start(binary, 2, setup)?;
    let zone: chrono_tz::Tz =
        kith.get("/v1/shop").await?["time_zone"].as_str().context("time_zone")?.parse().map_err(anyhow::Error::msg)?;
    // Time enough to ingest every order and enter its run first (`per_run`; too little is
    // measured and the run repeated with more, see `run`), then the next whole minute.
    let margin = chrono::Duration::seconds(5) + chrono::Duration::microseconds(per_run * shop.customers as i64);
    let due: DateTime<Utc> = (Utc::now() + margin).duration_trunc(chrono::Duration::minutes(1))? + chrono::Duration::minutes(1);
    let until = due.with_timezone(&zone).format("%H:%M").to_string();
    let definition = json!({"trigger": {"event": "order.paid"}, "start": "wait", "steps": {
        "wait": {"wait": {"until": until}, "next": "tag"},
        "tag": {"tag": {"add": "timed"}}
    }});
    let journey =
        kith.send(reqwest::Method::POST, "/v1/journeys", &kith.owner, &json!({"name": "timers", "definition": definition})).await?;
    let id = journey["id"].as_i64().context("journey id")?;
    kith.send(reqwest::Method::POST, &format!("/v1/journeys/{id}/activate"), &kith.owner, &json!({})).await?;
    let posting = Utc::now();
    for (i, chunk) in orders(shop).chunks(crate::ingest::BATCH).enumerate() {
        kith.send_to(i, reqwest::Method::POST, "/v1/events", &kith.owner, &json!({"events": chunk})).await?;
    }
    // Every run entered and ran its wait step, so that each waits for this timer (a
    // wait that runs after the minute has passed waits for the next day's instead).
    let conn = Reader::open(&kith.database).await?;
    loop {
        let waiting = conn.count("SELECT COUNT(*) FROM journey_runs WHERE due_at = $1", due.timestamp_millis()).await?;
        if waiting == shop.customers as i64 {
            break;
        }
        if Utc::now() >= due {
            return Ok(Err(Short { waiting, entering: (due - posting).to_std()? }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Done when every run completed; counted on the (journey, status) index twice a second
    // (the stats endpoint reads every run, and polled often at a million runs it took a
    // share of the machine the executor measured here needs). The lateness comes from the
    // steps' own times, not from when this loop sees them.
    loop {
        let completed = conn.count("SELECT COUNT(*) FROM journey_runs WHERE journey_id = $1 AND status = 'completed'", id).await?;
        if completed == shop.customers as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut late: Vec<f64> = conn.steps_at().await?.into_iter().map(|at| (at - due.timestamp_millis()) as f64 / 1e3).collect();
    late.sort_by(f64::total_cmp);
    let last = late.last().copied().unwrap_or(f64::NAN);
    Ok(Ok(Measured {
        p50: percentile(&late, 0.5),
        p99: percentile(&late, 0.99),
        max: last,
        steps_per_s: late.len() as f64 / last.max(1e-3),
    }))
}

const BASELINE_SCHEMA: &str = "
    CREATE TABLE journey_runs (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL, step TEXT NOT NULL,
        due_at INTEGER, ended_at INTEGER);
    CREATE INDEX journey_runs_due ON journey_runs(due_at) WHERE status = 'active';
    CREATE TABLE journey_steps (run_id INTEGER NOT NULL, step TEXT NOT NULL, outcome TEXT NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (run_id, step));
    CREATE TABLE tags (customer_id INTEGER NOT NULL, tag TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (customer_id, tag, source));
    CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, customer_id INTEGER, payload TEXT NOT NULL);
";

/// The executor's batch: runs per transaction (the bus's default `journey_batch`).
const BASELINE_BATCH: i64 = 200;

/// The same steps' rows straight into SQLite: every run due at the clock's start.
fn rusqlite_baseline(runs: usize) -> Result<Measured> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("baseline.db"))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
    conn.execute_batch(BASELINE_SCHEMA)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO journey_runs (customer_id, status, step, due_at) VALUES (?1, 'active', 'wait', 0)")?;
        let mut waiting = tx.prepare("INSERT INTO journey_steps (run_id, step, outcome, at) VALUES (?1, 'wait', 'waiting', 0)")?;
        for customer in 1..=runs as i64 {
            insert.execute([customer])?;
            waiting.execute([tx.last_insert_rowid()])?;
        }
    }
    tx.commit()?;
    let start = Instant::now();
    let mut late = Vec::with_capacity(runs);
    loop {
        // A batch's steps carry the time its pass began, as the executor's do.
        let at = start.elapsed().as_secs_f64();
        let tx = conn.transaction()?;
        let due: Vec<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, customer_id FROM journey_runs WHERE status = 'active' AND due_at <= 0 ORDER BY due_at, id LIMIT ?1",
            )?
            .query_map([BASELINE_BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if due.is_empty() {
            break;
        }
        let ms = (at * 1e3) as i64;
        for (run, customer) in &due {
            tx.prepare_cached("INSERT INTO tags (customer_id, tag, source) VALUES (?1, 'timed', 'journey:1') ON CONFLICT DO NOTHING")?
                .execute([customer])?;
            tx.prepare_cached("INSERT INTO events (type, customer_id, payload) VALUES ('tag.added', ?1, ?2)")?
                .execute(params![customer, r#"{"tag":"timed","source":"journey:1"}"#])?;
            tx.prepare_cached("UPDATE journey_steps SET outcome = 'waited', at = ?2 WHERE run_id = ?1 AND step = 'wait'")?
                .execute([run, &ms])?;
            tx.prepare_cached("INSERT INTO journey_steps (run_id, step, outcome, at) VALUES (?1, 'tag', 'done', ?2)")?
                .execute([run, &ms])?;
            tx.prepare_cached("UPDATE journey_runs SET status = 'completed', step = 'tag', due_at = NULL, ended_at = ?2 WHERE id = ?1")?
                .execute([run, &ms])?;
            late.push(at);
        }
        tx.commit()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    late.sort_by(f64::total_cmp);
    Ok(Measured {
        p50: percentile(&late, 0.5),
        p99: percentile(&late, 0.99),
        max: late.last().copied().unwrap_or(f64::NAN),
        steps_per_s: late.len() as f64 / elapsed.max(1e-3),
    })
}

pub async fn run(binary: &Path, shop: &Shop, runs: usize, setup: Setup<'_>, prefix: &str, report: &mut Report) -> Result<()> {
    let (mut measured, mut baseline) = (Vec::new(), Vec::new());
    let mut per_run = first_margin(setup);
    for _ in 0..runs {
        // Too small a margin is measured, not guessed again: the rate at which the runs
        // entered sets the next attempt's, with half as much again to spare.
        let mut attempts = 0;
        let once = loop {
            match once(binary, shop, setup, per_run).await? {
                Ok(once) => break once,
                Err(Short { waiting, entering }) => {
                    attempts += 1;
                    if attempts == 3 {
                        bail!("{waiting} of {} runs were waiting when their timer fell due, three times", shop.customers);
                    }
                    let took = entering.as_micros() as f64 / (waiting.max(1) as f64);
                    let next = ((took * 1.5) as i64).max(per_run * 2);
                    eprintln!(
                        "journeys: {waiting} of {} runs had entered {:.0} s after the first order; again with {} ms per run",
                        shop.customers,
                        entering.as_secs_f64(),
                        next / 1000
                    );
                    per_run = next;
                }
            }
        };
        measured.push(once);
        baseline.push(match setup {
            Setup::Sqlite => rusqlite_baseline(shop.customers)?,
            Setup::Postgres { cluster, .. } => {
                let (p50, p99, max, steps_per_s) = crate::pg::journeys_baseline(cluster, shop.customers).await?;
                Measured { p50, p99, max, steps_per_s }
            }
        });
    }
    let store = if matches!(setup, Setup::Sqlite) { "rusqlite" } else { "PostgreSQL" };
    let pick = |m: &[Measured], f: fn(&Measured) -> f64| m.iter().map(f).collect::<Vec<f64>>();
    let figure = |f: fn(&Measured) -> f64| (pick(&measured, f), pick(&baseline, f));
    let n = shop.customers;
    let (p99, base_p99) = figure(|m| m.p99);
    report.add("journeys", &format!("{prefix}lateness p99, {n} runs due at once"), "s", &p99, Some((store, &base_p99)), Some("≤ 1 s"));
    let (p50, base_p50) = figure(|m| m.p50);
    report.add("journeys", &format!("{prefix}lateness p50"), "s", &p50, Some((store, &base_p50)), None);
    let (max, base_max) = figure(|m| m.max);
    report.add("journeys", &format!("{prefix}lateness max (the backlog cleared)"), "s", &max, Some((store, &base_max)), None);
    let (rate, base_rate) = figure(|m| m.steps_per_s);
    report.add("journeys", &format!("{prefix}steps/s through the backlog"), "steps/s", &rate, Some((store, &base_rate)), None);
    Ok(())
}
