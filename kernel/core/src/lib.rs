//! Kith's core: the rules that decide what an event, a decision or a request does,
//! written once over storage **ports**.
//!
//! The core holds no SQL and links no database driver. It reaches storage only
//! through the traits of [`ports`]: a [`Storage`] runs a closure in one read or
//! write transaction and hands it a transaction handle ([`ReadTx`] / [`WriteTx`])
//! whose narrow repositories answer what the core asks (a customer's open points
//! batches, an order's refund state) and store what it decided. A backend (the
//! embedded SQLite of `kith-sqlite`; PostgreSQL next) implements those traits and
//! [`Backend`], and proves it with the conformance suite of `kith-conformance`.
//!
//! The API, the bus and the binary hold the backend as `Arc<dyn Backend>` and call
//! the core's **services** ([`prelude`]): one extension trait per feature
//! (`ShopService`, `PluginService`, `OutboxService`, `SegmentService` …) whose
//! methods hold the rules (validation, stamps, audit, events) and run on any
//! backend. Side effects are explicit calls of the core, never hidden in the
//! backend.

pub mod audit;
pub mod console;
pub mod coupons;
pub mod customers;
pub mod delivery;
mod error;
pub mod events;
pub mod ingest;
mod isolation;
pub mod journeys;
pub mod keys;
pub mod leases;
pub mod ledger;
pub mod loyalty;
pub mod merge;
pub mod metrics;
pub mod outbox;
pub mod plugins;
pub mod ports;
pub mod prelude;
pub mod rewards;
pub mod segments;
pub mod settings;
pub mod shops;
pub mod tags;
pub mod transfer;

pub use error::{Actor, Error, Result, Unavailable};
pub use ports::{Backend, ReadTx, Storage, StorageExt, WriteTx};
