//! `kith plugin test`: the component in the kernel's own plugin host, with the kernel's limits,
//! against fixtures; what each call decided, logged, wrote and cost, and whether that is what the fixture expects.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use kith_domain::plugin::{Decision, LogLine, Manifest};
use kith_host::{CallEnv, CallError, CallReport, Host, Output};
use serde_json::{Value, json};

use super::fixture::{Expect, Fixture, Recorded, StandIn};
use super::{Project, build};
use crate::config::Config;

#[derive(Args)]
pub struct TestArgs {
    /// Fixture files (default: the project's fixtures/*.json).
    pub fixtures: Vec<PathBuf>,
    /// The project (default: the current folder, or the nearest above it with a plugin.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Test this component instead of building the project.
    #[arg(long)]
    pub wasm: Option<PathBuf>,
    /// Test the component the last build made, without building.
    #[arg(long)]
    pub no_build: bool,
    /// Print one JSON object per fixture instead of text.
    #[arg(long)]
    pub json: bool,
    /// First record a fixture from a running kernel's shop (what the plugin, enabled there, would be
    /// handed now; masked as the key's permissions require) into --out, then test.
    #[arg(long, requires_all = ["url", "key"])]
    pub record: bool,
    /// The kernel's base URL, for --record.
    #[arg(long, env = "KITH_URL")]
    pub url: Option<String>,
    /// A key of the shop, with plugins:manage, for --record (with pii:read, the fixture holds personal data unmasked).
    #[arg(long, env = "KITH_SHOP_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Customers to record, 1 to 100.
    #[arg(long, default_value_t = 20)]
    pub sample: usize,
    /// Where --record writes the fixture.
    #[arg(long, default_value = "fixtures/recorded.json")]
    pub out: PathBuf,
}

/// `GET /v1/shop/plugins/{id}/fixture` into `out` (relative to the project).
fn record(project: &Project, args: &TestArgs) -> Result<PathBuf> {
    if project.manifest.kind == kith_domain::plugin::Kind::ChannelConnector {
        bail!(
            "--record takes customers; a connector's fixture states the message and the provider's answers itself (its calls would reach the real provider)"
        );
    }
    let (Some(url), Some(key)) = (&args.url, &args.key) else { bail!("--record needs --url and --key") };
    let url = format!("{}/v1/shop/plugins/{}/fixture?sample={}", url.trim_end_matches('/'), project.manifest.id, args.sample);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(&url)
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        anyhow::Ok((status, response.text().await?))
    })?;
    if !status.is_success() {
        bail!("GET {url} answered {status}: {body}");
    }
    let fixture: Value = serde_json::from_str(&body).context("the kernel's fixture is not JSON")?;
    let out = if args.out.is_absolute() { args.out.clone() } else { project.dir.join(&args.out) };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&fixture)? + "\n").with_context(|| format!("writing {}", out.display()))?;
    let customers = fixture["customers"].as_array().map_or(0, Vec::len);
    eprintln!("recorded {customers} customers of the shop into {} (add an `expect` to make it a test)", out.display());
    Ok(out)
}

/// The kernel keeps this many log lines of a call, each cut at this many bytes; the harness shows
/// them all, and says which the kernel would cut.
const KERNEL_LOG_LINES: usize = 200;
const KERNEL_LOG_LINE_BYTES: usize = 4096;

pub fn run(config: &Config, args: TestArgs) -> Result<()> {
    let project = Project::find(&args.dir)?;
    if args.record {
        record(&project, &args)?;
    }
    let wasm = match (&args.wasm, args.no_build) {
        (Some(path), _) => path.clone(),
        (None, true) => project.wasm(),
        (None, false) => build::build(&project)?,
    };
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut fixtures = args.fixtures.clone();
    if fixtures.is_empty() {
        let dir = project.dir.join("fixtures");
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {} (or name fixture files)", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                fixtures.push(path);
            }
        }
        fixtures.sort();
        if fixtures.is_empty() {
            bail!("no fixtures in {}", dir.display());
        }
    }
    // The kernel's limits; only its log caps are lifted, so that nothing a plugin logs is lost here.
    let mut host_config = config.host_config(Some(super::cache_root().join("wasmtime")))?;
    host_config.max_log_lines = 100_000;
    host_config.max_log_line_bytes = 1 << 20;
    let host = Host::new(host_config).context("starting the plugin host")?;
    let started = std::time::Instant::now();
    let plugin = host.load(&project.manifest, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", wasm.display()))?;
    let load = started.elapsed();
    if !args.json {
        println!(
            "{} {} ({}), {:.1} MB, loaded in {:.0} ms; limits: {} ms, {} MiB{}",
            project.manifest.id,
            project.manifest.version,
            project.manifest.kind.as_str(),
            bytes.len() as f64 / 1e6,
            load.as_secs_f64() * 1e3,
            plugin.limits.timeout.as_millis(),
            plugin.limits.memory >> 20,
            plugin.limits.fuel.map(|f| format!(", {f} fuel")).unwrap_or_default()
        );
    }
    let mut failed = 0;
    for path in &fixtures {
        let outcome = match run_one(config, &host, &project.manifest, &plugin, &bytes, path) {
            Ok(outcome) => outcome,
            Err(err) => Outcome::broken(format!("{err:#}")),
        };
        if !outcome.failures.is_empty() {
            failed += 1;
        }
        if args.json {
            println!("{}", outcome.json(path));
        } else {
            outcome.print(path, &host);
        }
    }
    if !args.json {
        println!("{} fixtures: {} passed, {failed} failed", fixtures.len(), fixtures.len() - failed);
    }
    if failed > 0 {
        // The report above says what failed; the exit status tells a CI.
        std::process::exit(1);
    }
    Ok(())
}

/// One fixture's result.
struct Outcome {
    name: Option<String>,
    report: Option<CallReport>,
    requests: Vec<Recorded>,
    config_error: Option<String>,
    failures: Vec<String>,
    limits: Option<kith_host::Limits>,
}

impl Outcome {
    fn broken(reason: String) -> Outcome {
        Outcome {
            name: None,
            report: None,
            requests: Vec::new(),
            config_error: None,
            failures: vec![format!("the fixture cannot run: {reason}")],
            limits: None,
        }
    }

    fn print(&self, path: &Path, host: &Host) {
        let verdict = if self.failures.is_empty() { "ok" } else { "FAILED" };
        let name = self.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        println!("\n{}{name}: {verdict}", path.display());
        if let Some(field) = &self.config_error {
            println!("  config refused at {field}");
        }
        if let Some(report) = &self.report {
            match &report.output {
                Ok(Output::Decisions(decisions)) => {
                    println!("  decisions ({}):", decisions.len());
                    for d in decisions {
                        println!("    {}", describe(d));
                    }
                }
                Ok(Output::Delivery(delivery)) => println!("  delivery: {}", serde_json::to_string(delivery).unwrap_or_default()),
                Ok(Output::Receipts(receipts)) => {
                    println!("  receipts ({}):", receipts.len());
                    for r in receipts {
                        println!("    {}", serde_json::to_string(r).unwrap_or_default());
                    }
                }
                Err(err) => println!("  error: {err}"),
            }
            if !report.logs.is_empty() {
                println!("  logs ({}):", report.logs.len());
                for (i, line) in report.logs.iter().enumerate() {
                    println!("    {:<5} {}{}", level(line), line.message, kernel_cut(i, line));
                }
            }
            for (key, value) in &report.kv_writes {
                match value {
                    Some(v) => println!("  kv set {key} = {}", String::from_utf8_lossy(v)),
                    None => println!("  kv delete {key}"),
                }
            }
            for r in &self.requests {
                println!("  provider got {} {} {}", r.method, r.path, r.body);
            }
            let limits = self.limits.expect("limits are set with a report");
            let config = host.config();
            println!(
                "  cost: instantiation {:.2} ms, call {:.2} ms (limit {} ms); fuel {}; peak memory {:.1} MiB of {} MiB; output {} of {} bytes",
                report.instantiation.as_secs_f64() * 1e3,
                (report.duration - report.instantiation).as_secs_f64() * 1e3,
                limits.timeout.as_millis(),
                report.fuel_used.map_or("not counted".into(), |f| match limits.fuel {
                    Some(budget) => format!("{f} of {budget}"),
                    None => f.to_string(),
                }),
                report.peak_memory as f64 / (1 << 20) as f64,
                limits.memory >> 20,
                report.output_bytes,
                config.max_output_bytes,
            );
        }
        for failure in &self.failures {
            println!("  FAILED: {failure}");
        }
    }

    fn json(&self, path: &Path) -> Value {
        let report = self.report.as_ref();
        let (output, error) = match report.map(|r| &r.output) {
            Some(Ok(Output::Decisions(d))) => (json!({"decisions": d}), Value::Null),
            Some(Ok(Output::Delivery(d))) => (json!({"delivery": d}), Value::Null),
            Some(Ok(Output::Receipts(r))) => (json!({"receipts": r}), Value::Null),
            Some(Err(err)) => (Value::Null, json!({"kind": error_kind(err), "message": err.to_string()})),
            None => (Value::Null, Value::Null),
        };
        json!({
            "fixture": path.display().to_string(),
            "name": self.name,
            "passed": self.failures.is_empty(),
            "failures": self.failures,
            "config_error": self.config_error,
            "output": output,
            "error": error,
            "logs": report.map(|r| &r.logs),
            "kv_writes": report.map(|r| r.kv_writes.iter().map(|(k, v)| json!({"key": k, "value": v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())})).collect::<Vec<_>>()),
            "requests": self.requests,
            "cost": report.map(|r| json!({
                "instantiation_ms": r.instantiation.as_secs_f64() * 1e3,
                "call_ms": (r.duration - r.instantiation).as_secs_f64() * 1e3,
                "fuel": r.fuel_used,
                "peak_memory_bytes": r.peak_memory,
                "output_bytes": r.output_bytes,
            })),
        })
    }
}

fn level(line: &LogLine) -> String {
    serde_json::to_value(line.level).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// What the kernel would do to this line that the harness did not.
fn kernel_cut(index: usize, line: &LogLine) -> String {
    if index >= KERNEL_LOG_LINES {
        format!("  [the kernel keeps {KERNEL_LOG_LINES} lines a call: dropped there]")
    } else if line.message.len() > KERNEL_LOG_LINE_BYTES {
        format!("  [{} bytes: the kernel cuts lines at {KERNEL_LOG_LINE_BYTES}]", line.message.len())
    } else {
        String::new()
    }
}

fn describe(decision: &Decision) -> String {
    match decision {
        Decision::AddTag { customer_id, tag, reason } => format!("add-tag {tag} to {customer_id}: {reason}"),
        Decision::RemoveTag { customer_id, tag, reason } => format!("remove-tag {tag} from {customer_id}: {reason}"),
        Decision::SetScore { customer_id, model, value, label, explanation } => {
            format!(
                "set-score {model} of {customer_id} = {value}{}: {explanation}",
                label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
            )
        }
        Decision::AwardPoints { customer_id, points, source_key, reason, .. } => {
            format!("award-points {points} to {customer_id} [{source_key}]: {reason}")
        }
        Decision::ClawBackPoints { customer_id, points, source_key, reason } => {
            format!("claw-back-points {points} from {customer_id} [{source_key}]: {reason}")
        }
        Decision::ChangeTier { customer_id, tier, reason } => format!("change-tier of {customer_id} to {tier}: {reason}"),
        Decision::EmitEvent { customer_id, event_type, payload } => format!("emit-event {event_type} for {customer_id:?}: {payload}"),
    }
}

/// A failed call's kind, as fixtures name it.
fn error_kind(err: &CallError) -> String {
    match err {
        CallError::Timeout(_) => "timeout".into(),
        CallError::Memory(_) => "memory".into(),
        CallError::Resources(_) => "resources".into(),
        CallError::Fuel(_) => "fuel".into(),
        CallError::Trap(_) => "trap".into(),
        CallError::Output(_) => "output".into(),
        CallError::Instantiate(_) => "instantiate".into(),
        CallError::WrongKind { .. } => "wrong-kind".into(),
        CallError::Guest(g) => serde_json::to_value(g).ok().and_then(|v| v["kind"].as_str().map(str::to_owned)).unwrap_or_default(),
    }
}

fn run_one(config: &Config, host: &Host, manifest: &Manifest, plugin: &kith_host::Plugin, wasm: &[u8], path: &Path) -> Result<Outcome> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let stand_in = match Fixture::provider_answers(&text)? {
        Some(answers) => Some(StandIn::start(answers)?),
        None => None,
    };
    let fixture = Fixture::parse(&text, stand_in.as_ref().map(|s| s.url.as_str()))?;
    let mut outcome = Outcome {
        name: fixture.name.clone(),
        report: None,
        requests: Vec::new(),
        config_error: None,
        failures: Vec::new(),
        limits: Some(plugin.limits),
    };
    // The shop's config is checked as enabling the plugin checks it.
    match (kith_bus::validate_config(manifest.config_schema.as_ref(), &fixture.config), &fixture.expect.config_error) {
        (Err(e), Some(field)) if &e.field == field => {
            outcome.config_error = Some(format!("{}: {}", e.field, e.reason));
            return Ok(outcome);
        }
        (Err(e), _) => {
            outcome.config_error = Some(format!("{}: {}", e.field, e.reason));
            outcome.failures.push(format!("the config is refused at {}: {}", e.field, e.reason));
            return Ok(outcome);
        }
        (Ok(()), Some(field)) => {
            outcome.failures.push(format!("expected the config to be refused at {field}, but it is valid"));
            return Ok(outcome);
        }
        (Ok(()), None) => {}
    }
    let prepared = fixture.prepare(manifest, stand_in.as_ref().map(|s| s.url.as_str()))?;
    // The stand-in answers for the plugin's own hosts: the component may reach it on loopback.
    let widened;
    let plugin = match &stand_in {
        Some(_) if !manifest.allowed_hosts.iter().any(|h| h == "*" || h == "127.0.0.1") => {
            let mut manifest = manifest.clone();
            manifest.allowed_hosts.push("127.0.0.1".into());
            widened = host.load(&manifest, wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
            &widened
        }
        _ => plugin,
    };
    // The kernel hands a plugin at most its batch size per call ([plugins] batch_size, and the manifest's).
    let subjects = prepared.input.subjects();
    let batch = config.plugins.batch_size.min(manifest.limits.batch_size.map_or(usize::MAX, |n| n as usize)).max(1);
    if subjects > batch {
        outcome.failures.push(format!("{subjects} customers in one call: the kernel hands this plugin at most {batch} per call"));
        return Ok(outcome);
    }
    let grant = prepared.grant.clone();
    let env = CallEnv {
        shop_id: 1,
        grant: prepared.grant,
        config: fixture.config.clone(),
        now_ms: prepared.now_ms,
        services: Box::new(prepared.env),
    };
    let mut report = host.call(plugin, env, prepared.input);
    // What the bus checks before applying anything: each decision against the grant and the
    // plugin's namespaces, and the call's decisions together. A refusal fails the call in a shop.
    let mut refused = false;
    if let Ok(Output::Decisions(decisions)) = &report.output
        && let Err(reason) = kith_bus::check(&manifest.id, &grant, decisions, subjects)
    {
        report.output = Err(CallError::Guest(kith_domain::plugin::GuestError::Failed(format!("the kernel refuses the call: {reason}"))));
        refused = true;
    }
    let requests = stand_in.as_ref().map(|s| s.recorded.lock().expect("stand-in lock").clone()).unwrap_or_default();
    drop(stand_in);
    outcome.failures = check(&fixture.expect, &report, &requests, refused);
    outcome.report = Some(report);
    outcome.requests = requests;
    Ok(outcome)
}

/// What differs from the expectations.
fn check(expect: &Expect, report: &CallReport, requests: &[Recorded], refused: bool) -> Vec<String> {
    let mut failures = Vec::new();
    match (&report.output, &expect.error) {
        (Err(_), Some(kind)) if refused && kind == "refused" => {}
        (Err(err), Some(kind)) if !refused && &error_kind(err) == kind => {}
        (Err(err), Some(kind)) => failures.push(format!("expected a `{kind}` error, got: {err}")),
        (Err(err), None) => failures.push(format!("the call failed: {err}")),
        (Ok(_), Some(kind)) => failures.push(format!("expected a `{kind}` error, but the call succeeded")),
        (Ok(output), None) => {
            let (decisions, delivery, receipts) = match output {
                Output::Decisions(d) => (Some(serde_json::to_value(d).unwrap_or_default()), None, None),
                Output::Delivery(d) => (None, Some(serde_json::to_value(d).unwrap_or_default()), None),
                Output::Receipts(r) => (None, None, Some(serde_json::to_value(r).unwrap_or_default())),
            };
            if let Some(expected) = &expect.decisions {
                compare_list("decisions", expected, decisions.as_ref(), &mut failures);
            }
            if let Some(expected) = &expect.receipts {
                compare_list("receipts", expected, receipts.as_ref(), &mut failures);
            }
            if let Some(expected) = &expect.delivery {
                match &delivery {
                    Some(actual) if same(expected, actual) => {}
                    Some(actual) => failures.push(format!("delivery: expected {expected}, got {actual}")),
                    None => failures.push("delivery: expected one, but the call was not a deliver".into()),
                }
            }
        }
    }
    if let Some(expected) = &expect.kv {
        for (key, value) in expected {
            let written = report.kv_writes.iter().rev().find(|(k, _)| k == key);
            let actual = written.map(|(_, v)| match v {
                Some(bytes) => serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
                None => Value::Null,
            });
            match actual {
                Some(actual) if same(value, &actual) => {}
                Some(actual) => failures.push(format!("kv {key}: expected {value}, written {actual}")),
                None => failures.push(format!("kv {key}: expected {value}, not written")),
            }
        }
    }
    for wanted in &expect.logs {
        if !report.logs.iter().any(|l| l.message.contains(wanted.as_str())) {
            failures.push(format!("no log line contains {wanted:?}"));
        }
    }
    if let Some(expected) = &expect.requests {
        if expected.len() != requests.len() {
            failures.push(format!("the provider got {} requests, {} expected", requests.len(), expected.len()));
        }
        for (i, (want, got)) in expected.iter().zip(requests).enumerate() {
            let got = serde_json::to_value(got).unwrap_or_default();
            if !contains(&got, want) {
                failures.push(format!("requests[{i}]: expected {want} within {got}"));
            }
        }
    }
    failures
}

fn compare_list(what: &str, expected: &[Value], actual: Option<&Value>, failures: &mut Vec<String>) {
    let Some(Value::Array(actual)) = actual else {
        failures.push(format!("{what}: expected {} but the call returned none", expected.len()));
        return;
    };
    if expected.len() != actual.len() {
        failures.push(format!("{what}: expected {}, got {}", expected.len(), actual.len()));
    }
    for (i, (want, got)) in expected.iter().zip(actual).enumerate() {
        if !same(want, got) {
            failures.push(format!("{what}[{i}]: expected {want}\n          got      {got}"));
        }
    }
    for (i, extra) in actual.iter().enumerate().skip(expected.len()) {
        failures.push(format!("{what}[{i}]: not expected: {extra}"));
    }
    for (i, missing) in expected.iter().enumerate().skip(actual.len()) {
        failures.push(format!("{what}[{i}]: missing: {missing}"));
    }
}

/// Equal as JSON, numbers within a relative 1e-9 (a score computed in another language may differ in its last bits);
/// a field expected as `null` may be absent.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        // Integers exactly (ids, points, times); other numbers within a relative 1e-9.
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
            _ => a == b,
        },
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)),
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, v)| b.get(k).map_or(v.is_null(), |w| same(v, w)))
                && b.iter().all(|(k, w)| a.get(k).map_or(w.is_null(), |_| true))
        }
        _ => expected == actual,
    }
}

/// `want` within `got`: objects as subsets, everything else `same`.
fn contains(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, v)| g.get(k).is_some_and(|x| contains(x, v))),
        (Value::Array(g), Value::Array(w)) => g.len() == w.len() && g.iter().zip(w).all(|(g, w)| contains(g, w)),
        _ => same(want, got),
    }
}
