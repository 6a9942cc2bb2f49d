//! Coupons' rules: issuance within a template's terms and budgets, and redemption by
//! the order that names a coupon's code.
//!
//! A coupon is issued only while its template is active and in date, within the
//! template's count and money budgets and the customer's limit; `(source, source_key)`
//! makes issuance idempotent (the same key answers the coupon it issued first). Every
//! issuance is a `coupon.issued` event. An order paid with a code redeems the coupon
//! when the code is the customer's, unused, valid at payment and the order reaches
//! its threshold; otherwise the order stands and a `coupon.refused` event says why.
//!
//! Budgets hold under concurrent issuance because a write transaction of
//! [`Storage`](crate::Storage) is serialised: the count read here is the count written.
//! The vocabulary (templates, coupons, codes) is `kith_domain::coupons`'.

use chrono::{DateTime, Utc};
use kith_domain::FieldError;
use kith_domain::coupons::{
    CODE_ALPHABET, CODE_LEN, Coupon, CouponTemplate, CouponTemplateInput, IssueRequest, TemplateStats, normalise_code,
};
use rand::Rng;
use serde_json::json;

use crate::ports::{NewCoupon, PaidOrder, ReadTx, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, customers};

/// Tries at a free code before issuance gives up (32^12 codes: a collision is rare).
const CODE_TRIES: usize = 8;

/// A new random code: [`CODE_LEN`] characters of [`CODE_ALPHABET`].
pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LEN).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect()
}

/// Issue a coupon of a template to a customer (an active one: the caller resolved
/// merges) within the template's terms, in the caller's transaction. `(source,
/// source_key)` makes it idempotent: the same key answers the coupon it issued first
/// (`false`: not new), and the key used for another template or customer is refused.
/// A refusal is [`Error::Conflict`] with its reason; an unknown template is not found.
pub fn issue(
    tx: &dyn WriteTx,
    shop_id: i64,
    template_id: i64,
    customer_id: i64,
    source: &str,
    source_key: &str,
    now: DateTime<Utc>,
) -> Result<(Coupon, bool)> {
    if let Some(first) = tx.coupons().by_source(shop_id, source, source_key)? {
        if first.template_id != template_id || tx.customers().active(shop_id, first.customer_id)? != Some(customer_id) {
            return Err(Error::Conflict(format!("idempotency key `{source_key}` was already used for another coupon")));
        }
        return Ok((coupon(tx, shop_id, first.id, now)?, false));
    }
    let template = tx.coupons().template(shop_id, template_id)?.ok_or_else(|| Error::NotFound(format!("coupon template {template_id}")))?;
    if let Some(reason) = template.refuses_issue(now) {
        return Err(Error::Conflict(reason));
    }
    let held = tx.coupons().held(shop_id, template_id, customer_id)?;
    if held >= i64::from(template.per_customer_limit) {
        return Err(Error::Conflict(format!(
            "customer {customer_id} already holds {held} coupon(s) of template {template_id}, the limit per customer"
        )));
    }
    let expires_at = template.input().expiry(now);
    for _ in 0..CODE_TRIES {
        let code = new_code();
        let new = NewCoupon { shop_id, template_id, customer_id, code: &code, source, source_key, issued_at: now, expires_at };
        let Some(id) = tx.coupons_writer().insert(&new)? else { continue };
        tx.coupons_writer().count_issued(shop_id, template_id)?;
        let coupon = coupon(tx, shop_id, id, now)?;
        let payload = json!({"coupon_id": id, "template_id": template_id, "code": coupon.code, "source": source,
            "expires_at": coupon.expires_at});
        tx.event_log().append(shop_id, "coupon.issued", Some(customer_id), &payload, now, None)?;
        return Ok((coupon, true));
    }
    Err(anyhow::anyhow!("no free coupon code after {CODE_TRIES} tries").into())
}

/// Issue a coupon through the API to the shop's customer `req.customer_id` (or the
/// survivor of its merges); the idempotency key makes a resend answer the same coupon.
pub fn issue_to(storage: &dyn Storage, shop_id: i64, template_id: i64, req: &IssueRequest, now: DateTime<Utc>) -> Result<(Coupon, bool)> {
    req.validate()?;
    storage.write(|tx| {
        if tx.coupons().template(shop_id, template_id)?.is_none() {
            return Err(Error::NotFound(format!("coupon template {template_id}")));
        }
        let customer = tx
            .customers()
            .active(shop_id, req.customer_id)?
            .ok_or_else(|| FieldError::new("customer_id", "no such customer in this shop"))?;
        issue(tx, shop_id, template_id, customer, "api", &req.idempotency_key, now)
    })
}

/// What became of the coupon code an order named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The order redeemed this coupon.
    Coupon(i64),
    /// The coupon was not taken, for this reason; the order stands.
    Refused(String),
}

/// Redeem the coupon an order paid with `raw_code` names, in the caller's transaction
/// (ingest's, which recorded the order). The coupon is taken when its code is the
/// shop's, it belongs to the order's customer (through merges), was not redeemed, was
/// valid when the order was paid and the order reaches its threshold: a
/// `coupon.redeemed` event. Otherwise a `coupon.refused` event gives the reason.
pub fn redeem_by_order(tx: &dyn WriteTx, shop_id: i64, order: &PaidOrder<'_>, raw_code: &str, now: DateTime<Utc>) -> Result<Redeemed> {
    let code = normalise_code(raw_code);
    let refusal = match tx.coupons().by_code(shop_id, &code)? {
        None => Err("no coupon has this code".to_owned()),
        Some(c) if tx.customers().active(shop_id, c.customer_id)? != Some(order.customer_id) => {
            Err("the coupon belongs to another customer".to_owned())
        }
        Some(c) if c.redeemed => Err("the coupon was already redeemed".to_owned()),
        Some(c) if c.expires_at <= order.paid_at => Err("the coupon had expired".to_owned()),
        Some(c) if order.amount < c.threshold => Err(format!("the order is below the coupon's threshold of {}", c.threshold)),
        Some(c) => Ok(c.id),
    };
    match refusal {
        Ok(coupon_id) => {
            tx.coupons_writer().redeem(shop_id, coupon_id, order.id, order.paid_at)?;
            let payload = json!({"coupon_id": coupon_id, "code": code, "order_id": order.external_id});
            tx.event_log().append(shop_id, "coupon.redeemed", Some(order.customer_id), &payload, now, None)?;
            Ok(Redeemed::Coupon(coupon_id))
        }
        Err(reason) => {
            let payload = json!({"code": code, "order_id": order.external_id, "reason": reason});
            tx.event_log().append(shop_id, "coupon.refused", Some(order.customer_id), &payload, now, None)?;
            Ok(Redeemed::Refused(reason))
        }
    }
}

/// The shop's coupon `coupon_id`, which the caller knows exists.
fn coupon(tx: &dyn WriteTx, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> Result<Coupon> {
    tx.coupons().coupon(shop_id, coupon_id, now)?.ok_or_else(|| Error::NotFound(format!("coupon {coupon_id}")))
}

/// The shop's template `template_id`, or not found.
pub fn load_template(tx: &dyn ReadTx, shop_id: i64, template_id: i64) -> Result<CouponTemplate> {
    tx.coupons().template(shop_id, template_id)?.ok_or_else(|| Error::NotFound(format!("coupon template {template_id}")))
}

/// Create (`id` absent) or replace a template, audited.
fn put_template(
    storage: &dyn Storage,
    shop_id: i64,
    id: Option<i64>,
    input: &CouponTemplateInput,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CouponTemplate> {
    input.validate()?;
    storage.write(|tx| {
        let (id, action) = match id {
            Some(id) => {
                let id = load_template(tx, shop_id, id)?.id;
                tx.coupons_writer().update_template(shop_id, id, input, now)?;
                (id, "coupon_template.update")
            }
            None => (tx.coupons_writer().insert_template(shop_id, input, now)?, "coupon_template.create"),
        };
        tx.audit().record(Some(shop_id), actor, action, Some(&id.to_string()), json!({"name": input.name}), now)?;
        load_template(tx, shop_id, id)
    })
}

/// Coupon templates and coupons as the API reaches them.
pub trait CouponService: Storage {
    fn create_coupon_template(
        &self,
        shop_id: i64,
        input: &CouponTemplateInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CouponTemplate> {
        put_template(self.storage(), shop_id, None, input, actor, now)
    }

    /// Replace a template's terms; coupons already issued keep their expiry.
    fn update_coupon_template(
        &self,
        shop_id: i64,
        id: i64,
        input: &CouponTemplateInput,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<CouponTemplate> {
        put_template(self.storage(), shop_id, Some(id), input, actor, now)
    }

    fn coupon_template(&self, shop_id: i64, id: i64) -> Result<CouponTemplate> {
        self.read(|tx| load_template(tx, shop_id, id))
    }

    fn coupon_templates(&self, shop_id: i64) -> Result<Vec<CouponTemplate>> {
        self.read(|tx| tx.coupons().templates(shop_id))
    }

    /// Issue a coupon through the API; the idempotency key makes a resend answer the same coupon
    /// (the rules are [`issue_to`]'s).
    fn issue_coupon(&self, shop_id: i64, template_id: i64, req: &IssueRequest, now: DateTime<Utc>) -> Result<(Coupon, bool)> {
        issue_to(self.storage(), shop_id, template_id, req, now)
    }

    /// A coupon by its code, as a customer would type it.
    fn coupon_by_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> Result<Coupon> {
        let code = normalise_code(code);
        self.read(|tx| tx.coupons().coupon_with_code(shop_id, &code, now)?.ok_or_else(|| Error::NotFound(format!("coupon {code}"))))
    }

    /// Coupons of a customer (merged customers' included), newest first.
    fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Coupon>> {
        self.read(|tx| {
            let id = customers::in_shop(tx, shop_id, customer_id)?;
            tx.coupons().customer_coupons(shop_id, id, now)
        })
    }

    /// Issued, redeemed, cost and revenue of a template.
    fn coupon_template_stats(&self, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<TemplateStats> {
        self.read(|tx| {
            let t = load_template(tx, shop_id, id)?;
            let usage = tx.coupons().template_usage(shop_id, id, now)?;
            let redeemed = usage.redeemed;
            Ok(TemplateStats {
                template_id: id,
                issued: t.issued,
                redeemed,
                expired: usage.expired,
                redemption_rate: (t.issued > 0).then(|| redeemed as f64 / t.issued as f64),
                cost: redeemed * t.face_value,
                revenue: usage.revenue,
                budget_count_left: t.budget_count.map(|max| (max - t.issued).max(0)),
                budget_money_left: t.budget_money.map(|max| (max - t.issued * t.face_value).max(0)),
            })
        })
    }
}

impl<S: Storage + ?Sized> CouponService for S {}
