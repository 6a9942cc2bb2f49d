//! API keys. A token is `kith_<id>_<secret>`; only SHA-256 of the secret is
//! stored. Secrets are 128 random bits, so a fast hash is enough: there is
//! nothing to brute-force that a slow hash would protect.
//!
//! Keys authenticated lately are remembered for [`KEY_CACHE_TTL`] in a [`KeyCache`]
//! the backend holds ([`Storage::key_memory`]), so that a request need not read
//! storage to know who is calling. A key revoked through this backend is forgotten at
//! once; one revoked by another process (`kith admin revoke-key` beside a running
//! server) stops working within the TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use kith_domain::FieldError;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::{ApiKey, CreatedKey, NewKey, Principal};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ports::{KeyMemory, NewKeyRow, Storage, StorageExt, WriteTx};
use crate::{Actor, Error, Result, shops};

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
pub struct KeyCache(Mutex<Remembrance>);

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

    /// Make every entry look `by` older (tests of the TTL).
    #[doc(hidden)]
    pub fn age(&self, by: Duration) {
        for e in self.lock().entries.values_mut() {
            e.at -= by;
        }
    }
}

impl KeyMemory for KeyCache {
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
}

/// `kith_<id>_<secret>` split into id and secret.
fn split_token(token: &str) -> Option<(&str, &str)> {
    token.strip_prefix("kith_").and_then(|rest| rest.split_once('_'))
}

/// Who created a key, as stored: the calling key's id (`user:<id>` for a console user's
/// session), or `cli:<label>` for the command line.
pub fn created_by(actor: &Actor) -> String {
    match &actor.key_id {
        Some(key_id) => key_id.clone(),
        None => format!("cli:{}", actor.label),
    }
}

/// Revoke, at `now` in this transaction, the shop's live keys created by `creator` and
/// the keys created with those, and so on; their ids. The caller forgets them from the
/// backend's key memory once the transaction is committed.
pub(crate) fn revoke_created_by(tx: &dyn WriteTx, shop_id: i64, creator: &str, now: chrono::DateTime<Utc>) -> Result<Vec<String>> {
    let keys = tx.keys().list(Some(shop_id))?;
    let mut creators = vec![creator.to_owned()];
    let mut revoked: Vec<String> = Vec::new();
    while let Some(creator) = creators.pop() {
        for key in keys.iter().filter(|k| k.revoked_at.is_none() && k.created_by.as_deref() == Some(creator.as_str())) {
            if revoked.contains(&key.id) {
                continue;
            }
            tx.keys_writer().revoke(&key.id, now)?;
            revoked.push(key.id.clone());
            creators.push(key.id.clone());
        }
    }
    Ok(revoked)
}

/// Creating, listing and revoking API keys, and authenticating their tokens.
pub trait KeyService: Storage {
    /// Create a key. Admin keys have no shop; shop keys must name an existing shop.
    fn create_key(&self, new: &NewKey, actor: &Actor) -> Result<CreatedKey> {
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
                shops::load(tx, shop_id).map_err(|_| FieldError::new("shop_id", format!("no shop {shop_id}")))?;
            }
            let secret_hash = hash(&secret);
            let row = NewKeyRow {
                id: &id,
                shop_id: new.shop_id,
                name,
                role: new.role,
                scopes: &scopes,
                secret_hash: &secret_hash,
                created_at: now,
                created_by: &created_by(actor),
            };
            tx.keys_writer().insert(&row)?;
            tx.audit().record(
                new.shop_id,
                actor,
                "key.create",
                Some(&format!("key:{id}")),
                json!({"role": new.role, "scopes": scopes, "name": name}),
                now,
            )?;
            let key = tx.keys().get(&id)?.ok_or_else(|| Error::Internal(anyhow::anyhow!("key {id} not found after its insert")))?;
            Ok(CreatedKey { key, token: token.clone() })
        })
    }

    /// Keys of one shop, or of every shop and the admin keys when `shop_id` is `None`.
    fn list_keys(&self, shop_id: Option<i64>) -> Result<Vec<ApiKey>> {
        self.read(|tx| tx.keys().list(shop_id))
    }

    /// Revoke a key. With `shop_id`, only that shop's keys are visible (others are not found).
    fn revoke_key(&self, shop_id: Option<i64>, key_id: &str, actor: &Actor) -> Result<ApiKey> {
        let now = Utc::now();
        self.write(|tx| {
            let key = tx
                .keys()
                .get(key_id)?
                .filter(|k| shop_id.is_none() || k.shop_id == shop_id)
                .ok_or_else(|| Error::NotFound(format!("key {key_id}")))?;
            if key.revoked_at.is_some() {
                return Err(Error::Conflict(format!("key {key_id} is already revoked")));
            }
            tx.keys_writer().revoke(key_id, now)?;
            tx.audit().record(key.shop_id, actor, "key.revoke", Some(&format!("key:{key_id}")), json!({}), now)?;
            Ok(ApiKey { revoked_at: Some(now), ..key })
        })
        .inspect(|_| {
            if let Some(memory) = self.key_memory() {
                memory.forget(key_id);
            }
        })
    }

    /// The principal of a token authenticated less than [`KEY_CACHE_TTL`] ago, without
    /// touching the database (so callers on an async runtime may call it in place);
    /// `None` means "ask [`KeyService::authenticate`]", not "unknown".
    fn remembered_principal(&self, token: &str) -> Option<Principal> {
        let (id, secret) = split_token(token)?;
        self.key_memory()?.get(id, secret)
    }

    /// The principal a bearer token stands for, or `None` for an unknown, malformed or revoked token.
    fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let Some((id, secret)) = split_token(token) else {
            return Ok(None);
        };
        let memory = self.key_memory();
        if let Some(principal) = memory.and_then(|m| m.get(id, secret)) {
            return Ok(Some(principal));
        }
        let generation = memory.map(|m| m.generation());
        let found = self.read(|tx| {
            let Some(stored) = tx.keys().credentials(id)? else { return Ok(None) };
            if !bool::from(hash(secret).ct_eq(&stored.secret_hash)) {
                return Ok(None);
            }
            let role = stored.role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let scopes = serde_json::from_str(&stored.scopes).map_err(anyhow::Error::from)?;
            let principal = Principal { key_id: id.to_owned(), shop_id: stored.shop_id, role, scopes };
            Ok(Some((principal, stored.secret_hash)))
        })?;
        Ok(found.map(|(principal, stored)| {
            if let (Some(memory), Some(generation)) = (memory, generation) {
                memory.put(generation, stored, &principal);
            }
            principal
        }))
    }
}

impl<S: Storage + ?Sized> KeyService for S {}
