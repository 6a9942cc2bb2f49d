//! API reads: profile reads (a random customer each) and customer list pages
//! at 64 concurrent connections on loopback, driven by `wrk` (Debian's
//! package): requests/s, p50 and p99. Baseline: `GET /healthz` under the
//! same load, which is what the HTTP stack and the load tool manage on this
//! machine with no work behind the request. With several kernel nodes (one
//! PostgreSQL database), one `wrk` per node at once, the same 64 connections
//! and 2 threads in all: requests/s summed, p50 and p99 the worst node's.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::data::{Scale, Shop};
use crate::ingest::Ingested;
use crate::report::Report;

struct Load {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// A duration as wrk prints it (`812.00us`, `1.23ms`, `2.01s`), in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn parse(output: &str) -> Option<Load> {
    let value = |prefix: &str| output.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix)).map(|v| v.trim().to_owned());
    Some(Load { requests_per_s: value("Requests/sec:")?.parse().ok()?, p50_ms: millis(&value("50%")?)?, p99_ms: millis(&value("99%")?)? })
}

/// `path` on every node at once (`bases`), 64 connections and 2 threads in all.
fn wrk(bases: &[String], path: &str, key: &str, script: Option<&Path>, seconds: u64) -> Result<Load> {
    let (threads, connections) = if bases.len() == 1 { (2, 64) } else { (1, 64 / bases.len()) };
    let mut running = Vec::new();
    for base in bases {
        let mut cmd = Command::new("wrk");
        cmd.args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Authorization: {key}"),
        ]);
        if let Some(script) = script {
            cmd.arg("-s").arg(script);
        }
        let url = format!("{base}{path}");
        cmd.arg(&url).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        running.push((url, cmd.spawn().context("running wrk (Debian's package `wrk`; `cargo xtask bench` installs it)")?));
    }
    let mut total = Load { requests_per_s: 0.0, p50_ms: 0.0, p99_ms: 0.0 };
    for (url, child) in running {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || text.contains("Non-2xx") {
            bail!("wrk {url}: {text}{}", String::from_utf8_lossy(&out.stderr));
        }
        let load = parse(&text).with_context(|| format!("reading wrk's report: {text}"))?;
        total.requests_per_s += load.requests_per_s;
        total.p50_ms = total.p50_ms.max(load.p50_ms);
        total.p99_ms = total.p99_ms.max(load.p99_ms);
    }
    Ok(total)
}

pub async fn run(ingested: &Ingested, shop: &Shop, scale: Scale, runs: usize, prefix: &str, report: &mut Report) -> Result<()> {
    let kith = &ingested.kith;
    let customers = shop.customers;
    // A random customer id per request; ids are dense from 1 (merged ones answer with their survivor).
    let script = kith.dir.path().join("profile.lua");
    std::fs::write(
        &script,
        format!(
            "math.randomseed(42)\nrequest = function() return wrk.format(\"GET\", \"/v1/customers/\" .. math.random(1, {customers})) end\n"
        ),
    )?;
    let seconds = match scale {
        Scale::Tiny => 2,
        Scale::Small => 10,
        Scale::Large => 20,
    };
    let (mut health, mut profile, mut list) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        health.push(wrk(&kith.urls, "/healthz", &kith.owner, None, seconds)?);
        profile.push(wrk(&kith.urls, "", &kith.owner, Some(&script), seconds)?);
        list.push(wrk(&kith.urls, "/v1/customers?limit=50", &kith.owner, None, seconds)?);
    }
    let rps = |l: &[Load]| l.iter().map(|l| l.requests_per_s).collect::<Vec<f64>>();
    let p99 = |l: &[Load]| l.iter().map(|l| l.p99_ms).collect::<Vec<f64>>();
    let p50 = |l: &[Load]| l.iter().map(|l| l.p50_ms).collect::<Vec<f64>>();
    for (name, loads) in [("profile read", &profile), ("customer list page (50)", &list)] {
        report.add(
            "api",
            &format!("{prefix}{name}: requests/s at 64 connections"),
            "req/s",
            &rps(loads),
            Some(("GET /healthz", &rps(&health))),
            Some("≥ 20k req/s"),
        );
        report.add("api", &format!("{prefix}{name}: p50"), "ms", &p50(loads), Some(("GET /healthz", &p50(&health))), None);
        report.add("api", &format!("{prefix}{name}: p99"), "ms", &p99(loads), Some(("GET /healthz", &p99(&health))), Some("≤ 10 ms"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let text = "Running 2s test @ http://127.0.0.1:1/healthz\n  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     90%    1.50ms\n     99%    3.21ms\n  20000 requests in 2.00s, 1.2MB read\nRequests/sec:  10000.50\nTransfer/sec:    600KB\n";
        let load = parse(text).unwrap();
        assert_eq!((load.requests_per_s, load.p50_ms, load.p99_ms), (10000.5, 0.812, 3.21));
        assert_eq!(millis("2.5s"), Some(2500.0));
    }
}
