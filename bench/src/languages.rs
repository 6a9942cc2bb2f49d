//! Plugins in each language: the same tag rule, `kith plugin new --kind tag-rule`'s template (a tag
//! from a spending threshold, removed below it), in Rust, JavaScript and Python, made and built by
//! the `kith` binary (`kith plugin new` and `kith plugin build`, their pinned toolchains), then run
//! through Kith's real host in this process as `plugins` runs high-value. Per language: the
//! component's size, its cold load (compiling it), its load from the compile cache, instantiation,
//! and the cost per customer in batches of the bus's size; the baseline of the last is the same rule
//! compiled natively into this harness.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use kith_domain::plugin::{Decision, Grant, Manifest};
use kith_host::{Host, HostConfig};

use crate::data::Shop;
use crate::plugins::{BATCH, Contexts, Loaded, Pass, batches, tag_rule_pass};
use crate::report::{Report, percentile};

const LANGUAGES: [&str; 3] = ["rust", "js", "python"];
/// The template's default threshold (`min_spent`, minor units).
const MIN_SPENT: i64 = 100_000;

/// `kith plugin ARGS`, with the toolchains kept where the tests keep them.
fn kith_plugin(kith: &Path, args: &[&str]) -> Result<()> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let cache = std::env::var_os("KITH_CACHE").map(std::path::PathBuf::from).unwrap_or_else(|| target.join("kith-cache"));
    let out = Command::new(kith)
        .arg("plugin")
        .args(args)
        .env("KITH_CACHE", cache)
        .env("CARGO_TARGET_DIR", target.join("templates"))
        .output()
        .with_context(|| format!("running {} plugin {args:?}", kith.display()))?;
    ensure!(
        out.status.success(),
        "kith plugin {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The template rule natively: its decisions over the shop's batches, timed like the hosted passes.
fn native_pass(shop: &Shop, loaded: &Loaded) -> Pass {
    let mut pass = Pass::default();
    for range in batches(shop) {
        let customers: Vec<_> = range.map(|i| loaded.snapshot(&shop.customer(i), shop.now)).collect();
        let started = Instant::now();
        let mut decided = Vec::new();
        for c in &customers {
            let total = c.stats.total_spent;
            let tagged = c.tags.iter().any(|t| t.tag == "bench-rule");
            if total >= MIN_SPENT && !tagged {
                decided.push(Decision::AddTag {
                    customer_id: c.id,
                    tag: "bench-rule".into(),
                    reason: format!("spent {total} (at least {MIN_SPENT})"),
                });
            } else if total < MIN_SPENT && tagged {
                decided.push(Decision::RemoveTag {
                    customer_id: c.id,
                    tag: "bench-rule".into(),
                    reason: format!("spent {total} (less than {MIN_SPENT})"),
                });
            }
        }
        pass.seconds += started.elapsed().as_secs_f64();
        pass.decisions += std::hint::black_box(decided).len();
    }
    pass
}

pub fn run(kith: &Path, shop: &Shop, runs: usize, report: &mut Report) -> Result<()> {
    let ctx = Contexts::of(shop);
    let dir = tempfile::tempdir()?;
    let n = shop.customers as f64;
    let b = "plugin languages";
    let mut native = Vec::new();
    for lang in LANGUAGES {
        let project = dir.path().join(lang);
        eprintln!("plugin languages: {lang}: kith plugin new and build");
        kith_plugin(
            kith,
            &["new", "bench-rule", "--kind", "tag-rule", "--lang", lang, "--dir", project.to_str().context("a UTF-8 path")?],
        )?;
        kith_plugin(kith, &["build", "--dir", project.to_str().context("a UTF-8 path")?])?;
        let wasm = std::fs::read(project.join("target/kith/plugin.wasm"))?;
        let manifest = Manifest::parse(&std::fs::read_to_string(project.join("plugin.toml"))?).map_err(|e| anyhow::anyhow!("{e:?}"))?;

        // Cold: a kernel's first load, compiling into an empty cache. Cached: a second host on that cache.
        let mut cold = Vec::new();
        let mut cache = dir.path().join(format!("cache-{lang}"));
        for run in 0..runs {
            cache = dir.path().join(format!("cache-{lang}-{run}"));
            let host = Host::new(HostConfig { cache_dir: Some(cache.clone()), ..HostConfig::default() })?;
            let started = Instant::now();
            host.load(&manifest, &wasm)?;
            cold.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let host = Host::new(HostConfig { cache_dir: Some(cache), ..HostConfig::default() })?;
        let mut cached = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            host.load(&manifest, &wasm)?;
            cached.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let loaded = Loaded { grant: Grant::all_requested(&manifest), reads: manifest.reads(), plugin: host.load(&manifest, &wasm)? };
        let (mut per_customer, mut instantiations) = (Vec::new(), Vec::new());
        for run in 0..runs {
            eprintln!("plugin languages: {lang}: pass {} of {runs}", run + 1);
            let pass = tag_rule_pass(&host, &loaded, shop, &ctx)?;
            let baseline = native_pass(shop, &loaded);
            ensure!(
                pass.decisions == baseline.decisions,
                "{lang} decided {} times, the native rule {}",
                pass.decisions,
                baseline.decisions
            );
            per_customer.push(pass.seconds * 1e6 / n);
            native.push(baseline.seconds * 1e6 / n);
            instantiations.extend(pass.instantiations.iter().map(|s| s * 1e6));
        }
        instantiations.sort_by(f64::total_cmp);
        let label = match lang {
            "rust" => "Rust",
            "js" => "JavaScript (QuickJS)",
            _ => "Python (CPython)",
        };
        report.add(b, &format!("{label}: component size"), "MB", &[wasm.len() as f64 / 1e6], None, None);
        report.add(b, &format!("{label}: cold load (compile)"), "ms", &cold, None, None);
        report.add(b, &format!("{label}: cached load"), "ms", &cached, None, None);
        report.add(b, &format!("{label}: instantiation p50"), "µs", &[percentile(&instantiations, 0.5)], None, None);
        report.add(b, &format!("{label}: per customer (batches of {BATCH})"), "µs", &per_customer, Some(("native", &native)), None);
    }
    Ok(())
}
