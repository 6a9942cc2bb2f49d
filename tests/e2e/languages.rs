//! high-value written three times, in Rust (plugins/high-value), JavaScript (plugins/js/high-value)
//! and Python (plugins/python/high-value), gives the same decisions, reasons included, on the same
//! inputs: the three components through `kith plugin test --json`, on every fixture of the JavaScript
//! and Python projects and on generated shops in five currencies and three configurations, with the
//! money formatting's ties among them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{kith_plugin, repository};

/// A copy of a first-party project in `dir` (its build writes `.kith/` and `target/` there), built.
fn built(dir: &Path, plugin: &str) -> PathBuf {
    let to = dir.join(plugin.replace('/', "-"));
    crate::robots::copy(&repository().join("plugins").join(plugin), &to);
    kith_plugin(&to, &["build"]);
    to
}

/// A small deterministic generator (the same shops on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Shops of 400 customers: spending around the threshold (on it exactly, where it is whole),
/// orders around the minimum, a third holding the tag already.
fn generated(dir: &Path) -> Vec<PathBuf> {
    let mut rng = Lcg(20261207);
    let mut files = Vec::new();
    // Averages whose multiples and quotients land on the formatting's ties and its precision steps.
    let averages = [10000.4, 12.5, 33333.333, 4999.5, 25000.0, 1234.5678, 0.0];
    for currency in ["CNY", "JPY", "KWD", "USD", ""] {
        for (c, config) in
            [json!({}), json!({"aov_multiple": 1.5, "min_orders": 0}), json!({"aov_multiple": 2.125, "min_orders": 5})].iter().enumerate()
        {
            let average = averages[rng.next(averages.len() as u64) as usize];
            let multiple = config["aov_multiple"].as_f64().unwrap_or(2.0);
            let customers: Vec<Value> = (1..=400)
                .map(|id| {
                    let threshold = multiple * average;
                    let spent = match rng.next(4) {
                        0 => threshold.floor() as i64,
                        1 => threshold.ceil() as i64,
                        2 => (threshold * (rng.next(300) as f64 / 100.0)) as i64,
                        _ => rng.next(500_000) as i64,
                    };
                    let tags = if rng.next(3) == 0 { json!([{"tag": "high-value", "source": "high-value"}]) } else { json!([]) };
                    json!({"id": id, "stats": {"total_spent": spent, "order_count": rng.next(8)}, "tags": tags})
                })
                .collect();
            let fixture = json!({
                "name": format!("{currency} at an average order value of {average}, config {config}"),
                "config": config,
                "shop": {"currency": currency, "average_order_value": average},
                "customers": customers,
            });
            let path = dir.join(format!("generated-{currency}-{c}.json"));
            std::fs::write(&path, fixture.to_string()).unwrap();
            files.push(path);
        }
    }
    files
}

/// Each fixture's decisions, by fixture file name, from `kith plugin test --json`.
fn decisions(project: &Path, component: &[&str], fixtures: &[PathBuf]) -> Vec<(String, Value)> {
    let mut args = vec!["test", "--json"];
    args.extend(component);
    let files: Vec<String> = fixtures.iter().map(|f| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    kith_plugin(project, &args)
        .lines()
        .map(|line| {
            let result: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(result["passed"], true, "{result}");
            let name = Path::new(result["fixture"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            (name, result["output"]["decisions"].clone())
        })
        .collect()
}

#[test]
fn high_value_decides_the_same_in_rust_javascript_and_python() {
    let dir = tempfile::tempdir().unwrap();
    let js = built(dir.path(), "js/high-value");
    let python = built(dir.path(), "python/high-value");
    let mut fixtures = generated(dir.path());
    for project in [&js, &python] {
        for entry in std::fs::read_dir(project.join("fixtures")).unwrap() {
            // The hand-written fixtures state their expectations; each project's pass for all three components.
            let path = entry.unwrap().path();
            let copy = dir.path().join(format!(
                "{}-{}",
                project.file_name().unwrap().to_string_lossy(),
                path.file_name().unwrap().to_string_lossy()
            ));
            std::fs::copy(&path, &copy).unwrap();
            fixtures.push(copy);
        }
    }
    let rust = kith_test_plugins::HIGH_VALUE.wasm;
    let from_rust = decisions(&js, &["--wasm", rust], &fixtures);
    let from_js = decisions(&js, &["--no-build"], &fixtures);
    let from_python = decisions(&python, &["--no-build"], &fixtures);
    assert_eq!(from_rust.len(), fixtures.len());
    let mut compared = 0;
    for ((rust, js), python) in from_rust.iter().zip(&from_js).zip(&from_python) {
        assert_eq!(rust, js, "Rust and JavaScript differ on {}", rust.0);
        assert_eq!(rust, python, "Rust and Python differ on {}", rust.0);
        compared += rust.1.as_array().map_or(0, Vec::len);
    }
    assert!(compared > 2_000, "{compared} decisions compared");
}
