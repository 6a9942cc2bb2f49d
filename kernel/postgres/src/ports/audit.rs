//! The audit ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use kith_domain::model::AuditEntry;
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl AuditRead for Pg<'_> {
    fn list(&self, shop_id: i64, before: i64, limit: usize) -> Result<Vec<AuditEntry>> {
        Err(unported("AuditRead::list"))
    }
}
