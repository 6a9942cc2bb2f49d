//! Customers, orders, settings and the audit record: the small ports of the core's `ports` module, on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::messaging::MessagingSettings;
use serde_json::Value;
use kith_core::Actor;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl Customers for Pg<'_> {
    fn active(&self, shop_id: i64, customer_id: i64) -> Result<Option<i64>> {
        Err(unported("Customers::active"))
    }
}

impl Orders for Pg<'_> {
    fn by_external_id(&self, shop_id: i64, external_id: &str) -> Result<Option<i64>> {
        Err(unported("Orders::by_external_id"))
    }

    fn refund_state(&self, order_id: i64) -> Result<RefundState> {
        Err(unported("Orders::refund_state"))
    }
}

impl Settings for Pg<'_> {
    fn loyalty(&self, shop_id: i64) -> Result<LoyaltySettings> {
        Err(unported("Settings::loyalty"))
    }

    fn messaging(&self, shop_id: i64) -> Result<MessagingSettings> {
        Err(unported("Settings::messaging"))
    }

    fn time_zone(&self, shop_id: i64) -> Result<String> {
        Err(unported("Settings::time_zone"))
    }

    fn export(&self, shop_id: i64) -> Result<kith_domain::model::ExportPolicy> {
        Err(unported("Settings::export"))
    }
}

impl Audit for Pg<'_> {
    fn record( &self, shop_id: Option<i64>, actor: &Actor, action: &str, target: Option<&str>, detail: Value, at: DateTime<Utc>, ) -> Result<()> {
        Err(unported("Audit::record"))
    }
}
