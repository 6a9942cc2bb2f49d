//! Coupon templates and coupons as stored: their columns and rows, which the coupons'
//! port (`ports/coupons.rs`) and the store's other modules read. The rules that issue
//! and redeem coupons are `kith_core::coupons`' (`CouponService`); the vocabulary is
//! `kith_domain::coupons`'.

use chrono::{DateTime, Utc};
use kith_domain::coupons::{Coupon, CouponStatus, CouponTemplate};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Result, StoreError, from_ms, to_ms};

pub(crate) const TEMPLATE_COLUMNS: &str =
    "id, name, face_value, threshold, valid_days, valid_until, per_customer_limit, budget_count, budget_money,
    active, issued, created_at, updated_at";

pub(crate) fn row_to_template(r: &rusqlite::Row<'_>) -> rusqlite::Result<CouponTemplate> {
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

/// The shop's template `id`, if it has one.
pub(crate) fn find_template(conn: &Connection, shop_id: i64, id: i64) -> rusqlite::Result<Option<CouponTemplate>> {
    conn.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM coupon_templates WHERE id = ?1 AND shop_id = ?2"))?
        .query_row(params![id, shop_id], row_to_template)
        .optional()
}

const COUPON_COLUMNS: &str = "c.id, c.code, c.template_id, c.customer_id, t.face_value, t.threshold, c.source, c.issued_at, c.expires_at,
    o.external_id, c.redeemed_at";

pub(crate) fn coupon_from_row(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<Coupon> {
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

pub(crate) fn coupon_query(filter: &str) -> String {
    format!(
        "SELECT {COUPON_COLUMNS} FROM coupons c JOIN coupon_templates t ON t.shop_id = c.shop_id AND t.id = c.template_id
         LEFT JOIN orders o ON o.shop_id = c.shop_id AND o.id = c.order_id
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
