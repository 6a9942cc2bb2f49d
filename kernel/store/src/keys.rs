//! API keys. A token is `kith_<id>_<secret>`; only SHA-256 of the secret is
//! stored. Secrets are 128 random bits, so a fast hash is enough: there is
//! nothing to brute-force that a slow hash would protect.

use chrono::Utc;
use kith_domain::FieldError;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::{ApiKey, CreatedKey, NewKey, Principal};
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Actor, Result, Store, StoreError, audit, from_ms, shops, to_ms};

const KEY_COLUMNS: &str = "id, shop_id, name, role, scopes, created_at, revoked_at";

fn row_to_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let role: String = r.get(3)?;
    let scopes: String = r.get(4)?;
    Ok(ApiKey {
        id: r.get(0)?,
        shop_id: r.get(1)?,
        name: r.get(2)?,
        role: role.parse().unwrap_or(Role::App),
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        created_at: from_ms(r.get(5)?),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
    })
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl Store {
    /// Create a key. Admin keys have no shop; shop keys must name an existing shop.
    pub fn create_key(&self, new: &NewKey, actor: &Actor) -> Result<CreatedKey> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(FieldError::new("name", "must be 1-100 characters").into());
        }
        match (new.role, new.shop_id) {
            (Role::Admin, Some(_)) => return Err(FieldError::new("shop_id", "admin keys belong to no shop").into()),
            (Role::Admin, None) => {}
            (_, None) => return Err(FieldError::new("shop_id", "is required for a shop key").into()),
            (_, Some(_)) => {}
        }
        let scopes: Vec<Scope> = match &new.scopes {
            Some(_) if new.role == Role::Admin => {
                return Err(FieldError::new("scopes", "admin keys carry no shop scopes").into());
            }
            Some(scopes) => {
                let mut s = scopes.clone();
                s.sort();
                s.dedup();
                s
            }
            None => new.role.default_scopes(),
        };
        let mut rng = rand::rng();
        let id = format!("{:012x}", rng.random::<u64>() & 0xffff_ffff_ffff);
        let secret = format!("{:032x}", rng.random::<u128>());
        let token = format!("kith_{id}_{secret}");
        let now = Utc::now();
        self.write(|tx| {
            if let Some(shop_id) = new.shop_id {
                shops::load_shop(tx, shop_id).map_err(|_| FieldError::new("shop_id", format!("no shop {shop_id}")))?;
            }
            tx.execute(
                "INSERT INTO api_keys (id, shop_id, name, role, scopes, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    new.shop_id,
                    name,
                    new.role.as_str(),
                    serde_json::to_string(&scopes).unwrap_or_default(),
                    hash(&secret),
                    to_ms(now)
                ],
            )?;
            audit::record(
                tx,
                new.shop_id,
                actor,
                "key.create",
                Some(&format!("key:{id}")),
                json!({"role": new.role, "scopes": scopes, "name": name}),
                now,
            )?;
            let key = tx.query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [&id], row_to_key)?;
            Ok(CreatedKey { key, token: token.clone() })
        })
    }

    /// Keys of one shop, or of every shop and the admin keys when `shop_id` is `None`.
    pub fn list_keys(&self, shop_id: Option<i64>) -> Result<Vec<ApiKey>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR shop_id = ?1 ORDER BY created_at, id"))?;
            let rows = stmt.query_map([shop_id], row_to_key)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Revoke a key. With `shop_id`, only that shop's keys are visible (others are not found).
    pub fn revoke_key(&self, shop_id: Option<i64>, key_id: &str, actor: &Actor) -> Result<ApiKey> {
        let now = Utc::now();
        self.write(|tx| {
            let key = tx
                .query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [key_id], row_to_key)
                .optional()?
                .filter(|k| shop_id.is_none() || k.shop_id == shop_id)
                .ok_or_else(|| StoreError::NotFound(format!("key {key_id}")))?;
            if key.revoked_at.is_some() {
                return Err(StoreError::Conflict(format!("key {key_id} is already revoked")));
            }
            tx.execute("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2", params![to_ms(now), key_id])?;
            audit::record(tx, key.shop_id, actor, "key.revoke", Some(&format!("key:{key_id}")), json!({}), now)?;
            Ok(ApiKey { revoked_at: Some(now), ..key })
        })
    }

    /// The principal a bearer token stands for, or `None` for an unknown, malformed or revoked token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let Some((id, secret)) = token.strip_prefix("kith_").and_then(|rest| rest.split_once('_')) else {
            return Ok(None);
        };
        self.read(|conn| {
            let row = conn
                .prepare_cached("SELECT shop_id, role, scopes, secret_hash FROM api_keys WHERE id = ?1 AND revoked_at IS NULL")?
                .query_row([id], |r| {
                    Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?))
                })
                .optional()?;
            let Some((shop_id, role, scopes, stored)) = row else { return Ok(None) };
            if !bool::from(hash(secret).ct_eq(&stored)) {
                return Ok(None);
            }
            Ok(Some(Principal {
                key_id: id.to_owned(),
                shop_id,
                role: role.parse().map_err(|e: String| anyhow::anyhow!(e))?,
                scopes: serde_json::from_str(&scopes).map_err(anyhow::Error::from)?,
            }))
        })
    }
}
