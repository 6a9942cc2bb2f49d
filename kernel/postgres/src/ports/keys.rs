//! The keys ports on PostgreSQL.

#![allow(unused_imports, unused_variables)]

use chrono::{DateTime, Utc};
use kith_domain::auth::{Role, Scope};
use kith_domain::model::{ApiKey, Principal};
use kith_core::ports::*;

use super::{CoreResult as Result, Pg, unported};

impl KeysRead for Pg<'_> {
    fn get(&self, key_id: &str) -> Result<Option<ApiKey>> {
        Err(unported("KeysRead::get"))
    }

    fn list(&self, shop_id: Option<i64>) -> Result<Vec<ApiKey>> {
        Err(unported("KeysRead::list"))
    }

    fn credentials(&self, key_id: &str) -> Result<Option<KeyCredentials>> {
        Err(unported("KeysRead::credentials"))
    }
}

impl KeysWrite for Pg<'_> {
    fn insert(&self, key: &NewKeyRow<'_>) -> Result<()> {
        Err(unported("KeysWrite::insert"))
    }

    fn revoke(&self, key_id: &str, at: DateTime<Utc>) -> Result<()> {
        Err(unported("KeysWrite::revoke"))
    }
}
