//! Kith's backend for shops that outgrow one machine: PostgreSQL behind the core's
//! storage ports (tokio-postgres, pooled by deadpool-postgres).
//!
//! [`Postgres`] implements `kith_core::Backend`: it runs the core's closures in its
//! transactions, and [`pg::Pg`] answers the ports' repositories over one transaction
//! (`ports/`, a file per feature as in kith-sqlite). The schema is kith-sqlite's, table
//! for table and column for column, with `shop_id` first in every tenant table's keys
//! so that Citus can distribute by shop (`schema/`).
//!
//! Reads run in a read-only `REPEATABLE READ` transaction: one snapshot. Writes run in
//! `READ COMMITTED` and first take one transaction-scoped advisory lock, so that the
//! core's read-then-write steps see every write committed before them, and each
//! shop's event positions are numbered in commit order (a reader never passes a
//! position that commits later), on one kernel or several on the same database.

mod pg;
mod ports;
mod rows;
mod schema;
mod segments;
mod transfer;

pub mod cluster;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use kith_core::ingest::IdentityCaps;
use kith_core::ports::{ReadTx, WriteTx};
use kith_core::{Backend, Storage};
use tokio_postgres::IsolationLevel;

use crate::pg::{CoreResult, Pg, error, wait};

pub use schema::latest_version as schema_version;

/// How a [`Postgres`] backend is opened.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub identity_caps: IdentityCaps,
    /// Most connections open at once.
    pub pool_size: usize,
    /// How long the server lets a session sit idle inside a transaction before it ends
    /// the session (`idle_in_transaction_session_timeout`): a node frozen while it holds
    /// the write lock holds every node's writes only this long.
    pub idle_in_transaction: Duration,
    /// How long a write waits for the write lock, held by this node or another, before
    /// it fails as unavailable (`lock_timeout`).
    pub lock_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            identity_caps: IdentityCaps::default(),
            pool_size: POOL_SIZE,
            idle_in_transaction: IDLE_IN_TRANSACTION,
            lock_timeout: LOCK_TIMEOUT,
        }
    }
}

/// Connections a kernel opens at most by default: its reads at once, and writers.
pub const POOL_SIZE: usize = 16;

/// The advisory lock every write transaction takes first (the bytes of "kith").
const WRITE_LOCK: i64 = 0x6b69_7468;

/// How long a transaction waits for a connection, and a new connection for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A transaction of the kernel never waits on anything outside it (plugins are called
/// between transactions), so a minute idle inside one is a node frozen or cut off.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(60);
/// Beyond the longest write the kernel makes in one transaction at scale (a segment's
/// sweep, an import batch), with a margin.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP keepalives, both ways: a node or a server that vanished from the network (power
/// lost, cable cut) is noticed in about `IDLE + INTERVAL * COUNT` instead of the system's
/// two hours, and a session holding the write lock is ended.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_COUNT: u32 = 3;

/// The customer store of one kernel, or of several sharing one database.
pub struct Postgres {
    pool: Pool,
    /// Serves the connections' sockets; statements are driven by their callers.
    runtime: tokio::runtime::Runtime,
    options: PgOptions,
    keys: kith_core::keys::KeyCache,
    /// The database, as logs show it: no password.
    target: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("target", &self.target).finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connect to the database at `url` (`postgres://user[:password]@host[:port]/db`, or
    /// libpq's `key=value` form) and apply pending migrations.
    pub fn open(url: &str, options: PgOptions) -> CoreResult<Postgres> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| kith_core::Error::Internal(anyhow::anyhow!("the database URL is not PostgreSQL's: {e}")))?;
        let target = describe(&config);
        liveness(&mut config, &options);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kith-postgres")
            .enable_all()
            .build()
            .map_err(|e| kith_core::Error::Internal(e.into()))?;
        let manager = Manager::from_config(config, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| kith_core::Error::Internal(e.into()))?;
        let store = Postgres { pool, runtime, options, keys: Default::default(), target };
        {
            let mut client = store.client()?;
            schema::migrate(&mut client)?;
        }
        Ok(store)
    }

    /// The database, as logs show it (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// A connection of the pool, waited for.
    fn client(&self) -> CoreResult<deadpool_postgres::Object> {
        let pool = self.pool.clone();
        // Connecting spawns the connection's task: it runs on this backend's runtime.
        let got = wait(self.runtime.spawn(async move { pool.get().await }))
            .map_err(|e| kith_core::Error::Internal(anyhow::anyhow!("waiting for a connection: {e}")))?;
        got.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => error(e),
            other => kith_core::Error::Unavailable(
                kith_core::Unavailable::Io,
                anyhow::anyhow!("no connection to PostgreSQL at {}: {other}", self.target),
            ),
        })
    }
}

/// Set what keeps one node's failure from holding the others: keepalives from this side,
/// and for the session, the server's keepalives and timeouts (given at start-up, after any
/// `options` of the URL so that those win). Behind PgBouncer in transaction mode, which
/// refuses start-up options, set the same on the role instead (`ALTER ROLE … SET`).
fn liveness(config: &mut tokio_postgres::Config, options: &PgOptions) {
    let default = tokio_postgres::Config::new();
    if config.get_keepalives_idle() == default.get_keepalives_idle() {
        config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVE_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVE_COUNT);
    }
    if config.get_application_name().is_none() {
        config.application_name("kith");
    }
    let ms = |d: Duration| d.as_millis().max(1);
    let ours = format!(
        "-c idle_in_transaction_session_timeout={} -c lock_timeout={} -c tcp_keepalives_idle={} -c tcp_keepalives_interval={} -c tcp_keepalives_count={}",
        ms(options.idle_in_transaction),
        ms(options.lock_timeout),
        KEEPALIVE_IDLE.as_secs(),
        KEEPALIVE_INTERVAL.as_secs(),
        KEEPALIVE_COUNT,
    );
    let given = config.get_options().map(str::to_owned);
    config.options(match given {
        Some(given) if !given.trim().is_empty() => format!("{ours} {given}"),
        _ => ours,
    });
}

/// `user@host:port/db` of a configuration.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{}@{host}:{port}/{}", config.get_user().unwrap_or(""), config.get_dbname().unwrap_or(""))
}

impl Storage for Postgres {
    fn run_read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> CoreResult<()>) -> CoreResult<()> {
        let mut client = self.client()?;
        let tx = wait(client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()).map_err(error)?;
        f(&Pg::new(&tx))?;
        wait(tx.commit()).map_err(error)
    }

    fn run_write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> CoreResult<()>) -> CoreResult<()> {
        let mut client = self.client()?;
        let tx = wait(client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start()).map_err(error)?;
        {
            let pg = Pg::new(&tx);
            pg.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
            f(&pg)?;
        }
        wait(tx.commit()).map_err(error)
    }

    fn storage(&self) -> &dyn Storage {
        self
    }

    fn identity_caps(&self) -> IdentityCaps {
        self.options.identity_caps.clone()
    }

    fn key_memory(&self) -> Option<&dyn kith_core::ports::KeyMemory> {
        Some(&self.keys)
    }
}

impl Backend for Postgres {
    fn health(&self) -> CoreResult<()> {
        let client = self.client()?;
        wait(client.simple_query("SELECT 1")).map(drop).map_err(error)
    }

    fn schema_version(&self) -> usize {
        schema::latest_version()
    }

    fn read_concurrency(&self) -> usize {
        // Leave connections for writers.
        (self.options.pool_size / 2).max(1)
    }

    /// Several kernels may open one PostgreSQL database: the bus leases its work there too.
    fn shared(&self) -> bool {
        true
    }
}
