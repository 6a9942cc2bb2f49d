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
//! Every query is scoped by shop where the table is a shop's: every repository method
//! on a shop's rows takes the shop (`shop_id`, its first parameter) and answers only
//! within it. A method that also takes the id of a row below the shop (a journey's
//! versions and runs, a segment's snapshots, a template's usage, a customer's ledger)
//! answers only when that row is the shop's: another shop's id reads as nothing and
//! changes nothing. Only methods on global tables and sweeps that find due work across
//! shops (answering each row with its shop) take no shop.
//!
//! Times cross the ports as `DateTime<Utc>`; a backend stores them as it likes
//! (SQLite: Unix milliseconds), but must give back what it was given to the
//! millisecond.

use chrono::{DateTime, Utc};
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::messaging::MessagingSettings;
use serde_json::Value;

use crate::{Actor, Result};

mod audit;
mod console;
mod coupons;
mod customers;
mod events;
mod ingest;
mod journeys;
mod keys;
mod leases;
mod ledger;
mod merge;
mod metrics;
mod outbox;
mod plugins;
mod segments;
mod settings;
mod shops;
mod tags;

pub use audit::*;
pub use console::*;
pub use coupons::*;
pub use customers::*;
pub use events::*;
pub use ingest::*;
pub use journeys::*;
pub use keys::*;
pub use leases::*;
pub use ledger::*;
pub use merge::*;
pub use metrics::*;
pub use outbox::*;
pub use plugins::*;
pub use segments::*;
pub use settings::*;
pub use shops::*;
pub use tags::*;

/// A backend: runs closures in its transactions.
///
/// The core calls [`StorageExt::read`] and [`StorageExt::write`]; a backend
/// implements these two object-safe forms.
pub trait Storage: Send + Sync {
    /// Run `f` in one read transaction (one snapshot).
    fn run_read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()>;
    /// Run `f` once, in one write transaction: committed when `f` returns `Ok`, rolled
    /// back when it returns `Err`, whose error is returned. Writes of one backend are
    /// serialised as its isolation requires (SQLite: one writer; a backend with
    /// concurrent writers takes the locks that make the core's read-then-write steps
    /// safe, rather than retrying `f`, which the core's services run at most once).
    fn run_write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> Result<()>) -> Result<()>;
    /// This backend as a trait object (`self`), for the core's services, whose methods
    /// run on any backend, sized or not, and call the core's functions with it.
    fn storage(&self) -> &dyn Storage;
    /// The identifier caps ingest checks; the defaults unless the backend was opened with others.
    fn identity_caps(&self) -> IdentityCaps {
        IdentityCaps::default()
    }
    /// The memory of keys authenticated lately the backend holds, if it holds one: a
    /// key found there is not read from storage again.
    fn key_memory(&self) -> Option<&dyn KeyMemory> {
        None
    }
}

/// A backend as the kernel holds it (`Arc<dyn Backend>`): its transactions, through
/// which every service of the core runs, and what the kernel reports of it. Only the
/// binary's wiring names the type behind it.
pub trait Backend: Storage + std::fmt::Debug {
    /// Succeeds when the database answers a query.
    fn health(&self) -> Result<()>;
    /// The version of the backend's schema: the last of its migrations applied.
    fn schema_version(&self) -> usize;
    /// How many reads the backend serves at once: the API lets no more than these wait
    /// on its blocking pool, the others wait as tasks.
    fn read_concurrency(&self) -> usize;
    /// Whether other kernel processes may use this database at once (PostgreSQL): then
    /// work that must not run twice at once is also claimed in the database (leases), not
    /// only within this process.
    fn shared(&self) -> bool {
        false
    }
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
    fn customer_views(&self) -> &dyn CustomerViews;
    fn orders(&self) -> &dyn Orders;
    fn identities(&self) -> &dyn Identities;
    fn ingest(&self) -> &dyn IngestRead;
    fn ledger(&self) -> &dyn LedgerRead;
    fn outbox(&self) -> &dyn OutboxRead;
    fn merges(&self) -> &dyn MergeRead;
    fn settings(&self) -> &dyn Settings;
    fn coupons(&self) -> &dyn CouponsRead;
    fn rewards(&self) -> &dyn RewardsRead;
    fn tags(&self) -> &dyn TagsRead;
    fn plugins(&self) -> &dyn PluginsRead;
    fn segments(&self) -> &dyn SegmentsRead;
    fn journeys(&self) -> &dyn JourneysRead;
    fn shops(&self) -> &dyn ShopsRead;
    fn metrics(&self) -> &dyn MetricsRead;
    fn summaries(&self) -> &dyn SummariesRead;
    fn keys(&self) -> &dyn KeysRead;
    fn audit_log(&self) -> &dyn AuditRead;
    fn events(&self) -> &dyn EventsRead;
    fn console(&self) -> &dyn ConsoleRead;
}

/// A write transaction: reads see its own writes.
pub trait WriteTx: ReadTx {
    fn event_log(&self) -> &dyn EventLog;
    fn ingest_writer(&self) -> &dyn IngestWrite;
    fn savepoints(&self) -> &dyn Savepoints;
    fn ledger_writer(&self) -> &dyn LedgerWrite;
    fn outbox_writer(&self) -> &dyn OutboxWrite;
    fn merge_writer(&self) -> &dyn MergeWrite;
    fn audit(&self) -> &dyn Audit;
    fn coupons_writer(&self) -> &dyn CouponsWrite;
    fn rewards_writer(&self) -> &dyn RewardsWrite;
    fn tags_writer(&self) -> &dyn TagsWrite;
    fn customers_writer(&self) -> &dyn CustomersWrite;
    fn plugins_writer(&self) -> &dyn PluginsWrite;
    fn scores_writer(&self) -> &dyn ScoresWrite;
    fn tiers_writer(&self) -> &dyn TiersWrite;
    fn segment_marks(&self) -> &dyn SegmentMarks;
    fn segments_writer(&self) -> &dyn SegmentsWrite;
    fn journeys_writer(&self) -> &dyn JourneysWrite;
    fn shops_writer(&self) -> &dyn ShopsWrite;
    fn keys_writer(&self) -> &dyn KeysWrite;
    fn settings_writer(&self) -> &dyn SettingsWrite;
    fn leases(&self) -> &dyn Leases;
    fn console_writer(&self) -> &dyn ConsoleWrite;
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
    /// The amounts of the shop's order `order_id`; the order exists (the caller found it
    /// in the shop).
    fn refund_state(&self, shop_id: i64, order_id: i64) -> Result<RefundState>;
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
    fn messaging(&self, shop_id: i64) -> Result<MessagingSettings>;
    /// The shop's IANA time zone, as stored.
    fn time_zone(&self, shop_id: i64) -> Result<String>;
    /// The shop's export policy.
    fn export(&self, shop_id: i64) -> Result<kith_domain::model::ExportPolicy>;
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
