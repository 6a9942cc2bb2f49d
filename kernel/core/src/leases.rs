//! Leases on a shop's work, for kernel processes sharing one database (see
//! [`crate::ports::Leases`]): the bus holds a plugin's deliveries and run batches in a
//! shop by one process at a time, so that two processes never call the same plugin on the
//! same batch.

use chrono::{DateTime, Utc};

use crate::Result;
use crate::ports::{Storage, StorageExt};

/// Taking and releasing leases, each in a write transaction of its own.
pub trait LeaseService: Storage {
    /// Take (or extend) `holder`'s lease on `work` in the shop until `until`; `false` while
    /// another holder's lease runs at `now` ([`crate::ports::Leases::take`]).
    fn take_lease(&self, shop_id: i64, work: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        self.write(|tx| tx.leases().take(shop_id, work, holder, until, now))
    }

    /// Release `holder`'s lease on `work` in the shop, if it holds it.
    fn release_lease(&self, shop_id: i64, work: &str, holder: &str) -> Result<()> {
        self.write(|tx| tx.leases().release(shop_id, work, holder))
    }
}

impl<S: Storage + ?Sized> LeaseService for S {}
