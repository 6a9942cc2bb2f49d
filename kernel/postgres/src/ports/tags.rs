//! The tags ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::model::Tag;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl TagsRead for Pg<'_> {
    fn held_by(&self, customer_id: i64, tag: &str, source: &str) -> Result<bool> {
        Err(unported("TagsRead::held_by"))
    }

    fn count_by(&self, customer_id: i64, source: &str) -> Result<i64> {
        Err(unported("TagsRead::count_by"))
    }

    fn get(&self, customer_id: i64, tag: &str, source: &str) -> Result<Tag> {
        Err(unported("TagsRead::get"))
    }
}

impl TagsWrite for Pg<'_> {
    fn insert(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>, at: DateTime<Utc>) -> Result<bool> {
        Err(unported("TagsWrite::insert"))
    }

    fn reword(&self, customer_id: i64, tag: &str, source: &str, reason: Option<&str>) -> Result<bool> {
        Err(unported("TagsWrite::reword"))
    }

    fn delete(&self, customer_id: i64, tag: &str, sources: TagSources<'_>) -> Result<Vec<String>> {
        Err(unported("TagsWrite::delete"))
    }
}

impl CustomersWrite for Pg<'_> {
    fn touch(&self, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("CustomersWrite::touch"))
    }
}
