//! `kith-bench-extism`: the Extism baseline of the plugin-calls benchmark.
//! It reads the batches kith-bench wrote (JSON), calls the `high-value` rule
//! hosted by Extism over each, as Kith's host does — a fresh instance per
//! batch from a module compiled once, a deadline and a memory limit per
//! instance, the batch encoded and the decisions decoded in the timed part —
//! and prints its timings as JSON on standard output.
//!
//! A process of its own: Extism links its own wasmtime, which the kernel's
//! invariants keep out of everything but `kith-host`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use extism::{CompiledPlugin, Manifest, Plugin, PluginBuilder, Wasm};
use serde::{Deserialize, Serialize};

#[derive(Debug, Parser)]
struct Args {
    /// The plug-in (bench/extism-guest, built by tests/artifacts).
    #[arg(long)]
    guest: PathBuf,
    /// The batches, as kith-bench wrote them.
    #[arg(long)]
    input: PathBuf,
    /// Passes over every batch.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Calls with one customer, for the single-call overhead.
    #[arg(long, default_value_t = 1000)]
    single_calls: usize,
}

/// What the plug-in reads of a customer (bench/extism-guest's `Input`).
#[derive(Debug, Serialize, Deserialize)]
struct Customer {
    id: i64,
    total_spent: i64,
    order_count: u32,
    tags: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct Input {
    average_order_value: f64,
    batches: Vec<Vec<Customer>>,
}

#[derive(Debug, Serialize)]
struct Batch<'a> {
    average_order_value: f64,
    customers: &'a [Customer],
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Decision {
    customer_id: i64,
    add: bool,
    tag: String,
    reason: String,
}

/// Timings in nanoseconds.
#[derive(Debug, Default, Serialize)]
struct Timings {
    /// Each pass over all batches, start to end.
    passes_ns: Vec<u64>,
    /// Decisions of the last pass.
    decisions: usize,
    /// Every instantiation of every pass.
    instantiation_ns: Vec<u64>,
    /// Each call with one customer, instantiation included.
    single_call_ns: Vec<u64>,
}

/// The kith binary's allocator, so baselines measured in this process run
/// with the allocator the kernel runs with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<()> {
    let args = Args::parse();
    let input: Input = serde_json::from_slice(&std::fs::read(&args.input).context("reading the batches")?)?;
    let wasm = std::fs::read(&args.guest).with_context(|| format!("reading {}", args.guest.display()))?;
    // Kith's defaults: 2 s per call, 64 MiB of memory.
    let manifest = Manifest::new([Wasm::data(wasm)]).with_timeout(Duration::from_secs(2)).with_memory_max(1024);
    let compiled = CompiledPlugin::new(PluginBuilder::new(manifest).with_wasi(false))?;
    let call = |customers: &[Customer], timings: &mut Timings| -> Result<usize> {
        let started = Instant::now();
        let mut plugin = Plugin::new_from_compiled(&compiled)?;
        timings.instantiation_ns.push(started.elapsed().as_nanos() as u64);
        let body = serde_json::to_vec(&Batch { average_order_value: input.average_order_value, customers })?;
        let out: &[u8] = plugin.call("evaluate", body.as_slice())?;
        let decisions: Vec<Decision> = serde_json::from_slice(out)?;
        Ok(decisions.len())
    };
    let mut timings = Timings::default();
    for _ in 0..args.runs {
        let started = Instant::now();
        let mut decisions = 0;
        for batch in &input.batches {
            decisions += call(batch, &mut timings)?;
        }
        timings.passes_ns.push(started.elapsed().as_nanos() as u64);
        timings.decisions = decisions;
    }
    let one = input.batches.first().and_then(|b| b.first()).context("no customer")?;
    let mut ignored = Timings::default();
    for _ in 0..args.single_calls {
        let started = Instant::now();
        call(std::slice::from_ref(one), &mut ignored)?;
        timings.single_call_ns.push(started.elapsed().as_nanos() as u64);
    }
    ensure!(!timings.passes_ns.is_empty(), "no pass ran");
    println!("{}", serde_json::to_string(&timings)?);
    Ok(())
}
