//! The customers ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::ingest::Identifier;
use kith_domain::model::{Customer, Event, Stats};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl CustomerViews for Pg<'_> {
    fn get(&self, shop_id: i64, customer_id: i64) -> Result<Option<Customer>> {
        Err(unported("CustomerViews::get"))
    }

    fn exists(&self, shop_id: i64, customer_id: i64) -> Result<bool> {
        Err(unported("CustomerViews::exists"))
    }

    fn timeline(&self, shop_id: i64, customer_id: i64, limit: usize) -> Result<Vec<Event>> {
        Err(unported("CustomerViews::timeline"))
    }

    fn owner(&self, shop_id: i64, identifier: &Identifier) -> Result<Option<i64>> {
        Err(unported("CustomerViews::owner"))
    }

    fn page(&self, shop_id: i64, filter: &CustomerFilter, after: i64, limit: usize) -> Result<Vec<Customer>> {
        Err(unported("CustomerViews::page"))
    }

    fn stats_check(&self, shop_id: i64) -> Result<Vec<(i64, Stats, Stats)>> {
        Err(unported("CustomerViews::stats_check"))
    }

    fn count(&self, shop_id: i64) -> Result<i64> {
        Err(unported("CustomerViews::count"))
    }
}
