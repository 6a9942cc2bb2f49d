//! The ports of merges on SQLite: the statements merges ran before, the record kept
//! as JSON in `merges.detail`.
//!
//! Every statement is scoped by its shop. On tags and scores the shop's term is written
//! `+shop_id`, which no index answers: their primary key (the customer first) does, not
//! the shop's index of every tag or score.

use chrono::{DateTime, Utc};
use kith_core::ports::{ConsentRow, IdentityRow, MergeRead, MergeRecord, MergeWrite, MovedScore, MovedTag, NewMerge};
use kith_domain::model::Merge;
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, sql};
use crate::merge::{MERGE_COLUMNS, row_to_merge};
use crate::{from_ms, to_ms};

impl Sql<'_> {
    fn ids_of(&self, shop_id: i64, statement: &str, customer_id: i64) -> CoreResult<Vec<i64>> {
        sql(self.0.prepare_cached(statement).and_then(|mut s| s.query_map([shop_id, customer_id], |r| r.get(0))?.collect()))
    }

    /// Run one cached statement for each id (`?1` the shop, `?2` `to`, `?3` the id, `?4` `from`).
    fn return_each(&self, shop_id: i64, statement: &str, ids: &[i64], from: i64, to: i64) -> CoreResult<()> {
        for id in ids {
            sql(self.0.prepare_cached(statement).and_then(|mut s| s.execute([shop_id, to, *id, from])))?;
        }
        Ok(())
    }
}

impl MergeRead for Sql<'_> {
    fn order_ids(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<i64>> {
        self.ids_of(shop_id, "SELECT id FROM orders WHERE shop_id = ?1 AND customer_id = ?2", customer_id)
    }

    fn behaviour_ids(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<i64>> {
        self.ids_of(shop_id, "SELECT id FROM behaviours WHERE shop_id = ?1 AND customer_id = ?2", customer_id)
    }

    fn ledger_ids(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<i64>> {
        self.ids_of(shop_id, "SELECT id FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2", customer_id)
    }

    fn tags(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<MovedTag>> {
        sql(self.0.prepare_cached("SELECT tag, source, reason, created_at FROM tags WHERE +shop_id = ?1 AND customer_id = ?2").and_then(
            |mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    Ok(MovedTag {
                        tag: r.get(0)?,
                        source: r.get(1)?,
                        reason: r.get(2)?,
                        created_at: from_ms(r.get(3)?),
                        added_to_survivor: false,
                    })
                })?
                .collect()
            },
        ))
    }

    fn scores(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<MovedScore>> {
        sql(self
            .0
            .prepare_cached("SELECT model, value, label, explanation, scored_at FROM scores WHERE +shop_id = ?1 AND customer_id = ?2")
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    Ok(MovedScore {
                        model: r.get(0)?,
                        value: r.get(1)?,
                        label: r.get(2)?,
                        explanation: r.get(3)?,
                        scored_at: from_ms(r.get(4)?),
                        added_to_survivor: false,
                    })
                })?
                .collect()
            }))
    }

    fn consents(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<(String, ConsentRow)>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT channel, status, source, updated_at FROM consents WHERE shop_id = ?1 AND customer_id = ?2 ORDER BY channel",
            )
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    Ok((r.get(0)?, ConsentRow { status: r.get(1)?, source: r.get(2)?, updated_at: from_ms(r.get(3)?) }))
                })?
                .collect()
            }))
    }

    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> CoreResult<Option<ConsentRow>> {
        sql(self
            .0
            .prepare_cached("SELECT status, source, updated_at FROM consents WHERE shop_id = ?1 AND customer_id = ?2 AND channel = ?3")
            .and_then(|mut s| {
                s.query_row(params![shop_id, customer_id, channel], |r| {
                    Ok(ConsentRow { status: r.get(0)?, source: r.get(1)?, updated_at: from_ms(r.get(2)?) })
                })
                .optional()
            }))
    }

    fn merged_into(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT merged_into FROM customers WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row([shop_id, customer_id], |r| r.get(0))))
    }

    fn merge(&self, shop_id: i64, merge_id: i64) -> CoreResult<Option<(Merge, MergeRecord)>> {
        let found = sql(self
            .0
            .prepare_cached(&format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?1 AND shop_id = ?2"))
            .and_then(|mut s| s.query_row([merge_id, shop_id], row_to_merge).optional()))?;
        let Some((merge, detail)) = found else { return Ok(None) };
        let record: MergeRecord = serde_json::from_str(&detail).map_err(anyhow::Error::from)?;
        Ok(Some((merge, record)))
    }

    fn customer_exists(&self, shop_id: i64, customer_id: i64) -> CoreResult<bool> {
        let found: Option<i64> = sql(self
            .0
            .query_row("SELECT id FROM customers WHERE id = ?1 AND shop_id = ?2", [customer_id, shop_id], |r| r.get(0))
            .optional())?;
        Ok(found.is_some())
    }

    fn involving(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<(Merge, MergeRecord)>> {
        let rows: Vec<(Merge, String)> = sql(self
            .0
            .prepare_cached(&format!(
                "SELECT {MERGE_COLUMNS} FROM merges WHERE shop_id = ?1 AND (survivor_id = ?2 OR merged_id = ?2) ORDER BY id DESC"
            ))
            .and_then(|mut stmt| stmt.query_map([shop_id, customer_id], row_to_merge)?.collect()))?;
        Ok(rows
            .into_iter()
            .map(|(merge, detail)| {
                let record: MergeRecord = serde_json::from_str(&detail).unwrap_or_default();
                (merge, record)
            })
            .collect())
    }
}

impl MergeWrite for Sql<'_> {
    fn move_identities(&self, shop_id: i64, from: i64, to: i64) -> CoreResult<()> {
        self.change("UPDATE identities SET customer_id = ?2 WHERE shop_id = ?1 AND customer_id = ?3", [shop_id, to, from])?;
        Ok(())
    }

    fn move_orders(&self, shop_id: i64, from: i64, to: i64) -> CoreResult<()> {
        self.change("UPDATE orders SET customer_id = ?2 WHERE shop_id = ?1 AND customer_id = ?3", [shop_id, to, from])?;
        Ok(())
    }

    fn move_behaviours(&self, shop_id: i64, from: i64, to: i64) -> CoreResult<()> {
        self.change("UPDATE behaviours SET customer_id = ?2 WHERE shop_id = ?1 AND customer_id = ?3", [shop_id, to, from])?;
        Ok(())
    }

    fn move_ledger(&self, shop_id: i64, from: i64, to: i64) -> CoreResult<()> {
        self.change("UPDATE points_ledger SET customer_id = ?2 WHERE shop_id = ?1 AND customer_id = ?3", [shop_id, to, from])?;
        Ok(())
    }

    fn return_identities(&self, shop_id: i64, identities: &[IdentityRow], from: i64, to: i64) -> CoreResult<()> {
        for i in identities {
            self.change(
                "UPDATE identities SET customer_id = ?1 WHERE shop_id = ?2 AND kind = ?3 AND value = ?4 AND customer_id = ?5",
                params![to, shop_id, i.kind, i.value, from],
            )?;
        }
        Ok(())
    }

    fn return_orders(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> CoreResult<()> {
        self.return_each(shop_id, "UPDATE orders SET customer_id = ?2 WHERE shop_id = ?1 AND id = ?3 AND customer_id = ?4", ids, from, to)
    }

    fn return_behaviours(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> CoreResult<()> {
        self.return_each(
            shop_id,
            "UPDATE behaviours SET customer_id = ?2 WHERE shop_id = ?1 AND id = ?3 AND customer_id = ?4",
            ids,
            from,
            to,
        )
    }

    fn return_ledger(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> CoreResult<()> {
        self.return_each(
            shop_id,
            "UPDATE points_ledger SET customer_id = ?2 WHERE shop_id = ?1 AND id = ?3 AND customer_id = ?4",
            ids,
            from,
            to,
        )
    }

    fn add_tag(&self, shop_id: i64, customer_id: i64, t: &MovedTag) -> CoreResult<bool> {
        let added = self.change(
            "INSERT OR IGNORE INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![customer_id, t.tag, t.source, shop_id, t.reason, to_ms(t.created_at)],
        )?;
        Ok(added == 1)
    }

    fn remove_tag(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> CoreResult<()> {
        self.change(
            "DELETE FROM tags WHERE +shop_id = ?1 AND customer_id = ?2 AND tag = ?3 AND source = ?4",
            params![shop_id, customer_id, tag, source],
        )?;
        Ok(())
    }

    fn clear_tags(&self, shop_id: i64, customer_id: i64) -> CoreResult<()> {
        self.change("DELETE FROM tags WHERE +shop_id = ?1 AND customer_id = ?2", [shop_id, customer_id])?;
        Ok(())
    }

    fn add_score(&self, shop_id: i64, customer_id: i64, s: &MovedScore) -> CoreResult<bool> {
        let added = self.change(
            "INSERT OR IGNORE INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![customer_id, s.model, shop_id, s.value, s.label, s.explanation, to_ms(s.scored_at)],
        )?;
        Ok(added == 1)
    }

    fn remove_score(&self, shop_id: i64, customer_id: i64, model: &str) -> CoreResult<()> {
        self.change("DELETE FROM scores WHERE +shop_id = ?1 AND customer_id = ?2 AND model = ?3", params![shop_id, customer_id, model])?;
        Ok(())
    }

    fn clear_scores(&self, shop_id: i64, customer_id: i64) -> CoreResult<()> {
        self.change("DELETE FROM scores WHERE +shop_id = ?1 AND customer_id = ?2", [shop_id, customer_id])?;
        Ok(())
    }

    fn set_consent(&self, shop_id: i64, customer_id: i64, channel: &str, consent: Option<&ConsentRow>) -> CoreResult<()> {
        match consent {
            Some(c) => self.change(
                "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, channel) DO UPDATE SET status = excluded.status, source = excluded.source, updated_at = excluded.updated_at",
                params![customer_id, channel, shop_id, c.status, c.source, to_ms(c.updated_at)],
            )?,
            None => self.change(
                "DELETE FROM consents WHERE shop_id = ?1 AND customer_id = ?2 AND channel = ?3",
                params![shop_id, customer_id, channel],
            )?,
        };
        Ok(())
    }

    fn set_merged_into(&self, shop_id: i64, customer_id: i64, into: Option<i64>, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "UPDATE customers SET merged_into = ?1, updated_at = ?2 WHERE shop_id = ?3 AND id = ?4",
            params![into, to_ms(at), shop_id, customer_id],
        )?;
        Ok(())
    }

    fn insert(&self, m: &NewMerge<'_>) -> CoreResult<i64> {
        let detail = serde_json::to_string(m.record).map_err(anyhow::Error::from)?;
        self.change(
            "INSERT INTO merges (shop_id, survivor_id, merged_id, reason, actor, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![m.shop_id, m.survivor_id, m.merged_id, m.reason, m.actor, detail, to_ms(m.at)],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    fn mark_unmerged(&self, shop_id: i64, merge_id: i64, actor: &str, at: DateTime<Utc>) -> CoreResult<()> {
        self.change(
            "UPDATE merges SET unmerged_at = ?1, unmerged_by = ?2 WHERE shop_id = ?3 AND id = ?4",
            params![to_ms(at), actor, shop_id, merge_id],
        )?;
        Ok(())
    }
}
