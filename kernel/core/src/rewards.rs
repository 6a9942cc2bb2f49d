//! Rewards' redemption: a customer spends points on a reward, which issues a coupon.
//!
//! The points, the reward's stock and the coupon change together in one transaction
//! or not at all. A redemption is refused when the reward is not active, out of
//! stock, or costs more than the customer's available points (a debt leaves none);
//! its idempotency key makes a resend answer the first redemption.

use chrono::{DateTime, Utc};
use kith_domain::loyalty::{LedgerKind, RedeemRequest, Redemption};

use crate::ports::{NewRedemption, Storage, StorageExt, WriteTx};
use crate::{Error, Result, coupons, customers, ledger};

/// Spend a customer's points on a reward. A second submission with the same
/// idempotency key answers the first's redemption (`false`: not new); the key used for
/// another customer or reward is refused.
pub fn redeem(
    storage: &dyn Storage,
    shop_id: i64,
    customer_id: i64,
    req: &RedeemRequest,
    now: DateTime<Utc>,
) -> Result<(Redemption, bool)> {
    req.validate()?;
    storage.write(|tx| redeem_in(tx, shop_id, customer_id, req, now))
}

fn redeem_in(tx: &dyn WriteTx, shop_id: i64, customer_id: i64, req: &RedeemRequest, now: DateTime<Utc>) -> Result<(Redemption, bool)> {
    let id = customers::in_shop(tx, shop_id, customer_id)?;
    if let Some(first) = tx.rewards().redemption_by_key(shop_id, &req.idempotency_key)? {
        if first.customer_id != id || first.reward_id != req.reward_id {
            return Err(Error::Conflict(format!("idempotency_key `{}` was already used for another redemption", req.idempotency_key)));
        }
        return Ok((tx.rewards().redemption(shop_id, first.id, now)?, false));
    }
    let reward = tx.rewards().reward(shop_id, req.reward_id)?.ok_or_else(|| Error::NotFound(format!("reward {}", req.reward_id)))?;
    if !reward.active {
        return Err(Error::Conflict(format!("reward {} is not available", reward.id)));
    }
    if reward.stock == Some(0) {
        return Err(Error::Conflict(format!("reward {} is out of stock", reward.id)));
    }
    let available = tx.ledger().balance(shop_id, id)?.max(0);
    if available < reward.points_cost {
        return Err(Error::Conflict(format!(
            "insufficient points: {available} available, reward {} costs {}",
            reward.id, reward.points_cost
        )));
    }
    let source_key = format!("redemption:{}", req.idempotency_key);
    let coupon = coupons::issue(tx, shop_id, reward.coupon_template_id, id, "reward", &source_key, now)?.0;
    let ledger_id = ledger::post(
        tx,
        &ledger::Post {
            shop_id,
            customer_id: id,
            kind: LedgerKind::Redeem,
            points: -reward.points_cost,
            source: "reward",
            source_key: &req.idempotency_key,
            reason: &format!("redeemed for reward {} ({})", reward.id, reward.name),
            order_id: None,
            expires_at: None,
            at: now,
        },
    )?
    .ok_or_else(|| anyhow::anyhow!("an unused request id was refused by the ledger"))?;
    tx.rewards_writer().take_one(shop_id, reward.id)?;
    let balance_after = tx.ledger().balance(shop_id, id)?;
    let redemption = tx.rewards_writer().insert_redemption(&NewRedemption {
        shop_id,
        customer_id: id,
        reward_id: reward.id,
        idempotency_key: &req.idempotency_key,
        points: reward.points_cost,
        ledger_id,
        coupon_id: coupon.id,
        balance_after,
        at: now,
    })?;
    Ok((tx.rewards().redemption(shop_id, redemption, now)?, true))
}
