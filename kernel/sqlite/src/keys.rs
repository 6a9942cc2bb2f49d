//! API keys on SQLite: the keys ports of the core's key service (`kith_core::keys`),
//! which holds the rules and the memory of keys authenticated lately. Only SHA-256
//! of a key's secret is stored.

use chrono::{DateTime, Utc};
use kith_core::ports::{KeyCredentials, KeysRead, KeysWrite, NewKeyRow};
use kith_domain::auth::Role;
use kith_domain::model::ApiKey;
use rusqlite::{Connection, OptionalExtension, params};

use crate::sql::Sql;
use crate::sql::{CoreResult, core, sql};
use crate::{Result, from_ms, to_ms};

const KEY_COLUMNS: &str = "id, shop_id, name, role, scopes, created_at, revoked_at, created_by";

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
        created_by: r.get(7)?,
    })
}

fn credentials(conn: &Connection, key_id: &str) -> Result<Option<KeyCredentials>> {
    let row = conn
        .prepare_cached("SELECT shop_id, role, scopes, secret_hash FROM api_keys WHERE id = ?1 AND revoked_at IS NULL")?
        .query_row([key_id], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?)))
        .optional()?;
    let Some((shop_id, role, scopes, secret_hash)) = row else { return Ok(None) };
    Ok(Some(KeyCredentials { shop_id, role, scopes, secret_hash }))
}

impl KeysRead for Sql<'_> {
    fn get(&self, key_id: &str) -> CoreResult<Option<ApiKey>> {
        sql(self.0.query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [key_id], row_to_key).optional())
    }

    fn list(&self, shop_id: Option<i64>) -> CoreResult<Vec<ApiKey>> {
        sql(self
            .0
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR shop_id = ?1 ORDER BY created_at, id"))
            .and_then(|mut stmt| stmt.query_map([shop_id], row_to_key)?.collect()))
    }

    fn credentials(&self, key_id: &str) -> CoreResult<Option<KeyCredentials>> {
        core(credentials(self.0, key_id))
    }
}

impl KeysWrite for Sql<'_> {
    fn insert(&self, key: &NewKeyRow<'_>) -> CoreResult<()> {
        sql(self.0.execute(
            "INSERT INTO api_keys (id, shop_id, name, role, scopes, secret_hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                key.id,
                key.shop_id,
                key.name,
                key.role.as_str(),
                serde_json::to_string(key.scopes).unwrap_or_default(),
                key.secret_hash,
                to_ms(key.created_at),
                key.created_by
            ],
        ))?;
        Ok(())
    }

    fn revoke(&self, key_id: &str, at: DateTime<Utc>) -> CoreResult<()> {
        sql(self.0.execute("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2", params![to_ms(at), key_id]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kith_core::keys::KEY_CACHE_TTL;
    use kith_core::prelude::*;
    use kith_domain::auth::Role;
    use kith_domain::model::{CreatedKey, NewKey};
    use serde_json::json;

    use crate::{Actor, Store, StoreOptions, temp_store};

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
