//! The tags' port on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{CustomersWrite, TagSources, TagsRead, TagsWrite};
use kith_domain::model::Tag;
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, sql};
use crate::{from_ms, to_ms};

impl TagsRead for Sql<'_> {
    fn held_by(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> CoreResult<bool> {
        sql(self
            .0
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 AND shop_id = ?4)")
            .and_then(|mut s| s.query_row(params![customer_id, tag, source, shop_id], |r| r.get(0))))
    }

    fn count_by(&self, shop_id: i64, customer_id: i64, source: &str) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached("SELECT COUNT(*) FROM tags WHERE customer_id = ?1 AND source = ?2 AND +shop_id = ?3")
            .and_then(|mut s| s.query_row(params![customer_id, source, shop_id], |r| r.get(0))))
    }

    fn get(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str) -> CoreResult<Tag> {
        sql(self
            .0
            .query_row(
                "SELECT tag, source, reason, created_at FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 AND shop_id = ?4",
                params![customer_id, tag, source, shop_id],
                |r| Ok(Tag { tag: r.get(0)?, source: r.get(1)?, reason: r.get(2)?, created_at: from_ms(r.get(3)?) }),
            )
            .optional())?
        .ok_or_else(|| kith_core::Error::NotFound(format!("tag {tag}")))
    }
}

impl TagsWrite for Sql<'_> {
    fn insert(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>, at: DateTime<Utc>) -> CoreResult<bool> {
        let inserted = sql(self
            .0
            .prepare_cached(
                "INSERT INTO tags (customer_id, tag, source, shop_id, reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (customer_id, tag, source) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![customer_id, tag, source, shop_id, reason, to_ms(at)])))?;
        Ok(inserted == 1)
    }

    fn reword(&self, shop_id: i64, customer_id: i64, tag: &str, source: &str, reason: Option<&str>) -> CoreResult<bool> {
        let reworded = sql(self
            .0
            .prepare_cached(
                "UPDATE tags SET reason = ?4 WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 AND shop_id = ?5 AND reason IS NOT ?4",
            )
            .and_then(|mut s| s.execute(params![customer_id, tag, source, reason, shop_id])))?;
        Ok(reworded == 1)
    }

    fn delete(&self, shop_id: i64, customer_id: i64, tag: &str, sources: TagSources<'_>) -> CoreResult<Vec<String>> {
        sql(match sources {
            TagSources::One(source) => self
                .0
                .prepare_cached("DELETE FROM tags WHERE customer_id = ?1 AND tag = ?2 AND source = ?3 AND shop_id = ?4 RETURNING source")
                .and_then(|mut s| s.query_map(params![customer_id, tag, source, shop_id], |r| r.get(0))?.collect()),
            TagSources::ManualOrJourney => self
                .0
                .prepare_cached(
                    "DELETE FROM tags WHERE customer_id = ?1 AND tag = ?2 AND shop_id = ?3 AND (source = 'manual' OR source LIKE 'journey:%')
                     RETURNING source",
                )
                .and_then(|mut s| s.query_map(params![customer_id, tag, shop_id], |r| r.get(0))?.collect()),
        })
    }
}

impl CustomersWrite for Sql<'_> {
    fn touch(&self, shop_id: i64, customer_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE customers SET updated_at = ?1 WHERE id = ?2 AND shop_id = ?3 AND updated_at < ?1")
            .and_then(|mut s| s.execute(params![to_ms(at), customer_id, shop_id])))?;
        Ok(())
    }
}
