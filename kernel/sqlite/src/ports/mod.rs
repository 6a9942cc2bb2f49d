//! The core's storage ports on SQLite: [`Store`] runs the core's closures in its
//! transactions, and [`Sql`] answers the repositories over one connection.
//!
//! The statements are the ones the store's own modules ran before the rules moved
//! into the core, cached per connection like theirs.

use chrono::{DateTime, Utc};
use kith_core::ports::{Audit, Customers, LedgerRead, LedgerWrite, Orders, ReadTx, RefundState, Settings, WriteTx};
use kith_core::{Actor, Storage};
use kith_domain::loyalty::LoyaltySettings;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use crate::{Store, audit, customers, settings};

mod console;
mod coupons;
mod events;
mod ingest;
mod journeys;
mod leases;
mod ledger;
mod merge;
pub(crate) mod outbox;
mod plugins;
mod segments;
mod tags;

pub(crate) use crate::sql::{CoreResult, Sql, core, sql};

impl Storage for Store {
    fn run_read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> CoreResult<()>) -> CoreResult<()> {
        Ok(self.read(|conn| Ok(f(&Sql(conn))?))?)
    }

    fn run_write(&self, f: &mut dyn FnMut(&dyn WriteTx) -> CoreResult<()>) -> CoreResult<()> {
        Ok(self.write(|tx| Ok(f(&Sql(tx))?))?)
    }

    fn storage(&self) -> &dyn Storage {
        self
    }

    fn identity_caps(&self) -> kith_core::ingest::IdentityCaps {
        self.options.identity_caps.clone()
    }

    fn key_memory(&self) -> Option<&dyn kith_core::ports::KeyMemory> {
        Some(&self.keys)
    }
}

impl kith_core::Backend for Store {
    fn health(&self) -> CoreResult<()> {
        core(self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)))
    }

    fn schema_version(&self) -> usize {
        crate::schema::latest_version()
    }

    fn read_concurrency(&self) -> usize {
        crate::READER_POOL
    }
}

impl ReadTx for Sql<'_> {
    fn customer_views(&self) -> &dyn kith_core::ports::CustomerViews {
        self
    }

    fn customers(&self) -> &dyn Customers {
        self
    }

    fn orders(&self) -> &dyn Orders {
        self
    }

    fn identities(&self) -> &dyn kith_core::ports::Identities {
        self
    }

    fn ingest(&self) -> &dyn kith_core::ports::IngestRead {
        self
    }

    fn ledger(&self) -> &dyn LedgerRead {
        self
    }

    fn outbox(&self) -> &dyn kith_core::ports::OutboxRead {
        self
    }

    fn merges(&self) -> &dyn kith_core::ports::MergeRead {
        self
    }

    fn settings(&self) -> &dyn Settings {
        self
    }

    fn coupons(&self) -> &dyn kith_core::ports::CouponsRead {
        self
    }

    fn rewards(&self) -> &dyn kith_core::ports::RewardsRead {
        self
    }

    fn tags(&self) -> &dyn kith_core::ports::TagsRead {
        self
    }

    fn plugins(&self) -> &dyn kith_core::ports::PluginsRead {
        self
    }

    fn segments(&self) -> &dyn kith_core::ports::SegmentsRead {
        self
    }

    fn journeys(&self) -> &dyn kith_core::ports::JourneysRead {
        self
    }

    fn shops(&self) -> &dyn kith_core::ports::ShopsRead {
        self
    }

    fn keys(&self) -> &dyn kith_core::ports::KeysRead {
        self
    }

    fn audit_log(&self) -> &dyn kith_core::ports::AuditRead {
        self
    }

    fn events(&self) -> &dyn kith_core::ports::EventsRead {
        self
    }

    fn metrics(&self) -> &dyn kith_core::ports::MetricsRead {
        self
    }

    fn summaries(&self) -> &dyn kith_core::ports::SummariesRead {
        self
    }

    fn console(&self) -> &dyn kith_core::ports::ConsoleRead {
        self
    }
}

impl WriteTx for Sql<'_> {
    fn event_log(&self) -> &dyn kith_core::ports::EventLog {
        self
    }

    fn ingest_writer(&self) -> &dyn kith_core::ports::IngestWrite {
        self
    }

    fn savepoints(&self) -> &dyn kith_core::ports::Savepoints {
        self
    }

    fn ledger_writer(&self) -> &dyn LedgerWrite {
        self
    }

    fn outbox_writer(&self) -> &dyn kith_core::ports::OutboxWrite {
        self
    }

    fn merge_writer(&self) -> &dyn kith_core::ports::MergeWrite {
        self
    }

    fn audit(&self) -> &dyn Audit {
        self
    }

    fn coupons_writer(&self) -> &dyn kith_core::ports::CouponsWrite {
        self
    }

    fn rewards_writer(&self) -> &dyn kith_core::ports::RewardsWrite {
        self
    }

    fn tags_writer(&self) -> &dyn kith_core::ports::TagsWrite {
        self
    }

    fn customers_writer(&self) -> &dyn kith_core::ports::CustomersWrite {
        self
    }

    fn plugins_writer(&self) -> &dyn kith_core::ports::PluginsWrite {
        self
    }

    fn scores_writer(&self) -> &dyn kith_core::ports::ScoresWrite {
        self
    }

    fn tiers_writer(&self) -> &dyn kith_core::ports::TiersWrite {
        self
    }

    fn segment_marks(&self) -> &dyn kith_core::ports::SegmentMarks {
        self
    }

    fn segments_writer(&self) -> &dyn kith_core::ports::SegmentsWrite {
        self
    }

    fn journeys_writer(&self) -> &dyn kith_core::ports::JourneysWrite {
        self
    }

    fn shops_writer(&self) -> &dyn kith_core::ports::ShopsWrite {
        self
    }

    fn keys_writer(&self) -> &dyn kith_core::ports::KeysWrite {
        self
    }

    fn settings_writer(&self) -> &dyn kith_core::ports::SettingsWrite {
        self
    }

    fn leases(&self) -> &dyn kith_core::ports::Leases {
        self
    }

    fn console_writer(&self) -> &dyn kith_core::ports::ConsoleWrite {
        self
    }
}

impl Customers for Sql<'_> {
    fn active(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<i64>> {
        core(customers::active_customer(self.0, shop_id, customer_id))
    }
}

impl Orders for Sql<'_> {
    fn by_external_id(&self, shop_id: i64, external_id: &str) -> CoreResult<Option<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT id FROM orders WHERE shop_id = ?1 AND external_id = ?2")
            .and_then(|mut s| s.query_row(params![shop_id, external_id], |r| r.get(0)).optional()))
    }

    fn refund_state(&self, shop_id: i64, order_id: i64) -> CoreResult<RefundState> {
        sql(self
            .0
            .prepare_cached("SELECT external_id, customer_id, amount, refunded_amount FROM orders WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row([shop_id, order_id], |r| {
                    Ok(RefundState { external_id: r.get(0)?, customer_id: r.get(1)?, amount: r.get(2)?, refunded: r.get(3)? })
                })
            }))
    }
}

impl Settings for Sql<'_> {
    fn loyalty(&self, shop_id: i64) -> CoreResult<LoyaltySettings> {
        core(settings::load(self.0, shop_id, settings::LOYALTY))
    }

    fn messaging(&self, shop_id: i64) -> CoreResult<kith_domain::messaging::MessagingSettings> {
        core(settings::load(self.0, shop_id, settings::MESSAGING))
    }

    fn time_zone(&self, shop_id: i64) -> CoreResult<String> {
        core(crate::shops::load_shop(self.0, shop_id).map(|shop| shop.time_zone))
    }

    fn export(&self, shop_id: i64) -> CoreResult<kith_domain::model::ExportPolicy> {
        core(settings::load(self.0, shop_id, settings::EXPORT))
    }
}

impl Audit for Sql<'_> {
    fn record(
        &self,
        shop_id: Option<i64>,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        detail: Value,
        at: DateTime<Utc>,
    ) -> CoreResult<()> {
        core(audit::record(self.0, shop_id, actor, action, target, detail, at))
    }
}
