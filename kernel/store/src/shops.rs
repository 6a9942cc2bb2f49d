//! Shops, the tenants.

use chrono::Utc;
use kith_domain::model::{NewShop, Shop};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use crate::{Actor, Result, Store, StoreError, audit, from_ms, to_ms};

fn row_to_shop(r: &rusqlite::Row<'_>) -> rusqlite::Result<Shop> {
    Ok(Shop {
        id: r.get(0)?,
        name: r.get(1)?,
        time_zone: r.get(2)?,
        currency: r.get(3)?,
        region: r.get(4)?,
        created_at: from_ms(r.get(5)?),
    })
}

pub(crate) fn load_shop(conn: &Connection, shop_id: i64) -> Result<Shop> {
    conn.prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops WHERE id = ?1")?
        .query_row([shop_id], row_to_shop)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("shop {shop_id}")))
}

/// The shop's time zone (UTC if the stored name no longer parses).
pub(crate) fn zone(conn: &Connection, shop_id: i64) -> Result<chrono_tz::Tz> {
    Ok(load_shop(conn, shop_id)?.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC))
}

impl Store {
    pub fn create_shop(&self, new: &NewShop, actor: &Actor) -> Result<Shop> {
        new.validate()?;
        let now = Utc::now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO shops (name, time_zone, currency, region, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![new.name.trim(), new.time_zone, new.currency, new.region, to_ms(now)],
            )?;
            let id = tx.last_insert_rowid();
            audit::record(tx, Some(id), actor, "shop.create", Some(&format!("shop:{id}")), json!({"name": new.name.trim()}), now)?;
            load_shop(tx, id)
        })
    }

    pub fn get_shop(&self, shop_id: i64) -> Result<Shop> {
        self.read(|conn| load_shop(conn, shop_id))
    }

    pub fn list_shops(&self) -> Result<Vec<Shop>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops ORDER BY id")?;
            let rows = stmt.query_map([], row_to_shop)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The first shop with this name, if any.
    pub fn find_shop_by_name(&self, name: &str) -> Result<Option<Shop>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops WHERE name = ?1 ORDER BY id LIMIT 1")?
                .query_row([name], row_to_shop)
                .optional()?)
        })
    }
}
