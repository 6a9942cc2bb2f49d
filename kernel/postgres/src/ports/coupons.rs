//! The coupons ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::coupons::{Coupon, CouponTemplate, CouponTemplateInput};
use kith_domain::loyalty::{Redemption, Reward, RewardInput};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl CouponsRead for Pg<'_> {
    fn template(&self, shop_id: i64, template_id: i64) -> Result<Option<CouponTemplate>> {
        Err(unported("CouponsRead::template"))
    }

    fn by_source(&self, shop_id: i64, source: &str, source_key: &str) -> Result<Option<Holding>> {
        Err(unported("CouponsRead::by_source"))
    }

    fn held(&self, template_id: i64, customer_id: i64) -> Result<i64> {
        Err(unported("CouponsRead::held"))
    }

    fn coupon(&self, shop_id: i64, coupon_id: i64, now: DateTime<Utc>) -> Result<Option<Coupon>> {
        Err(unported("CouponsRead::coupon"))
    }

    fn by_code(&self, shop_id: i64, code: &str) -> Result<Option<CodeHolder>> {
        Err(unported("CouponsRead::by_code"))
    }

    fn templates(&self, shop_id: i64) -> Result<Vec<CouponTemplate>> {
        Err(unported("CouponsRead::templates"))
    }

    fn coupon_with_code(&self, shop_id: i64, code: &str, now: DateTime<Utc>) -> Result<Option<Coupon>> {
        Err(unported("CouponsRead::coupon_with_code"))
    }

    fn customer_coupons(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Coupon>> {
        Err(unported("CouponsRead::customer_coupons"))
    }

    fn template_usage(&self, template_id: i64, now: DateTime<Utc>) -> Result<TemplateUsage> {
        Err(unported("CouponsRead::template_usage"))
    }
}

impl CouponsWrite for Pg<'_> {
    fn insert(&self, coupon: &NewCoupon<'_>) -> Result<Option<i64>> {
        Err(unported("CouponsWrite::insert"))
    }

    fn count_issued(&self, template_id: i64) -> Result<()> {
        Err(unported("CouponsWrite::count_issued"))
    }

    fn redeem(&self, coupon_id: i64, order_id: i64, at: DateTime<Utc>) -> Result<()> {
        Err(unported("CouponsWrite::redeem"))
    }

    fn insert_template(&self, shop_id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<i64> {
        Err(unported("CouponsWrite::insert_template"))
    }

    fn update_template(&self, shop_id: i64, id: i64, input: &CouponTemplateInput, at: DateTime<Utc>) -> Result<()> {
        Err(unported("CouponsWrite::update_template"))
    }
}

impl RewardsRead for Pg<'_> {
    fn reward(&self, shop_id: i64, reward_id: i64) -> Result<Option<Reward>> {
        Err(unported("RewardsRead::reward"))
    }

    fn redemption_by_key(&self, shop_id: i64, idempotency_key: &str) -> Result<Option<RedemptionKey>> {
        Err(unported("RewardsRead::redemption_by_key"))
    }

    fn redemption(&self, shop_id: i64, redemption_id: i64, now: DateTime<Utc>) -> Result<Redemption> {
        Err(unported("RewardsRead::redemption"))
    }

    fn rewards(&self, shop_id: i64) -> Result<Vec<Reward>> {
        Err(unported("RewardsRead::rewards"))
    }

    fn redemptions_of(&self, customer_id: i64) -> Result<Vec<i64>> {
        Err(unported("RewardsRead::redemptions_of"))
    }
}

impl RewardsWrite for Pg<'_> {
    fn take_one(&self, reward_id: i64) -> Result<()> {
        Err(unported("RewardsWrite::take_one"))
    }

    fn insert_redemption(&self, redemption: &NewRedemption<'_>) -> Result<i64> {
        Err(unported("RewardsWrite::insert_redemption"))
    }

    fn insert_reward(&self, shop_id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<i64> {
        Err(unported("RewardsWrite::insert_reward"))
    }

    fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, at: DateTime<Utc>) -> Result<()> {
        Err(unported("RewardsWrite::update_reward"))
    }
}
