//! `kith-bench`: Kith's benchmarks, each figure beside a baseline measured in
//! the same run on the same machine. `cargo xtask bench` builds it (and
//! `kith`) in release and runs it; `BENCHMARKS.md` explains each benchmark.

mod api;
mod console;
mod data;
mod ingest;
mod journeys;
mod kith;
mod languages;
mod pg;
mod plugins;
mod report;
mod segments;

use std::path::PathBuf;

use anyhow::Result;
use chrono::{DurationRound, Utc};
use clap::Parser;

use crate::data::Scale;
use crate::kith::Setup;
use crate::report::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Bench {
    Ingest,
    Segments,
    Journeys,
    Api,
    Plugins,
    /// The same tag rule written in Rust, JavaScript and Python (`kith plugin new`'s template).
    PluginLanguages,
    /// The merchant console's first load in Chromium, and its page weight.
    Console,
    All,
}

/// The store a benchmark's Kith runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    Sqlite,
    /// A throwaway PostgreSQL server with durable settings, 1 or more kernel nodes on one database (`--nodes`).
    Postgres,
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
    /// The stores to measure ingest, segments, api and journeys on, each in turn in this run
    /// (`sqlite,postgres`: PostgreSQL beside SQLite). With `postgres` the results go to
    /// BENCHMARKS.md's PostgreSQL section. Plugin calls touch no store and run once.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite")]
    backend: Vec<Backend>,
    /// With `postgres`: how many `kith serve` nodes share the database, each count in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    nodes: Vec<usize>,
}

/// The kith binary's allocator, so baselines measured in this process run
/// with the allocator the kernel runs with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<()> {
    let mut args = Args::parse();
    if let (Some(saved), Some(markdown)) = (&args.from_json, &args.markdown) {
        let report: Report = serde_json::from_slice(&std::fs::read(saved)?)?;
        let kept = if args.markdown_add { Report::section(markdown, report.scale, report.postgres)? } else { String::new() };
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
    // PostgreSQL: one throwaway server for the whole run (its databases removed with it), with
    // durable settings, as SQLite runs with `synchronous=FULL`.
    let cluster = if args.backend.contains(&Backend::Postgres) { Some(kith_postgres::cluster::Cluster::start_durable()?) } else { None };
    report.postgres = cluster.is_some();
    let mut setups = Vec::new();
    for backend in &args.backend {
        match (backend, &cluster) {
            (Backend::Sqlite, _) => setups.push(Setup::Sqlite),
            (Backend::Postgres, Some(cluster)) => {
                setups.extend(args.nodes.iter().map(|&nodes| Setup::Postgres { cluster, nodes: nodes.max(1) }))
            }
            (Backend::Postgres, None) => unreachable!("started above"),
        }
    }
    if (args.database.is_some() || args.keep_database) && setups.iter().any(|s| !matches!(s, Setup::Sqlite)) {
        anyhow::bail!("--database and --keep-database are for SQLite (the PostgreSQL server is a throwaway one)");
    }
    // Figures are named after their setup when a run has more than SQLite's.
    let labelled = report.postgres || setups.len() > 1;
    report.data = shop.all().fold([0; 4], |[c, o, b, e], x| [c + 1, o + x.orders.len(), b + x.behaviours.len(), e + x.event_count()]);
    let wants = |b: Bench| args.benches.contains(&Bench::All) || args.benches.contains(&b);
    // The files are written again after each benchmark, so that a long run (an hour or more
    // at `large`) that is stopped keeps the figures it has measured.
    let kept = match &args.markdown {
        Some(path) if args.markdown_add => Report::section(path, args.scale, report.postgres)?,
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
    // The ingest's baselines, measured once for all node counts: rusqlite for SQLite, COPY and
    // batched INSERT for PostgreSQL.
    let mut sqlite_baseline = Vec::new();
    let mut pg_baselines = (Vec::new(), Vec::new());
    if wants(Bench::Ingest) {
        for _ in 0..args.runs {
            if setups.iter().any(|s| matches!(s, Setup::Sqlite)) {
                sqlite_baseline.push(ingest::rusqlite_baseline(&shop)?);
            }
            if let Some(cluster) = &cluster {
                pg_baselines.0.push(runtime.block_on(pg::ingest_baseline(cluster, &shop, pg::Load::Copy))?);
                pg_baselines.1.push(runtime.block_on(pg::ingest_baseline(cluster, &shop, pg::Load::Insert))?);
            }
        }
    }
    for setup in setups {
        let prefix = if labelled { format!("{}: ", setup.label()) } else { String::new() };
        // The read benchmarks run on the shop the ingest benchmark loaded (or one loaded for them, unmeasured).
        let ingested = if let Some(database) = &args.database {
            if wants(Bench::Ingest) {
                anyhow::bail!("--database is for the read benchmarks: ingest loads a new database");
            }
            let kith = kith::Kith::open(&args.kith, database, 2)?;
            runtime.block_on(kith.drained(std::time::Duration::from_secs(24 * 3600)))?;
            Some(ingest::Ingested { kith, events: 0, acknowledged: Default::default(), drained: Default::default() })
        } else if wants(Bench::Ingest) {
            let baselines = match setup {
                Setup::Sqlite => vec![("rusqlite", sqlite_baseline.clone())],
                Setup::Postgres { .. } => vec![("PostgreSQL COPY", pg_baselines.0.clone()), ("PostgreSQL INSERT", pg_baselines.1.clone())],
            };
            let ingested =
                runtime.block_on(ingest::run(&args.kith, &shop, args.runs, args.clients, setup, &prefix, &baselines, &mut report))?;
            save(&report)?;
            Some(ingested)
        } else if wants(Bench::Segments) || wants(Bench::Api) {
            Some(runtime.block_on(ingest::ingest(&args.kith, &shop, args.clients, setup))?)
        } else {
            None
        };
        if let Some(ingested) = &ingested {
            if wants(Bench::Segments) {
                runtime.block_on(segments::run(ingested, &args.python, args.runs, &prefix, &mut report))?;
                save(&report)?;
            }
            if wants(Bench::Api) {
                runtime.block_on(api::run(ingested, &shop, args.scale, args.runs, &prefix, &mut report))?;
                save(&report)?;
            }
        }
        if let Some(mut ingested) = ingested
            && args.keep_database
            && args.database.is_none()
        {
            ingested.kith.dir.disable_cleanup(true);
            println!("kept the ingested database: {}", ingested.kith.database);
        }
        if wants(Bench::Journeys) {
            runtime.block_on(journeys::run(&args.kith, &shop, args.runs, setup, &prefix, &mut report))?;
            save(&report)?;
        }
    }
    if wants(Bench::Plugins) {
        plugins::run(&shop, args.runs, &mut report)?;
        save(&report)?;
    }
    if wants(Bench::PluginLanguages) {
        languages::run(&args.kith, &shop, args.runs, &mut report)?;
        save(&report)?;
    }
    if wants(Bench::Console) {
        console::run(&args.kith, args.scale, args.runs, &mut report)?;
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
