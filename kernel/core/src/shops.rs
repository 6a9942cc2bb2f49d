//! Shops, the tenants: created by an operator, read by everyone of the shop.

use chrono::Utc;
use kith_domain::model::{NewShop, Shop};
use serde_json::json;

use crate::ports::{ReadTx, Storage, StorageExt};
use crate::{Actor, Error, Result};

/// The shop `shop_id`, or not found.
pub fn load(tx: &dyn ReadTx, shop_id: i64) -> Result<Shop> {
    tx.shops().get(shop_id)?.ok_or_else(|| Error::NotFound(format!("shop {shop_id}")))
}

/// The shop's time zone (UTC if the stored name no longer parses).
pub fn zone(tx: &dyn ReadTx, shop_id: i64) -> Result<chrono_tz::Tz> {
    Ok(load(tx, shop_id)?.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC))
}

/// Creating and reading shops.
pub trait ShopService: Storage {
    /// A new shop, audited; its name is trimmed.
    fn create_shop(&self, new: &NewShop, actor: &Actor) -> Result<Shop> {
        new.validate()?;
        let new = NewShop { name: new.name.trim().to_owned(), ..new.clone() };
        let now = Utc::now();
        self.write(|tx| {
            let id = tx.shops_writer().insert(&new, now)?;
            tx.audit().record(Some(id), actor, "shop.create", Some(&format!("shop:{id}")), json!({"name": new.name}), now)?;
            load(tx, id)
        })
    }

    fn get_shop(&self, shop_id: i64) -> Result<Shop> {
        self.read(|tx| load(tx, shop_id))
    }

    fn list_shops(&self) -> Result<Vec<Shop>> {
        self.read(|tx| tx.shops().list())
    }

    /// The first shop with this name, if any.
    fn find_shop_by_name(&self, name: &str) -> Result<Option<Shop>> {
        self.read(|tx| tx.shops().by_name(name))
    }
}

impl<S: Storage + ?Sized> ShopService for S {}
