//! Reading the audit log (writing it is [`Audit`](super::Audit)'s).

use kith_domain::model::AuditEntry;

use crate::Result;

pub trait AuditRead {
    /// Audit entries of a shop, newest first (by id), with ids below `before`, at most `limit`.
    fn list(&self, shop_id: i64, before: i64, limit: usize) -> Result<Vec<AuditEntry>>;
}
