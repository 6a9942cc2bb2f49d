//! The ports of API keys: the keys as stored (only a hash of each secret), and the
//! memory of keys authenticated lately that a backend keeps for the core.

use chrono::{DateTime, Utc};
use kith_domain::auth::{Role, Scope};
use kith_domain::model::{ApiKey, Principal};

use crate::Result;

/// The keys.
pub trait KeysRead {
    /// The key `key_id`, of any shop or none, revoked or not.
    fn get(&self, key_id: &str) -> Result<Option<ApiKey>>;
    /// Keys of one shop, or of every shop and the admin keys when `shop_id` is `None`,
    /// by creation time then id.
    fn list(&self, shop_id: Option<i64>) -> Result<Vec<ApiKey>>;
    /// What authenticates the key `key_id` when it is not revoked: whom it stands for
    /// and the hash its secret must match, the role and scopes unparsed (the core reads
    /// them once the secret matched).
    fn credentials(&self, key_id: &str) -> Result<Option<KeyCredentials>>;
}

/// A key that is not revoked, as authentication reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCredentials {
    pub shop_id: Option<i64>,
    /// The role's name, and the scopes as the JSON array of their names that
    /// `KeysWrite::insert` was given (a backend may keep them as it likes and give
    /// this text back): the core reads them only once the secret matched.
    pub role: String,
    pub scopes: String,
    pub secret_hash: Vec<u8>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewKeyRow<'a> {
    pub id: &'a str,
    pub shop_id: Option<i64>,
    pub name: &'a str,
    pub role: Role,
    pub scopes: &'a [Scope],
    pub secret_hash: &'a [u8],
    pub created_at: DateTime<Utc>,
    /// `user:<id>`, a key's id, or `cli:<label>`.
    pub created_by: &'a str,
}

pub trait KeysWrite {
    /// Store a new key.
    fn insert(&self, key: &NewKeyRow<'_>) -> Result<()>;
    /// Mark the key `key_id` revoked at `at`.
    fn revoke(&self, key_id: &str, at: DateTime<Utc>) -> Result<()>;
}

/// Principals of keys authenticated lately, which a backend holds for the core's key
/// service (`kith_core::keys::KeyCache`) so that a request need not read storage to
/// know who is calling.
pub trait KeyMemory: Send + Sync {
    /// The principal of the key `key_id` remembered, when `secret` is its secret.
    fn get(&self, key_id: &str, secret: &str) -> Option<Principal>;
    /// Counts revocations: a principal read before one is not remembered after it.
    fn generation(&self) -> u64;
    /// Remember a principal read from storage when no key was revoked since `generation`.
    fn put(&self, generation: u64, secret_hash: Vec<u8>, principal: &Principal);
    /// Forget the key `key_id` (revoked), and every principal read before.
    fn forget(&self, key_id: &str);
}
