//! The ledger ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::loyalty::{ExpiringPoints, LedgerEntry, LedgerKind, TierChange};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl LedgerRead for Pg<'_> {
    fn balance(&self, customer_id: i64) -> Result<i64> {
        Err(unported("LedgerRead::balance"))
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Sourced>> {
        Err(unported("LedgerRead::by_source"))
    }

    fn open_batches(&self, customer_id: i64) -> Result<Vec<Batch>> {
        Err(unported("LedgerRead::open_batches"))
    }

    fn batches(&self, customer_id: i64) -> Result<Vec<Batch>> {
        Err(unported("LedgerRead::batches"))
    }

    fn entries(&self, customer_id: i64) -> Result<Vec<Movement>> {
        Err(unported("LedgerRead::entries"))
    }

    fn order_points(&self, order_id: i64) -> Result<OrderPoints> {
        Err(unported("LedgerRead::order_points"))
    }

    fn entry(&self, entry_id: i64) -> Result<LedgerEntry> {
        Err(unported("LedgerRead::entry"))
    }

    fn expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Expired>> {
        Err(unported("LedgerRead::expired"))
    }

    fn customers_with_entries(&self, shop_id: i64) -> Result<Vec<i64>> {
        Err(unported("LedgerRead::customers_with_entries"))
    }

    fn page(&self, customer_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>> {
        Err(unported("LedgerRead::page"))
    }

    fn expiring(&self, customer_id: i64) -> Result<Vec<ExpiringPoints>> {
        Err(unported("LedgerRead::expiring"))
    }

    fn tier(&self, customer_id: i64) -> Result<Option<String>> {
        Err(unported("LedgerRead::tier"))
    }

    fn tier_history(&self, customer_id: i64) -> Result<Vec<TierChange>> {
        Err(unported("LedgerRead::tier_history"))
    }
}

impl LedgerWrite for Pg<'_> {
    fn insert(&self, entry: &NewEntry<'_>) -> Result<i64> {
        Err(unported("LedgerWrite::insert"))
    }

    fn take(&self, batch_id: i64, points: i64) -> Result<()> {
        Err(unported("LedgerWrite::take"))
    }

    fn set_remaining(&self, batch_id: i64, remaining: i64) -> Result<()> {
        Err(unported("LedgerWrite::set_remaining"))
    }
}
