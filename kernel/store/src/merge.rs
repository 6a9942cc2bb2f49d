//! Merging two customers into the older one, and undoing it.
//!
//! A merge moves the merged customer's identifiers, orders, behaviours, points,
//! tags and scores to the survivor, gives the survivor the merged side's consents
//! where they are stricter or the only ones, and leaves the merged customer as a tombstone
//! (`merged_into`). The merge record lists every moved row, so an unmerge puts
//! back exactly what came from the merged side, including what that side had
//! itself absorbed in earlier merges.

use chrono::{DateTime, Utc};
use kith_domain::model::{IdentityView, Merge};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use kith_core::ledger;

use crate::ports::Sql;
use crate::{Actor, Result, Store, StoreError, audit, events, from_ms, to_ms};

/// What moved in a merge, kept in `merges.detail`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct MergeDetail {
    identities: Vec<(String, String, i64)>,
    orders: Vec<i64>,
    behaviours: Vec<i64>,
    /// Points ledger entries; absent from records written before the ledger existed.
    #[serde(default)]
    points: Vec<i64>,
    /// The merged side's tags, and whether each was new to the survivor.
    tags: Vec<MovedTag>,
    scores: Vec<MovedScore>,
    /// Profile fields the survivor lacked and took from the merged side.
    filled_fields: Vec<String>,
    filled_attributes: Vec<String>,
    /// Consents the survivor took from the merged side; absent from records written before.
    #[serde(default)]
    consents: Vec<ConsentChange>,
}

/// A consent record as stored: status, source, time.
type ConsentRow = (String, String, i64);

/// A channel's consent on the survivor before and after the merge.
#[derive(Debug, Serialize, Deserialize)]
struct ConsentChange {
    channel: String,
    before: Option<ConsentRow>,
    after: ConsentRow,
}

fn consent(tx: &Connection, customer_id: i64, channel: &str) -> Result<Option<ConsentRow>> {
    Ok(tx
        .prepare_cached("SELECT status, source, updated_at FROM consents WHERE customer_id = ?1 AND channel = ?2")?
        .query_row(params![customer_id, channel], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

fn set_consent(tx: &Connection, shop_id: i64, customer_id: i64, channel: &str, row: Option<&ConsentRow>) -> Result<()> {
    match row {
        Some((status, source, at)) => tx
            .prepare_cached(
                "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, channel) DO UPDATE SET status = excluded.status, source = excluded.source, updated_at = excluded.updated_at",
            )?
            .execute(params![customer_id, channel, shop_id, status, source, at])?,
        None => tx.prepare_cached("DELETE FROM consents WHERE customer_id = ?1 AND channel = ?2")?.execute(params![customer_id, channel])?,
    };
    Ok(())
}

/// The survivor takes the merged side's consent where it has none, and its opt-out
/// where the survivor had opted in: the stricter answer wins. The tombstone keeps its own.
fn merge_consents(tx: &Connection, shop_id: i64, survivor: i64, merged: i64) -> Result<Vec<ConsentChange>> {
    let mut stmt = tx.prepare_cached("SELECT channel, status, source, updated_at FROM consents WHERE customer_id = ?1 ORDER BY channel")?;
    let theirs: Vec<(String, ConsentRow)> =
        stmt.query_map([merged], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?.collect::<rusqlite::Result<_>>()?;
    let mut changes = Vec::new();
    for (channel, row) in theirs {
        let before = consent(tx, survivor, &channel)?;
        let takes = match &before {
            None => true,
            Some((status, _, _)) => status == "opted_in" && row.0 == "opted_out",
        };
        if takes {
            set_consent(tx, shop_id, survivor, &channel, Some(&row))?;
            changes.push(ConsentChange { channel, before, after: row });
        }
    }
    Ok(changes)
}

#[derive(Debug, Serialize, Deserialize)]
struct MovedTag {
    tag: String,
    source: String,
    reason: Option<String>,
    created_at: i64,
    added_to_survivor: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct MovedScore {
    model: String,
    value: f64,
    label: Option<String>,
    explanation: Option<String>,
    scored_at: i64,
    added_to_survivor: bool,
}

fn ids(tx: &Connection, sql: &str, customer_id: i64) -> Result<Vec<i64>> {
    let mut stmt = tx.prepare_cached(sql)?;
    let rows = stmt.query_map([customer_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

type Attributes = serde_json::Map<String, serde_json::Value>;

fn attributes(tx: &Connection, customer_id: i64) -> Result<Attributes> {
    let text: String = tx.prepare_cached("SELECT attributes FROM customers WHERE id = ?1")?.query_row([customer_id], |r| r.get(0))?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

fn set_attributes(tx: &Connection, customer_id: i64, attrs: Attributes) -> Result<()> {
    tx.prepare_cached("UPDATE customers SET attributes = ?1 WHERE id = ?2")?
        .execute(params![serde_json::Value::Object(attrs).to_string(), customer_id])?;
    Ok(())
}

const PROFILE_FIELDS: [&str; 5] = ["name", "gender", "birthday", "province", "city"];

/// Merge `merged` into `survivor` (both active customers of `shop_id`). Returns the merge id.
pub(crate) fn merge(
    tx: &Connection,
    shop_id: i64,
    survivor: i64,
    merged: i64,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    let mut detail = MergeDetail::default();

    let mut stmt = tx.prepare_cached("SELECT kind, value, created_at FROM identities WHERE customer_id = ?1 ORDER BY kind, value")?;
    detail.identities = stmt.query_map([merged], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
    tx.prepare_cached("UPDATE identities SET customer_id = ?1 WHERE customer_id = ?2")?.execute([survivor, merged])?;

    detail.orders = ids(tx, "SELECT id FROM orders WHERE customer_id = ?1", merged)?;
    tx.prepare_cached("UPDATE orders SET customer_id = ?1 WHERE customer_id = ?2")?.execute([survivor, merged])?;
    detail.behaviours = ids(tx, "SELECT id FROM behaviours WHERE customer_id = ?1", merged)?;
    tx.prepare_cached("UPDATE behaviours SET customer_id = ?1 WHERE customer_id = ?2")?.execute([survivor, merged])?;
    detail.points = ids(tx, "SELECT id FROM points_ledger WHERE customer_id = ?1", merged)?;
    tx.prepare_cached("UPDATE points_ledger SET customer_id = ?1 WHERE customer_id = ?2")?.execute([survivor, merged])?;
    // Two ledgers became one: the survivor's batches are what the joint ledger says.
    ledger::rebuild(&Sql(tx), survivor)?;

    let mut stmt = tx.prepare_cached("SELECT tag, source, reason, created_at FROM tags WHERE customer_id = ?1")?;
    detail.tags = stmt
        .query_map([merged], |r| {
            Ok(MovedTag { tag: r.get(0)?, source: r.get(1)?, reason: r.get(2)?, created_at: r.get(3)?, added_to_survivor: false })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for t in &mut detail.tags {
        t.added_to_survivor = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![survivor, t.tag, t.source, shop_id, t.reason, t.created_at])?
            == 1;
    }
    tx.prepare_cached("DELETE FROM tags WHERE customer_id = ?1")?.execute([merged])?;

    let mut stmt = tx.prepare_cached("SELECT model, value, label, explanation, scored_at FROM scores WHERE customer_id = ?1")?;
    detail.scores = stmt
        .query_map([merged], |r| {
            Ok(MovedScore {
                model: r.get(0)?,
                value: r.get(1)?,
                label: r.get(2)?,
                explanation: r.get(3)?,
                scored_at: r.get(4)?,
                added_to_survivor: false,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for sc in &mut detail.scores {
        sc.added_to_survivor = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![survivor, sc.model, shop_id, sc.value, sc.label, sc.explanation, sc.scored_at])?
            == 1;
    }
    tx.prepare_cached("DELETE FROM scores WHERE customer_id = ?1")?.execute([merged])?;

    detail.consents = merge_consents(tx, shop_id, survivor, merged)?;

    // The survivor keeps its own profile and takes what it lacks from the merged side.
    for field in PROFILE_FIELDS {
        let filled = tx.execute(
            &format!(
                "UPDATE customers SET {field} = (SELECT {field} FROM customers WHERE id = ?2)
                 WHERE id = ?1 AND {field} IS NULL AND (SELECT {field} FROM customers WHERE id = ?2) IS NOT NULL"
            ),
            [survivor, merged],
        )?;
        if filled == 1 {
            detail.filled_fields.push(field.to_owned());
        }
    }
    let mut survivor_attrs = attributes(tx, survivor)?;
    for (k, v) in attributes(tx, merged)? {
        if !survivor_attrs.contains_key(&k) {
            detail.filled_attributes.push(k.clone());
            survivor_attrs.insert(k, v);
        }
    }
    if !detail.filled_attributes.is_empty() {
        set_attributes(tx, survivor, survivor_attrs)?;
    }

    tx.execute("UPDATE customers SET merged_into = ?1, updated_at = ?2 WHERE id = ?3", params![survivor, to_ms(now), merged])?;
    // The tombstone keeps no orders, so its stats fall to zero with the recomputation.
    recompute_stats(tx, survivor)?;
    recompute_stats(tx, merged)?;
    tx.execute("UPDATE customers SET updated_at = ?1 WHERE id = ?2", params![to_ms(now), survivor])?;

    let detail_text = serde_json::to_string(&detail).map_err(anyhow::Error::from)?;
    tx.execute(
        "INSERT INTO merges (shop_id, survivor_id, merged_id, reason, actor, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![shop_id, survivor, merged, reason, actor.label, detail_text, to_ms(now)],
    )?;
    let merge_id = tx.last_insert_rowid();
    let moved: Vec<_> = detail.identities.iter().map(|(k, v, _)| json!({"kind": k, "value": v})).collect();
    events::append(
        tx,
        shop_id,
        "customer.merged",
        Some(survivor),
        &json!({"merge_id": merge_id, "survivor_id": survivor, "merged_id": merged, "reason": reason, "identities": moved}),
        now,
    )?;
    audit::record(
        tx,
        Some(shop_id),
        actor,
        "customer.merge",
        Some(&format!("customer:{survivor}")),
        json!({"merge_id": merge_id, "merged_id": merged}),
        now,
    )?;
    Ok(merge_id)
}

/// Recompute a customer's stats from their orders and refunds.
pub(crate) fn recompute_stats(tx: &Connection, customer_id: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE customers SET
            total_spent = (SELECT COALESCE(SUM(amount - refunded_amount), 0) FROM orders WHERE customer_id = ?1),
            order_count = (SELECT COUNT(*) FROM orders WHERE customer_id = ?1 AND status != 'refunded'),
            first_order_at = (SELECT MIN(paid_at) FROM orders WHERE customer_id = ?1 AND status != 'refunded'),
            last_order_at = (SELECT MAX(paid_at) FROM orders WHERE customer_id = ?1 AND status != 'refunded'),
            refund_count = (SELECT COUNT(*) FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.customer_id = ?1),
            refund_amount = (SELECT COALESCE(SUM(refunded_amount), 0) FROM orders WHERE customer_id = ?1)
         WHERE id = ?1",
    )?
    .execute([customer_id])?;
    Ok(())
}

fn row_to_merge(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Merge, String)> {
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

const MERGE_COLUMNS: &str = "id, survivor_id, merged_id, reason, actor, detail, created_at, unmerged_at, unmerged_by";

fn with_identities((mut merge, detail): (Merge, String)) -> Merge {
    let detail: MergeDetail = serde_json::from_str(&detail).unwrap_or_default();
    merge.identities = detail
        .identities
        .into_iter()
        .map(|(kind, value, created_at)| IdentityView { kind, value, created_at: from_ms(created_at) })
        .collect();
    merge
}

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
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.into_iter().map(with_identities).collect())
        })
    }

    /// Undo a merge: the merged customer is restored with the identifiers and records that came from it.
    pub fn unmerge(&self, shop_id: i64, merge_id: i64, actor: &Actor) -> Result<Merge> {
        let now = Utc::now();
        self.write(|tx| {
            let (merge, detail_text) = tx
                .query_row(&format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?1 AND shop_id = ?2"), [merge_id, shop_id], row_to_merge)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("merge {merge_id}")))?;
            if merge.unmerged_at.is_some() {
                return Err(StoreError::Conflict(format!("merge {merge_id} was already undone")));
            }
            let (survivor, merged) = (merge.survivor_id, merge.merged_id);
            let survivor_into: Option<i64> = tx.query_row("SELECT merged_into FROM customers WHERE id = ?1", [survivor], |r| r.get(0))?;
            if let Some(into) = survivor_into {
                return Err(StoreError::Conflict(format!(
                    "customer {survivor} has since been merged into customer {into}; undo that merge first"
                )));
            }
            let detail: MergeDetail = serde_json::from_str(&detail_text).map_err(anyhow::Error::from)?;

            for (kind, value, _) in &detail.identities {
                tx.prepare_cached("UPDATE identities SET customer_id = ?1 WHERE shop_id = ?2 AND kind = ?3 AND value = ?4 AND customer_id = ?5")?
                    .execute(params![merged, shop_id, kind, value, survivor])?;
            }
            for id in &detail.orders {
                tx.prepare_cached("UPDATE orders SET customer_id = ?1 WHERE id = ?2 AND customer_id = ?3")?.execute([merged, *id, survivor])?;
            }
            for id in &detail.behaviours {
                tx.prepare_cached("UPDATE behaviours SET customer_id = ?1 WHERE id = ?2 AND customer_id = ?3")?.execute([merged, *id, survivor])?;
            }
            for id in &detail.points {
                tx.prepare_cached("UPDATE points_ledger SET customer_id = ?1 WHERE id = ?2 AND customer_id = ?3")?.execute([merged, *id, survivor])?;
            }
            ledger::rebuild(&Sql(tx), survivor)?;
            ledger::rebuild(&Sql(tx), merged)?;
            for t in &detail.tags {
                if t.added_to_survivor {
                    tx.prepare_cached("DELETE FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = ?3")?.execute(params![survivor, t.tag, t.source])?;
                }
                tx.prepare_cached("INSERT OR IGNORE INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                    .execute(params![merged, t.tag, t.source, shop_id, t.reason, t.created_at])?;
            }
            for s in &detail.scores {
                if s.added_to_survivor {
                    tx.prepare_cached("DELETE FROM scores WHERE customer_id = ?1 AND model = ?2")?.execute(params![survivor, s.model])?;
                }
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![merged, s.model, shop_id, s.value, s.label, s.explanation, s.scored_at])?;
            }
            // Consents the survivor took go back to what it had, unless they were changed since.
            for c in &detail.consents {
                if consent(tx, survivor, &c.channel)?.as_ref() == Some(&c.after) {
                    set_consent(tx, shop_id, survivor, &c.channel, c.before.as_ref())?;
                }
            }
            // Fields the survivor took from the merged side go back to empty, unless they were changed since.
            for field in &detail.filled_fields {
                if !PROFILE_FIELDS.contains(&field.as_str()) {
                    continue;
                }
                tx.execute(
                    &format!("UPDATE customers SET {field} = NULL WHERE id = ?1 AND {field} IS (SELECT {field} FROM customers WHERE id = ?2)"),
                    [survivor, merged],
                )?;
            }
            if !detail.filled_attributes.is_empty() {
                let mut attrs = attributes(tx, survivor)?;
                let merged_attrs = attributes(tx, merged)?;
                for k in &detail.filled_attributes {
                    if attrs.get(k) == merged_attrs.get(k) {
                        attrs.remove(k);
                    }
                }
                set_attributes(tx, survivor, attrs)?;
            }

            tx.execute("UPDATE customers SET merged_into = NULL, updated_at = ?1 WHERE id = ?2", params![to_ms(now), merged])?;
            tx.execute("UPDATE customers SET updated_at = ?1 WHERE id = ?2", params![to_ms(now), survivor])?;
            recompute_stats(tx, survivor)?;
            recompute_stats(tx, merged)?;
            tx.execute("UPDATE merges SET unmerged_at = ?1, unmerged_by = ?2 WHERE id = ?3", params![to_ms(now), actor.label, merge_id])?;
            events::append(tx, shop_id, "customer.unmerged", Some(merged), &json!({"merge_id": merge_id, "survivor_id": survivor, "merged_id": merged}), now)?;
            audit::record(tx, Some(shop_id), actor, "customer.unmerge", Some(&format!("customer:{merged}")), json!({"merge_id": merge_id}), now)?;
            let row = tx.query_row(&format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?1"), [merge_id], row_to_merge)?;
            Ok(with_identities(row))
        })
    }
}
