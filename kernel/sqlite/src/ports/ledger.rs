//! The points ledger's port on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{Batch, Expired, LedgerRead, LedgerWrite, Movement, NewEntry, OrderPoints, Sourced};
use kith_domain::loyalty::{ExpiringPoints, LedgerEntry, LedgerKind, TierChange};
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, core, sql};
use crate::loyalty::{LEDGER_COLUMNS, row_to_entry};
use crate::{from_ms, loyalty, to_ms};

impl LedgerRead for Sql<'_> {
    fn balance(&self, shop_id: i64, customer_id: i64) -> CoreResult<i64> {
        core(loyalty::balance(self.0, shop_id, customer_id))
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> CoreResult<Option<Sourced>> {
        sql(self
            .0
            .prepare_cached("SELECT id, customer_id, points FROM points_ledger WHERE shop_id = ?1 AND source = ?2 AND source_key = ?3")
            .and_then(|mut s| {
                s.query_row(params![shop_id, source, source_key], |r| {
                    Ok(Sourced { id: r.get(0)?, customer_id: r.get(1)?, points: r.get(2)? })
                })
                .optional()
            }))
    }

    fn open_batches(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<Batch>> {
        self.batches_where(
            "SELECT id, remaining FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2 AND remaining > 0 ORDER BY created_at, id",
            shop_id,
            customer_id,
        )
    }

    fn batches(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<Batch>> {
        self.batches_where(
            "SELECT id, remaining FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2 AND points > 0 ORDER BY created_at, id",
            shop_id,
            customer_id,
        )
    }

    fn entries(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<Movement>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT id, kind, points, batch_id FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2 ORDER BY created_at, id",
            )
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    let kind: String = r.get(1)?;
                    Ok(Movement {
                        id: r.get(0)?,
                        kind: LedgerKind::parse(&kind).unwrap_or(LedgerKind::Adjust),
                        points: r.get(2)?,
                        batch_id: r.get(3)?,
                    })
                })?
                .collect()
            }))
    }

    fn order_points(&self, shop_id: i64, order_id: i64) -> CoreResult<OrderPoints> {
        sql(self
            .0
            .prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN kind = 'earn' THEN points END), 0), COALESCE(-SUM(CASE WHEN kind = 'clawback' THEN points END), 0)
                 FROM points_ledger WHERE shop_id = ?1 AND order_id = ?2",
            )
            .and_then(|mut s| s.query_row([shop_id, order_id], |r| Ok(OrderPoints { earned: r.get(0)?, clawed: r.get(1)? }))))
    }

    fn entry(&self, shop_id: i64, entry_id: i64) -> CoreResult<LedgerEntry> {
        core(loyalty::entry(self.0, shop_id, entry_id))
    }

    fn expired(&self, now: DateTime<Utc>, limit: usize) -> CoreResult<Vec<Expired>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT id, shop_id, customer_id, remaining FROM points_ledger
                 WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![to_ms(now), limit as i64], |r| {
                    Ok(Expired { batch_id: r.get(0)?, shop_id: r.get(1)?, customer_id: r.get(2)?, remaining: r.get(3)? })
                })?
                .collect()
            }))
    }

    fn customers_with_entries(&self, shop_id: i64) -> CoreResult<Vec<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT DISTINCT customer_id FROM points_ledger WHERE shop_id = ?1 ORDER BY customer_id")
            .and_then(|mut s| s.query_map([shop_id], |r| r.get(0))?.collect()))
    }

    fn page(&self, shop_id: i64, customer_id: i64, before: Option<i64>, limit: usize) -> CoreResult<Vec<LedgerEntry>> {
        sql(self
            .0
            .prepare_cached(&format!(
                "SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.shop_id = p.shop_id AND o.id = p.order_id
                 WHERE p.shop_id = ?1 AND p.customer_id = ?2 AND p.id < ?3 ORDER BY p.id DESC LIMIT ?4"
            ))
            .and_then(|mut s| {
                s.query_map(params![shop_id, customer_id, before.unwrap_or(i64::MAX), limit as i64], row_to_entry)?.collect()
            }))
    }

    fn expiring(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<ExpiringPoints>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT expires_at, SUM(remaining) FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2 AND remaining > 0 AND expires_at IS NOT NULL
                 GROUP BY expires_at ORDER BY expires_at LIMIT 50",
            )
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| Ok(ExpiringPoints { expires_at: from_ms(r.get(0)?), points: r.get(1)? }))?.collect()
            }))
    }

    fn tier(&self, shop_id: i64, customer_id: i64) -> CoreResult<Option<String>> {
        sql(self
            .0
            .prepare_cached("SELECT tier FROM customers WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.query_row([shop_id, customer_id], |r| r.get(0))))
    }

    fn tier_history(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<TierChange>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT from_tier, to_tier, reason, source, created_at FROM tier_history WHERE shop_id = ?1 AND customer_id = ?2 ORDER BY id DESC LIMIT 100",
            )
            .and_then(|mut s| {
                s.query_map([shop_id, customer_id], |r| {
                    Ok(TierChange { from: r.get(0)?, to: r.get(1)?, reason: r.get(2)?, source: r.get(3)?, at: from_ms(r.get(4)?) })
                })?
                .collect()
            }))
    }
}

impl Sql<'_> {
    fn batches_where(&self, query: &str, shop_id: i64, customer_id: i64) -> CoreResult<Vec<Batch>> {
        sql(self
            .0
            .prepare_cached(query)
            .and_then(|mut s| s.query_map([shop_id, customer_id], |r| Ok(Batch { id: r.get(0)?, remaining: r.get(1)? }))?.collect()))
    }
}

impl LedgerWrite for Sql<'_> {
    fn insert(&self, e: &NewEntry<'_>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO points_ledger (shop_id, customer_id, points, source, source_key, reason, expires_at, created_at, kind, remaining, order_id, batch_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.shop_id,
                    e.customer_id,
                    e.points,
                    e.source,
                    e.source_key,
                    e.reason,
                    e.expires_at.map(to_ms),
                    to_ms(e.at),
                    e.kind.as_str(),
                    e.remaining,
                    e.order_id,
                    e.batch_id
                ])
            }))?;
        Ok(self.0.last_insert_rowid())
    }

    fn take(&self, shop_id: i64, batch_id: i64, points: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE points_ledger SET remaining = remaining - ?3 WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![shop_id, batch_id, points])))?;
        Ok(())
    }

    fn set_remaining(&self, shop_id: i64, batch_id: i64, remaining: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE points_ledger SET remaining = ?3 WHERE shop_id = ?1 AND id = ?2 AND remaining != ?3")
            .and_then(|mut s| s.execute(params![shop_id, batch_id, remaining])))?;
        Ok(())
    }
}
