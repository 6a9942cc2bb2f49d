//! The tags' port on PostgreSQL.

use chrono::{DateTime, Utc};
use kith_core::ports::{CustomersWrite, TagSources, TagsRead, TagsWrite};
use kith_domain::model::Tag;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

impl TagsRead for Pg<'_> {
    fn held_by(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<bool> {
        let row = self.query_one(
            "SELECT EXISTS (SELECT 1 FROM tags WHERE shop_id = $4 AND customer_id = $1 AND tag = $2 AND source = $3)",
            &[&customer_id, &tag, &source, &shop_id],
        )?;
        get(&row, 0)
    }

    fn count_by(&self, shop_id: i64, customer_id: i64, source: &str) -> Result<i64> {
        let row = self.query_one(
            "SELECT COUNT(*) FROM tags WHERE shop_id = $3 AND customer_id = $1 AND source = $2",
            &[&customer_id, &source, &shop_id],
        )?;
        get(&row, 0)
    }

    fn get(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> Result<Tag> {
        let row = self.query_opt(
            "SELECT tag, source, reason, created_at FROM tags WHERE shop_id = $4 AND customer_id = $1 AND tag = $2 AND source = $3",
            &[&customer_id, &tag, &source, &shop_id],
        )?;
        let Some(row) = row else { return Err(kith_core::Error::NotFound(format!("tag {tag}"))) };
        Ok(Tag { tag: get(&row, 0)?, source: get(&row, 1)?, reason: get(&row, 2)?, created_at: time(get(&row, 3)?)? })
    }
}

impl TagsWrite for Pg<'_> {
    fn insert(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>, at: DateTime<Utc>) -> Result<bool> {
        let inserted = self.execute(
            "INSERT INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (shop_id, customer_id, tag, source) DO NOTHING",
            &[&customer_id, &tag, &source, &shop_id, &reason, &millis(at)],
        )?;
        Ok(inserted == 1)
    }

    fn reword(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>) -> Result<bool> {
        let reworded = self.execute(
            "UPDATE tags SET reason = $4
             WHERE shop_id = $5 AND customer_id = $1 AND tag = $2 AND source = $3 AND reason IS DISTINCT FROM $4",
            &[&customer_id, &tag, &source, &reason, &shop_id],
        )?;
        Ok(reworded == 1)
    }

    fn delete(&self, shop_id: i64, customer_id: i64, tag: &str, sources: TagSources<'_>) -> Result<Vec<String>> {
        let rows = match sources {
            TagSources::One(source) => self.query(
                "DELETE FROM tags WHERE shop_id = $4 AND customer_id = $1 AND tag = $2 AND source = $3 RETURNING source",
                &[&customer_id, &tag, &source, &shop_id],
            )?,
            // `ILIKE`: SQLite's `LIKE` ignores ASCII case.
            TagSources::ManualOrJourney => self.query(
                "DELETE FROM tags WHERE shop_id = $3 AND customer_id = $1 AND tag = $2 AND (source = 'manual' OR source ILIKE 'journey:%')
                 RETURNING source",
                &[&customer_id, &tag, &shop_id],
            )?,
        };
        rows.iter().map(|row| get(row, 0)).collect()
    }
}

impl CustomersWrite for Pg<'_> {
    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE customers SET updated_at = $1 WHERE shop_id = $3 AND id = $2 AND updated_at < $1",
            &[&millis(at), &customer_id, &shop_id],
        )?;
        Ok(())
    }
}
