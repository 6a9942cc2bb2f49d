//! `kith migrate --to postgres://…`: copy the SQLite database (every shop, or one) into
//! an empty PostgreSQL database, then compare each table's rows and checksum on both
//! sides. The backends do the reading and writing (`export`, `import`, their summaries);
//! the plan of what is copied and the checksum are the core's (`kith_core::transfer`).

use anyhow::{Context, Result, bail};
use clap::Args;
use kith_core::prelude::*;
use kith_core::transfer::{Plan, TableSummary, plan};

use crate::config::Config;

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into (postgres://user[:password]@host[:port]/db): its
    /// schema is created when missing, and it must hold no rows yet.
    #[arg(long)]
    to: String,
    /// Copy only this shop: its rows, its keys and the admin keys, with the whole plugin catalogue.
    #[arg(long)]
    shop: Option<i64>,
    /// Copy nothing: compare the --database file with the target, table by table, as after a copy.
    #[arg(long)]
    verify_only: bool,
}

pub fn run(config: &Config, args: MigrateArgs) -> Result<()> {
    if config.postgres_url().is_some() {
        bail!("--database names the SQLite file to copy from, not a PostgreSQL database");
    }
    let target_config = Config { database: args.to.clone().into(), ..config.clone() };
    let Some(url) = target_config.postgres_url() else {
        // Not echoed: a libpq key=value string may hold a password.
        bail!("--to must be a PostgreSQL URL (postgres://user[:password]@host[:port]/db)");
    };
    let target_name = target_config.database_name();
    if !config.database.is_file() {
        bail!("no database file at {}", config.database.display());
    }
    let source = kith_sqlite::Store::open(&config.database, kith_sqlite::StoreOptions { identity_caps: config.identity.clone() })
        .with_context(|| format!("opening database {}", config.database.display()))?;
    let target = kith_postgres::Postgres::open(url, kith_postgres::PgOptions { pool_size: 4, ..Default::default() })
        .with_context(|| format!("opening database {target_name}"))?;
    if let Some(shop) = args.shop {
        source.get_shop(shop).with_context(|| format!("copying shop {shop} of {}", config.database.display()))?;
    }
    let plan = plan(&source.transfer_tables()?, &target.transfer_tables()?, kith_sqlite::transfer::derivable)
        .map_err(|why| anyhow::anyhow!("the two schemas differ, nothing was copied: {why}"))?;

    let started = std::time::Instant::now();
    let copied = if args.verify_only {
        source.transfer_summaries(&plan, args.shop)?
    } else {
        let mut exported = None;
        let mut current = String::new();
        target
            .import(&plan, &mut |sink| {
                let summaries = source.export(&plan, args.shop, &mut |table, rows| {
                    if table.name != current {
                        current.clone_from(&table.name);
                        eprintln!("copying {}", table.name);
                    }
                    sink(table, rows)
                })?;
                exported = Some(summaries);
                Ok(())
            })
            .with_context(|| format!("copying {} into {target_name}; nothing was written", config.database.display()))?;
        exported.context("the export handed no summary")?
    };
    let written = target.transfer_summaries(&plan, args.shop)?;
    let differ = report(&plan, &copied, &written);
    let rows: u64 = copied.iter().map(|s| s.rows).sum();
    let what = match args.shop {
        Some(shop) => format!("shop {shop}"),
        None => "every shop".to_string(),
    };
    if !args.verify_only {
        println!(
            "copied {rows} rows of {what} in {} tables from {} into {target_name} in {:.1} s",
            plan.tables.len(),
            config.database.display(),
            started.elapsed().as_secs_f64()
        );
        println!("the copy is one snapshot of the file: writes made to it since (a kith serve still running) are not in the target");
        println!("plugin compile cache: not copied (each node keeps its own); the new side compiles each plugin on its first use");
    }
    if !plan.target_only.is_empty() {
        println!("tables only the target has, left as they were: {}", plan.target_only.join(", "));
    }
    if differ.is_empty() {
        println!("verified: rows and checksum match in all {} tables", plan.tables.len());
        Ok(())
    } else {
        bail!(
            "{} of {} tables differ between {} and {target_name}: {}",
            differ.len(),
            plan.tables.len(),
            config.database.display(),
            differ.join(", ")
        )
    }
}

/// Print one line per table (rows on each side, whether the checksums match); the tables that differ.
fn report(plan: &Plan, source: &[TableSummary], target: &[TableSummary]) -> Vec<String> {
    let mut differ = Vec::new();
    println!("{:<26} {:>12} {:>12}  checksum", "table", "sqlite rows", "postgres rows");
    for table in &plan.tables {
        let find = |side: &[TableSummary]| side.iter().find(|s| s.table == table.name).cloned();
        let (a, b) = (find(source), find(target));
        let same = matches!((&a, &b), (Some(a), Some(b)) if a == b);
        let rows = |s: &Option<TableSummary>| s.as_ref().map_or("-".to_string(), |s| s.rows.to_string());
        let checksum = match (&a, &b) {
            (Some(a), Some(_)) if same => format!("match {}", &a.checksum[..16]),
            _ => "MISMATCH".to_string(),
        };
        println!("{:<26} {:>12} {:>12}  {checksum}", table.name, rows(&a), rows(&b));
        if !same {
            differ.push(table.name.clone());
        }
    }
    differ
}
