//! Kith's embedded backend: SQLite (rusqlite, bundled) behind the core's storage ports.
//!
//! [`Store`] implements `kith_core::Backend`: it runs the core's closures in its
//! transactions, and `Sql` (`sql.rs`) answers the ports' repositories over one connection
//! (`ports/` and the feature modules hold the statements, the schema and migrations
//! are `schema.rs`, the segment compiler's SQLite dialect is `segments.rs`). The rules
//! are the core's; this crate decides nothing a second backend would have to repeat.
//!
//! [`Store`] is synchronous. Writes go through one writer connection, one
//! transaction per call, so a batch is applied whole or not at all; reads use a
//! small pool of reader connections, which WAL lets run beside the writer.
//! Callers on an async runtime run these calls on a blocking pool.

mod attempts;
mod audit;
mod coupons;
mod customers;
mod events;
mod journeys;
mod keys;
mod loyalty;
mod merge;
mod messages;
mod metrics;
mod plugins;
mod ports;
mod schema;
mod segments;
mod settings;
mod shops;
mod sql;
mod summaries;
pub mod transfer;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kith_domain::FieldError;
use rusqlite::{Connection, OpenFlags};

use kith_core::ingest::IdentityCaps;
pub(crate) use kith_core::{Actor, Unavailable};
pub use schema::latest_version as schema_version;

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

impl StoreError {
    /// Why [`Store::open`] refused the file, when it did.
    pub fn refused(&self) -> Option<&OpenRefused> {
        match self {
            StoreError::Internal(err) => err.downcast_ref(),
            _ => None,
        }
    }

    /// Whether this failure is [`Unavailable`], told by the SQLite error code behind it.
    ///
    /// The code is kept inside [`StoreError::Internal`] (from the `rusqlite::Error`
    /// converted there) rather than in a variant of its own, so that every caller that
    /// treats a database failure as fatal to its transaction keeps doing so.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match sqlite_code(self)? {
            rusqlite::ErrorCode::DiskFull => Some(Unavailable::Full),
            rusqlite::ErrorCode::SystemIoFailure
            | rusqlite::ErrorCode::CannotOpen
            | rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked => Some(Unavailable::Io),
            _ => None,
        }
    }
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

/// The core's errors as the store's: a machine's failure keeps its SQLite error inside
/// [`StoreError::Internal`], where [`StoreError::unavailable`] finds it again.
impl From<kith_core::Error> for StoreError {
    fn from(err: kith_core::Error) -> Self {
        match err {
            kith_core::Error::NotFound(what) => StoreError::NotFound(what),
            kith_core::Error::Conflict(why) => StoreError::Conflict(why),
            kith_core::Error::Invalid(field) => StoreError::Invalid(field),
            kith_core::Error::Unavailable(_, err) | kith_core::Error::Internal(err) => StoreError::Internal(err),
        }
    }
}

/// The store's errors as the core's, a machine's failure told as [`kith_core::Error::Unavailable`].
impl From<StoreError> for kith_core::Error {
    fn from(err: StoreError) -> Self {
        let unavailable = err.unavailable();
        match err {
            StoreError::NotFound(what) => kith_core::Error::NotFound(what),
            StoreError::Conflict(why) => kith_core::Error::Conflict(why),
            StoreError::Invalid(field) => kith_core::Error::Invalid(field),
            StoreError::Internal(err) => match unavailable {
                Some(kind) => kith_core::Error::Unavailable(kind, err),
                None => kith_core::Error::Internal(err),
            },
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why [`Store::open`] refused a database file. Opening either would hide a loss:
/// an empty file becomes a new, empty database in place of the one expected there,
/// and writes into a damaged file spread the damage.
#[derive(Debug, thiserror::Error)]
pub enum OpenRefused {
    /// The file exists and holds nothing: a truncated file or an incomplete copy.
    #[error(
        "{} exists but is empty (0 bytes): it is no database, and opening it would start a new, empty one in its place",
        .0.display()
    )]
    Empty(PathBuf),
    /// SQLite's quick check found damage.
    #[error("{} is damaged; SQLite's quick check found:\n{}", path.display(), findings.join("\n"))]
    Damaged { path: PathBuf, findings: Vec<String> },
    /// The file is not a SQLite database at all.
    #[error("{} is not a SQLite database (its header is not SQLite's)", .0.display())]
    NotADatabase(PathBuf),
}

/// How long the check at open may read the file. `PRAGMA quick_check` reads every
/// page, about a gigabyte a second from the page cache (less from a cold disk): a
/// file too large to check in this time is opened after a partial check, with a
/// warning, and `Store::integrity_check` checks it whole.
pub const OPEN_CHECK_BUDGET: Duration = Duration::from_secs(2);

/// Most findings the check at open reports.
const OPEN_CHECK_FINDINGS: u32 = 10;

/// What the check at open made of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenCheck {
    /// Every page was read and found sound.
    Sound,
    /// The file was too large to read whole within the budget; what was read was sound.
    Partial,
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
    // A hand-rolled pool: r2d2_sqlite pins its own rusqlite version, and two
    // rusqlite versions cannot link the bundled SQLite twice.
    readers: Mutex<Readers>,
    // Declared after the readers so that it is dropped last: the last connection to close
    // checkpoints the write-ahead log into the file and deletes it, which a read-only
    // connection cannot do. A copy of the file alone is then the whole database.
    writer: Mutex<Connection>,
    returned: Condvar,
    options: StoreOptions,
    keys: kith_core::keys::KeyCache,
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
    /// Open (creating if missing) the database at `path`, check it, and apply pending migrations.
    ///
    /// An existing empty file, a file that is not SQLite's and a file that a bounded
    /// `PRAGMA quick_check` finds damaged are refused with [`OpenRefused`];
    /// [`Store::init_if_empty`] starts a new database in an empty file when that is meant.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
        }
        if is_empty_file(&path) {
            return Err(anyhow::Error::new(OpenRefused::Empty(path)).into());
        }
        let mut writer = open_connection(&path, false).map_err(|e| refusal(e, &path))?;
        match quick_check(&writer, OPEN_CHECK_BUDGET).map_err(|e| refusal(e, &path))? {
            Ok(OpenCheck::Sound) => {}
            Ok(OpenCheck::Partial) => tracing::warn!(
                path = %path.display(),
                budget = ?OPEN_CHECK_BUDGET,
                "the database is too large to check whole at start; what was read is sound (`kith check` reads it all)"
            ),
            Err(findings) => return Err(anyhow::Error::new(OpenRefused::Damaged { path, findings }).into()),
        }
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

    /// Start a new database in `path` when it is an existing empty file, which
    /// [`Store::open`] refuses; true when it did. A missing file needs no such step
    /// (`open` creates it), and a file with content is left alone.
    pub fn init_if_empty(path: impl AsRef<Path>) -> Result<bool> {
        let path = path.as_ref();
        if !is_empty_file(path) {
            return Ok(false);
        }
        let mut conn = open_connection(path, false)?;
        schema::migrate(&mut conn)?;
        Ok(true)
    }

    /// Check the file at `path` for damage, without opening it as a store (which a damaged file
    /// would refuse) and without writing to it: a `PRAGMA quick_check` of every page, and when
    /// that finds nothing the full `integrity_check` (every index against its table). At most
    /// 100 findings; none when the file is sound.
    pub fn integrity_check(path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display()).into()),
            Ok(_) if is_empty_file(path) => return Err(anyhow::Error::new(OpenRefused::Empty(path.to_owned())).into()),
            Ok(_) => {}
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The quick check lists every page whose structure is broken; the integrity check
        // stops at the first such page with one error, but also compares every index with
        // its table. Both, so that a damaged file's report says where the damage is.
        let findings = pragma_check(&conn, "quick_check", 100).map_err(|e| refusal(e, path))?;
        if !findings.is_empty() {
            return Ok(findings);
        }
        pragma_check(&conn, "integrity_check", 100).map_err(|e| refusal(e, path))
    }

    /// Limit the database to `pages` pages (at least its current size; 0 changes nothing), so that writes
    /// beyond fail with SQLITE_FULL as on a full disk: for tests of what a full disk does.
    #[doc(hidden)]
    pub fn limit_pages_for_tests(&self, pages: u64) -> Result<u64> {
        let conn = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get(0))?)
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

/// An existing file with no bytes, and no write-ahead log that could hold its pages.
fn is_empty_file(path: &Path) -> bool {
    let len = |p: &Path| std::fs::metadata(p).ok().map(|m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    len(path) == Some(0) && len(Path::new(&wal)).unwrap_or(0) == 0
}

/// SQLite's "file is not a database" and "disk image is malformed" met while opening,
/// said as the refusal of the file they are; other errors as they are.
fn refusal(err: StoreError, path: &Path) -> StoreError {
    match sqlite_code(&err) {
        Some(rusqlite::ErrorCode::NotADatabase) => anyhow::Error::new(OpenRefused::NotADatabase(path.to_owned())).into(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            anyhow::Error::new(OpenRefused::Damaged { path: path.to_owned(), findings: vec![err.to_string()] }).into()
        }
        _ => err,
    }
}

/// `PRAGMA quick_check`, stopped after `budget`: the inner error holds its findings.
fn quick_check(conn: &Connection, budget: Duration) -> Result<Result<OpenCheck, Vec<String>>> {
    let interrupt = conn.get_interrupt_handle();
    let (finished, wait) = std::sync::mpsc::channel::<()>();
    let findings = std::thread::scope(|scope| {
        scope.spawn(move || {
            // Finished sends nothing: it is dropped, which ends the wait at once.
            if wait.recv_timeout(budget) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                interrupt.interrupt();
            }
        });
        let findings = pragma_check(conn, "quick_check", OPEN_CHECK_FINDINGS);
        drop(finished);
        findings
    });
    match findings {
        Ok(findings) if findings.is_empty() => Ok(Ok(OpenCheck::Sound)),
        Ok(findings) => Ok(Err(findings)),
        Err(e) if sqlite_code(&e) == Some(rusqlite::ErrorCode::OperationInterrupted) => Ok(Ok(OpenCheck::Partial)),
        Err(e) => Err(e),
    }
}

/// The SQLite error code behind a store failure, wherever it sits in the error's chain.
fn sqlite_code(err: &StoreError) -> Option<rusqlite::ErrorCode> {
    let StoreError::Internal(err) = err else { return None };
    err.chain().find_map(|cause| cause.downcast_ref::<rusqlite::Error>())?.sqlite_error_code()
}

/// Run `PRAGMA quick_check` or `integrity_check`, with at most `limit` findings; none when
/// SQLite answers its single `ok`.
///
/// A check that has not yet reached its limit goes on to read rows, and a broken page met
/// there fails the whole statement with "database disk image is malformed", losing the
/// findings listed so far: the check is taken again with lower limits, down to one finding.
fn pragma_check(conn: &Connection, pragma: &str, limit: u32) -> Result<Vec<String>> {
    let mut malformed = None;
    for n in [limit, limit / 5, limit / 25, 1].into_iter().filter(|n| *n > 0) {
        let sql = format!("PRAGMA {pragma}({n})");
        let rows = conn.prepare(&sql).and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>());
        match rows {
            Ok(rows) if rows == ["ok"] => return Ok(Vec::new()),
            // SQLite may give several findings in one row, a line each, under a heading.
            Ok(rows) => {
                let lines = rows.iter().flat_map(|r| r.lines()).filter(|l| !l.starts_with("*** in database"));
                return Ok(lines.map(str::to_owned).collect());
            }
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt) => malformed = Some(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(malformed.into_iter().collect())
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
    use kith_core::Backend;
    use kith_core::customers::CustomerFilter;
    use kith_core::prelude::*;

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

    fn shop(store: &Store) -> i64 {
        let new = kith_domain::model::NewShop {
            name: "Shop".into(),
            time_zone: "Asia/Shanghai".into(),
            currency: "CNY".into(),
            region: "CN".into(),
        };
        store.create_shop(&new, &Actor::cli("test")).unwrap().id
    }

    /// A batch of customer upserts with some bulk, `first..first + n`.
    fn customers(first: usize, n: usize) -> Vec<serde_json::Value> {
        (first..first + n)
            .map(|i| {
                serde_json::json!({"id": format!("c{i}"), "type": "customer.upsert",
                    "identities": [{"kind": "email", "value": format!("customer{i}@example.com")}],
                    "profile": {"name": format!("Customer {i} {}", "x".repeat(150))}})
            })
            .collect()
    }

    fn count(store: &Store, shop: i64) -> usize {
        store.list_customers(shop, &CustomerFilter::default(), 0, 10_000).unwrap().len()
    }

    #[test]
    fn a_full_disk_fails_a_write_whole_as_unavailable_and_writes_go_on_once_there_is_space() {
        let (_dir, store) = temp_store();
        let shop = shop(&store);
        store.ingest(shop, customers(0, 10), &Actor::cli("test")).unwrap();
        // The database may grow by a few pages only, as on a disk with little space left.
        let pages: u64 = store.writer.lock().unwrap().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        store.limit_pages_for_tests(pages + 4).unwrap();
        let full = store.ingest(shop, customers(10, 200), &Actor::cli("test")).map(|r| r.accepted).unwrap_err();
        assert_eq!(full.unavailable(), Some(Unavailable::Full), "{full:?}");
        // Nothing of the failed batch was written, and reads go on.
        assert_eq!(count(&store, shop), 10);
        store.health().unwrap();
        // Space is freed: the same batch is taken whole, without reopening the store.
        store.limit_pages_for_tests(1 << 30).unwrap();
        let report = store.ingest(shop, customers(10, 200), &Actor::cli("test")).unwrap();
        assert_eq!(report.accepted, 200);
        assert_eq!(count(&store, shop), 210);
    }

    /// A full disk during a segment refresh fails the pass as unavailable (it is no fault of
    /// the segment), and the changed customers stay marked: once there is space, the same
    /// refresh enters them.
    #[test]
    fn a_full_disk_fails_a_segment_refresh_whole_and_the_marks_stay() {
        let (_dir, store) = temp_store();
        let shop = shop(&store);
        let input = kith_domain::segments::SegmentInput {
            name: "Named".into(),
            description: None,
            definition: serde_json::json!({"stat": "order_count", "op": "eq", "value": 0}),
        };
        store.create_segment(shop, &input, &Actor::cli("test"), chrono::Utc::now()).unwrap();
        store.ingest(shop, customers(0, 200), &Actor::cli("test")).unwrap();
        let pages: u64 = store.writer.lock().unwrap().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        store.limit_pages_for_tests(pages).unwrap();
        let full = store.refresh_segments(1000, chrono::Utc::now()).unwrap_err();
        assert_eq!(full.unavailable(), Some(Unavailable::Full), "{full:?}");
        store.limit_pages_for_tests(1 << 30).unwrap();
        assert_eq!(store.refresh_segments(1000, chrono::Utc::now()).unwrap(), 200, "every marked customer entered");
    }

    #[test]
    fn errors_of_the_data_or_the_code_are_not_unavailable() {
        let (_dir, store) = temp_store();
        assert_eq!(store.get_shop(99).unwrap_err().unavailable(), None);
        let bad_sql = store.read(|conn| Ok(conn.execute_batch("SELECT * FROM no_such_table")?)).unwrap_err();
        assert_eq!(bad_sql.unavailable(), None);
    }

    #[test]
    fn open_refuses_an_existing_empty_file_unless_told_to_start_a_database_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kith.db");
        std::fs::write(&path, b"").unwrap();
        let refused = Store::open(&path, StoreOptions::default()).unwrap_err();
        assert!(matches!(refused.refused(), Some(OpenRefused::Empty(_))), "{refused:?}");
        assert!(refused.to_string().contains("exists but is empty"), "{refused}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "a refused file is left as it was");
        assert!(Store::init_if_empty(&path).unwrap());
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        shop(&store);
        // A file with content is never started again.
        assert!(!Store::init_if_empty(&path).unwrap());
        assert_eq!(store.list_shops().unwrap().len(), 1);
        // A missing file is a new database, as before.
        Store::open(dir.path().join("new.db"), StoreOptions::default()).unwrap();
    }

    #[test]
    fn open_refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kith.db");
        std::fs::write(&path, "name,phone\nMing,13800000000\n".repeat(200)).unwrap();
        let refused = Store::open(&path, StoreOptions::default()).unwrap_err();
        assert!(matches!(refused.refused(), Some(OpenRefused::NotADatabase(_))), "{refused:?}");
        assert!(Store::integrity_check(&path).unwrap_err().to_string().contains("not a SQLite database"));
    }

    /// Writes 64 KiB of garbage into the middle of a real database file, as a bad disk or
    /// a botched copy would, and checks that it is refused and reported.
    #[test]
    fn open_refuses_a_file_with_garbage_in_its_middle_and_integrity_check_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kith.db");
        {
            let store = Store::open(&path, StoreOptions::default()).unwrap();
            let shop = shop(&store);
            for batch in 0..10 {
                store.ingest(shop, customers(batch * 300, 300), &Actor::cli("test")).unwrap();
            }
            // Dropping the last connection checkpoints the write-ahead log into the file.
        }
        assert!(Store::integrity_check(&path).unwrap().is_empty(), "a sound file has no findings");
        Store::open(&path, StoreOptions::default()).unwrap();

        let mut bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() > 1 << 20, "the database is {} bytes", bytes.len());
        let middle = bytes.len() / 2;
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for b in &mut bytes[middle..middle + 64 * 1024] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(&path, &bytes).unwrap();

        let refused = Store::open(&path, StoreOptions::default()).unwrap_err();
        let Some(OpenRefused::Damaged { findings, .. }) = refused.refused() else { panic!("{refused:?}") };
        assert!(!findings.is_empty() && findings.len() <= OPEN_CHECK_FINDINGS as usize, "{findings:?}");
        assert!(refused.to_string().contains("is damaged"), "{refused}");
        let findings = Store::integrity_check(&path).unwrap();
        assert!(!findings.is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "neither the refused open nor the check wrote to the file");
    }
}
