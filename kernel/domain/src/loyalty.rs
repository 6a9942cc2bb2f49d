//! Points, tiers and rewards: the kernel's ledger vocabulary and the rules of
//! the requests that write it.
//!
//! The ledger is append-only. Every positive entry opens a *batch* whose
//! `remaining` points are drawn, oldest batch first, by redemptions,
//! claw-backs and adjustments down; a batch past its expiry is expired
//! whole. When a claw-back finds too few points the balance goes below zero:
//! that is the customer's *debt*, which later earnings pay off before they
//! open a batch. So the balance is always the sum of the ledger, and equals
//! the points left in batches when it is not negative.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FieldError;
use crate::coupons::Coupon;
use crate::text::check_required;

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// Points awarded (by a loyalty scheme, or a positive adjustment); opens a batch.
    Earn,
    /// Points spent on a reward.
    Redeem,
    /// What was left of a batch at its expiry.
    Expire,
    /// Points taken back because their order was refunded.
    Clawback,
    /// A correction by an operator or the kernel (a forgiven debt).
    Adjust,
}

impl LedgerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Earn => "earn",
            LedgerKind::Redeem => "redeem",
            LedgerKind::Expire => "expire",
            LedgerKind::Clawback => "clawback",
            LedgerKind::Adjust => "adjust",
        }
    }

    pub fn parse(s: &str) -> Option<LedgerKind> {
        [LedgerKind::Earn, LedgerKind::Redeem, LedgerKind::Expire, LedgerKind::Clawback, LedgerKind::Adjust]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One entry of a customer's points ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub kind: LedgerKind,
    /// Signed: positive entries add points, negative ones take them.
    pub points: i64,
    /// For positive entries: the points of this batch not yet drawn or expired.
    pub remaining: Option<i64>,
    /// Who wrote it: a plugin id, `api`, `reward`, or `kernel`.
    pub source: String,
    /// Unique per source within the shop: a second write with the same key is ignored.
    pub source_key: String,
    pub reason: String,
    /// The shop's order id, for points earned on or clawed back from an order.
    pub order_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Points that expire together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExpiringPoints {
    pub points: i64,
    pub expires_at: DateTime<Utc>,
}

/// A move between tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TierChange {
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
    /// The plugin that decided it.
    pub source: String,
    pub at: DateTime<Utc>,
}

/// A customer's points and tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PointsAccount {
    pub customer_id: i64,
    /// The sum of the ledger; negative while the customer owes points.
    pub balance: i64,
    /// Points owed after claw-backs (0 when the balance is not negative).
    pub debt: i64,
    /// Points that can be spent now.
    pub available: i64,
    /// Batches with an expiry, soonest first.
    pub expiring: Vec<ExpiringPoints>,
    pub tier: Option<String>,
    /// Newest first.
    pub tier_history: Vec<TierChange>,
}

/// What happens when a refund claws back more points than the customer has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// The balance goes below zero; later earnings pay the debt first.
    #[default]
    Debt,
    /// The shortfall is written off with an adjustment; the balance stops at zero.
    Forgive,
}

/// A shop's loyalty settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoyaltySettings {
    #[serde(default)]
    pub refund_policy: RefundPolicy,
}

/// Largest number of points one entry may move.
pub const MAX_POINTS: i64 = 1_000_000_000;

/// Text limits shared by the loyalty requests.
const MAX_REASON: usize = 200;
const MAX_KEY: usize = 128;

/// `POST /v1/customers/{id}/points/adjustments`: an operator's correction.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsAdjustment {
    /// Signed, not zero: positive adds a batch, negative draws the oldest batches.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub points: i64,
    pub reason: String,
    /// Makes the request safe to resend.
    pub idempotency_key: String,
    /// For positive adjustments: when the added points expire.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl PointsAdjustment {
    pub fn validate(&self) -> Result<(), FieldError> {
        // `unsigned_abs`: the absolute value of i64::MIN does not fit an i64 (it wrapped past the check).
        if self.points == 0 || self.points.unsigned_abs() > MAX_POINTS as u64 {
            return Err(FieldError::new("points", format!("must be non-zero and at most {MAX_POINTS} either way")));
        }
        if self.points < 0 && self.expires_at.is_some() {
            return Err(FieldError::new("expires_at", "only added points expire"));
        }
        check_required("reason", &self.reason, MAX_REASON)?;
        check_required("idempotency_key", &self.idempotency_key, MAX_KEY)
    }
}

/// An item of the shop's points mall: spend points, get a coupon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reward {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub points_cost: i64,
    /// The coupon a redemption issues.
    pub coupon_template_id: i64,
    /// Left to redeem; absent: unlimited.
    pub stock: Option<i64>,
    pub redeemed: i64,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Create or replace a reward.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub points_cost: i64,
    pub coupon_template_id: i64,
    /// Absent: unlimited.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl RewardInput {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_required("name", &self.name, 100)?;
        if let Some(d) = &self.description
            && d.chars().count() > 1000
        {
            return Err(FieldError::new("description", "must be at most 1000 characters"));
        }
        if self.points_cost <= 0 || self.points_cost > MAX_POINTS {
            return Err(FieldError::new("points_cost", format!("must be between 1 and {MAX_POINTS}")));
        }
        if let Some(stock) = self.stock {
            crate::money::check_range("stock", stock, 0, crate::money::MAX_COUNT)?;
        }
        Ok(())
    }
}

/// `POST /v1/customers/{id}/redemptions`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub reward_id: i64,
    /// The client's key for this submission: a second submission with it
    /// answers the first's result. `idempotency_key`, as on every other
    /// write; the older name `request_id` is still accepted.
    #[serde(alias = "request_id")]
    pub idempotency_key: String,
}

impl RedeemRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_required("idempotency_key", &self.idempotency_key, MAX_KEY)
    }
}

/// Points spent on a reward, and the coupon it issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Redemption {
    pub id: i64,
    pub customer_id: i64,
    pub reward_id: i64,
    /// The key the redemption was submitted with.
    pub idempotency_key: String,
    /// The same key under its older name, kept so that clients reading it go on working.
    #[schema(deprecated)]
    pub request_id: String,
    pub points: i64,
    pub coupon: Coupon,
    /// The balance right after the redemption.
    pub balance_after: i64,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjustments_and_rewards_are_checked_field_by_field() {
        let adj = |points, expires: bool| PointsAdjustment {
            points,
            reason: "goodwill".into(),
            idempotency_key: "k1".into(),
            expires_at: expires.then(Utc::now),
        };
        assert!(adj(10, true).validate().is_ok());
        assert_eq!(adj(0, false).validate().unwrap_err().field, "points");
        assert_eq!(adj(-5, true).validate().unwrap_err().field, "expires_at");
        let reward = |cost, stock| RewardInput {
            name: "Tote bag".into(),
            description: None,
            points_cost: cost,
            coupon_template_id: 1,
            stock,
            active: true,
        };
        assert!(reward(500, Some(0)).validate().is_ok());
        assert_eq!(reward(0, None).validate().unwrap_err().field, "points_cost");
        assert_eq!(reward(5, Some(-1)).validate().unwrap_err().field, "stock");
    }
}
