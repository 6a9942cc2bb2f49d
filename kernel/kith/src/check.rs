//! `kith check`: the whole database file checked for damage, and what to say when a
//! command refuses to open a file.

use anyhow::{Result, bail};
use kith_sqlite::{OpenRefused, Store, StoreError};

use crate::config::Config;

/// Print SQLite's full `integrity_check` of the database; fail with the number of findings.
pub fn run(config: &Config) -> Result<()> {
    if config.postgres_url().is_some() {
        bail!(
            "`kith check` reads a SQLite file; {} is PostgreSQL, whose own tools check it (amcheck's \
             `pg_amcheck`, and page checksums when the cluster was made with `initdb --data-checksums`)",
            config.database_name()
        );
    }
    let path = &config.database;
    let started = std::time::Instant::now();
    let findings = match Store::integrity_check(path) {
        Ok(findings) => findings,
        Err(err) => match err.refused() {
            Some(refused) => bail!("{refused}\n{}", advice(refused)),
            None => return Err(anyhow::Error::new(err).context(format!("checking {}", path.display()))),
        },
    };
    if findings.is_empty() {
        println!("{} is sound (checked whole in {:.1?})", path.display(), started.elapsed());
        return Ok(());
    }
    for finding in &findings {
        println!("{finding}");
    }
    bail!(
        "{} is damaged: {} finding{} above. Writing to it would spread the damage: restore it from a backup, \
         or salvage what is left with `sqlite3 {} .recover`",
        path.display(),
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        path.display()
    )
}

/// Why a command refused the database file, when it did.
pub fn refusal(err: &anyhow::Error) -> Option<&OpenRefused> {
    err.chain().find_map(|cause| cause.downcast_ref::<OpenRefused>().or_else(|| cause.downcast_ref::<StoreError>()?.refused()))
}

/// What to do about a refused file.
pub fn advice(refused: &OpenRefused) -> String {
    match refused {
        OpenRefused::Empty(_) => "If a database was there, it was truncated or copied incompletely: restore it from a backup. \
             To start a new database in this file, run again with --create."
            .to_owned(),
        OpenRefused::Damaged { path, .. } => format!(
            "Writing to a damaged file spreads the damage, so kith will not open it. Run `kith check --database {}` \
             for the whole report, and restore it from a backup or salvage what is left with `sqlite3 {} .recover`.",
            path.display(),
            path.display()
        ),
        OpenRefused::NotADatabase(_) => {
            "Check --database (KITH_DATABASE, or `database` in the config file): it names a file that is not Kith's.".to_owned()
        }
    }
}
