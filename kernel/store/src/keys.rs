//! API keys. A token is `kith_<id>_<secret>`; only SHA-256 of the secret is
//! stored. Secrets are 128 random bits, so a fast hash is enough: there is
//! nothing to brute-force that a slow hash would protect.
//!
//! Keys authenticated lately are remembered for [`KEY_CACHE_TTL`], so that a
//! request need not read the database to know who is calling. A key revoked
//! through this store is forgotten at once; one revoked by another process
//! (`kith admin revoke-key` beside a running server) stops working within the
//! TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long an authenticated key is taken on trust without reading the database.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Most keys remembered; beyond that the cache starts again (only keys that
/// authenticated get in, so this bounds a shop with very many keys, not an attacker).
const KEY_CACHE_CAP: usize = 4096;

/// Principals of keys authenticated lately, by key id, with the hash their secret must match.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<Remembrance>);

#[derive(Default)]
struct Remembrance {
    entries: HashMap<String, Remembered>,
    /// Counts revocations: a principal read before one is not remembered after it.
    generation: u64,
}

struct Remembered {
    secret_hash: Vec<u8>,
    principal: Principal,
    at: Instant,
}

impl KeyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Remembrance> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &str, secret: &str) -> Option<Principal> {
        let cache = self.lock();
        let entry = cache.entries.get(id).filter(|e| e.at.elapsed() < KEY_CACHE_TTL)?;
        bool::from(hash(secret).ct_eq(&entry.secret_hash)).then(|| entry.principal.clone())
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remember a principal read from the database when no key was revoked since `generation`.
    fn put(&self, generation: u64, secret_hash: Vec<u8>, principal: &Principal) {
        let mut cache = self.lock();
        if cache.generation != generation {
            return;
        }
        if cache.entries.len() >= KEY_CACHE_CAP {
            cache.entries.clear();
        }
        cache.entries.insert(principal.key_id.clone(), Remembered { secret_hash, principal: principal.clone(), at: Instant::now() });
    }

    fn forget(&self, id: &str) {
        let mut cache = self.lock();
        cache.generation += 1;
        cache.entries.remove(id);
    }

    /// Make every entry look `by` older (tests of the TTL).
    #[cfg(test)]
    fn age(&self, by: Duration) {
        for e in self.lock().entries.values_mut() {
            e.at -= by;
        }
    }
}

/// `kith_<id>_<secret>` split into id and secret.
fn split_token(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix("kith_").and_then(|rest| rest.split_once('_'))
}

impl Store {
    /// Create a key. Admin keys have no shop; shop keys must name an existing shop.
    pub fn create_key(&self, new: &NewKey, actor: &Actor) -> Result<CreatedKey> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(FieldError::new("name", "must be 1-100 characters").into());
        }
        kith_domain::text::check("name", name)?;
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
        .inspect(|_| self.keys.forget(key_id))
    }

    /// The principal of a token authenticated less than [`KEY_CACHE_TTL`] ago, without
    /// touching the database (so callers on an async runtime may call it in place);
    /// `None` means "ask [`Store::authenticate`]", not "unknown".
    pub fn remembered_principal(&self, token: &str) -> Option<Principal> {
        let (id, secret) = split_token(token)?;
        self.keys.get(id, secret)
    }

    /// The principal a bearer token stands for, or `None` for an unknown, malformed or revoked token.
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        if let Some(principal) = self.keys.get(id, secret) {
            return Ok(Some(principal));
        }
        let generation = self.keys.generation();
        let found = self.read(|conn| {
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
            let principal = Principal {
                key_id: id.to_owned(),
                shop_id,
                role: role.parse().map_err(|e: String| anyhow::anyhow!(e))?,
                scopes: serde_json::from_str(&scopes).map_err(anyhow::Error::from)?,
            };
            Ok(Some((principal, stored)))
        })?;
        Ok(found.map(|(principal, stored)| {
            self.keys.put(generation, stored, &principal);
            principal
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_core::prelude::*;
    use crate::{StoreOptions, temp_store};

    fn owner_key(store: &Store) -> CreatedKey {
        let new: kith_domain::model::NewShop = serde_json::from_value(json!({"name": "Keys"})).unwrap();
        let shop = store.create_shop(&new, &Actor::cli("test")).unwrap().id;
        let new = NewKey { shop_id: Some(shop), name: "owner".into(), role: Role::Owner, scopes: None };
        store.create_key(&new, &Actor::cli("test")).unwrap()
    }

    #[test]
    fn an_authenticated_key_is_remembered_until_revoked_here() {
        let (_dir, store) = temp_store();
        let created = owner_key(&store);
        assert_eq!(store.remembered_principal(&created.token), None, "nothing is remembered before the first request");
        let principal = store.authenticate(&created.token).unwrap().expect("a new key authenticates");
        assert_eq!(store.remembered_principal(&created.token), Some(principal));

        let wrong = format!("kith_{}_{:032x}", created.key.id, 7);
        assert_eq!(store.remembered_principal(&wrong), None, "a remembered id with another secret");
        assert_eq!(store.authenticate(&wrong).unwrap(), None);

        store.revoke_key(None, &created.key.id, &Actor::cli("test")).unwrap();
        assert_eq!(store.remembered_principal(&created.token), None);
        assert_eq!(store.authenticate(&created.token).unwrap(), None, "revoked here: refused at once");
    }

    #[test]
    fn a_key_revoked_by_another_process_stops_working_within_the_ttl() {
        let (dir, store) = temp_store();
        let created = owner_key(&store);
        store.authenticate(&created.token).unwrap().expect("a new key authenticates");
        // `kith admin revoke-key` opens the file on its own.
        let other = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
        other.revoke_key(None, &created.key.id, &Actor::cli("admin")).unwrap();
        assert!(store.authenticate(&created.token).unwrap().is_some(), "taken on trust for at most the TTL");
        store.keys.age(KEY_CACHE_TTL);
        assert_eq!(store.remembered_principal(&created.token), None);
        assert_eq!(store.authenticate(&created.token).unwrap(), None, "read again from the database once the TTL is over");
    }
}
