//! The storage ports: what the core asks of a backend, and nothing more.
//!
//! A [`Storage`] runs a closure in one transaction. The closure gets a
//! transaction handle: [`ReadTx`] sees one consistent snapshot; [`WriteTx`] also
//! writes, and everything it wrote is committed together when the closure
//! returns `Ok`, or not at all when it returns `Err` (the error is handed back).
//! Handles offer small repositories shaped by the core's questions, each a trait
//! object, so that the core is compiled once whatever the backend.
//!
//! Every method takes `&self`: a backend whose driver needs `&mut` for a statement
//! keeps its transaction in a `RefCell` (one transaction is used by one thread).
//! Every query is scoped by shop where the table is a shop's: a repository method
//! that takes a `shop_id` never answers with another shop's row.
//!
//! Times cross the ports as `DateTime<Utc>`; a backend stores them as it likes
//! (SQLite: Unix milliseconds), but must give back what it was given to the
//! millisecond.

use chrono::{DateTime, Utc};
use kith_domain::loyalty::{LedgerEntry, LedgerKind, LoyaltySettings};
use serde_json::Value;

use crate::{Actor, Result};

/// A backend: runs closures in its transactions.
///
/// The core calls [`StorageExt::read`] and [`StorageExt::write`]; a backend
/// implements these two object-safe forms.
pub trait Storage: Send + Sync {
    /// Run `f` in one read transaction (one snapshot).
    fn run_read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()>;
    /// Run `f` in one write transaction: committed when `f` returns `Ok`, rolled back
    /// when it returns `Err`, whose error is returned. Writes of one backend are
    /// serialised as its isolation requires; a transaction that could not commit
    /// for a concurrent one is taken again by the backend, not reported.
    fn run_write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> Result<()>) -> Result<()>;
}

/// The forms of [`Storage`] the core uses: a closure with a result of its own.
pub trait StorageExt: Storage {
    fn read<T>(&self, f: impl FnOnce(&dyn ReadTx) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.run_read(&mut |tx| {
            let f = f.take().expect("a backend runs the closure of a read once");
            out = Some(f(tx)?);
            Ok(())
        })?;
        Ok(out.expect("a read that succeeded ran its closure"))
    }

    fn write<T>(&self, f: impl FnOnce(&dyn WriteTx) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.run_write(&mut |tx| {
            let f = f.take().expect("a backend runs the closure of a write once");
            out = Some(f(tx)?);
            Ok(())
        })?;
        Ok(out.expect("a write that succeeded ran its closure"))
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}

/// A read transaction: one snapshot.
pub trait ReadTx {
    fn customers(&self) -> &dyn Customers;
    fn orders(&self) -> &dyn Orders;
    fn ledger(&self) -> &dyn LedgerRead;
    fn settings(&self) -> &dyn Settings;
}

/// A write transaction: reads see its own writes.
pub trait WriteTx: ReadTx {
    fn ledger_writer(&self) -> &dyn LedgerWrite;
    fn audit(&self) -> &dyn Audit;
}

/// Customers as the core finds them.
pub trait Customers {
    /// The customer `customer_id` is now: itself, or the survivor it was merged into
    /// (following the chain of merges); `None` when no such customer is in the shop.
    fn active(&self, shop_id: i64, customer_id: i64) -> Result<Option<i64>>;
}

/// Orders, as the ledger needs them.
pub trait Orders {
    /// The id of the shop's order with the shop's own id `external_id`.
    fn by_external_id(&self, shop_id: i64, external_id: &str) -> Result<Option<i64>>;
    /// An order's amounts; the order exists (the caller holds its id).
    fn refund_state(&self, order_id: i64) -> Result<RefundState>;
}

/// What an order was paid and refunded, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundState {
    pub external_id: String,
    pub customer_id: i64,
    pub amount: i64,
    pub refunded: i64,
}

/// A shop's settings, section by section; the default when a section was never set.
pub trait Settings {
    fn loyalty(&self, shop_id: i64) -> Result<LoyaltySettings>;
}

/// The audit log.
pub trait Audit {
    fn record(
        &self,
        shop_id: Option<i64>,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: Value,
        at: DateTime<Utc>,
    ) -> Result<()>;
}

/// The points ledger as stored: entries, and on each positive entry (a batch) what
/// remains of it.
pub trait LedgerRead {
    /// The sum of a customer's entries.
    fn balance(&self, customer_id: i64) -> Result<i64>;
    /// The entry of the shop posted under `source` / `source_key`, if any.
    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Sourced>>;
    /// A customer's batches with points remaining, oldest first (by time, then id).
    fn open_batches(&self, customer_id: i64) -> Result<Vec<Batch>>;
    /// Every positive entry (batch) of a customer with what remains of it, oldest first.
    fn batches(&self, customer_id: i64) -> Result<Vec<Batch>>;
    /// Every entry of a customer, oldest first (by time, then id).
    fn entries(&self, customer_id: i64) -> Result<Vec<Movement>>;
    /// Points earned on an order and points clawed back from it (a positive number).
    fn order_points(&self, order_id: i64) -> Result<OrderPoints>;
    /// One entry as the API shows it.
    fn entry(&self, entry_id: i64) -> Result<LedgerEntry>;
    /// Batches of any shop with points remaining past their expiry at `now`, soonest
    /// expiry first, at most `limit`.
    fn expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Expired>>;
    /// Customers of a shop with at least one entry, by id.
    fn customers_with_entries(&self, shop_id: i64) -> Result<Vec<i64>>;
}

/// Writes to the points ledger.
pub trait LedgerWrite {
    /// Insert an entry; its id.
    fn insert(&self, entry: &NewEntry<'_>) -> Result<i64>;
    /// Take `points` from what remains of a batch.
    fn take(&self, batch_id: i64, points: i64) -> Result<()>;
    /// Set what remains of a batch (nothing to write when it is that already).
    fn set_remaining(&self, batch_id: i64, remaining: i64) -> Result<()>;
}

/// An entry found by its source key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub id: i64,
    pub customer_id: i64,
    pub points: i64,
}

/// A batch: a positive entry and what remains of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub remaining: i64,
}

/// An entry as a replay of the ledger reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub id: i64,
    pub kind: LedgerKind,
    pub points: i64,
    /// The batch an expiry entry expired.
    pub batch_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderPoints {
    pub earned: i64,
    pub clawed: i64,
}

/// A batch past its expiry with points remaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub batch_id: i64,
    pub shop_id: i64,
    pub customer_id: i64,
    pub remaining: i64,
}

/// An entry to insert, as the ledger's rules made it.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub kind: LedgerKind,
    /// Signed, never zero.
    pub points: i64,
    /// Who posted it: `api`, `kernel`, `reward`, a plugin's id, `journey:<id>`.
    pub source: &'a str,
    /// Unique per shop and source: a second entry with the same key is never posted.
    pub source_key: &'a str,
    pub reason: &'a str,
    pub order_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
    /// What remains of a positive entry (a batch); 0 for a negative one.
    pub remaining: i64,
    /// The batch an expiry entry expired.
    pub batch_id: Option<i64>,
}
