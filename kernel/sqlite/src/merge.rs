//! Merges as stored. Listing them, what a merge moves and what an unmerge restores
//! are the core's (`kith_core::merge`), over the ports of `ports/merge.rs`; a merge
//! record is kept as JSON in `merges.detail`.

use kith_domain::model::Merge;

use crate::from_ms;

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
