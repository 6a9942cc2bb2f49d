//! `kith-bench`: Kith's benchmarks, each figure beside a baseline measured in
//! the same run on the same machine. `cargo xtask bench` builds it (and
//! `kith`) in release and runs it; `BENCHMARKS.md` explains each benchmark.

mod api;
mod data;
mod ingest;
mod journeys;
mod kith;
mod plugins;
mod report;
mod segments;

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DurationRound, Utc};
use clap::Parser;

use crate::data::Scale;
use crate::report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    Ingest,
    Segments,
    Journeys,
    Api,
    Plugins,
    All,
}

#[derive(Debug, Parser)]
#[command(about = "Kith's benchmarks, each against a baseline measured in the same run")]
struct Args {
    /// Which benchmarks (one or more, or `all`).
    #[arg(value_enum, required_unless_present = "from_json")]
    benches: Vec<Bench>,
    /// How big a shop.
    #[arg(long, value_enum, default_value = "small")]
    scale: Scale,
    /// Repetitions of each measurement (min / median / max over them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The generator's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The `kith` binary to measure.
    #[arg(long, env = "KITH_BIN")]
    kith: PathBuf,
    /// Where to write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The Python with the `duckdb` package, for the segments baseline.
    #[arg(long, env = "KITH_BENCH_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Write the results into this Markdown file, between its results markers (BENCHMARKS.md).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// With `--markdown`: add this run's results below those already in the section (each
    /// under its own heading) instead of replacing them, e.g. for one benchmark run again.
    /// Earlier results of the benchmarks it measures are dropped: the section keeps the
    /// latest of each.
    #[arg(long, requires = "markdown")]
    markdown_add: bool,
    /// Write the results of an earlier run, saved with `--json`, into `--markdown` (with
    /// `--markdown-add` or not) instead of running anything: for a long run started without
    /// `--markdown`. The figures, date, commit and machine are the saved run's.
    #[arg(long, requires = "markdown", conflicts_with = "benches")]
    from_json: Option<PathBuf>,
    /// Run the read benchmarks (segments, api) on this database, which an earlier run of the
    /// same scale and seed loaded, instead of ingesting the shop first (it takes over an hour
    /// at `large`). Kith opens it in place: it migrates it and its plugins go on with any
    /// events left to them. Not with `ingest`.
    #[arg(long)]
    database: Option<PathBuf>,
    /// Keep the database the ingest loaded (its directory is printed at the end), for later
    /// runs with `--database`.
    #[arg(long)]
    keep_database: bool,
    /// Concurrent HTTP clients for ingest.
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

/// The kith binary's allocator, so baselines measured in this process run
/// with the allocator the kernel runs with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<()> {
    let mut args = Args::parse();
    if let (Some(saved), Some(markdown)) = (&args.from_json, &args.markdown) {
        let report: Report = serde_json::from_slice(&std::fs::read(saved)?)?;
        let kept = if args.markdown_add { Report::section(markdown, report.scale)? } else { String::new() };
        report.write_into(markdown, &kept)?;
        println!("wrote the results saved in {} into {}", saved.display(), markdown.display());
        return Ok(());
    }
    // Kith runs in a temporary directory: its path must not be relative.
    args.kith = std::path::absolute(&args.kith)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The shop's times are relative to now (to the minute), so that windows such as "the last 30 days"
    // hold the same share of it whenever the benchmark runs; the same seed gives the same shop.
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1))?;
    let shop = data::Shop::new(args.scale, args.seed, now);
    let mut report = Report::new(args.scale, args.runs);
    report.data = shop.all().fold([0; 4], |[c, o, b, e], x| [c + 1, o + x.orders.len(), b + x.behaviours.len(), e + x.event_count()]);
    let wants = |b: Bench| args.benches.contains(&Bench::All) || args.benches.contains(&b);
    // The files are written again after each benchmark, so that a long run (an hour or more
    // at `large`) that is stopped keeps the figures it has measured.
    let kept = match &args.markdown {
        Some(path) if args.markdown_add => Report::section(path, args.scale)?,
        _ => String::new(),
    };
    let save = |report: &Report| -> Result<()> {
        if let Some(path) = &args.markdown {
            report.write_into(path, &kept)?;
        }
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
        }
        Ok(())
    };
    // The read benchmarks run on the shop the ingest benchmark loaded (or one loaded for them, unmeasured).
    let ingested = if let Some(database) = &args.database {
        if wants(Bench::Ingest) {
            anyhow::bail!("--database is for the read benchmarks: ingest loads a new database");
        }
        let kith = kith::Kith::open(&args.kith, database, 2)?;
        runtime.block_on(kith.drained(std::time::Duration::from_secs(24 * 3600)))?;
        Some(ingest::Ingested { kith, events: 0, acknowledged: Default::default(), drained: Default::default() })
    } else if wants(Bench::Ingest) {
        let ingested = runtime.block_on(ingest::run(&args.kith, &shop, args.runs, args.clients, &mut report))?;
        save(&report)?;
        Some(ingested)
    } else if wants(Bench::Segments) || wants(Bench::Api) {
        Some(runtime.block_on(ingest::ingest(&args.kith, &shop, args.clients))?)
    } else {
        None
    };
    if let Some(ingested) = &ingested {
        if wants(Bench::Segments) {
            runtime.block_on(segments::run(ingested, &args.python, args.runs, &mut report))?;
            save(&report)?;
        }
        if wants(Bench::Api) {
            runtime.block_on(api::run(ingested, &shop, args.scale, args.runs, &mut report))?;
            save(&report)?;
        }
    }
    if let Some(mut ingested) = ingested
        && args.keep_database
        && args.database.is_none()
    {
        ingested.kith.dir.disable_cleanup(true);
        println!("kept the ingested database: {}", ingested.kith.database.display());
    }
    if wants(Bench::Plugins) {
        plugins::run(&shop, args.runs, &mut report)?;
        save(&report)?;
    }
    if wants(Bench::Journeys) {
        runtime.block_on(journeys::run(&args.kith, &shop, args.runs, &mut report))?;
        save(&report)?;
    }
    report.print();
    if let Some(path) = &args.markdown {
        println!("wrote the results into {}", path.display());
    }
    if let Some(path) = &args.json {
        println!("wrote {}", path.display());
    }
    Ok(())
}
