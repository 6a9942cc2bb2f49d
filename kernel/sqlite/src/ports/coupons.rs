//! The coupons' and rewards' ports on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{
    CodeHolder, CouponsRead, CouponsWrite, Holding, NewCoupon, NewRedemption, RedemptionKey, RewardsRead, RewardsWrite, TemplateUsage,
};
use kith_domain::coupons::{Coupon, CouponTemplate, CouponTemplateInput};
use kith_domain::loyalty::{Redemption, Reward, RewardInput};
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, core, sql};
use crate::coupons::{TEMPLATE_COLUMNS, coupon_from_row, coupon_query, row_to_template};
use crate::loyalty::{REWARD_COLUMNS, row_to_reward};
use crate::{coupons, from_ms, loyalty, to_ms};

impl CouponsRead for Sql<'_> {
    fn template(&self, shop_id: i64, template_id: i64) -> CoreResult<Option<CouponTemplate>> {
        sql(coupons::find_template(self.0, shop_id, template_id))
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> CoreResult<Option<Holding>> {
        sql(self
            .0
            .prepare_cached("SELECT id, template_id, customer_id FROM coupons WHERE shop_id = ?1 AND source = ?2 AND source_key = ?3")
            .and_then(|mut s| {
                s.query_row(params![shop_id, source, source_key], |r| {
                    Ok(Holding { id: r.get(0)?, template_id: r.get(1)?, customer_id: r.get(2)? })
                })
                .optional()
            }))
    }

    fn held(&self, shop_id: i64, template_id: i64, customer_id: i64) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached("SELECT COUNT(*) FROM coupons WHERE shop_id = ?1 AND template_id = ?2 AND customer_id = ?3")
            .and_then(|mut s| s.query_row(params![shop_id, template_id, customer_id], |r| r.get(0))))
    }

    fn coupon(&self, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> CoreResult<Option<Coupon>> {
        sql(coupons::find_coupon(self.0, shop_id, coupon_id, now))
    }

    fn by_code(&self, shop_id: i64, code: &str) -> CoreResult<Option<CodeHolder>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT c.id, c.customer_id, c.expires_at, c.redeemed_at, t.threshold FROM coupons c
                 JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
                 WHERE c.shop_id = ?1 AND c.code = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![shop_id, code], |r| {
                    Ok(CodeHolder {
                        id: r.get(0)?,
                        customer_id: r.get(1)?,
                        expires_at: from_ms(r.get(2)?),
                        redeemed: r.get::<_, Option<i64>>(3)?.is_some(),
                        threshold: r.get(4)?,
                    })
                })
                .optional()
            }))
    }

    fn templates(&self, shop_id: i64) -> CoreResult<Vec<CouponTemplate>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE shop_id = ?1 ORDER BY id"))
            .and_then(|mut s| s.query_map([shop_id], row_to_template)?.collect()))
    }

    fn coupon_with_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> CoreResult<Option<Coupon>> {
        let at = to_ms(now);
        sql(self
            .0
            .prepare_cached(&coupon_query("c.code = ?2"))
            .and_then(|mut s| s.query_row(params![shop_id, code], |r| coupon_from_row(r, at)).optional()))
    }

    fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> CoreResult<Vec<Coupon>> {
        let at = to_ms(now);
        sql(self
            .0
            .prepare_cached(&coupon_query(
                "c.customer_id IN (SELECT id FROM customers WHERE shop_id = ?1 AND (id = ?2 OR merged_into = ?2)) ORDER BY c.id DESC LIMIT 500",
            ))
            .and_then(|mut s| s.query_map(params![shop_id, customer_id], |r| coupon_from_row(r, at))?.collect()))
    }

    fn template_usage(&self, shop_id: i64, template_id: i64, now: DateTime<Utc>) -> CoreResult<TemplateUsage> {
        sql(self
            .0
            .prepare_cached(
                "SELECT COUNT(c.redeemed_at), COALESCE(SUM(c.redeemed_at IS NULL AND c.expires_at <= ?3), 0),
                   COALESCE(SUM(o.amount - o.refunded_amount), 0)
                 FROM coupons c LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.id = c.order_id
                 WHERE c.shop_id = ?1 AND c.template_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![shop_id, template_id, to_ms(now)], |r| {
                    Ok(TemplateUsage { redeemed: r.get(0)?, expired: r.get(1)?, revenue: r.get(2)? })
                })
            }))
    }
}

impl CouponsWrite for Sql<'_> {
    fn insert(&self, c: &NewCoupon<'_>) -> CoreResult<Option<i64>> {
        let inserted = sql(self
            .0
            .prepare_cached(
                "INSERT INTO coupons (shop_id, template_id, customer_id, code, source, source_key, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (shop_id, code) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.shop_id,
                    c.template_id,
                    c.customer_id,
                    c.code,
                    c.source,
                    c.source_key,
                    to_ms(c.issued_at),
                    to_ms(c.expires_at)
                ])
            }))?;
        Ok((inserted == 1).then(|| self.0.last_insert_rowid()))
    }

    fn count_issued(&self, shop_id: i64, template_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE coupon_templates SET issued = issued + 1 WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute([shop_id, template_id])))?;
        Ok(())
    }

    fn redeem(&self, shop_id: i64, coupon_id: i64, order_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE coupons SET order_id = ?3, redeemed_at = ?4 WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute(params![shop_id, coupon_id, order_id, to_ms(at)])))?;
        Ok(())
    }

    fn insert_template(&self, shop_id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO coupon_templates (shop_id, name, face_value, threshold, per_customer_limit, active, created_at, updated_at)
                 VALUES (?1, '', 0, 0, 1, 0, ?2, ?2)",
            )
            .and_then(|mut s| s.execute(params![shop_id, to_ms(at)])))?;
        let id = self.0.last_insert_rowid();
        self.update_template(shop_id, id, input, at)?;
        Ok(id)
    }

    fn update_template(&self, shop_id: i64, id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE coupon_templates SET name = ?3, face_value = ?4, threshold = ?5, valid_days = ?6, valid_until = ?7,
                   per_customer_limit = ?8, budget_count = ?9, budget_money = ?10, active = ?11, updated_at = ?12
                 WHERE id = ?1 AND shop_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    shop_id,
                    input.name,
                    input.face_value,
                    input.threshold,
                    input.valid_days,
                    input.valid_until.map(to_ms),
                    input.per_customer_limit,
                    input.budget_count,
                    input.budget_money,
                    input.active,
                    to_ms(at)
                ])
            }))?;
        Ok(())
    }
}

impl RewardsRead for Sql<'_> {
    fn reward(&self, shop_id: i64, reward_id: i64) -> CoreResult<Option<Reward>> {
        sql(loyalty::find_reward(self.0, shop_id, reward_id))
    }

    fn redemption_by_key(&self, shop_id: i64, idempotency_key: &str) -> CoreResult<Option<RedemptionKey>> {
        sql(self.0.prepare_cached("SELECT id, customer_id, reward_id FROM redemptions WHERE shop_id = ?1 AND request_id = ?2").and_then(
            |mut s| {
                s.query_row(params![shop_id, idempotency_key], |r| {
                    Ok(RedemptionKey { id: r.get(0)?, customer_id: r.get(1)?, reward_id: r.get(2)? })
                })
                .optional()
            },
        ))
    }

    fn redemption(&self, shop_id: i64, redemption_id: i64, now: DateTime<Utc>) -> CoreResult<Redemption> {
        core(loyalty::load_redemption(self.0, shop_id, redemption_id, now))
    }

    fn rewards(&self, shop_id: i64) -> CoreResult<Vec<Reward>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE shop_id = ?1 ORDER BY id"))
            .and_then(|mut s| s.query_map([shop_id], row_to_reward)?.collect()))
    }

    fn redemptions_of(&self, shop_id: i64, customer_id: i64) -> CoreResult<Vec<i64>> {
        sql(self
            .0
            .prepare_cached("SELECT id FROM redemptions WHERE shop_id = ?1 AND customer_id = ?2 ORDER BY id DESC LIMIT 200")
            .and_then(|mut s| s.query_map([shop_id, customer_id], |r| r.get(0))?.collect()))
    }
}

impl RewardsWrite for Sql<'_> {
    fn take_one(&self, shop_id: i64, reward_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE rewards SET stock = stock - 1 WHERE shop_id = ?1 AND id = ?2 AND stock IS NOT NULL")
            .and_then(|mut s| s.execute([shop_id, reward_id])))?;
        sql(self
            .0
            .prepare_cached("UPDATE rewards SET redeemed = redeemed + 1 WHERE shop_id = ?1 AND id = ?2")
            .and_then(|mut s| s.execute([shop_id, reward_id])))?;
        Ok(())
    }

    fn insert_redemption(&self, r: &NewRedemption<'_>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO redemptions (shop_id, customer_id, reward_id, request_id, points, ledger_id, coupon_id, balance_after, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.shop_id,
                    r.customer_id,
                    r.reward_id,
                    r.idempotency_key,
                    r.points,
                    r.ledger_id,
                    r.coupon_id,
                    r.balance_after,
                    to_ms(r.at)
                ])
            }))?;
        Ok(self.0.last_insert_rowid())
    }

    fn insert_reward(&self, shop_id: i64, input: &RewardInput, at: DateTime<Utc>) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached(
                "INSERT INTO rewards (shop_id, name, points_cost, template_id, active, created_at, updated_at)
                 VALUES (?1, '', 0, ?2, 0, ?3, ?3)",
            )
            .and_then(|mut s| s.execute(params![shop_id, input.coupon_template_id, to_ms(at)])))?;
        let id = self.0.last_insert_rowid();
        self.update_reward(shop_id, id, input, at)?;
        Ok(id)
    }

    fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached(
                "UPDATE rewards SET name = ?3, description = ?4, points_cost = ?5, template_id = ?6, stock = ?7, active = ?8, updated_at = ?9
                 WHERE id = ?1 AND shop_id = ?2",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    shop_id,
                    input.name,
                    input.description,
                    input.points_cost,
                    input.coupon_template_id,
                    input.stock,
                    input.active,
                    to_ms(at)
                ])
            }))?;
        Ok(())
    }
}
