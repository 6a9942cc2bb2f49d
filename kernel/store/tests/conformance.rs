//! The core's conformance suite on SQLite: every case on a new database file.

use chrono::{DateTime, Utc};
use kith_conformance::{Backend, Factory};
use kith_core::Storage;
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::model::{IngestReport, NewShop};
use kith_store::{Actor, Store, StoreOptions};
use serde_json::Value;

struct Sqlite;

struct SqliteBackend {
    store: Store,
    _dir: tempfile::TempDir,
}

impl Factory for Sqlite {
    fn fresh(&self) -> Box<dyn Backend> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap();
        Box::new(SqliteBackend { store, _dir: dir })
    }
}

impl Backend for SqliteBackend {
    fn storage(&self) -> &dyn Storage {
        &self.store
    }

    fn create_shop(&self, name: &str, time_zone: &str) -> i64 {
        let new = NewShop { name: name.into(), time_zone: time_zone.into(), currency: "CNY".into(), region: "CN".into() };
        self.store.create_shop(&new, &Actor::cli("conformance")).unwrap().id
    }

    fn ingest(&self, shop_id: i64, events: Vec<Value>, now: DateTime<Utc>) -> IngestReport {
        self.store.ingest_at(shop_id, events, &Actor::cli("conformance"), now).unwrap()
    }

    fn put_loyalty_settings(&self, shop_id: i64, settings: &LoyaltySettings) {
        self.store.put_loyalty_settings(shop_id, settings, &Actor::cli("conformance"), Utc::now()).unwrap();
    }
}

kith_conformance::suite!(Sqlite);
