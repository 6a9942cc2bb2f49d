//! The metrics ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::metrics::{ChannelFigures, CouponFigures, LabelCount, PointsFigures};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl MetricsRead for Pg<'_> {
    fn customer_totals(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(i64, i64)> {
        Err(unported("MetricsRead::customer_totals"))
    }

    fn buyer_spans(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<BuyerSpan>> {
        Err(unported("MetricsRead::buyer_spans"))
    }

    fn sales(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<SalesTotals> {
        Err(unported("MetricsRead::sales"))
    }

    fn labels(&self, shop_id: i64, model: &str) -> Result<Vec<(f64, String, i64)>> {
        Err(unported("MetricsRead::labels"))
    }

    fn tiers(&self, shop_id: i64) -> Result<Vec<LabelCount>> {
        Err(unported("MetricsRead::tiers"))
    }

    fn points(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> Result<PointsFigures> {
        Err(unported("MetricsRead::points"))
    }

    fn coupons(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<CouponFigures> {
        Err(unported("MetricsRead::coupons"))
    }

    fn messages(&self, shop_id: i64, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<ChannelFigures>> {
        Err(unported("MetricsRead::messages"))
    }

    fn score_values(&self, shop_id: i64, model: &str) -> Result<Vec<f64>> {
        Err(unported("MetricsRead::score_values"))
    }

    fn paid_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>)>> {
        Err(unported("MetricsRead::paid_orders"))
    }
}

impl SummariesRead for Pg<'_> {
    fn buyer_orders(&self, shop_id: i64, after: Option<i64>, limit: usize) -> Result<Vec<(i64, DateTime<Utc>, i64)>> {
        Err(unported("SummariesRead::buyer_orders"))
    }

    fn counted_orders(&self, shop_id: i64) -> Result<Vec<(i64, DateTime<Utc>, i64)>> {
        Err(unported("SummariesRead::counted_orders"))
    }
}
