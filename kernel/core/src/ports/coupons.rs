//! The coupons' port, and the rewards' (a reward is paid with a coupon).

use chrono::{DateTime, Utc};
use kith_domain::coupons::{Coupon, CouponTemplate, CouponTemplateInput};
use kith_domain::loyalty::{Redemption, Reward, RewardInput};

use crate::Result;

/// Coupon templates and the coupons issued from them.
pub trait CouponsRead {
    /// The shop's template `template_id`, with how many coupons it issued.
    fn template(&self, shop_id: i64, template_id: i64) -> Result<Option<CouponTemplate>>;
    /// The shop's coupon issued under `source` / `source_key`, if any.
    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Holding>>;
    /// How many of the shop's coupons of a template were issued to a customer (by its own id).
    fn held(&self, shop_id: i64, template_id: i64, customer_id: i64) -> Result<i64>;
    /// The shop's coupon `coupon_id` as the API shows it, its status as at `now`.
    fn coupon(&self, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> Result<Option<Coupon>>;
    /// The shop's coupon with the (normalised) code `code`, as a redemption judges it.
    fn by_code(&self, shop_id: i64, code: &str) -> Result<Option<CodeHolder>>;
    /// The shop's templates, by id.
    fn templates(&self, shop_id: i64) -> Result<Vec<CouponTemplate>>;
    /// The shop's coupon with the (normalised) code `code` as the API shows it, its status
    /// as at `now`.
    fn coupon_with_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> Result<Option<Coupon>>;
    /// The coupons of a customer (by its own id) and of the customers merged into it,
    /// newest first, at most 500, their status as at `now`.
    fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Coupon>>;
    /// What became of the coupons of the shop's template `template_id`: redeemed, expired
    /// unused at `now`, and the revenue (paid less refunded) of the orders that redeemed
    /// them; all zero when the template is another shop's.
    fn template_usage(&self, shop_id: i64, template_id: i64, now: DateTime<Utc>) -> Result<TemplateUsage>;
}

/// Writes to the coupons.
pub trait CouponsWrite {
    /// Insert a coupon under `code` unless the shop has a coupon with that code already;
    /// its id, or `None` when the code was taken.
    fn insert(&self, coupon: &NewCoupon<'_>) -> Result<Option<i64>>;
    /// Count one more coupon issued from the shop's template `template_id` (nothing when it
    /// is another shop's).
    fn count_issued(&self, shop_id: i64, template_id: i64) -> Result<()>;
    /// Mark the shop's coupon `coupon_id` redeemed by an order, paid at `at` (nothing when
    /// it is another shop's).
    fn redeem(&self, shop_id: i64, coupon_id: i64, order_id: i64, at: DateTime<Utc>) -> Result<()>;
    /// A new template of the shop with the terms of `input` (validated), created and
    /// updated at `at`, none issued yet; its id.
    fn insert_template(&self, shop_id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<i64>;
    /// Replace the terms of the shop's template `id` with `input`'s, updated at `at`.
    fn update_template(&self, shop_id: i64, id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<()>;
}

/// Rewards, which a customer buys with points, and the redemptions that bought them.
pub trait RewardsRead {
    /// The shop's reward `reward_id`.
    fn reward(&self, shop_id: i64, reward_id: i64) -> Result<Option<Reward>>;
    /// The shop's redemption submitted with `idempotency_key`, if any.
    fn redemption_by_key(&self, shop_id: i64, idempotency_key: &str) -> Result<Option<RedemptionKey>>;
    /// The shop's redemption `redemption_id` as the API shows it (its coupon's status as at `now`).
    fn redemption(&self, shop_id: i64, redemption_id: i64, now: DateTime<Utc>) -> Result<Redemption>;
    /// The shop's rewards, by id.
    fn rewards(&self, shop_id: i64) -> Result<Vec<Reward>>;
    /// The ids of the shop's redemptions by a customer (by its own id), newest first, at
    /// most 200.
    fn redemptions_of(&self, shop_id: i64, customer_id: i64) -> Result<Vec<i64>>;
}

/// Writes to the rewards.
pub trait RewardsWrite {
    /// Count one more redemption of the shop's reward `reward_id`, and take one from its
    /// stock when it has one (nothing when it is another shop's).
    fn take_one(&self, shop_id: i64, reward_id: i64) -> Result<()>;
    /// Record a redemption; its id.
    fn insert_redemption(&self, redemption: &NewRedemption<'_>) -> Result<i64>;
    /// A new reward of the shop as `input` (validated) says, created and updated at `at`,
    /// none redeemed yet; its id.
    fn insert_reward(&self, shop_id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<i64>;
    /// Replace the shop's reward `id` with `input`'s, updated at `at`.
    fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<()>;
}

/// A coupon found by its source key: what it was issued of and to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub id: i64,
    pub template_id: i64,
    pub customer_id: i64,
}

/// A coupon found by its code, with what a redemption checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeHolder {
    pub id: i64,
    /// The customer it was issued to (who may since have been merged).
    pub customer_id: i64,
    pub expires_at: DateTime<Utc>,
    pub redeemed: bool,
    /// Its template's threshold: the smallest order it applies to.
    pub threshold: i64,
}

/// What became of a template's coupons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateUsage {
    pub redeemed: i64,
    /// Expired unused.
    pub expired: i64,
    /// Paid less refunded, of the orders that redeemed them.
    pub revenue: i64,
}

/// A coupon to insert, as the rules made it.
#[derive(Debug, Clone)]
pub struct NewCoupon<'a> {
    pub shop_id: i64,
    pub template_id: i64,
    pub customer_id: i64,
    pub code: &'a str,
    /// Who issued it: `api`, `reward`, `journey:<id>`.
    pub source: &'a str,
    /// Unique per shop and source: a second coupon with the same key is never issued.
    pub source_key: &'a str,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A redemption found by its idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedemptionKey {
    pub id: i64,
    pub customer_id: i64,
    pub reward_id: i64,
}

/// A redemption to record.
#[derive(Debug, Clone)]
pub struct NewRedemption<'a> {
    pub shop_id: i64,
    pub customer_id: i64,
    pub reward_id: i64,
    pub idempotency_key: &'a str,
    /// Points spent (positive).
    pub points: i64,
    pub ledger_id: i64,
    pub coupon_id: i64,
    pub balance_after: i64,
    pub at: DateTime<Utc>,
}
