//! The points ledger, tiers, rewards and redemptions as stored: their columns and rows,
//! which the ledger's and rewards' ports (`ports/ledger.rs`, `ports/coupons.rs`) read.
//! The rules are `kith_core::ledger`'s and `kith_core::rewards`' (`LoyaltyService`); the
//! vocabulary is `kith_domain::loyalty`'s.

use chrono::{DateTime, Utc};
use kith_domain::coupons::Coupon;
use kith_domain::loyalty::{LedgerEntry, LedgerKind, Redemption, Reward};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, coupons, from_ms};

pub(crate) fn balance(conn: &Connection, shop_id: i64, customer_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE shop_id = ?1 AND customer_id = ?2")?
        .query_row([shop_id, customer_id], |r| r.get(0))?)
}

pub(crate) const LEDGER_COLUMNS: &str =
    "p.id, p.kind, p.points, p.remaining, p.source, p.source_key, p.reason, o.external_id, p.expires_at, p.created_at";

pub(crate) fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let points: i64 = r.get(2)?;
    Ok(LedgerEntry {
        id: r.get(0)?,
        kind: LedgerKind::parse(&r.get::<_, String>(1)?).unwrap_or(LedgerKind::Adjust),
        points,
        remaining: (points > 0).then(|| r.get(3)).transpose()?,
        source: r.get(4)?,
        source_key: r.get(5)?,
        reason: r.get(6)?,
        order_id: r.get(7)?,
        expires_at: r.get::<_, Option<i64>>(8)?.map(from_ms),
        created_at: from_ms(r.get(9)?),
    })
}

/// One entry as the API shows it.
pub(crate) fn entry(conn: &Connection, shop_id: i64, entry_id: i64) -> Result<LedgerEntry> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.shop_id = p.shop_id AND o.id = p.order_id
             WHERE p.shop_id = ?1 AND p.id = ?2"
        ))?
        .query_row([shop_id, entry_id], row_to_entry)?)
}

pub(crate) const REWARD_COLUMNS: &str = "id, name, description, points_cost, template_id, stock, redeemed, active, created_at, updated_at";

pub(crate) fn row_to_reward(r: &rusqlite::Row<'_>) -> rusqlite::Result<Reward> {
    Ok(Reward {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        points_cost: r.get(3)?,
        coupon_template_id: r.get(4)?,
        stock: r.get(5)?,
        redeemed: r.get(6)?,
        active: r.get(7)?,
        created_at: from_ms(r.get(8)?),
        updated_at: from_ms(r.get(9)?),
    })
}

/// The shop's reward `id`, if it has one.
pub(crate) fn find_reward(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Option<Reward>> {
    conn.prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = ?1 AND shop_id = ?2"))?
        .query_row(params![id, shop_id], row_to_reward)
        .optional()
}

/// The shop's redemption `id` as the API shows it.
pub(crate) fn load_redemption(conn: &Connection, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<Redemption> {
    let (customer_id, reward_id, idempotency_key, points, coupon_id, balance_after, created_at): (i64, i64, String, i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT customer_id, reward_id, request_id, points, coupon_id, balance_after, created_at FROM redemptions WHERE id = ?1 AND shop_id = ?2",
        )?
        .query_row(params![id, shop_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?;
    let coupon: Coupon = coupons::load_coupon(conn, shop_id, coupon_id, now)?;
    Ok(Redemption {
        id,
        customer_id,
        reward_id,
        request_id: idempotency_key.clone(),
        idempotency_key,
        points,
        coupon,
        balance_after,
        created_at: from_ms(created_at),
    })
}
