//! Kith's core: the rules that decide what an event, a decision or a request does,
//! written once over storage **ports**.
//!
//! The core holds no SQL and links no database driver. It reaches storage only
//! through the traits of [`ports`]: a [`Storage`] runs a closure in one read or
//! write transaction and hands it a transaction handle ([`ReadTx`] / [`WriteTx`])
//! whose narrow repositories answer what the core asks (a customer's open points
//! batches, an order's refund state) and store what it decided. A backend (the
//! embedded SQLite of `kith-store`; PostgreSQL next) implements those traits and
//! nothing else, and proves it with the conformance suite of `kith-conformance`.
//!
//! Features move into the core one at a time; today it owns the points ledger
//! ([`ledger`]). Side effects are explicit calls of the core, never hidden in the
//! backend.

pub mod audit;
pub mod coupons;
pub mod customers;
pub mod delivery;
mod error;
pub mod events;
pub mod ingest;
mod isolation;
pub mod journeys;
pub mod keys;
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

pub use error::{Actor, Error, Result, Unavailable};
pub use ports::{Backend, ReadTx, Storage, StorageExt, WriteTx};
