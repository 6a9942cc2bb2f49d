//! The ingest ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use std::collections::BTreeMap;
use chrono::{DateTime, Utc};
use kith_domain::ingest::{BehaviourInput, ValidOrder};
use kith_domain::model::Stats;
use serde::{Deserialize, Serialize};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl Identities for Pg<'_> {
    fn owner(&self, shop_id: i64, kind: &str, value: &str) -> Result<Option<i64>> {
        Err(unported("Identities::owner"))
    }

    fn counts(&self, customer_id: i64) -> Result<BTreeMap<String, u32>> {
        Err(unported("Identities::counts"))
    }

    fn of_customer(&self, customer_id: i64) -> Result<Vec<IdentityRow>> {
        Err(unported("Identities::of_customer"))
    }
}

impl IngestRead for Pg<'_> {
    fn region(&self, shop_id: i64) -> Result<String> {
        Err(unported("IngestRead::region"))
    }

    fn receipt(&self, shop_id: i64, event_id: &str) -> Result<Option<Option<i64>>> {
        Err(unported("IngestRead::receipt"))
    }

    fn created_at(&self, customer_id: i64) -> Result<DateTime<Utc>> {
        Err(unported("IngestRead::created_at"))
    }

    fn profile(&self, customer_id: i64) -> Result<ProfileRow> {
        Err(unported("IngestRead::profile"))
    }

    fn stats(&self, customer_id: i64) -> Result<Stats> {
        Err(unported("IngestRead::stats"))
    }

    fn order_count(&self, customer_id: i64) -> Result<i64> {
        Err(unported("IngestRead::order_count"))
    }

    fn order(&self, shop_id: i64, external_id: &str) -> Result<Option<OrderRow>> {
        Err(unported("IngestRead::order"))
    }
}

impl IngestWrite for Pg<'_> {
    fn receive(&self, shop_id: i64, event_id: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::receive"))
    }

    fn insert_customer(&self, shop_id: i64, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> Result<i64> {
        Err(unported("IngestWrite::insert_customer"))
    }

    fn seen_at(&self, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::seen_at"))
    }

    fn touch(&self, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::touch"))
    }

    fn set_profile(&self, customer_id: i64, profile: &ProfileRow) -> Result<()> {
        Err(unported("IngestWrite::set_profile"))
    }

    fn attach(&self, shop_id: i64, kind: &str, value: &str, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::attach"))
    }

    fn insert_order(&self, shop_id: i64, customer_id: i64, order: &ValidOrder, at: DateTime<Utc>) -> Result<i64> {
        Err(unported("IngestWrite::insert_order"))
    }

    fn add_order_to_stats(&self, customer_id: i64, amount: i64, paid_at: DateTime<Utc>, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::add_order_to_stats"))
    }

    fn refund_order(&self, order_id: i64, amount: i64, fully: bool) -> Result<()> {
        Err(unported("IngestWrite::refund_order"))
    }

    fn insert_refund(&self, order_id: i64, amount: i64, reason: Option<&str>, refunded_at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::insert_refund"))
    }

    fn subtract_refund(&self, customer_id: i64, amount: i64, fully: bool, at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::subtract_refund"))
    }

    fn recompute_stats(&self, customer_id: i64) -> Result<()> {
        Err(unported("IngestWrite::recompute_stats"))
    }

    fn insert_behaviour(&self, shop_id: i64, customer_id: i64, behaviour: &BehaviourInput, occurred_at: DateTime<Utc>) -> Result<()> {
        Err(unported("IngestWrite::insert_behaviour"))
    }
}

impl Savepoints for Pg<'_> {
    fn written(&self) -> u64 {
        0
    }

    fn savepoint(&self) -> Result<()> {
        Err(unported("Savepoints::savepoint"))
    }

    fn release(&self) -> Result<()> {
        Err(unported("Savepoints::release"))
    }

    fn roll_back(&self) -> Result<()> {
        Err(unported("Savepoints::roll_back"))
    }

    fn active(&self) -> bool {
        false
    }
}
