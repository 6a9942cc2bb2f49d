//! The shops ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::model::{NewShop, Shop};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl ShopsRead for Pg<'_> {
    fn get(&self, shop_id: i64) -> Result<Option<Shop>> {
        Err(unported("ShopsRead::get"))
    }

    fn list(&self) -> Result<Vec<Shop>> {
        Err(unported("ShopsRead::list"))
    }

    fn by_name(&self, name: &str) -> Result<Option<Shop>> {
        Err(unported("ShopsRead::by_name"))
    }
}

impl ShopsWrite for Pg<'_> {
    fn insert(&self, new: &NewShop, created_at: DateTime<Utc>) -> Result<i64> {
        Err(unported("ShopsWrite::insert"))
    }
}
