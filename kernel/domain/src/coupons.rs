//! Coupon templates and the coupons issued from them.
//!
//! A template fixes the face value, the threshold an order must reach, how
//! long a coupon stays valid, how many one customer may hold, and the
//! budget: how many coupons, and how much face value, may ever be issued.
//! Issuance within the budget creates a coupon with a unique code; an order
//! paid with the code redeems it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FieldError;
use crate::money::{MAX_AMOUNT, MAX_COUNT, MAX_TOTAL, check_range};
use crate::text::check_required;

/// Longest validity of a coupon, in days.
pub const MAX_VALID_DAYS: u32 = 3650;

/// Create or replace a coupon template.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplateInput {
    pub name: String,
    /// Discount in minor units.
    #[schema(minimum = 1, maximum = 100_000_000)]
    pub face_value: i64,
    /// Smallest order amount the coupon applies to, in minor units.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1e12)]
    pub threshold: i64,
    /// Valid this many days from issuance; give this or `valid_until`.
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// Valid until this time for every coupon; give this or `valid_days`.
    #[serde(default)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Coupons of this template one customer may be issued (default 1).
    #[serde(default = "one")]
    pub per_customer_limit: u32,
    /// Most coupons ever issued; absent: no limit.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub budget_count: Option<i64>,
    /// Most face value ever issued, in minor units; absent: no limit.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1e17)]
    pub budget_money: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

impl CouponTemplateInput {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_required("name", &self.name, 100)?;
        if self.face_value <= 0 || self.face_value > 100_000_000 {
            return Err(FieldError::new("face_value", "must be between 1 and 100000000 minor units"));
        }
        check_range("threshold", self.threshold, 0, MAX_AMOUNT)?;
        match (self.valid_days, self.valid_until) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(FieldError::new("valid_days", "give exactly one of `valid_days` and `valid_until`"));
            }
            (Some(days), None) if days == 0 || days > MAX_VALID_DAYS => {
                return Err(FieldError::new("valid_days", format!("must be between 1 and {MAX_VALID_DAYS}")));
            }
            _ => {}
        }
        if self.per_customer_limit == 0 {
            return Err(FieldError::new("per_customer_limit", "must be at least 1"));
        }
        if let Some(n) = self.budget_count {
            check_range("budget_count", n, 0, MAX_COUNT)?;
        }
        if let Some(n) = self.budget_money {
            check_range("budget_money", n, 0, MAX_TOTAL)?;
        }
        Ok(())
    }

    /// When a coupon issued at `at` stops being valid.
    pub fn expiry(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match (self.valid_until, self.valid_days) {
            (Some(until), _) => until,
            (None, Some(days)) => at + chrono::Duration::days(i64::from(days)),
            (None, None) => at,
        }
    }
}

/// A coupon template with what has been issued from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CouponTemplate {
    pub id: i64,
    pub name: String,
    pub face_value: i64,
    pub threshold: i64,
    pub valid_days: Option<u32>,
    pub valid_until: Option<DateTime<Utc>>,
    pub per_customer_limit: u32,
    pub budget_count: Option<i64>,
    pub budget_money: Option<i64>,
    pub active: bool,
    /// Coupons issued so far.
    pub issued: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CouponTemplate {
    pub fn input(&self) -> CouponTemplateInput {
        CouponTemplateInput {
            name: self.name.clone(),
            face_value: self.face_value,
            threshold: self.threshold,
            valid_days: self.valid_days,
            valid_until: self.valid_until,
            per_customer_limit: self.per_customer_limit,
            budget_count: self.budget_count,
            budget_money: self.budget_money,
            active: self.active,
        }
    }

    /// Why one more coupon may not be issued, if it may not.
    pub fn refuses_issue(&self, now: DateTime<Utc>) -> Option<String> {
        if !self.active {
            return Some(format!("coupon template {} is not active", self.id));
        }
        if self.valid_until.is_some_and(|until| until <= now) {
            return Some(format!("coupon template {} has expired", self.id));
        }
        if let Some(max) = self.budget_count
            && self.issued >= max
        {
            return Some(format!("the budget of coupon template {} is exhausted: {} of {max} coupons issued", self.id, self.issued));
        }
        if let Some(max) = self.budget_money
            && (self.issued + 1) * self.face_value > max
        {
            return Some(format!(
                "the budget of coupon template {} is exhausted: {} of {max} issued in face value, a coupon is {}",
                self.id,
                self.issued * self.face_value,
                self.face_value
            ));
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CouponStatus {
    /// Issued, not used, still valid.
    Issued,
    /// Used by an order.
    Redeemed,
    /// Past its validity without being used.
    Expired,
}

/// A coupon issued to a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coupon {
    pub id: i64,
    /// Unique in the shop; the customer enters it at checkout.
    pub code: String,
    pub template_id: i64,
    pub customer_id: i64,
    pub status: CouponStatus,
    pub face_value: i64,
    pub threshold: i64,
    /// Who issued it: `api`, `reward`, or a journey.
    pub source: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The shop's order id that redeemed it.
    pub order_id: Option<String>,
    pub redeemed_at: Option<DateTime<Utc>>,
}

/// `POST /v1/coupon-templates/{id}/issue`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub customer_id: i64,
    /// Makes the request safe to resend: the same key answers the same coupon.
    pub idempotency_key: String,
}

impl IssueRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_required("idempotency_key", &self.idempotency_key, 128)
    }
}

/// What a template has cost and brought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TemplateStats {
    pub template_id: i64,
    pub issued: i64,
    pub redeemed: i64,
    /// Issued, unused and past their validity.
    pub expired: i64,
    /// Redeemed over issued; absent before the first issue.
    pub redemption_rate: Option<f64>,
    /// Face value of the redeemed coupons.
    pub cost: i64,
    /// Amount paid, less refunds, of the orders that redeemed them.
    pub revenue: i64,
    pub budget_count_left: Option<i64>,
    pub budget_money_left: Option<i64>,
}

/// Characters of a coupon code: no 0/O or 1/I, so codes read back unambiguously.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const CODE_LEN: usize = 12;

/// Normalise a code a customer typed: upper case, without spaces or dashes.
pub fn normalise_code(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> CouponTemplate {
        let now = Utc::now();
        CouponTemplate {
            id: 7,
            name: "10 off 100".into(),
            face_value: 1000,
            threshold: 10000,
            valid_days: Some(30),
            valid_until: None,
            per_customer_limit: 1,
            budget_count: Some(3),
            budget_money: Some(2500),
            active: true,
            issued: 0,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn budgets_in_count_and_money_refuse_with_a_reason() {
        let now = Utc::now();
        let mut t = template();
        assert_eq!(t.refuses_issue(now), None);
        t.issued = 2;
        let why = t.refuses_issue(now).expect("a third coupon would exceed 2500 in face value");
        assert!(why.contains("2000 of 2500"), "{why}");
        t.budget_money = None;
        assert_eq!(t.refuses_issue(now), None);
        t.issued = 3;
        assert!(t.refuses_issue(now).unwrap().contains("3 of 3 coupons"));
        t.active = false;
        assert!(t.refuses_issue(now).unwrap().contains("not active"));
    }

    #[test]
    fn templates_need_exactly_one_validity() {
        let mut input = template().input();
        assert!(input.validate().is_ok());
        input.valid_until = Some(Utc::now());
        assert_eq!(input.validate().unwrap_err().field, "valid_days");
        input.valid_days = None;
        assert!(input.validate().is_ok());
        assert_eq!(normalise_code(" abcd-efgh 2345 "), "ABCDEFGH2345");
    }
}
