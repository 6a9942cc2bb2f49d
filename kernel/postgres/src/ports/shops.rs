//! Shops, the tenants: the shops ports on PostgreSQL.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::model::{NewShop, Shop};
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

const SHOP_COLUMNS: &str = "id, name, time_zone, currency, region, created_at";

fn row_to_shop(row: &Row) -> Result<Shop> {
    Ok(Shop {
        id: get(row, 0)?,
        name: get(row, 1)?,
        time_zone: get(row, 2)?,
        currency: get(row, 3)?,
        region: get(row, 4)?,
        created_at: time(get(row, 5)?)?,
    })
}

impl ShopsRead for Pg<'_> {
    fn get(&self, shop_id: i64) -> Result<Option<Shop>> {
        let row = self.query_opt(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE id = $1"), &[&shop_id])?;
        row.as_ref().map(row_to_shop).transpose()
    }

    fn list(&self) -> Result<Vec<Shop>> {
        self.query(&format!("SELECT {SHOP_COLUMNS} FROM shops ORDER BY id"), &[])?.iter().map(row_to_shop).collect()
    }

    fn by_name(&self, name: &str) -> Result<Option<Shop>> {
        let row = self.query_opt(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE name = $1 ORDER BY id LIMIT 1"), &[&name])?;
        row.as_ref().map(row_to_shop).transpose()
    }
}

impl ShopsWrite for Pg<'_> {
    fn insert(&self, new: &NewShop, created_at: DateTime<Utc>) -> Result<i64> {
        let row = self.query_one(
            "INSERT INTO shops (name, time_zone, currency, region, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&new.name, &new.time_zone, &new.currency, &new.region, &millis(created_at)],
        )?;
        get(&row, 0)
    }
}
