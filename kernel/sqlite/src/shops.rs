//! Shops, the tenants: the SQLite side of the core's shops ports.

use chrono::{DateTime, Utc};
use kith_core::ports::{ShopsRead, ShopsWrite};
use kith_domain::model::{NewShop, Shop};
use rusqlite::{Connection, OptionalExtension, params};

use crate::sql::Sql;
use crate::sql::{CoreResult, sql};
use crate::{Result, StoreError, from_ms, to_ms};

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

fn find_shop(conn: &Connection, shop_id: i64) -> rusqlite::Result<Option<Shop>> {
    conn.prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops WHERE id = ?1")?
        .query_row([shop_id], row_to_shop)
        .optional()
}

pub(crate) fn load_shop(conn: &Connection, shop_id: i64) -> Result<Shop> {
    find_shop(conn, shop_id)?.ok_or_else(|| StoreError::NotFound(format!("shop {shop_id}")))
}

/// The shop's time zone (UTC if the stored name no longer parses).
pub(crate) fn zone(conn: &Connection, shop_id: i64) -> Result<chrono_tz::Tz> {
    Ok(load_shop(conn, shop_id)?.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC))
}

impl ShopsRead for Sql<'_> {
    fn get(&self, shop_id: i64) -> CoreResult<Option<Shop>> {
        sql(find_shop(self.0, shop_id))
    }

    fn list(&self) -> CoreResult<Vec<Shop>> {
        sql(self
            .0
            .prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops ORDER BY id")
            .and_then(|mut stmt| stmt.query_map([], row_to_shop)?.collect()))
    }

    fn by_name(&self, name: &str) -> CoreResult<Option<Shop>> {
        let found = self
            .0
            .prepare_cached("SELECT id, name, time_zone, currency, region, created_at FROM shops WHERE name = ?1 ORDER BY id LIMIT 1")
            .and_then(|mut stmt| stmt.query_row([name], row_to_shop).optional());
        sql(found)
    }
}

impl ShopsWrite for Sql<'_> {
    fn insert(&self, new: &NewShop, created_at: DateTime<Utc>) -> CoreResult<i64> {
        sql(self.0.execute(
            "INSERT INTO shops (name, time_zone, currency, region, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![new.name, new.time_zone, new.currency, new.region, to_ms(created_at)],
        ))?;
        Ok(self.0.last_insert_rowid())
    }
}
