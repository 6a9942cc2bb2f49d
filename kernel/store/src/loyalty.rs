//! The points ledger with its batches, refunds' claw-backs, expiry, tiers,
//! rewards and their redemption, as stored. The ledger's rules are
//! `kith_core::ledger`'s; the vocabulary is `kith_domain::loyalty`'s.

use chrono::{DateTime, Utc};
use kith_core::{ledger, rewards};
use kith_domain::coupons::Coupon;
use kith_domain::loyalty::{
    ExpiringPoints, LedgerEntry, LedgerKind, LoyaltySettings, PointsAccount, PointsAdjustment, RedeemRequest, Redemption, Reward,
    RewardInput, TierChange,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::customers::customer_in_shop;
use crate::{Actor, Result, Store, StoreError, audit, coupons, from_ms, settings, to_ms};

pub(crate) fn balance(conn: &Connection, customer_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE customer_id = ?1")?
        .query_row([customer_id], |r| r.get(0))?)
}

const LEDGER_COLUMNS: &str =
    "p.id, p.kind, p.points, p.remaining, p.source, p.source_key, p.reason, o.external_id, p.expires_at, p.created_at";

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerEntry> {
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
pub(crate) fn entry(conn: &Connection, entry_id: i64) -> Result<LedgerEntry> {
    Ok(conn
        .prepare_cached(&format!("SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.id = p.order_id WHERE p.id = ?1"))?
        .query_row([entry_id], row_to_entry)?)
}

const REWARD_COLUMNS: &str = "id, name, description, points_cost, template_id, stock, redeemed, active, created_at, updated_at";

fn row_to_reward(r: &rusqlite::Row<'_>) -> rusqlite::Result<Reward> {
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

fn load_reward(conn: &Connection, shop_id: i64, id: i64) -> Result<Reward> {
    find_reward(conn, shop_id, id)?.ok_or_else(|| StoreError::NotFound(format!("reward {id}")))
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

impl Store {
    /// A customer's balance, debt, expiring batches and tier with its history.
    pub fn points_account(&self, shop_id: i64, customer_id: i64) -> Result<PointsAccount> {
        self.read(|conn| {
            let id = customer_in_shop(conn, shop_id, customer_id)?;
            let balance = balance(conn, id)?;
            let expiring = conn
                .prepare_cached(
                    "SELECT expires_at, SUM(remaining) FROM points_ledger WHERE customer_id = ?1 AND remaining > 0 AND expires_at IS NOT NULL
                     GROUP BY expires_at ORDER BY expires_at LIMIT 50",
                )?
                .query_map([id], |r| Ok(ExpiringPoints { expires_at: from_ms(r.get(0)?), points: r.get(1)? }))?
                .collect::<rusqlite::Result<_>>()?;
            let tier: Option<String> = conn.prepare_cached("SELECT tier FROM customers WHERE id = ?1")?.query_row([id], |r| r.get(0))?;
            let tier_history = conn
                .prepare_cached(
                    "SELECT from_tier, to_tier, reason, source, created_at FROM tier_history WHERE customer_id = ?1 ORDER BY id DESC LIMIT 100",
                )?
                .query_map([id], |r| {
                    Ok(TierChange { from: r.get(0)?, to: r.get(1)?, reason: r.get(2)?, source: r.get(3)?, at: from_ms(r.get(4)?) })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(PointsAccount { customer_id: id, balance, debt: (-balance).max(0), available: balance.max(0), expiring, tier, tier_history })
        })
    }

    /// A customer's ledger, newest first, a page before the entry `before`.
    pub fn points_ledger(&self, shop_id: i64, customer_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>> {
        self.read(|conn| {
            let id = customer_in_shop(conn, shop_id, customer_id)?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.id = p.order_id
                 WHERE p.customer_id = ?1 AND p.id < ?2 ORDER BY p.id DESC LIMIT ?3"
            ))?;
            Ok(stmt.query_map(params![id, before.unwrap_or(i64::MAX), limit as i64], row_to_entry)?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// An operator's correction; the idempotency key makes a resend answer the first entry
    /// (the rules are [`kith_core::ledger::adjust`]'s).
    pub fn adjust_points(
        &self,
        shop_id: i64,
        customer_id: i64,
        adj: &PointsAdjustment,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(LedgerEntry, bool)> {
        Ok(ledger::adjust(self, shop_id, customer_id, adj, actor, now)?)
    }

    /// Expire batches past their expiry, at most `limit`; returns how many.
    pub fn expire_points(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        Ok(ledger::expire(self, now, limit)?)
    }

    /// Customers of a shop whose stored batches differ from a replay of their
    /// ledger, or whose balance is not what the batches and debt say.
    pub fn points_mismatches(&self, shop_id: i64) -> Result<Vec<i64>> {
        Ok(ledger::mismatches(self, shop_id)?)
    }

    pub fn loyalty_settings(&self, shop_id: i64) -> Result<LoyaltySettings> {
        self.read(|conn| settings::load(conn, shop_id, settings::LOYALTY))
    }

    pub fn put_loyalty_settings(&self, shop_id: i64, value: &LoyaltySettings, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| settings::store(tx, shop_id, settings::LOYALTY, value, actor, now))
    }

    pub fn create_reward(&self, shop_id: i64, input: &RewardInput, actor: &Actor, now: DateTime<Utc>) -> Result<Reward> {
        self.put_reward(shop_id, None, input, actor, now)
    }

    pub fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, actor: &Actor, now: DateTime<Utc>) -> Result<Reward> {
        self.put_reward(shop_id, Some(id), input, actor, now)
    }

    /// Create (`id` absent) or replace a reward.
    fn put_reward(&self, shop_id: i64, id: Option<i64>, input: &RewardInput, actor: &Actor, now: DateTime<Utc>) -> Result<Reward> {
        input.validate()?;
        self.write(|tx| {
            // Another shop's reward is not found before its fields are judged.
            let existing = id.map(|id| load_reward(tx, shop_id, id)).transpose()?;
            coupons::load_template(tx, shop_id, input.coupon_template_id).map_err(|_| {
                StoreError::Invalid(kith_domain::FieldError::new("coupon_template_id", "no such coupon template in this shop"))
            })?;
            let (id, action) = match existing {
                Some(reward) => (reward.id, "reward.update"),
                None => {
                    tx.prepare_cached(
                        "INSERT INTO rewards (shop_id, name, points_cost, template_id, active, created_at, updated_at)
                         VALUES (?1, '', 0, ?2, 0, ?3, ?3)",
                    )?
                    .execute(params![shop_id, input.coupon_template_id, to_ms(now)])?;
                    (tx.last_insert_rowid(), "reward.create")
                }
            };
            tx.prepare_cached(
                "UPDATE rewards SET name = ?3, description = ?4, points_cost = ?5, template_id = ?6, stock = ?7, active = ?8, updated_at = ?9
                 WHERE id = ?1 AND shop_id = ?2",
            )?
            .execute(params![
                id,
                shop_id,
                input.name,
                input.description,
                input.points_cost,
                input.coupon_template_id,
                input.stock,
                input.active,
                to_ms(now)
            ])?;
            audit::record(tx, Some(shop_id), actor, action, Some(&id.to_string()), json!({"name": input.name}), now)?;
            load_reward(tx, shop_id, id)
        })
    }

    pub fn reward(&self, shop_id: i64, id: i64) -> Result<Reward> {
        self.read(|conn| load_reward(conn, shop_id, id))
    }

    pub fn rewards(&self, shop_id: i64) -> Result<Vec<Reward>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE shop_id = ?1 ORDER BY id"))?;
            Ok(stmt.query_map([shop_id], row_to_reward)?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Spend a customer's points on a reward: the points, the stock and the
    /// coupon change together or not at all. A second submission with the
    /// same request id answers the first's redemption (`false`: not new); the
    /// rules are [`kith_core::rewards::redeem`]'s.
    pub fn redeem(&self, shop_id: i64, customer_id: i64, req: &RedeemRequest, now: DateTime<Utc>) -> Result<(Redemption, bool)> {
        Ok(rewards::redeem(self, shop_id, customer_id, req, now)?)
    }

    /// A customer's redemptions, newest first.
    pub fn redemptions(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Redemption>> {
        self.read(|conn| {
            let id = customer_in_shop(conn, shop_id, customer_id)?;
            let ids: Vec<i64> = conn
                .prepare_cached("SELECT id FROM redemptions WHERE customer_id = ?1 ORDER BY id DESC LIMIT 200")?
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.into_iter().map(|r| load_redemption(conn, shop_id, r, now)).collect()
        })
    }
}
