//! Loyalty as the API and the kernel's loops reach it: a customer's points account and
//! ledger, operators' corrections, expiry and the ledger's consistency check (the rules
//! are [`ledger`]'s), rewards and their redemption ([`rewards`]).

use chrono::{DateTime, Utc};
use kith_domain::FieldError;
use kith_domain::loyalty::{LedgerEntry, LoyaltySettings, PointsAccount, PointsAdjustment, RedeemRequest, Redemption, Reward, RewardInput};
use serde_json::json;

use crate::ports::{ReadTx, Storage, StorageExt};
use crate::{Actor, Error, Result, customers, ledger, rewards, settings};

/// The section of the shop's settings that holds its loyalty programme's.
const SETTINGS: &str = settings::LOYALTY;

/// The shop's reward `reward_id`, or not found.
pub fn load_reward(tx: &dyn ReadTx, shop_id: i64, reward_id: i64) -> Result<Reward> {
    tx.rewards().reward(shop_id, reward_id)?.ok_or_else(|| Error::NotFound(format!("reward {reward_id}")))
}

/// Create (`id` absent) or replace a reward, audited.
fn put_reward(
    storage: &dyn Storage,
    shop_id: i64,
    id: Option<i64>,
    input: &RewardInput,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Reward> {
    input.validate()?;
    storage.write(|tx| {
        // Another shop's reward is not found before its fields are judged.
        let existing = id.map(|id| load_reward(tx, shop_id, id)).transpose()?;
        if !matches!(tx.coupons().template(shop_id, input.coupon_template_id), Ok(Some(_))) {
            return Err(FieldError::new("coupon_template_id", "no such coupon template in this shop").into());
        }
        let (id, action) = match existing {
            Some(reward) => {
                tx.rewards_writer().update_reward(shop_id, reward.id, input, now)?;
                (reward.id, "reward.update")
            }
            None => (tx.rewards_writer().insert_reward(shop_id, input, now)?, "reward.create"),
        };
        tx.audit().record(Some(shop_id), actor, action, Some(&id.to_string()), json!({"name": input.name}), now)?;
        load_reward(tx, shop_id, id)
    })
}

/// Points, rewards and redemptions.
pub trait LoyaltyService: Storage {
    /// A customer's balance, debt, expiring batches and tier with its history.
    fn points_account(&self, shop_id: i64, customer_id: i64) -> Result<PointsAccount> {
        self.read(|tx| {
            let id = customers::in_shop(tx, shop_id, customer_id)?;
            let balance = tx.ledger().balance(shop_id, id)?;
            let expiring = tx.ledger().expiring(shop_id, id)?;
            let tier = tx.ledger().tier(shop_id, id)?;
            let tier_history = tx.ledger().tier_history(shop_id, id)?;
            Ok(PointsAccount { customer_id: id, balance, debt: (-balance).max(0), available: balance.max(0), expiring, tier, tier_history })
        })
    }

    /// A customer's ledger, newest first, a page before the entry `before`.
    fn points_ledger(&self, shop_id: i64, customer_id: i64, before: Option<i64>, limit: usize) -> Result<Vec<LedgerEntry>> {
        self.read(|tx| {
            let id = customers::in_shop(tx, shop_id, customer_id)?;
            tx.ledger().page(shop_id, id, before, limit)
        })
    }

    /// An operator's correction; the idempotency key makes a resend answer the first entry
    /// (the rules are [`ledger::adjust`]'s).
    fn adjust_points(
        &self,
        shop_id: i64,
        customer_id: i64,
        adj: &PointsAdjustment,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(LedgerEntry, bool)> {
        ledger::adjust(self.storage(), shop_id, customer_id, adj, actor, now)
    }

    /// Expire batches past their expiry, at most `limit`; returns how many.
    fn expire_points(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        ledger::expire(self.storage(), now, limit)
    }

    /// Customers of a shop whose stored batches differ from a replay of their
    /// ledger, or whose balance is not what the batches and debt say.
    fn points_mismatches(&self, shop_id: i64) -> Result<Vec<i64>> {
        ledger::mismatches(self.storage(), shop_id)
    }

    fn loyalty_settings(&self, shop_id: i64) -> Result<LoyaltySettings> {
        self.read(|tx| tx.settings().loyalty(shop_id))
    }

    fn put_loyalty_settings(&self, shop_id: i64, value: &LoyaltySettings, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
        self.write(|tx| settings::put(tx, shop_id, SETTINGS, value, actor, now))
    }

    fn create_reward(&self, shop_id: i64, input: &RewardInput, actor: &Actor, now: DateTime<Utc>) -> Result<Reward> {
        put_reward(self.storage(), shop_id, None, input, actor, now)
    }

    fn update_reward(&self, shop_id: i64, id: i64, input: &RewardInput, actor: &Actor, now: DateTime<Utc>) -> Result<Reward> {
        put_reward(self.storage(), shop_id, Some(id), input, actor, now)
    }

    fn reward(&self, shop_id: i64, id: i64) -> Result<Reward> {
        self.read(|tx| load_reward(tx, shop_id, id))
    }

    fn rewards(&self, shop_id: i64) -> Result<Vec<Reward>> {
        self.read(|tx| tx.rewards().rewards(shop_id))
    }

    /// Spend a customer's points on a reward: the points, the stock and the
    /// coupon change together or not at all. A second submission with the
    /// same request id answers the first's redemption (`false`: not new); the
    /// rules are [`rewards::redeem`]'s.
    fn redeem(&self, shop_id: i64, customer_id: i64, req: &RedeemRequest, now: DateTime<Utc>) -> Result<(Redemption, bool)> {
        rewards::redeem(self.storage(), shop_id, customer_id, req, now)
    }

    /// A customer's redemptions, newest first.
    fn redemptions(&self, shop_id: i64, customer_id: i64, now: DateTime<Utc>) -> Result<Vec<Redemption>> {
        self.read(|tx| {
            let id = customers::in_shop(tx, shop_id, customer_id)?;
            let ids = tx.rewards().redemptions_of(shop_id, id)?;
            ids.into_iter().map(|r| tx.rewards().redemption(shop_id, r, now)).collect()
        })
    }
}

impl<S: Storage + ?Sized> LoyaltyService for S {}
