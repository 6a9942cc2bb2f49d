//! Coupon templates, coupons and their statistics, as stored. The rules that issue
//! and redeem coupons are `kith_core::coupons`'; the vocabulary is `kith_domain::coupons`'.

use chrono::{DateTime, Utc};
use kith_core::coupons;
use kith_domain::coupons::{Coupon, CouponStatus, CouponTemplate, CouponTemplateInput, IssueRequest, TemplateStats, normalise_code};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::customers::customer_in_shop;
use crate::{Actor, Result, Store, StoreError, audit, from_ms, to_ms};

const TEMPLATE_COLUMNS: &str = "id, name, face_value, threshold, valid_days, valid_until, per_customer_limit, budget_count, budget_money,
    active, issued, created_at, updated_at";

fn row_to_template(r: &rusqlite::Row<'_>) -> rusqlite::Result<CouponTemplate> {
    Ok(CouponTemplate {
        id: r.get(0)?,
        name: r.get(1)?,
        face_value: r.get(2)?,
        threshold: r.get(3)?,
        valid_days: r.get(4)?,
        valid_until: r.get::<_, Option<i64>>(5)?.map(from_ms),
        per_customer_limit: r.get(6)?,
        budget_count: r.get(7)?,
        budget_money: r.get(8)?,
        active: r.get(9)?,
        issued: r.get(10)?,
        created_at: from_ms(r.get(11)?),
        updated_at: from_ms(r.get(12)?),
    })
}

pub(crate) fn load_template(conn: &Connection, shop_id: i64, id: i64) -> Result<CouponTemplate> {
    find_template(conn, shop_id, id)?.ok_or_else(|| StoreError::NotFound(format!("coupon template {id}")))
}

/// The shop's template `id`, if it has one.
pub(crate) fn find_template(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Option<CouponTemplate>> {
    conn.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE id = ?1 AND shop_id = ?2"))?
        .query_row(params![id, shop_id], row_to_template)
        .optional()
}

const COUPON_COLUMNS: &str = "c.id, c.code, c.template_id, c.customer_id, t.face_value, t.threshold, c.source, c.issued_at, c.expires_at,
    o.external_id, c.redeemed_at";

fn coupon_from_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<Coupon> {
    let expires_at: i64 = r.get(8)?;
    let redeemed_at: Option<i64> = r.get(10)?;
    let status = match redeemed_at {
        Some(_) => CouponStatus::Redeemed,
        None if expires_at <= now => CouponStatus::Expired,
        None => CouponStatus::Issued,
    };
    Ok(Coupon {
        id: r.get(0)?,
        code: r.get(1)?,
        template_id: r.get(2)?,
        customer_id: r.get(3)?,
        status,
        face_value: r.get(4)?,
        threshold: r.get(5)?,
        source: r.get(6)?,
        issued_at: from_ms(r.get(7)?),
        expires_at: from_ms(expires_at),
        order_id: r.get(9)?,
        redeemed_at: redeemed_at.map(from_ms),
    })
}

fn coupon_query(filter: &str) -> String {
    format!(
        "SELECT {COUPON_COLUMNS} FROM coupons c JOIN coupon_templates t ON t.id = c.template_id LEFT JOIN orders o ON o.id = c.order_id
         WHERE c.shop_id = ?1 AND {filter}"
    )
}

pub(crate) fn load_coupon(conn: &Connection, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<Coupon> {
    find_coupon(conn, shop_id, id, now)?.ok_or_else(|| StoreError::NotFound(format!("coupon {id}")))
}

/// The shop's coupon `id`, its status as at `now`, if it has one.
pub(crate) fn find_coupon(conn: &Connection, shop_id: i64, id: i64, now: DateTime<Utc>) -> rusqlite::Result<Option<Coupon>> {
    let now = to_ms(now);
    conn.prepare_cached(&coupon_query("c.id = ?2"))?.query_row(params![shop_id, id], |r| coupon_from_row(r, now)).optional()
}

impl Store {
    pub fn create_coupon_template(
        &self,
        shop_id: i64,
        input: &CouponTemplateInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CouponTemplate> {
        self.put_coupon_template(shop_id, None, input, actor, now)
    }

    /// Replace a template's terms; coupons already issued keep their expiry.
    pub fn update_coupon_template(
        &self,
        shop_id: i64,
        id: i64,
        input: &CouponTemplateInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CouponTemplate> {
        self.put_coupon_template(shop_id, Some(id), input, actor, now)
    }

    /// Create (`id` absent) or replace a template.
    fn put_coupon_template(
        &self,
        shop_id: i64,
        id: Option<i64>,
        input: &CouponTemplateInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CouponTemplate> {
        input.validate()?;
        self.write(|tx| {
            let (id, action) = match id {
                Some(id) => (load_template(tx, shop_id, id)?.id, "coupon_template.update"),
                None => {
                    tx.prepare_cached(
                        "INSERT INTO coupon_templates (shop_id, name, face_value, threshold, per_customer_limit, active, created_at, updated_at)
                         VALUES (?1, '', 0, 0, 1, 0, ?2, ?2)",
                    )?
                    .execute(params![shop_id, to_ms(now)])?;
                    (tx.last_insert_rowid(), "coupon_template.create")
                }
            };
            tx.prepare_cached(
                "UPDATE coupon_templates SET name = ?3, face_value = ?4, threshold = ?5, valid_days = ?6, valid_until = ?7,
                   per_customer_limit = ?8, budget_count = ?9, budget_money = ?10, active = ?11, updated_at = ?12
                 WHERE id = ?1 AND shop_id = ?2",
            )?
            .execute(params![
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
                to_ms(now)
            ])?;
            audit::record(tx, Some(shop_id), actor, action, Some(&id.to_string()), json!({"name": input.name}), now)?;
            load_template(tx, shop_id, id)
        })
    }

    pub fn coupon_template(&self, shop_id: i64, id: i64) -> Result<CouponTemplate> {
        self.read(|conn| load_template(conn, shop_id, id))
    }

    pub fn coupon_templates(&self, shop_id: i64) -> Result<Vec<CouponTemplate>> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE shop_id = ?1 ORDER BY id"))?;
            Ok(stmt.query_map([shop_id], row_to_template)?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Issue a coupon through the API; the idempotency key makes a resend answer the same coupon
    /// (the rules are [`kith_core::coupons::issue_to`]'s).
    pub fn issue_coupon(&self, shop_id: i64, template_id: i64, req: &IssueRequest, now: DateTime<Utc>) -> Result<(Coupon, bool)> {
        Ok(coupons::issue_to(self, shop_id, template_id, req, now)?)
    }

    /// A coupon by its code, as a customer would type it.
    pub fn coupon_by_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> Result<Coupon> {
        let code = normalise_code(code);
        let at = to_ms(now);
        self.read(|conn| {
            conn.prepare_cached(&coupon_query("c.code = ?2"))?
                .query_row(params![shop_id, code], |r| coupon_from_row(r, at))
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("coupon {code}")))
        })
    }

    /// Coupons of a customer (merged customers' included), newest first.
    pub fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Coupon>> {
        let at = to_ms(now);
        self.read(|conn| {
            let id = customer_in_shop(conn, shop_id, customer_id)?;
            let mut stmt = conn.prepare_cached(&coupon_query(
                "c.customer_id IN (SELECT id FROM customers WHERE id = ?2 OR merged_into = ?2) ORDER BY c.id DESC LIMIT 500",
            ))?;
            Ok(stmt.query_map(params![shop_id, id], |r| coupon_from_row(r, at))?.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Issued, redeemed, cost and revenue of a template.
    pub fn coupon_template_stats(&self, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<TemplateStats> {
        self.read(|conn| {
            let t = load_template(conn, shop_id, id)?;
            let (redeemed, expired, revenue): (i64, i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(c.redeemed_at), COALESCE(SUM(c.redeemed_at IS NULL AND c.expires_at <= ?2), 0),
                       COALESCE(SUM(o.amount - o.refunded_amount), 0)
                     FROM coupons c LEFT JOIN orders o ON o.id = c.order_id WHERE c.template_id = ?1",
                )?
                .query_row(params![id, to_ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(TemplateStats {
                template_id: id,
                issued: t.issued,
                redeemed,
                expired,
                redemption_rate: (t.issued > 0).then(|| redeemed as f64 / t.issued as f64),
                cost: redeemed * t.face_value,
                revenue,
                budget_count_left: t.budget_count.map(|max| (max - t.issued).max(0)),
                budget_money_left: t.budget_money.map(|max| (max - t.issued * t.face_value).max(0)),
            })
        })
    }
}
