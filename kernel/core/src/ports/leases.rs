//! The leases' port: a shop's work held by one kernel process at a time, in the database
//! that several processes share.
//!
//! A lease is a row (shop, work, holder, until). `work` names what is held (the bus's
//! `delivery:<plugin>` and `run:<plugin>`); `holder` names the process (a node id made
//! when it starts); `until` is when the lease runs out by itself, so that the work of a
//! process that died holding it is free again then, with nobody to release it.

use chrono::{DateTime, Utc};

use crate::Result;

/// Leases on a shop's work. Each method is one statement's worth of work, run in the
/// caller's write transaction: writes are serialised (see `Storage::run_write`), so a take
/// decides on the lease as every committed write left it.
pub trait Leases {
    /// Take the lease on `work` in the shop for `holder` until `until`; whether it was taken.
    ///
    /// It is taken when no lease on that work is held, when the one held ran out
    /// (its `until` is at or before `now`), or when `holder` holds it already (then it is
    /// extended: its `until` becomes `until`). It is refused (`false`, nothing written)
    /// while another holder's lease runs. Leases are per shop and per work: a lease on
    /// another work, or on the same work in another shop, is no obstacle.
    fn take(&self, shop_id: i64, work: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool>;
    /// Give up `holder`'s lease on `work` in the shop: free at once for anyone. A lease that
    /// `holder` does not hold (another's, one never taken) is left as it is.
    fn release(&self, shop_id: i64, work: &str, holder: &str) -> Result<()>;
}
