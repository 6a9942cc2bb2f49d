//! The shops, the tenants.

use chrono::{DateTime, Utc};
use kith_domain::model::{NewShop, Shop};

use crate::Result;

pub trait ShopsRead {
    /// The shop, `None` when there is none with this id.
    fn get(&self, shop_id: i64) -> Result<Option<Shop>>;
    /// Every shop, by id.
    fn list(&self) -> Result<Vec<Shop>>;
    /// The first shop (lowest id) with exactly this name.
    fn by_name(&self, name: &str) -> Result<Option<Shop>>;
}

pub trait ShopsWrite {
    /// Store a new shop as given (the core trimmed and validated it); its id.
    fn insert(&self, new: &NewShop, created_at: DateTime<Utc>) -> Result<i64>;
}
