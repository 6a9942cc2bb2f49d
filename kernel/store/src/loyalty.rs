//! The points ledger with its batches, refunds' claw-backs, expiry, tiers,
//! rewards and their redemption. The rules are in `kith_domain::loyalty`.

use chrono::{DateTime, Utc};
use kith_domain::coupons::Coupon;
use kith_domain::loyalty::{
    ExpiringPoints, LedgerEntry, LedgerKind, LoyaltySettings, PointsAccount, PointsAdjustment, RedeemRequest, Redemption, RefundPolicy,
    Reward, RewardInput, TierChange,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::customers::{active_customer, customer_in_shop};
use crate::{Actor, Result, Store, StoreError, audit, coupons, from_ms, settings, to_ms};

/// A ledger entry to post.
pub(crate) struct Post<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub kind: LedgerKind,
    /// Signed.
    pub points: i64,
    pub source: &'a str,
    pub source_key: &'a str,
    pub reason: &'a str,
    pub order_id: Option<i64>,
    pub expires_at: Option<i64>,
    pub at: i64,
}

pub(crate) fn balance(conn: &Connection, customer_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(SUM(points), 0) FROM points_ledger WHERE customer_id = ?1")?
        .query_row([customer_id], |r| r.get(0))?)
}

/// Take `points` from the customer's open batches, oldest first; what they
/// cannot cover is left as debt (the negative entry still counts in full).
fn draw(conn: &Connection, customer_id: i64, mut points: i64) -> Result<()> {
    let batches: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT id, remaining FROM points_ledger WHERE customer_id = ?1 AND remaining > 0 ORDER BY created_at, id")?
        .query_map([customer_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, remaining) in batches {
        if points == 0 {
            break;
        }
        let take = remaining.min(points);
        conn.prepare_cached("UPDATE points_ledger SET remaining = remaining - ?2 WHERE id = ?1")?.execute(params![id, take])?;
        points -= take;
    }
    Ok(())
}

/// Post an entry unless its source key was used; `None` when it was.
/// Positive entries pay the customer's debt first and open a batch with the rest.
pub(crate) fn post(conn: &Connection, p: &Post<'_>) -> Result<Option<i64>> {
    let seen = conn
        .prepare_cached("SELECT 1 FROM points_ledger WHERE shop_id = ?1 AND source = ?2 AND source_key = ?3")?
        .query_row(params![p.shop_id, p.source, p.source_key], |_| Ok(()))
        .optional()?;
    if seen.is_some() || p.points == 0 {
        return Ok(None);
    }
    let remaining = if p.points > 0 {
        let debt = (-balance(conn, p.customer_id)?).max(0);
        p.points - debt.min(p.points)
    } else {
        draw(conn, p.customer_id, -p.points)?;
        0
    };
    conn.prepare_cached(
        "INSERT INTO points_ledger (shop_id, customer_id, points, source, source_key, reason, expires_at, created_at, kind, remaining, order_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        p.shop_id,
        p.customer_id,
        p.points,
        p.source,
        p.source_key,
        p.reason,
        p.expires_at,
        p.at,
        p.kind.as_str(),
        remaining,
        p.order_id
    ])?;
    Ok(Some(conn.last_insert_rowid()))
}

/// The order an award's source key names: `order:<the shop's order id>`.
pub(crate) fn order_of_source_key(conn: &Connection, shop_id: i64, source_key: &str) -> Result<Option<i64>> {
    let Some(external) = source_key.strip_prefix("order:") else { return Ok(None) };
    Ok(conn
        .prepare_cached("SELECT id FROM orders WHERE shop_id = ?1 AND external_id = ?2")?
        .query_row(params![shop_id, external], |r| r.get(0))
        .optional()?)
}

/// Bring the points of an order in line with its refunds: of the points
/// earned on it, the refunded share is clawed back (rounded so that a full
/// refund takes all of them). Called when a refund is recorded and when
/// points are awarded for an order that was already refunded.
pub(crate) fn settle_order(conn: &Connection, shop_id: i64, order_id: i64, at: i64) -> Result<()> {
    let (external, customer_id, amount, refunded): (String, i64, i64, i64) = conn
        .prepare_cached("SELECT external_id, customer_id, amount, refunded_amount FROM orders WHERE id = ?1")?
        .query_row([order_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let (earned, clawed): (i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(CASE WHEN kind = 'earn' THEN points END), 0), COALESCE(-SUM(CASE WHEN kind = 'clawback' THEN points END), 0)
             FROM points_ledger WHERE order_id = ?1",
        )?
        .query_row([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if earned <= 0 || refunded <= 0 {
        return Ok(());
    }
    let kept = if amount > 0 { (i128::from(earned) * i128::from(amount - refunded) / i128::from(amount)) as i64 } else { 0 };
    let due = earned - kept - clawed;
    if due <= 0 {
        return Ok(());
    }
    let key = format!("refund:{order_id}:{}", earned - kept);
    let reason = format!("order {external} refunded: {refunded} of {amount}");
    let posted = post(
        conn,
        &Post {
            shop_id,
            customer_id,
            kind: LedgerKind::Clawback,
            points: -due,
            source: "kernel",
            source_key: &key,
            reason: &reason,
            order_id: Some(order_id),
            expires_at: None,
            at,
        },
    )?;
    let policy = settings::load::<LoyaltySettings>(conn, shop_id, settings::LOYALTY)?.refund_policy;
    let debt = (-balance(conn, customer_id)?).max(0);
    if let (Some(entry), RefundPolicy::Forgive, true) = (posted, policy, debt > 0) {
        post(
            conn,
            &Post {
                shop_id,
                customer_id,
                kind: LedgerKind::Adjust,
                points: debt,
                source: "kernel",
                source_key: &format!("forgive:{entry}"),
                reason: "debt forgiven under the shop's refund policy",
                order_id: Some(order_id),
                expires_at: None,
                at,
            },
        )?;
    }
    Ok(())
}

/// Recompute every batch's remaining points of a customer by replaying the
/// ledger: what merges and unmerges call after moving entries, and what the
/// consistency check compares with.
pub(crate) fn replay(conn: &Connection, customer_id: i64) -> Result<Vec<(i64, i64)>> {
    let rows: Vec<(i64, String, i64, Option<i64>)> = conn
        .prepare_cached("SELECT id, kind, points, batch_id FROM points_ledger WHERE customer_id = ?1 ORDER BY created_at, id")?
        .query_map([customer_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut open: Vec<(i64, i64)> = Vec::new();
    let mut debt = 0i64;
    let take_oldest = |open: &mut Vec<(i64, i64)>, mut points: i64| -> i64 {
        for (_, remaining) in open.iter_mut() {
            let take = (*remaining).min(points);
            *remaining -= take;
            points -= take;
        }
        points
    };
    for (id, kind, points, batch) in rows {
        if points > 0 {
            let pay = debt.min(points);
            debt -= pay;
            open.push((id, points - pay));
            continue;
        }
        let mut owed = -points;
        if kind == LedgerKind::Expire.as_str()
            && let Some(b) = open.iter_mut().find(|(bid, _)| Some(*bid) == batch)
        {
            let take = b.1.min(owed);
            b.1 -= take;
            owed -= take;
        }
        debt += take_oldest(&mut open, owed);
    }
    Ok(open)
}

/// Make the stored batches what a replay of the ledger says.
pub(crate) fn rebuild(conn: &Connection, customer_id: i64) -> Result<()> {
    for (id, remaining) in replay(conn, customer_id)? {
        conn.prepare_cached("UPDATE points_ledger SET remaining = ?2 WHERE id = ?1 AND remaining != ?2")?
            .execute(params![id, remaining])?;
    }
    Ok(())
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
    conn.prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = ?1 AND shop_id = ?2"))?
        .query_row(params![id, shop_id], row_to_reward)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("reward {id}")))
}

fn load_redemption(conn: &Connection, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<Redemption> {
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

    /// An operator's correction; the idempotency key makes a resend answer the first entry.
    pub fn adjust_points(
        &self,
        shop_id: i64,
        customer_id: i64,
        adj: &PointsAdjustment,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(LedgerEntry, bool)> {
        adj.validate()?;
        self.write(|tx| {
            let id = customer_in_shop(tx, shop_id, customer_id)?;
            let existing: Option<(i64, i64, i64)> = tx
                .prepare_cached(
                    "SELECT id, customer_id, points FROM points_ledger WHERE shop_id = ?1 AND source = 'api' AND source_key = ?2",
                )?
                .query_row(params![shop_id, adj.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let (entry_id, created) = match existing {
                // A resend answers the first entry; the key reused for another customer or
                // another amount is refused, never answered with someone else's entry.
                Some((entry, owner, points)) => {
                    if active_customer(tx, shop_id, owner)? != Some(id) || points != adj.points {
                        return Err(StoreError::Conflict(format!(
                            "idempotency key `{}` was already used for another adjustment",
                            adj.idempotency_key
                        )));
                    }
                    (entry, false)
                }
                None => {
                    let available = balance(tx, id)?.max(0);
                    if adj.points < 0 && -adj.points > available {
                        return Err(StoreError::Conflict(format!(
                            "insufficient points: {available} available, the adjustment takes {}",
                            -adj.points
                        )));
                    }
                    let kind = if adj.points > 0 { LedgerKind::Earn } else { LedgerKind::Adjust };
                    let posted = post(
                        tx,
                        &Post {
                            shop_id,
                            customer_id: id,
                            kind,
                            points: adj.points,
                            source: "api",
                            source_key: &adj.idempotency_key,
                            reason: &adj.reason,
                            order_id: None,
                            expires_at: adj.expires_at.map(to_ms),
                            at: to_ms(now),
                        },
                    )?
                    .ok_or_else(|| anyhow::anyhow!("an unused source key was refused"))?;
                    audit::record(
                        tx,
                        Some(shop_id),
                        actor,
                        "points.adjust",
                        Some(&id.to_string()),
                        json!({"points": adj.points, "reason": adj.reason}),
                        now,
                    )?;
                    (posted, true)
                }
            };
            let entry = tx
                .prepare_cached(&format!(
                    "SELECT {LEDGER_COLUMNS} FROM points_ledger p LEFT JOIN orders o ON o.id = p.order_id WHERE p.id = ?1"
                ))?
                .query_row([entry_id], row_to_entry)?;
            Ok((entry, created))
        })
    }

    /// Expire batches past their expiry, at most `limit`; returns how many.
    pub fn expire_points(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        let at = to_ms(now);
        let due = |conn: &Connection| -> Result<Vec<(i64, i64, i64, i64)>> {
            Ok(conn
                .prepare_cached(
                    "SELECT id, shop_id, customer_id, remaining FROM points_ledger
                     WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
                )?
                .query_map(params![at, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?)
        };
        // Most polls find nothing: look without taking the writer.
        if self.read(|conn| due(conn))?.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let batches = due(tx)?;
            for (id, shop_id, customer_id, remaining) in &batches {
                tx.prepare_cached("UPDATE points_ledger SET remaining = 0 WHERE id = ?1")?.execute([id])?;
                tx.prepare_cached(
                    "INSERT INTO points_ledger (shop_id, customer_id, points, source, source_key, reason, created_at, kind, remaining, batch_id)
                     VALUES (?1, ?2, ?3, 'kernel', ?4, ?5, ?6, 'expire', 0, ?7)
                     ON CONFLICT (shop_id, source, source_key) DO NOTHING",
                )?
                .execute(params![shop_id, customer_id, -remaining, format!("expire:{id}"), format!("batch {id} expired"), at, id])?;
            }
            Ok(batches.len())
        })
    }

    /// Customers of a shop whose stored batches differ from a replay of their
    /// ledger, or whose balance is not what the batches and debt say.
    pub fn points_mismatches(&self, shop_id: i64) -> Result<Vec<i64>> {
        self.read(|conn| {
            let customers: Vec<i64> = conn
                .prepare_cached("SELECT DISTINCT customer_id FROM points_ledger WHERE shop_id = ?1 ORDER BY customer_id")?
                .query_map([shop_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut bad = Vec::new();
            for id in customers {
                let stored: Vec<(i64, i64)> = conn
                    .prepare_cached(
                        "SELECT id, remaining FROM points_ledger WHERE customer_id = ?1 AND points > 0 ORDER BY created_at, id",
                    )?
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let open_sum: i64 = stored.iter().map(|(_, r)| r).sum();
                let balance = balance(conn, id)?;
                let consistent = if balance >= 0 { open_sum == balance } else { open_sum == 0 };
                if stored != replay(conn, id)? || !consistent {
                    bad.push(id);
                }
            }
            Ok(bad)
        })
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
    /// same request id answers the first's redemption (`false`: not new).
    pub fn redeem(&self, shop_id: i64, customer_id: i64, req: &RedeemRequest, now: DateTime<Utc>) -> Result<(Redemption, bool)> {
        req.validate()?;
        self.write(|tx| {
            let id = customer_in_shop(tx, shop_id, customer_id)?;
            let existing: Option<(i64, i64, i64)> = tx
                .prepare_cached("SELECT id, customer_id, reward_id FROM redemptions WHERE shop_id = ?1 AND request_id = ?2")?
                .query_row(params![shop_id, req.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            if let Some((redemption, customer, reward)) = existing {
                if customer != id || reward != req.reward_id {
                    return Err(StoreError::Conflict(format!(
                        "idempotency_key `{}` was already used for another redemption",
                        req.idempotency_key
                    )));
                }
                return Ok((load_redemption(tx, shop_id, redemption, now)?, false));
            }
            let reward = load_reward(tx, shop_id, req.reward_id)?;
            if !reward.active {
                return Err(StoreError::Conflict(format!("reward {} is not available", reward.id)));
            }
            if reward.stock == Some(0) {
                return Err(StoreError::Conflict(format!("reward {} is out of stock", reward.id)));
            }
            let available = balance(tx, id)?.max(0);
            if available < reward.points_cost {
                return Err(StoreError::Conflict(format!(
                    "insufficient points: {available} available, reward {} costs {}",
                    reward.id, reward.points_cost
                )));
            }
            let coupon =
                coupons::issue_in(tx, shop_id, reward.coupon_template_id, id, "reward", &format!("redemption:{}", req.idempotency_key), now)?.0;
            let ledger_id = post(
                tx,
                &Post {
                    shop_id,
                    customer_id: id,
                    kind: LedgerKind::Redeem,
                    points: -reward.points_cost,
                    source: "reward",
                    source_key: &req.idempotency_key,
                    reason: &format!("redeemed for reward {} ({})", reward.id, reward.name),
                    order_id: None,
                    expires_at: None,
                    at: to_ms(now),
                },
            )?
            .ok_or_else(|| anyhow::anyhow!("an unused request id was refused by the ledger"))?;
            tx.prepare_cached("UPDATE rewards SET stock = stock - 1 WHERE id = ?1 AND stock IS NOT NULL")?.execute([reward.id])?;
            tx.prepare_cached("UPDATE rewards SET redeemed = redeemed + 1 WHERE id = ?1")?.execute([reward.id])?;
            let balance_after = balance(tx, id)?;
            tx.prepare_cached(
                "INSERT INTO redemptions (shop_id, customer_id, reward_id, request_id, points, ledger_id, coupon_id, balance_after, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![shop_id, id, reward.id, req.idempotency_key, reward.points_cost, ledger_id, coupon.id, balance_after, to_ms(now)])?;
            let redemption = tx.last_insert_rowid();
            Ok((load_redemption(tx, shop_id, redemption, now)?, true))
        })
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
