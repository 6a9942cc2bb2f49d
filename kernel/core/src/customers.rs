//! Customers as every feature finds them: scoped by shop, through merges.

use crate::ports::ReadTx;
use crate::{Error, Result};

/// The customer `customer_id` of the shop is now (itself, or the survivor of its
/// merges); not found when the shop has no such customer.
pub fn in_shop(tx: &dyn ReadTx, shop_id: i64, customer_id: i64) -> Result<i64> {
    tx.customers().active(shop_id, customer_id)?.ok_or_else(|| Error::NotFound(format!("customer {customer_id}")))
}
