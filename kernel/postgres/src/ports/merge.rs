//! The ports of merges on PostgreSQL: the statements merges ran on SQLite, the record
//! kept as JSON in `merges.detail`.

use chrono::{DateTime, Utc};
use kith_core::ports::{ConsentRow, IdentityRow, MergeRead, MergeRecord, MergeWrite, MovedScore, MovedTag, NewMerge};
use kith_domain::model::Merge;
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

const MERGE_COLUMNS: &str = "id, survivor_id, merged_id, reason, actor, detail, created_at, unmerged_at, unmerged_by";

/// A row of [`MERGE_COLUMNS`]: the merge as the API shows it, and its record's JSON.
fn row_to_merge(r: &Row) -> Result<(Merge, String)> {
    Ok((
        Merge {
            id: get(r, 0)?,
            survivor_id: get(r, 1)?,
            merged_id: get(r, 2)?,
            reason: get(r, 3)?,
            actor: get(r, 4)?,
            created_at: time(get(r, 6)?)?,
            identities: Vec::new(),
            unmerged_at: get::<Option<i64>>(r, 7)?.map(time).transpose()?,
            unmerged_by: get(r, 8)?,
        },
        get(r, 5)?,
    ))
}

fn consent_row(r: &Row, first: usize) -> Result<ConsentRow> {
    Ok(ConsentRow { status: get(r, first)?, source: get(r, first + 1)?, updated_at: time(get(r, first + 2)?)? })
}

impl Pg<'_> {
    fn merge_ids_of(&self, shop_id: i64, statement: &str, customer_id: i64) -> Result<Vec<i64>> {
        self.query(statement, &[&shop_id, &customer_id])?.iter().map(|r| get(r, 0)).collect()
    }
}

impl MergeRead for Pg<'_> {
    // Ordered as SQLite's index on the customer gives them.
    fn order_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>> {
        self.merge_ids_of(shop_id, "SELECT id FROM orders WHERE shop_id = $1 AND customer_id = $2 ORDER BY paid_at, id", customer_id)
    }

    fn behaviour_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>> {
        self.merge_ids_of(
            shop_id,
            "SELECT id FROM behaviours WHERE shop_id = $1 AND customer_id = $2 ORDER BY occurred_at, id",
            customer_id,
        )
    }

    fn ledger_ids(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>> {
        self.merge_ids_of(shop_id, "SELECT id FROM points_ledger WHERE shop_id = $1 AND customer_id = $2 ORDER BY id", customer_id)
    }

    fn tags(&self, shop_id: i64, customer_id: i64) -> Result<Vec<MovedTag>> {
        let rows = self.query(
            "SELECT tag, source, reason, created_at FROM tags WHERE shop_id = $1 AND customer_id = $2 ORDER BY tag, source",
            &[&shop_id, &customer_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(MovedTag {
                    tag: get(r, 0)?,
                    source: get(r, 1)?,
                    reason: get(r, 2)?,
                    created_at: time(get(r, 3)?)?,
                    added_to_survivor: false,
                })
            })
            .collect()
    }

    fn scores(&self, shop_id: i64, customer_id: i64) -> Result<Vec<MovedScore>> {
        let rows = self.query(
            "SELECT model, value, label, explanation, scored_at FROM scores WHERE shop_id = $1 AND customer_id = $2 ORDER BY model",
            &[&shop_id, &customer_id],
        )?;
        rows.iter()
            .map(|r| {
                Ok(MovedScore {
                    model: get(r, 0)?,
                    value: get(r, 1)?,
                    label: get(r, 2)?,
                    explanation: get(r, 3)?,
                    scored_at: time(get(r, 4)?)?,
                    added_to_survivor: false,
                })
            })
            .collect()
    }

    fn consents(&self, shop_id: i64, customer_id: i64) -> Result<Vec<(String, ConsentRow)>> {
        let rows = self.query(
            "SELECT channel, status, source, updated_at FROM consents WHERE shop_id = $1 AND customer_id = $2 ORDER BY channel",
            &[&shop_id, &customer_id],
        )?;
        rows.iter().map(|r| Ok((get(r, 0)?, consent_row(r, 1)?))).collect()
    }

    fn consent(&self, shop_id: i64, customer_id: i64, channel: &str) -> Result<Option<ConsentRow>> {
        let row = self.query_opt(
            "SELECT status, source, updated_at FROM consents WHERE shop_id = $1 AND customer_id = $2 AND channel = $3",
            &[&shop_id, &customer_id, &channel],
        )?;
        row.map(|r| consent_row(&r, 0)).transpose()
    }

    fn merged_into(&self, shop_id: i64, customer_id: i64) -> Result<Option<i64>> {
        let row = self.query_one("SELECT merged_into FROM customers WHERE shop_id = $1 AND id = $2", &[&shop_id, &customer_id])?;
        get(&row, 0)
    }

    fn merge(&self, shop_id: i64, merge_id: i64) -> Result<Option<(Merge, MergeRecord)>> {
        let sql = format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = $1 AND shop_id = $2");
        let Some(row) = self.query_opt(&sql, &[&merge_id, &shop_id])? else { return Ok(None) };
        let (merge, detail) = row_to_merge(&row)?;
        let record: MergeRecord = serde_json::from_str(&detail).map_err(anyhow::Error::from)?;
        Ok(Some((merge, record)))
    }

    fn customer_exists(&self, shop_id: i64, customer_id: i64) -> Result<bool> {
        let found = self.query_opt("SELECT id FROM customers WHERE id = $1 AND shop_id = $2", &[&customer_id, &shop_id])?;
        Ok(found.is_some())
    }

    fn involving(&self, shop_id: i64, customer_id: i64) -> Result<Vec<(Merge, MergeRecord)>> {
        let sql =
            format!("SELECT {MERGE_COLUMNS} FROM merges WHERE shop_id = $1 AND (survivor_id = $2 OR merged_id = $2) ORDER BY id DESC");
        let rows = self.query(&sql, &[&shop_id, &customer_id])?;
        rows.iter()
            .map(|r| {
                let (merge, detail) = row_to_merge(r)?;
                let record: MergeRecord = serde_json::from_str(&detail).unwrap_or_default();
                Ok((merge, record))
            })
            .collect()
    }
}

impl MergeWrite for Pg<'_> {
    fn move_identities(&self, shop_id: i64, from: i64, to: i64) -> Result<()> {
        self.execute("UPDATE identities SET customer_id = $2 WHERE shop_id = $1 AND customer_id = $3", &[&shop_id, &to, &from])?;
        Ok(())
    }

    fn move_orders(&self, shop_id: i64, from: i64, to: i64) -> Result<()> {
        self.execute("UPDATE orders SET customer_id = $2 WHERE shop_id = $1 AND customer_id = $3", &[&shop_id, &to, &from])?;
        Ok(())
    }

    fn move_behaviours(&self, shop_id: i64, from: i64, to: i64) -> Result<()> {
        self.execute("UPDATE behaviours SET customer_id = $2 WHERE shop_id = $1 AND customer_id = $3", &[&shop_id, &to, &from])?;
        Ok(())
    }

    fn move_ledger(&self, shop_id: i64, from: i64, to: i64) -> Result<()> {
        self.execute("UPDATE points_ledger SET customer_id = $2 WHERE shop_id = $1 AND customer_id = $3", &[&shop_id, &to, &from])?;
        Ok(())
    }

    fn return_identities(&self, shop_id: i64, identities: &[IdentityRow], from: i64, to: i64) -> Result<()> {
        if identities.is_empty() {
            return Ok(());
        }
        let kinds: Vec<&str> = identities.iter().map(|i| i.kind.as_str()).collect();
        let values: Vec<&str> = identities.iter().map(|i| i.value.as_str()).collect();
        self.execute(
            "UPDATE identities i SET customer_id = $1 FROM unnest($3::TEXT[], $4::TEXT[]) AS r (kind, value)
             WHERE i.shop_id = $2 AND i.kind = r.kind AND i.value = r.value AND i.customer_id = $5",
            &[&to, &shop_id, &kinds, &values, &from],
        )?;
        Ok(())
    }

    fn return_orders(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()> {
        self.merge_return_each(
            shop_id,
            "UPDATE orders SET customer_id = $2 WHERE shop_id = $1 AND id = ANY($3) AND customer_id = $4",
            ids,
            from,
            to,
        )
    }

    fn return_behaviours(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()> {
        self.merge_return_each(
            shop_id,
            "UPDATE behaviours SET customer_id = $2 WHERE shop_id = $1 AND id = ANY($3) AND customer_id = $4",
            ids,
            from,
            to,
        )
    }

    fn return_ledger(&self, shop_id: i64, ids: &[i64], from: i64, to: i64) -> Result<()> {
        self.merge_return_each(
            shop_id,
            "UPDATE points_ledger SET customer_id = $2 WHERE shop_id = $1 AND id = ANY($3) AND customer_id = $4",
            ids,
            from,
            to,
        )
    }

    fn add_tag(&self, shop_id: i64, customer_id: i64, t: &MovedTag) -> Result<bool> {
        let added = self.execute(
            "INSERT INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (shop_id, customer_id, tag, source) DO NOTHING",
            &[&customer_id, &t.tag, &t.source, &shop_id, &t.reason, &millis(t.created_at)],
        )?;
        Ok(added == 1)
    }

    fn remove_tag(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<()> {
        self.execute(
            "DELETE FROM tags WHERE shop_id = $1 AND customer_id = $2 AND tag = $3 AND source = $4",
            &[&shop_id, &customer_id, &tag, &source],
        )?;
        Ok(())
    }

    fn clear_tags(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        self.execute("DELETE FROM tags WHERE shop_id = $1 AND customer_id = $2", &[&shop_id, &customer_id])?;
        Ok(())
    }

    fn add_score(&self, shop_id: i64, customer_id: i64, s: &MovedScore) -> Result<bool> {
        let added = self.execute(
            "INSERT INTO scores (customer_id, model, shop_id, value, label, explanation, scored_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (shop_id, customer_id, model) DO NOTHING",
            &[&customer_id, &s.model, &shop_id, &s.value, &s.label, &s.explanation, &millis(s.scored_at)],
        )?;
        Ok(added == 1)
    }

    fn remove_score(&self, shop_id: i64, customer_id: i64, model: &str) -> Result<()> {
        self.execute("DELETE FROM scores WHERE shop_id = $1 AND customer_id = $2 AND model = $3", &[&shop_id, &customer_id, &model])?;
        Ok(())
    }

    fn clear_scores(&self, shop_id: i64, customer_id: i64) -> Result<()> {
        self.execute("DELETE FROM scores WHERE shop_id = $1 AND customer_id = $2", &[&shop_id, &customer_id])?;
        Ok(())
    }

    fn set_consent(&self, shop_id: i64, customer_id: i64, channel: &str, consent: Option<&ConsentRow>) -> Result<()> {
        match consent {
            Some(c) => self.execute(
                "INSERT INTO consents (customer_id, channel, shop_id, status, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (shop_id, customer_id, channel)
                 DO UPDATE SET status = EXCLUDED.status, source = EXCLUDED.source, updated_at = EXCLUDED.updated_at",
                &[&customer_id, &channel, &shop_id, &c.status, &c.source, &millis(c.updated_at)],
            )?,
            None => self.execute(
                "DELETE FROM consents WHERE shop_id = $1 AND customer_id = $2 AND channel = $3",
                &[&shop_id, &customer_id, &channel],
            )?,
        };
        Ok(())
    }

    fn set_merged_into(&self, shop_id: i64, customer_id: i64, into: Option<i64>, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE customers SET merged_into = $1, updated_at = $2 WHERE shop_id = $3 AND id = $4",
            &[&into, &millis(at), &shop_id, &customer_id],
        )?;
        Ok(())
    }

    fn insert(&self, m: &NewMerge<'_>) -> Result<i64> {
        let detail = serde_json::to_string(m.record).map_err(anyhow::Error::from)?;
        let row = self.query_one(
            "INSERT INTO merges (shop_id, survivor_id, merged_id, reason, actor, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id",
            &[&m.shop_id, &m.survivor_id, &m.merged_id, &m.reason, &m.actor, &detail, &millis(m.at)],
        )?;
        get(&row, 0)
    }

    fn mark_unmerged(&self, shop_id: i64, merge_id: i64, actor: &str, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE merges SET unmerged_at = $1, unmerged_by = $2 WHERE shop_id = $3 AND id = $4",
            &[&millis(at), &actor, &shop_id, &merge_id],
        )?;
        Ok(())
    }
}

impl Pg<'_> {
    /// Give rows `ids` back from `from` to `to` in one statement (`$1` the shop, `$2` `to`,
    /// `$3` the ids, `$4` `from`).
    fn merge_return_each(&self, shop_id: i64, statement: &str, ids: &[i64], from: i64, to: i64) -> Result<()> {
        if !ids.is_empty() {
            self.execute(statement, &[&shop_id, &to, &ids, &from])?;
        }
        Ok(())
    }
}
