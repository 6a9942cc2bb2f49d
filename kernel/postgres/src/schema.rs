//! Versioned migrations of the PostgreSQL schema, applied in order at open. Never
//! change what a released migration ends in: add the next one. `kith_schema` records
//! what was applied; two kernels starting on one database at once apply each
//! migration once (the second waits on an advisory lock, then finds it applied).

use chrono::Utc;

use crate::pg::{CoreResult, error, wait};

/// Migration N is `MIGRATIONS[N - 1]`.
const MIGRATIONS: &[&str] = &[include_str!("schema/0001.sql"), include_str!("schema/0002.sql"), include_str!("schema/0003.sql")];

/// The advisory lock migrations are applied under (the bytes of "kmig").
const MIGRATION_LOCK: i64 = 0x6b6d_6967;

/// The last migration this build knows.
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// Apply every pending migration, each in one transaction with its record. A database
/// that a newer Kith migrated further is refused: this build would not know its tables.
pub(crate) fn migrate(client: &mut deadpool_postgres::Object) -> CoreResult<()> {
    loop {
        let tx = wait(client.transaction()).map_err(error)?;
        wait(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])).map_err(error)?;
        // Created only when missing: on a migrated database, a role without CREATE on the
        // schema (PostgreSQL 15's default for `public`) runs Kith.
        let exists = wait(tx.query_one("SELECT to_regclass('kith_schema') IS NOT NULL", &[])).map_err(error)?;
        if !exists.try_get::<_, bool>(0).map_err(error)? {
            wait(tx.batch_execute("CREATE TABLE kith_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")).map_err(error)?;
        }
        let row = wait(tx.query_one("SELECT COALESCE(MAX(version), 0) FROM kith_schema", &[])).map_err(error)?;
        let applied: i64 = row.try_get(0).map_err(error)?;
        let applied = usize::try_from(applied).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(kith_core::Error::Internal(anyhow::anyhow!(
                "the database's schema is at version {applied}, newer than this Kith knows ({}): upgrade Kith",
                MIGRATIONS.len()
            )));
        }
        let Some(sql) = MIGRATIONS.get(applied) else {
            return wait(tx.commit()).map_err(error);
        };
        let version = applied as i64 + 1;
        wait(tx.batch_execute(sql)).map_err(error)?;
        wait(tx.execute("INSERT INTO kith_schema (version, applied_at) VALUES ($1, $2)", &[&version, &Utc::now().timestamp_millis()]))
            .map_err(error)?;
        wait(tx.commit()).map_err(error)?;
        tracing::info!(version, "applied migration");
    }
}
