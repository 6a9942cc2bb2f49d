//! Applying ingest batches: the rules are the core's (`kith_core::ingest`: identity
//! resolution, profiles, orders, refunds and behaviours, each event all-or-nothing
//! inside the batch's one transaction); the store runs them in its transactions
//! through the ports of `ports/ingest.rs`.

use chrono::{DateTime, Utc};
use kith_domain::ingest::RawEvent;
use kith_domain::model::IngestReport;

use crate::{Actor, Result, Store};

impl Store {
    /// Validate and apply a batch of raw events for one shop in one transaction, at the
    /// system's time. Each event applies whole or not at all; the batch is durable when this returns.
    pub fn ingest<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor) -> Result<IngestReport> {
        self.ingest_at(shop_id, raw_events, actor, Utc::now())
    }

    /// [`Store::ingest`] at the kernel's `now`: an event without a time of its own happened
    /// then, and it is what receipts and the log are stamped with.
    pub fn ingest_at<E: RawEvent>(&self, shop_id: i64, raw_events: Vec<E>, actor: &Actor, now: DateTime<Utc>) -> Result<IngestReport> {
        Ok(kith_core::ingest::ingest(self, shop_id, raw_events, &self.options.identity_caps, actor, now)?)
    }
}
