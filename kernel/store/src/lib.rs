//! Kith's storage layer: every SQL statement of the kernel lives in this crate.
//!
//! [`Store`] is synchronous. Writes go through one writer connection, one
//! transaction per call, so a batch is applied whole or not at all; reads use a
//! small pool of reader connections, which WAL lets run beside the writer.
//! Callers on an async runtime run these calls on a blocking pool.

mod audit;
mod coupons;
mod customers;
mod events;
mod ingest;
mod journeys;
mod keys;
mod loyalty;
mod merge;
mod messages;
mod metrics;
mod plugins;
mod schema;
mod segments;
mod settings;
mod shops;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kith_domain::FieldError;
use rusqlite::{Connection, OpenFlags};

pub use audit::NewAudit;
pub use customers::{CustomerFilter, CustomerRead, StatsMismatch};
pub use journeys::RunFilter;
pub use messages::{Claimed, OutboxPolicy, ReceiptReport, SendOutcome};
pub use metrics::OverviewQuery;
pub use plugins::{Attempt, Due, Effects, FailureOutcome, FailurePolicy, PutSubscription, RunStep};
pub use schema::latest_version as schema_version;
pub use segments::Audience;

/// Errors at the store boundary, already in the domain's terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing does not exist in this shop (or at all).
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A value was refused.
    #[error("{0}")]
    Invalid(FieldError),
    /// The database failed; details are for the log, not for clients.
    #[error("storage failure: {0}")]
    Internal(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Internal(err.into())
    }
}

impl From<FieldError> for StoreError {
    fn from(err: FieldError) -> Self {
        StoreError::Invalid(err)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who performed a write, for the audit log and merge records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The API key, when the write came through the API.
    pub key_id: Option<String>,
    /// A human-readable label: the key id, `cli`, or `import:<file>`.
    pub label: String,
}

impl Actor {
    pub fn key(key_id: &str) -> Self {
        Actor { key_id: Some(key_id.to_owned()), label: key_id.to_owned() }
    }

    pub fn cli(label: &str) -> Self {
        Actor { key_id: None, label: label.to_owned() }
    }
}

/// Limits on how many identifiers of one kind a customer may hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCaps {
    /// Cap for kinds not listed in `per_kind`.
    pub default: u32,
    /// Caps by kind, e.g. `phone = 3`, `external:erp = 1`.
    #[serde(default)]
    pub per_kind: BTreeMap<String, u32>,
}

impl Default for IdentityCaps {
    fn default() -> Self {
        IdentityCaps { default: 3, per_kind: BTreeMap::new() }
    }
}

impl IdentityCaps {
    pub fn cap(&self, kind: &str) -> u32 {
        self.per_kind.get(kind).copied().unwrap_or(self.default)
    }
}

#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    pub identity_caps: IdentityCaps,
}

/// Most reader connections open at once; a read waits for one beyond that.
/// Each holds its own page cache: opening one per concurrent request (64
/// under load) meant cold caches, a schema parse per request and a memory
/// high-water mark of a gigabyte. The API hands its blocking pool no more
/// reads than this at once; the others wait as tasks, not as parked threads.
pub const READER_POOL: usize = 8;

/// The customer store of one kernel: a SQLite file in WAL mode.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    // A hand-rolled pool: r2d2_sqlite pins its own rusqlite version, and two
    // rusqlite versions cannot link the bundled SQLite twice.
    readers: Mutex<Readers>,
    returned: Condvar,
    options: StoreOptions,
    keys: keys::KeyCache,
}

/// Idle reader connections, and how many are open in all.
#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// A reader lent to one read; back to the pool when dropped, also on a panic.
struct Lent<'a> {
    store: &'a Store,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let mut readers = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            // A read that panicked left its transaction open: that connection is closed, not reused.
            Some(conn) if conn.is_autocommit() => readers.idle.push(conn),
            _ => readers.open -= 1,
        }
        self.store.returned.notify_one();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed) the database at `path` and apply pending migrations.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
        }
        let mut writer = open_connection(&path, false)?;
        schema::migrate(&mut writer)?;
        Ok(Store {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::default(),
            returned: Condvar::new(),
            options,
            keys: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Succeeds when the database answers a query.
    pub fn health(&self) -> Result<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Run `f` in one immediate transaction on the writer connection.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Run `f` on a reader connection, inside one read transaction so that it sees one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let lent = self.lend_reader()?;
        let conn = lent.conn.as_ref().expect("a lent reader holds its connection");
        conn.prepare_cached("BEGIN")?.execute([])?;
        let out = f(conn);
        // A read transaction has nothing to commit; ending it only releases the snapshot.
        conn.prepare_cached("COMMIT")?.execute([])?;
        out
    }

    /// An idle reader, a new one while fewer than `READER_POOL` are open, or the next one returned.
    fn lend_reader(&self) -> Result<Lent<'_>> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = readers.idle.pop() {
                return Ok(Lent { store: self, conn: Some(conn) });
            }
            if readers.open < READER_POOL {
                readers.open += 1;
                drop(readers);
                // A failed open gives its place back through the guard's drop.
                let mut lent = Lent { store: self, conn: None };
                lent.conn = Some(open_connection(&self.path, true)?);
                return Ok(lent);
            }
            readers = self.returned.wait(readers).unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // synchronous=FULL: a transaction is on disk before commit returns, so what
    // the API acknowledged survives a power cut, not only a process crash.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16000;",
    )?;
    // The planner's choice never depends on bound values (we keep no statistics to
    // make use of them), so a cached statement is not prepared again each time a
    // `LIMIT ?` or a range bound is rebound.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Run `f` in a savepoint: its writes stay when it succeeds and are undone when it
/// fails; its result is handed back either way (the outer error is the savepoint's own).
pub(crate) fn savepoint<T>(tx: &Connection, f: impl FnOnce() -> Result<T>) -> Result<Result<T>> {
    // Cached statements, not parsed again on every call (every due journey run takes one).
    tx.prepare_cached("SAVEPOINT isolated")?.execute([])?;
    let out = f();
    if out.is_err() {
        tx.prepare_cached("ROLLBACK TO isolated")?.execute([])?;
    }
    tx.prepare_cached("RELEASE isolated")?.execute([])?;
    Ok(out)
}

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(crate) fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// A store in a new temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_reads_share_a_bounded_pool_and_survive_a_panicking_read() {
        let (_dir, store) = temp_store();
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..32 {
                s.spawn(|| {
                    for _ in 0..20 {
                        store
                            .read(|conn| {
                                let open = store.readers.lock().unwrap().open;
                                most.fetch_max(open, std::sync::atomic::Ordering::Relaxed);
                                Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
                            })
                            .unwrap();
                    }
                });
            }
        });
        let most = most.into_inner();
        assert!((1..=READER_POOL).contains(&most), "{most} readers open at once");

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.read::<()>(|_| panic!("a read that panics")).unwrap();
        }));
        assert!(panicked.is_err());
        let readers = store.readers.lock().unwrap();
        assert_eq!(readers.open, readers.idle.len(), "the panicked read's connection was closed, none is lent");
        drop(readers);
        store.health().unwrap();
    }
}
