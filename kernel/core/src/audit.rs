//! The audit log: every write, key operation, unmasked read and export.

use chrono::{DateTime, Utc};
use kith_domain::model::AuditEntry;
use serde_json::Value;

use crate::ports::{Storage, StorageExt};
use crate::{Actor, Result};

/// An audit entry to record on its own (see [`AuditService::record_audits`]).
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub shop_id: Option<i64>,
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub detail: Value,
    pub at: DateTime<Utc>,
}

/// Recording audit entries on their own, and reading a shop's log.
pub trait AuditService: Storage {
    /// Record an audit entry on its own, for exports, which write nothing else;
    /// returns once the entry is on disk. (Unmasked reads, many at once under
    /// load, are gathered by the API and written with [`AuditService::record_audits`].)
    fn audit(&self, shop_id: Option<i64>, actor: &Actor, action: &str, target: Option<&str>, detail: Value) -> Result<()> {
        let entry = NewAudit {
            shop_id,
            actor: actor.clone(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            detail,
            at: Utc::now(),
        };
        self.record_audits(std::slice::from_ref(&entry))
    }

    /// Record audit entries in one transaction, all or none; returns once they
    /// are on disk.
    fn record_audits(&self, entries: &[NewAudit]) -> Result<()> {
        self.write(|tx| {
            for e in entries {
                tx.audit().record(e.shop_id, &e.actor, &e.action, e.target.as_deref(), e.detail.clone(), e.at)?;
            }
            Ok(())
        })
    }

    /// Audit entries of a shop, newest first, before the entry id `before`.
    fn list_audit(&self, shop_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(|tx| tx.audit_log().list(shop_id, before.unwrap_or(i64::MAX), limit))
    }
}

impl<S: Storage + ?Sized> AuditService for S {}
