//! Merges as the API lists them, and undoing one. What a merge moves and what an
//! unmerge restores are the core's rules (`kith_core::merge`), over the ports of
//! `ports/merge.rs`; a merge record is kept as JSON in `merges.detail`.

use chrono::Utc;
use kith_core::ports::MergeRecord;
use kith_domain::model::Merge;
use rusqlite::OptionalExtension;

use crate::{Actor, Result, Store, StoreError, from_ms};

pub(crate) fn row_to_merge(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Merge, String)> {
    Ok((
        Merge {
            id: r.get(0)?,
            survivor_id: r.get(1)?,
            merged_id: r.get(2)?,
            reason: r.get(3)?,
            actor: r.get(4)?,
            created_at: from_ms(r.get(6)?),
            identities: Vec::new(),
            unmerged_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
            unmerged_by: r.get(8)?,
        },
        r.get(5)?,
    ))
}

pub(crate) const MERGE_COLUMNS: &str = "id, survivor_id, merged_id, reason, actor, detail, created_at, unmerged_at, unmerged_by";

impl Store {
    /// Merges in which a customer took part, as survivor or as merged side, newest first.
    pub fn list_merges(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Merge>> {
        self.read(|conn| {
            let exists: Option<i64> = conn
                .query_row("SELECT id FROM customers WHERE id = ?1 AND shop_id = ?2", [customer_id, shop_id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("customer {customer_id}")));
            }
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {MERGE_COLUMNS} FROM merges WHERE shop_id = ?1 AND (survivor_id = ?2 OR merged_id = ?2) ORDER BY id DESC"
            ))?;
            let rows = stmt.query_map([shop_id, customer_id], row_to_merge)?;
            Ok(rows
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|(merge, detail)| {
                    let record: MergeRecord = serde_json::from_str(&detail).unwrap_or_default();
                    kith_core::merge::with_identities(merge, &record)
                })
                .collect())
        })
    }

    /// Undo a merge: the merged customer is restored with the identifiers and records that came from it.
    pub fn unmerge(&self, shop_id: i64, merge_id: i64, actor: &Actor) -> Result<Merge> {
        Ok(kith_core::merge::unmerge(self, shop_id, merge_id, actor, Utc::now())?)
    }
}
