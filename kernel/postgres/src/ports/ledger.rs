//! The ledger ports on PostgreSQL.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::loyalty::{ExpiringPoints, LedgerEntry, LedgerKind, TierChange};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

/// An entry's columns as the API shows it; `p` the ledger, `o` its order (left joined).
const LEDGER_COLUMNS: &str =
    "p.id, p.kind, p.points, p.remaining, p.source, p.source_key, p.reason, o.external_id, p.expires_at, p.created_at";

fn row_to_entry(r: &Row) -> Result<LedgerEntry> {
    let points: i64 = get(r, 2)?;
    Ok(LedgerEntry {
        id: get(r, 0)?,
        kind: LedgerKind::parse(&get::<String>(r, 1)?).unwrap_or(LedgerKind::Adjust),
        points,
        remaining: (points > 0).then(|| get(r, 3)).transpose()?,
        source: get(r, 4)?,
        source_key: get(r, 5)?,
        reason: get(r, 6)?,
        order_id: get(r, 7)?,
        expires_at: get::<Option<i64>>(r, 8)?.map(time).transpose()?,
        created_at: time(get(r, 9)?)?,
    })
}

impl LedgerRead for Pg<'_> {
    fn balance(&self, shop_id: i64, customer_id: i64) -> Result<i64> {
        let row = self.query_one(
            "SELECT COALESCE(SUM(points), 0)::BIGINT FROM points_ledger WHERE shop_id = $1 AND customer_id = $2",
            &[&shop_id, &customer_id],
        )?;
        get(&row, 0)
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Sourced>> {
        self.query_opt(
            "SELECT id, customer_id, points FROM points_ledger WHERE shop_id = $1 AND source = $2 AND source_key = $3",
            &[&shop_id, &source, &source_key],
        )?
        .map(|r| Ok(Sourced { id: get(&r, 0)?, customer_id: get(&r, 1)?, points: get(&r, 2)? }))
        .transpose()
    }

    fn open_batches(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>> {
        self.batches_where(
            "SELECT id, remaining FROM points_ledger WHERE shop_id = $1 AND customer_id = $2 AND remaining > 0 ORDER BY created_at, id",
            shop_id,
            customer_id,
        )
    }

    fn batches(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>> {
        self.batches_where(
            "SELECT id, remaining FROM points_ledger WHERE shop_id = $1 AND customer_id = $2 AND points > 0 ORDER BY created_at, id",
            shop_id,
            customer_id,
        )
    }

    fn entries(&self, shop_id: i64, customer_id: i64) -> Result<Vec<Movement>> {
        self.query(
            "SELECT id, kind, points, batch_id FROM points_ledger WHERE shop_id = $1 AND customer_id = $2 ORDER BY created_at, id",
            &[&shop_id, &customer_id],
        )?
        .iter()
        .map(|r| {
            Ok(Movement {
                id: get(r, 0)?,
                kind: LedgerKind::parse(&get::<String>(r, 1)?).unwrap_or(LedgerKind::Adjust),
                points: get(r, 2)?,
                batch_id: get(r, 3)?,
            })
        })
        .collect()
    }

    fn order_points(&self, shop_id: i64, order_id: i64) -> Result<OrderPoints> {
        let r = self.query_one(
            "SELECT COALESCE(SUM(CASE WHEN kind = 'earn' THEN points END), 0)::BIGINT,
                    COALESCE(-SUM(CASE WHEN kind = 'clawback' THEN points END), 0)::BIGINT
             FROM points_ledger WHERE shop_id = $1 AND order_id = $2",
            &[&shop_id, &order_id],
        )?;
        Ok(OrderPoints { earned: get(&r, 0)?, clawed: get(&r, 1)? })
    }

    fn entry(&self, shop_id: i64, entry_id: i64) -> Result<LedgerEntry> {
        let r = self.query_one(
            &format!("SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.shop_id = p.shop_id AND o.id = p.order_id WHERE p.shop_id = $1 AND p.id = $2"),
            &[&shop_id, &entry_id],
        )?;
        row_to_entry(&r)
    }

    fn expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Expired>> {
        // expires_at is never NULL here: the order needs no NULLS clause. Ties by id, as
        // SQLite walks its index points_expiring (expires_at, then rowid).
        self.query(
            "SELECT id, shop_id, customer_id, remaining FROM points_ledger
             WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
            &[&millis(now), &(limit as i64)],
        )?
        .iter()
        .map(|r| Ok(Expired { batch_id: get(r, 0)?, shop_id: get(r, 1)?, customer_id: get(r, 2)?, remaining: get(r, 3)? }))
        .collect()
    }

    fn customers_with_entries(&self, shop_id: i64) -> Result<Vec<i64>> {
        self.query("SELECT DISTINCT customer_id FROM points_ledger WHERE shop_id = $1 ORDER BY customer_id", &[&shop_id])?
            .iter()
            .map(|r| get(r, 0))
            .collect()
    }

    fn page(&self, shop_id: i64, customer_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>> {
        self.query(
            &format!(
                "SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.shop_id = p.shop_id AND o.id = p.order_id
                 WHERE p.shop_id = $1 AND p.customer_id = $2 AND p.id < $3 ORDER BY p.id DESC LIMIT $4"
            ),
            &[&shop_id, &customer_id, &before.unwrap_or(i64::MAX), &(limit as i64)],
        )?
        .iter()
        .map(row_to_entry)
        .collect()
    }

    fn expiring(&self, shop_id: i64, customer_id: i64) -> Result<Vec<ExpiringPoints>> {
        self.query(
            "SELECT expires_at, SUM(remaining)::BIGINT FROM points_ledger
             WHERE shop_id = $1 AND customer_id = $2 AND remaining > 0 AND expires_at IS NOT NULL
             GROUP BY expires_at ORDER BY expires_at LIMIT 50",
            &[&shop_id, &customer_id],
        )?
        .iter()
        .map(|r| Ok(ExpiringPoints { expires_at: time(get(r, 0)?)?, points: get(r, 1)? }))
        .collect()
    }

    fn tier(&self, shop_id: i64, customer_id: i64) -> Result<Option<String>> {
        let r = self.query_one("SELECT tier FROM customers WHERE shop_id = $1 AND id = $2", &[&shop_id, &customer_id])?;
        get(&r, 0)
    }

    fn tier_history(&self, shop_id: i64, customer_id: i64) -> Result<Vec<TierChange>> {
        self.query(
            "SELECT from_tier, to_tier, reason, source, created_at FROM tier_history WHERE shop_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 100",
            &[&shop_id, &customer_id],
        )?
        .iter()
        .map(|r| Ok(TierChange { from: get(r, 0)?, to: get(r, 1)?, reason: get(r, 2)?, source: get(r, 3)?, at: time(get(r, 4)?)? }))
        .collect()
    }
}

impl Pg<'_> {
    fn batches_where(&self, query: &str, shop_id: i64, customer_id: i64) -> Result<Vec<Batch>> {
        self.query(query, &[&shop_id, &customer_id])?.iter().map(|r| Ok(Batch { id: get(r, 0)?, remaining: get(r, 1)? })).collect()
    }
}

impl LedgerWrite for Pg<'_> {
    fn insert(&self, e: &NewEntry<'_>) -> Result<i64> {
        let r = self.query_one(
            "INSERT INTO points_ledger (shop_id, customer_id, points, source, source_key, reason, expires_at, created_at, kind, remaining, order_id, batch_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            &[
                &e.shop_id,
                &e.customer_id,
                &e.points,
                &e.source,
                &e.source_key,
                &e.reason,
                &e.expires_at.map(millis),
                &millis(e.at),
                &e.kind.as_str(),
                &e.remaining,
                &e.order_id,
                &e.batch_id,
            ],
        )?;
        get(&r, 0)
    }

    fn take(&self, shop_id: i64, batch_id: i64, points: i64) -> Result<()> {
        self.execute(
            "UPDATE points_ledger SET remaining = remaining - $3 WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &batch_id, &points],
        )?;
        Ok(())
    }

    fn set_remaining(&self, shop_id: i64, batch_id: i64, remaining: i64) -> Result<()> {
        self.execute(
            "UPDATE points_ledger SET remaining = $3 WHERE shop_id = $1 AND id = $2 AND remaining <> $3",
            &[&shop_id, &batch_id, &remaining],
        )?;
        Ok(())
    }
}
