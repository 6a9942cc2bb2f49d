//! The coupons ports on PostgreSQL.
//!
//! A coupon budget under concurrent issuance holds as on SQLite: a write transaction
//! runs after the global writers' lock, so reading what a template issued and then
//! counting one more is never interleaved with another writer's.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::coupons::{Coupon, CouponStatus, CouponTemplate, CouponTemplateInput};
use kith_domain::loyalty::{Redemption, Reward, RewardInput};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

const TEMPLATE_COLUMNS: &str = "id, name, face_value, threshold, valid_days, valid_until, per_customer_limit, budget_count, budget_money,
    active, issued, created_at, updated_at";

fn small(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| kith_core::Error::Internal(anyhow::anyhow!("a stored count out of range: {n}")))
}

fn row_to_template(r: &Row) -> Result<CouponTemplate> {
    Ok(CouponTemplate {
        id: get(r, 0)?,
        name: get(r, 1)?,
        face_value: get(r, 2)?,
        threshold: get(r, 3)?,
        valid_days: get::<Option<i64>>(r, 4)?.map(small).transpose()?,
        valid_until: get::<Option<i64>>(r, 5)?.map(time).transpose()?,
        per_customer_limit: small(get(r, 6)?)?,
        budget_count: get(r, 7)?,
        budget_money: get(r, 8)?,
        active: get::<i64>(r, 9)? != 0,
        issued: get(r, 10)?,
        created_at: time(get(r, 11)?)?,
        updated_at: time(get(r, 12)?)?,
    })
}

const COUPON_COLUMNS: &str = "c.id, c.code, c.template_id, c.customer_id, t.face_value, t.threshold, c.source, c.issued_at, c.expires_at,
    o.external_id, c.redeemed_at";

fn coupon_from_row(r: &Row, now: i64) -> Result<Coupon> {
    let expires_at: i64 = get(r, 8)?;
    let redeemed_at: Option<i64> = get(r, 10)?;
    let status = match redeemed_at {
        Some(_) => CouponStatus::Redeemed,
        None if expires_at <= now => CouponStatus::Expired,
        None => CouponStatus::Issued,
    };
    Ok(Coupon {
        id: get(r, 0)?,
        code: get(r, 1)?,
        template_id: get(r, 2)?,
        customer_id: get(r, 3)?,
        status,
        face_value: get(r, 4)?,
        threshold: get(r, 5)?,
        source: get(r, 6)?,
        issued_at: time(get(r, 7)?)?,
        expires_at: time(expires_at)?,
        order_id: get(r, 9)?,
        redeemed_at: redeemed_at.map(time).transpose()?,
    })
}

/// The coupons of the shop `$1` that `filter` keeps, with their template and order.
fn coupon_query(filter: &str) -> String {
    format!(
        "SELECT {COUPON_COLUMNS} FROM coupons c JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
         LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.id = c.order_id
         WHERE c.shop_id = $1 AND {filter}"
    )
}

const REWARD_COLUMNS: &str = "id, name, description, points_cost, template_id, stock, redeemed, active, created_at, updated_at";

fn row_to_reward(r: &Row) -> Result<Reward> {
    Ok(Reward {
        id: get(r, 0)?,
        name: get(r, 1)?,
        description: get(r, 2)?,
        points_cost: get(r, 3)?,
        coupon_template_id: get(r, 4)?,
        stock: get(r, 5)?,
        redeemed: get(r, 6)?,
        active: get::<i64>(r, 7)? != 0,
        created_at: time(get(r, 8)?)?,
        updated_at: time(get(r, 9)?)?,
    })
}

impl CouponsRead for Pg<'_> {
    fn template(&self, shop_id: i64, template_id: i64) -> Result<Option<CouponTemplate>> {
        self.query_opt(
            &format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE id = $1 AND shop_id = $2"),
            &[&template_id, &shop_id],
        )?
        .map(|r| row_to_template(&r))
        .transpose()
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Holding>> {
        self.query_opt(
            "SELECT id, template_id, customer_id FROM coupons WHERE shop_id = $1 AND source = $2 AND source_key = $3",
            &[&shop_id, &source, &source_key],
        )?
        .map(|r| Ok(Holding { id: get(&r, 0)?, template_id: get(&r, 1)?, customer_id: get(&r, 2)? }))
        .transpose()
    }

    fn held(&self, shop_id: i64, template_id: i64, customer_id: i64) -> Result<i64> {
        let r = self.query_one(
            "SELECT COUNT(*) FROM coupons WHERE shop_id = $1 AND template_id = $2 AND customer_id = $3",
            &[&shop_id, &template_id, &customer_id],
        )?;
        get(&r, 0)
    }

    fn coupon(&self, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> Result<Option<Coupon>> {
        let at = millis(now);
        self.query_opt(&coupon_query("c.id = $2"), &[&shop_id, &coupon_id])?.map(|r| coupon_from_row(&r, at)).transpose()
    }

    fn by_code(&self, shop_id: i64, code: &str) -> Result<Option<CodeHolder>> {
        self.query_opt(
            "SELECT c.id, c.customer_id, c.expires_at, c.redeemed_at, t.threshold
             FROM coupons c JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
             WHERE c.shop_id = $1 AND c.code = $2",
            &[&shop_id, &code],
        )?
        .map(|r| {
            Ok(CodeHolder {
                id: get(&r, 0)?,
                customer_id: get(&r, 1)?,
                expires_at: time(get(&r, 2)?)?,
                redeemed: get::<Option<i64>>(&r, 3)?.is_some(),
                threshold: get(&r, 4)?,
            })
        })
        .transpose()
    }

    fn templates(&self, shop_id: i64) -> Result<Vec<CouponTemplate>> {
        self.query(&format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE shop_id = $1 ORDER BY id"), &[&shop_id])?
            .iter()
            .map(row_to_template)
            .collect()
    }

    fn coupon_with_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> Result<Option<Coupon>> {
        let at = millis(now);
        self.query_opt(&coupon_query("c.code = $2"), &[&shop_id, &code])?.map(|r| coupon_from_row(&r, at)).transpose()
    }

    fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Coupon>> {
        let at = millis(now);
        self.query(
            &coupon_query(
                "c.customer_id IN (SELECT id FROM customers WHERE shop_id = $1 AND (id = $2 OR merged_into = $2)) ORDER BY c.id DESC LIMIT 500",
            ),
            &[&shop_id, &customer_id],
        )?
        .iter()
        .map(|r| coupon_from_row(r, at))
        .collect()
    }

    fn template_usage(&self, shop_id: i64, template_id: i64, now: DateTime<Utc>) -> Result<TemplateUsage> {
        let r = self.query_one(
            "SELECT COUNT(c.redeemed_at), COUNT(*) FILTER (WHERE c.redeemed_at IS NULL AND c.expires_at <= $3),
               COALESCE(SUM(o.amount - o.refunded_amount), 0)::BIGINT
             FROM coupons c LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.id = c.order_id
             WHERE c.shop_id = $1 AND c.template_id = $2",
            &[&shop_id, &template_id, &millis(now)],
        )?;
        Ok(TemplateUsage { redeemed: get(&r, 0)?, expired: get(&r, 1)?, revenue: get(&r, 2)? })
    }
}

impl CouponsWrite for Pg<'_> {
    fn insert(&self, c: &NewCoupon<'_>) -> Result<Option<i64>> {
        self.query_opt(
            "INSERT INTO coupons (shop_id, template_id, customer_id, code, source, source_key, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (shop_id, code) DO NOTHING RETURNING id",
            &[&c.shop_id, &c.template_id, &c.customer_id, &c.code, &c.source, &c.source_key, &millis(c.issued_at), &millis(c.expires_at)],
        )?
        .map(|r| get(&r, 0))
        .transpose()
    }

    fn count_issued(&self, shop_id: i64, template_id: i64) -> Result<()> {
        self.execute("UPDATE coupon_templates SET issued = issued + 1 WHERE shop_id = $1 AND id = $2", &[&shop_id, &template_id])?;
        Ok(())
    }

    fn redeem(&self, shop_id: i64, coupon_id: i64, order_id: i64, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE coupons SET order_id = $3, redeemed_at = $4 WHERE shop_id = $1 AND id = $2",
            &[&shop_id, &coupon_id, &order_id, &millis(at)],
        )?;
        Ok(())
    }

    fn insert_template(&self, shop_id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<i64> {
        let r = self.query_one(
            "INSERT INTO coupon_templates (shop_id, name, face_value, threshold, per_customer_limit, active, created_at, updated_at)
             VALUES ($1, '', 0, 0, 1, 0, $2, $2) RETURNING id",
            &[&shop_id, &millis(at)],
        )?;
        let id: i64 = get(&r, 0)?;
        self.update_template(shop_id, id, input, at)?;
        Ok(id)
    }

    fn update_template(&self, shop_id: i64, id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE coupon_templates SET name = $3, face_value = $4, threshold = $5, valid_days = $6, valid_until = $7,
               per_customer_limit = $8, budget_count = $9, budget_money = $10, active = $11, updated_at = $12
             WHERE id = $1 AND shop_id = $2",
            &[
                &id,
                &shop_id,
                &input.name,
                &input.face_value,
                &input.threshold,
                &input.valid_days.map(i64::from),
                &input.valid_until.map(millis),
                &i64::from(input.per_customer_limit),
                &input.budget_count,
                &input.budget_money,
                &i64::from(input.active),
                &millis(at),
            ],
        )?;
        Ok(())
    }
}

impl RewardsRead for Pg<'_> {
    fn reward(&self, shop_id: i64, reward_id: i64) -> Result<Option<Reward>> {
        self.query_opt(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE id = $1 AND shop_id = $2"), &[&reward_id, &shop_id])?
            .map(|r| row_to_reward(&r))
            .transpose()
    }

    fn redemption_by_key(&self, shop_id: i64, idempotency_key: &str) -> Result<Option<RedemptionKey>> {
        self.query_opt(
            "SELECT id, customer_id, reward_id FROM redemptions WHERE shop_id = $1 AND request_id = $2",
            &[&shop_id, &idempotency_key],
        )?
        .map(|r| Ok(RedemptionKey { id: get(&r, 0)?, customer_id: get(&r, 1)?, reward_id: get(&r, 2)? }))
        .transpose()
    }

    fn redemption(&self, shop_id: i64, redemption_id: i64, now: DateTime<Utc>) -> Result<Redemption> {
        // A redemption that is not there is a failure, as on SQLite (the caller found its id).
        let r = self.query_one(
            "SELECT customer_id, reward_id, request_id, points, coupon_id, balance_after, created_at FROM redemptions WHERE id = $1 AND shop_id = $2",
            &[&redemption_id, &shop_id],
        )?;
        let idempotency_key: String = get(&r, 2)?;
        let coupon_id: i64 = get(&r, 4)?;
        let coupon =
            CouponsRead::coupon(self, shop_id, coupon_id, now)?.ok_or_else(|| kith_core::Error::NotFound(format!("coupon {coupon_id}")))?;
        Ok(Redemption {
            id: redemption_id,
            customer_id: get(&r, 0)?,
            reward_id: get(&r, 1)?,
            request_id: idempotency_key.clone(),
            idempotency_key,
            points: get(&r, 3)?,
            coupon,
            balance_after: get(&r, 5)?,
            created_at: time(get(&r, 6)?)?,
        })
    }

    fn rewards(&self, shop_id: i64) -> Result<Vec<Reward>> {
        self.query(&format!("SELECT {REWARD_COLUMNS} FROM rewards WHERE shop_id = $1 ORDER BY id"), &[&shop_id])?
            .iter()
            .map(row_to_reward)
            .collect()
    }

    fn redemptions_of(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>> {
        self.query(
            "SELECT id FROM redemptions WHERE shop_id = $1 AND customer_id = $2 ORDER BY id DESC LIMIT 200",
            &[&shop_id, &customer_id],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect()
    }
}

impl RewardsWrite for Pg<'_> {
    fn take_one(&self, shop_id: i64, reward_id: i64) -> Result<()> {
        self.execute("UPDATE rewards SET stock = stock - 1 WHERE shop_id = $1 AND id = $2 AND stock IS NOT NULL", &[&shop_id, &reward_id])?;
        self.execute("UPDATE rewards SET redeemed = redeemed + 1 WHERE shop_id = $1 AND id = $2", &[&shop_id, &reward_id])?;
        Ok(())
    }

    fn insert_redemption(&self, r: &NewRedemption<'_>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO redemptions (shop_id, customer_id, reward_id, request_id, points, ledger_id, coupon_id, balance_after, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &r.shop_id,
                &r.customer_id,
                &r.reward_id,
                &r.idempotency_key,
                &r.points,
                &r.ledger_id,
                &r.coupon_id,
                &r.balance_after,
                &millis(r.at),
            ],
        )?;
        get(&row, 0)
    }

    fn insert_reward(&self, shop_id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<i64> {
        let r = self.query_one(
            "INSERT INTO rewards (shop_id, name, points_cost, template_id, active, created_at, updated_at)
             VALUES ($1, '', 0, $2, 0, $3, $3) RETURNING id",
            &[&shop_id, &input.coupon_template_id, &millis(at)],
        )?;
        let id: i64 = get(&r, 0)?;
        self.update_reward(shop_id, id, input, at)?;
        Ok(id)
    }

    fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<()> {
        self.execute(
            "UPDATE rewards SET name = $3, description = $4, points_cost = $5, template_id = $6, stock = $7, active = $8, updated_at = $9
             WHERE id = $1 AND shop_id = $2",
            &[
                &id,
                &shop_id,
                &input.name,
                &input.description,
                &input.points_cost,
                &input.coupon_template_id,
                &input.stock,
                &i64::from(input.active),
                &millis(at),
            ],
        )?;
        Ok(())
    }
}
