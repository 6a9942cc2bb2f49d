//! API keys: the keys ports on PostgreSQL of the core's key service (`kith_core::keys`),
//! which holds the rules and the memory of keys authenticated lately. Only SHA-256 of a
//! key's secret is stored.

use chrono::{DateTime, Utc};
use kith_core::ports::*;
use kith_domain::auth::Role;
use kith_domain::model::ApiKey;
use tokio_postgres::Row;

use super::{CoreResult as Result, Pg};
use crate::pg::{get, millis, time};

const KEY_COLUMNS: &str = "id, shop_id, name, role, scopes, created_at, revoked_at, created_by";

fn row_to_key(row: &Row) -> Result<ApiKey> {
    let role: String = get(row, 3)?;
    let scopes: String = get(row, 4)?;
    Ok(ApiKey {
        id: get(row, 0)?,
        shop_id: get(row, 1)?,
        name: get(row, 2)?,
        role: role.parse().unwrap_or(Role::App),
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created_at: time(get(row, 5)?)?,
        revoked_at: get::<Option<i64>>(row, 6)?.map(time).transpose()?,
        created_by: get(row, 7)?,
    })
}

impl KeysRead for Pg<'_> {
    fn get(&self, key_id: &str) -> Result<Option<ApiKey>> {
        let row = self.query_opt(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"), &[&key_id])?;
        row.as_ref().map(row_to_key).transpose()
    }

    fn list(&self, shop_id: Option<i64>) -> Result<Vec<ApiKey>> {
        self.query(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE $1::BIGINT IS NULL OR shop_id = $1 ORDER BY created_at, id"),
            &[&shop_id],
        )?
        .iter()
        .map(row_to_key)
        .collect()
    }

    fn credentials(&self, key_id: &str) -> Result<Option<KeyCredentials>> {
        let row =
            self.query_opt("SELECT shop_id, role, scopes, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL", &[&key_id])?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeyCredentials { shop_id: get(&row, 0)?, role: get(&row, 1)?, scopes: get(&row, 2)?, secret_hash: get(&row, 3)? }))
    }
}

impl KeysWrite for Pg<'_> {
    fn insert(&self, key: &NewKeyRow<'_>) -> Result<()> {
        self.execute(
            "INSERT INTO api_keys (id, shop_id, name, role, scopes, secret_hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &key.id,
                &key.shop_id,
                &key.name,
                &key.role.as_str(),
                &serde_json::to_string(key.scopes).unwrap_or_default(),
                &key.secret_hash,
                &millis(key.created_at),
                &key.created_by,
            ],
        )?;
        Ok(())
    }

    fn revoke(&self, key_id: &str, at: DateTime<Utc>) -> Result<()> {
        self.execute("UPDATE api_keys SET revoked_at = $1 WHERE id = $2", &[&millis(at), &key_id])?;
        Ok(())
    }
}
