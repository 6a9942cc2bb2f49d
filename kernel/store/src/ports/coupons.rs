//! The coupons' and rewards' ports on SQLite.

use chrono::{DateTime, Utc};
use kith_core::ports::{
    CodeHolder, CouponsRead, CouponsWrite, Holding, NewCoupon, NewRedemption, RedemptionKey, RewardsRead, RewardsWrite,
};
use kith_domain::coupons::{Coupon, CouponTemplate};
use kith_domain::loyalty::{Redemption, Reward};
use rusqlite::{OptionalExtension, params};

use super::{CoreResult, Sql, core, sql};
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

    fn held(&self, template_id: i64, customer_id: i64) -> CoreResult<i64> {
        sql(self
            .0
            .prepare_cached("SELECT COUNT(*) FROM coupons WHERE template_id = ?1 AND customer_id = ?2")
            .and_then(|mut s| s.query_row(params![template_id, customer_id], |r| r.get(0))))
    }

    fn coupon(&self, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> CoreResult<Option<Coupon>> {
        sql(coupons::find_coupon(self.0, shop_id, coupon_id, now))
    }

    fn by_code(&self, shop_id: i64, code: &str) -> CoreResult<Option<CodeHolder>> {
        sql(self
            .0
            .prepare_cached(
                "SELECT c.id, c.customer_id, c.expires_at, c.redeemed_at, t.threshold FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
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

    fn count_issued(&self, template_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE coupon_templates SET issued = issued + 1 WHERE id = ?1")
            .and_then(|mut s| s.execute([template_id])))?;
        Ok(())
    }

    fn redeem(&self, coupon_id: i64, order_id: i64, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE coupons SET order_id = ?2, redeemed_at = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![coupon_id, order_id, to_ms(at)])))?;
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
}

impl RewardsWrite for Sql<'_> {
    fn take_one(&self, reward_id: i64) -> CoreResult<()> {
        sql(self
            .0
            .prepare_cached("UPDATE rewards SET stock = stock - 1 WHERE id = ?1 AND stock IS NOT NULL")
            .and_then(|mut s| s.execute([reward_id])))?;
        sql(self.0.prepare_cached("UPDATE rewards SET redeemed = redeemed + 1 WHERE id = ?1").and_then(|mut s| s.execute([reward_id])))?;
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
}
