//! The merchant console's first load (`console`): a demo shop (`kith demo`, its customers by
//! scale), `kith serve` on it, and Chromium loading the console signed in until the overview's
//! figures show, beside the same browser loading `/healthz` from the same kernel (the floor of a
//! page load on this machine); and the first screen's page weight. The measuring is
//! console/bench/first-load.mjs (playwright-core, from the console's npm packages).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::data::Scale;
use crate::report::Report;

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../console")
}

/// The value after `label` on the banner's line that has it, up to `end`.
fn banner_value(banner: &str, label: &str, end: &str) -> Result<String> {
    let line = banner.lines().find(|l| l.contains(label)).with_context(|| format!("no `{label}` in kith demo's banner:\n{banner}"))?;
    let rest = &line[line.find(label).unwrap_or(0) + label.len()..];
    Ok(rest.split(end).next().unwrap_or_default().trim().to_owned())
}

pub fn run(kith: &Path, scale: Scale, runs: usize, report: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("demo.db");
    let customers = match scale {
        Scale::Tiny => "300",
        Scale::Small => "2000",
        Scale::Large => "20000",
    };
    let db_arg = db.to_str().context("path")?;
    let out = Command::new(kith)
        .current_dir(dir.path())
        .args(["--database", db_arg, "demo", "--no-serve", "--customers", customers])
        .env("RUST_LOG", "warn")
        .output()
        .context("running kith demo")?;
    if !out.status.success() {
        bail!("kith demo failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let banner = String::from_utf8_lossy(&out.stdout).into_owned();
    let login = banner_value(&banner, "login ", ",")?;
    let password = banner_value(&banner, "password ", " ")?;
    // Killed with this thread (see kith.rs), so an interrupted run leaves no server behind.
    let mut child = Command::new("setpriv")
        .current_dir(dir.path())
        .args(["--pdeathsig", "KILL", "--"])
        .arg(kith)
        .args(["--database", db_arg, "serve", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting kith serve")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let url = line.trim().strip_prefix("listening on ").with_context(|| format!("unexpected first line {line:?}"))?.to_owned();
    let measured = Command::new("node")
        .arg("bench/first-load.mjs")
        .current_dir(console_dir())
        .env("KITH_URL", &url)
        .env("KITH_LOGIN", &login)
        .env("KITH_PASSWORD", &password)
        .env("RUNS", runs.to_string())
        .output()
        .context("running node console/bench/first-load.mjs (cargo xtask bench installs Node.js and the console's packages)");
    let _ = child.kill();
    let _ = child.wait();
    let measured = measured?;
    if !measured.status.success() {
        bail!("console/bench/first-load.mjs failed: {}", String::from_utf8_lossy(&measured.stderr));
    }
    let figures: Value = serde_json::from_slice(&measured.stdout).context("first-load.mjs's JSON")?;
    let list =
        |key: &str| -> Vec<f64> { figures[key].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default() };
    let (console, floor) = (list("console_ms"), list("floor_ms"));
    report.add(
        "console",
        "first screen interactive (signed in, cold cache)",
        "ms",
        &console,
        Some(("/healthz page load", &floor)),
        Some("< 1000 ms"),
    );
    let weight = &figures["first_screen"];
    let kib = |key: &str| weight[key].as_f64().unwrap_or(f64::NAN) / 1024.0;
    report.add("console", "first screen JavaScript, gzipped", "KiB", &[kib("js")], None, Some("< 500 KiB"));
    report.add("console", "first screen, all files, gzipped", "KiB", &[kib("js") + kib("css") + kib("html") + kib("other")], None, None);
    Ok(())
}
