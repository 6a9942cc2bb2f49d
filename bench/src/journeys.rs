//! Journeys: one run per customer waiting on a timer that falls due for all
//! of them at once (a wait `until` the same minute), then one step each (a
//! tag). Measured from the database: how late each step ran after the
//! timer (p50, p99, max) and steps per second through the backlog.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, DurationRound, Utc};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::data::Shop;
use crate::kith::Kith;
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

async fn once(binary: &Path, shop: &Shop) -> Result<Measured> {
    let kith = Kith::start(binary, 2)?;
    let zone: chrono_tz::Tz =
        kith.get("/v1/shop").await?["time_zone"].as_str().context("time_zone")?.parse().map_err(anyhow::Error::msg)?;
    // Time enough to ingest every order and enter its run first (0.5 ms per run; too
    // little fails the run below, it never hangs), then the next whole minute.
    let margin = chrono::Duration::seconds(5) + chrono::Duration::microseconds(500 * shop.customers as i64);
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
    for chunk in orders(shop).chunks(crate::ingest::BATCH) {
        kith.send(reqwest::Method::POST, "/v1/events", &kith.owner, &json!({"events": chunk})).await?;
    }
    // Every run entered and ran its wait step, so that each waits for this timer (a
    // wait that runs after the minute has passed waits for the next day's instead).
    let conn = Connection::open_with_flags(&kith.database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    loop {
        let waiting: i64 = conn.query_row("SELECT COUNT(*) FROM journey_runs WHERE due_at = ?1", [due.timestamp_millis()], |r| r.get(0))?;
        if waiting == shop.customers as i64 {
            break;
        }
        if Utc::now() >= due {
            bail!("{waiting} of {} runs were waiting when their timer fell due; raise the margin", shop.customers);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Done when every run completed; counted on the (journey, status) index twice a second
    // (the stats endpoint reads every run, and polled often at a million runs it took a
    // share of the machine the executor measured here needs). The lateness comes from the
    // steps' own times, not from when this loop sees them.
    loop {
        let completed: i64 =
            conn.query_row("SELECT COUNT(*) FROM journey_runs WHERE journey_id = ?1 AND status = 'completed'", [id], |r| r.get(0))?;
        if completed == shop.customers as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut late: Vec<f64> = conn
        .prepare("SELECT at FROM journey_steps WHERE step = 'tag'")?
        .query_map([], |r| r.get::<_, i64>(0))?
        .map(|at| at.map(|at| (at - due.timestamp_millis()) as f64 / 1e3))
        .collect::<rusqlite::Result<_>>()?;
    late.sort_by(f64::total_cmp);
    let last = late.last().copied().unwrap_or(f64::NAN);
    Ok(Measured { p50: percentile(&late, 0.5), p99: percentile(&late, 0.99), max: last, steps_per_s: late.len() as f64 / last.max(1e-3) })
}

pub async fn run(binary: &Path, shop: &Shop, runs: usize, report: &mut Report) -> Result<()> {
    let mut measured = Vec::new();
    for _ in 0..runs {
        measured.push(once(binary, shop).await?);
    }
    let pick = |f: fn(&Measured) -> f64| measured.iter().map(f).collect::<Vec<f64>>();
    let n = shop.customers;
    report.add("journeys", &format!("lateness p99, {n} runs due at once"), "s", &pick(|m| m.p99), None, Some("≤ 1 s"));
    report.add("journeys", "lateness p50", "s", &pick(|m| m.p50), None, None);
    report.add("journeys", "lateness max (the backlog cleared)", "s", &pick(|m| m.max), None, None);
    report.add("journeys", "steps/s through the backlog", "steps/s", &pick(|m| m.steps_per_s), None, None);
    Ok(())
}
