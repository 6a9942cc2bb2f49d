//! One PostgreSQL transaction as the core's transaction handle, and the helpers the
//! ports answer with: statements prepared once per connection, rows read as the
//! core's types, the driver's errors said as the core's.
//!
//! The ports are synchronous and the driver is not: a statement's future is driven
//! to its end on the calling thread ([`wait`]), while each connection's socket is
//! served by a task on the backend's own runtime. So a port may be called from any
//! thread, a blocking pool's or a runtime's own, as SQLite's are.

use std::cell::Cell;
use std::future::Future;

use chrono::{DateTime, TimeZone, Utc};
use kith_core::Unavailable;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

/// The core's result, as the ports answer.
pub(crate) type CoreResult<T> = kith_core::Result<T>;

/// A statement's parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// One transaction, as the core's `ReadTx` and `WriteTx`.
pub(crate) struct Pg<'t> {
    tx: &'t deadpool_postgres::Transaction<'t>,
    /// Rows the transaction's statements wrote so far: `Savepoints::written`.
    written: Cell<u64>,
}

impl<'t> Pg<'t> {
    pub(crate) fn new(tx: &'t deadpool_postgres::Transaction<'t>) -> Self {
        Pg { tx, written: Cell::new(0) }
    }

    /// Every row `sql` answers.
    pub(crate) fn query(&self, sql: &str, params: Params<'_>) -> CoreResult<Vec<Row>> {
        wait(async {
            let statement = self.tx.prepare_cached(sql).await?;
            self.tx.query(&statement, params).await
        })
        .map(|rows| self.wrote(sql, rows.len() as u64, rows))
        .map_err(error)
    }

    /// The one row `sql` answers, if any; more than one is an error.
    pub(crate) fn query_opt(&self, sql: &str, params: Params<'_>) -> CoreResult<Option<Row>> {
        wait(async {
            let statement = self.tx.prepare_cached(sql).await?;
            self.tx.query_opt(&statement, params).await
        })
        .map(|row| self.wrote(sql, row.is_some() as u64, row))
        .map_err(error)
    }

    /// The one row `sql` answers; none or more than one is an error.
    pub(crate) fn query_one(&self, sql: &str, params: Params<'_>) -> CoreResult<Row> {
        wait(async {
            let statement = self.tx.prepare_cached(sql).await?;
            self.tx.query_one(&statement, params).await
        })
        .map(|row| self.wrote(sql, 1, row))
        .map_err(error)
    }

    /// Run `sql`; how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: Params<'_>) -> CoreResult<u64> {
        self.try_execute(sql, params).map_err(error)
    }

    /// Run `sql`, its failure as the driver's, for a caller that tells one failure from
    /// another (see [`is_unique_violation`]). A failed statement aborts the whole
    /// transaction in PostgreSQL: only a statement inside a savepoint may fail and
    /// leave the transaction usable.
    pub(crate) fn try_execute(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        wait(async {
            let statement = self.tx.prepare_cached(sql).await?;
            self.tx.execute(&statement, params).await
        })
        .map(|n| self.wrote(sql, n, n))
    }

    /// Run statements without parameters, each as written (no statement is prepared):
    /// savepoints, and SQL built in full by the caller.
    pub(crate) fn batch(&self, sql: &str) -> CoreResult<()> {
        wait(self.tx.batch_execute(sql)).map(|()| self.wrote(sql, 1, ())).map_err(error)
    }

    /// Rows of a statement built at run time (the segment compiler's): prepared
    /// without the cache, which would keep every such text for the connection's life.
    pub(crate) fn query_built(&self, sql: &str, params: Params<'_>) -> CoreResult<Vec<Row>> {
        wait(self.tx.query(sql, params)).map(|rows| self.wrote(sql, rows.len() as u64, rows)).map_err(error)
    }

    /// Run a statement built at run time; how many rows it changed.
    pub(crate) fn execute_built(&self, sql: &str, params: Params<'_>) -> CoreResult<u64> {
        wait(self.tx.execute(sql, params)).map(|n| self.wrote(sql, n, n)).map_err(error)
    }

    /// How many rows the transaction's statements wrote so far (SQLite's total changes):
    /// each statement that may write counts the rows it changed or returned.
    pub(crate) fn written(&self) -> u64 {
        self.written.get()
    }

    /// Whether the connection still holds the transaction (else it is gone whole).
    pub(crate) fn open(&self) -> bool {
        !self.tx.client().is_closed()
    }

    /// Count `rows` as written unless `sql` only reads or is a savepoint's command; hand
    /// back `out`. Any other statement counts: counting more than was written is safe
    /// (ingest then only retries a batch with savepoints), counting less is not.
    fn wrote<T>(&self, sql: &str, rows: u64, out: T) -> T {
        let first = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        let word: String = first.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase();
        if !matches!(word.as_str(), "SELECT" | "VALUES" | "TABLE" | "SHOW" | "EXPLAIN" | "SAVEPOINT" | "RELEASE" | "ROLLBACK") {
            self.written.set(self.written.get() + rows);
        }
        out
    }
}

/// Drive `future` to its end on this thread.
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// Column `idx` of `row`, as `T`; a type that does not match is the backend's failure.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> CoreResult<T> {
    row.try_get(idx).map_err(error)
}

/// A time as the database keeps it: Unix milliseconds.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Unix milliseconds as a time; one out of chrono's range is the backend's failure.
pub(crate) fn time(ms: i64) -> CoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| kith_core::Error::Internal(anyhow::anyhow!("a stored time out of range: {ms} ms")))
}

/// The driver's failure as the core's: the server out of disk, unreachable, shutting
/// down or refusing connections is [`kith_core::Error::Unavailable`] (the same call may
/// succeed later); anything else is internal.
pub(crate) fn error(err: tokio_postgres::Error) -> kith_core::Error {
    match unavailable(&err) {
        Some(kind) => kith_core::Error::Unavailable(kind, err.into()),
        None => kith_core::Error::Internal(err.into()),
    }
}

fn unavailable(err: &tokio_postgres::Error) -> Option<Unavailable> {
    match err.code() {
        Some(code) if *code == SqlState::DISK_FULL => Some(Unavailable::Full),
        // The write lock held beyond `lock_timeout`, by a node that is slow or frozen;
        // a session ended for idling in its transaction.
        Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT => {
            Some(Unavailable::Io)
        }
        Some(code) => {
            let class = &code.code()[..2];
            // 08: connection exception; 53: insufficient resources; 57: operator
            // intervention (shutdown, crash); 58: system error (I/O).
            matches!(class, "08" | "53" | "57" | "58").then_some(Unavailable::Io)
        }
        None if err.is_closed() => Some(Unavailable::Io),
        None => {
            let io = std::error::Error::source(err).is_some_and(|source| source.is::<std::io::Error>());
            io.then_some(Unavailable::Io)
        }
    }
}
