//! The core's conformance suite on SQLite: every case on a new database file.

use chrono::Utc;
use kith_conformance::{Backend, Factory};
use kith_core::Actor;
use kith_core::Storage;
use kith_core::prelude::*;
use kith_domain::loyalty::LoyaltySettings;
use kith_domain::model::NewShop;
use kith_sqlite::{Store, StoreOptions};
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

    fn put_loyalty_settings(&self, shop_id: i64, settings: &LoyaltySettings) {
        self.store.put_loyalty_settings(shop_id, settings, &Actor::cli("conformance"), Utc::now()).unwrap();
    }

    fn put_messaging_settings(&self, shop_id: i64, settings: &kith_domain::messaging::MessagingSettings) {
        self.store.put_messaging_settings(shop_id, settings, &Actor::cli("conformance"), Utc::now()).unwrap();
    }

    fn enable_connector(&self, shop_id: i64, plugin_id: &str, channel: &str) {
        use kith_domain::plugin::{Grant, Manifest};
        let manifest = Manifest::parse(&format!(
            "id = \"{plugin_id}\"\nversion = \"1.0.0\"\nkind = \"channel-connector\"\napi-version = \"0.2.0\"\nchannel = \"{channel}\"\ndescription = \"Stands in for a connector\"\nvendor = \"Kith\"\n"
        ))
        .unwrap();
        // The catalogue keeps the component's bytes; none is run here, so any bytes do.
        let sha256 = format!("{plugin_id:0>64}");
        let cli = Actor::cli("conformance");
        self.store.install_plugin(&manifest, plugin_id.as_bytes(), &sha256, &cli).unwrap();
        let put = kith_core::plugins::PutSubscription {
            plugin_id,
            version_req: "1.0.0",
            version: "1.0.0",
            config: &Value::Null,
            grant: &Grant::all_requested(&manifest),
            run_every_hours: None,
            channel: Some(channel),
        };
        self.store.put_subscription(shop_id, &put, &cli).unwrap();
    }

    fn enable_plugin(&self, shop_id: i64, manifest: &str) {
        use kith_domain::plugin::{Grant, Manifest};
        let manifest = Manifest::parse(manifest).unwrap();
        let (id, version) = (manifest.id.clone(), manifest.version.to_string());
        let cli = Actor::cli("conformance");
        self.store.install_plugin(&manifest, id.as_bytes(), &format!("{id:0>64}"), &cli).unwrap();
        let put = kith_core::plugins::PutSubscription {
            plugin_id: &id,
            version_req: &version,
            version: &version,
            config: &Value::Null,
            grant: &Grant::all_requested(&manifest),
            run_every_hours: None,
            channel: None,
        };
        self.store.put_subscription(shop_id, &put, &cli).unwrap();
    }

    fn create_coupon_template(&self, shop_id: i64, input: &kith_domain::coupons::CouponTemplateInput) -> i64 {
        self.store.create_coupon_template(shop_id, input, &Actor::cli("conformance"), Utc::now()).unwrap().id
    }

    fn create_reward(&self, shop_id: i64, input: &kith_domain::loyalty::RewardInput) -> i64 {
        self.store.create_reward(shop_id, input, &Actor::cli("conformance"), Utc::now()).unwrap().id
    }

    fn create_segment(&self, shop_id: i64, name: &str, definition: Value, now: chrono::DateTime<Utc>) -> i64 {
        let input = kith_domain::segments::SegmentInput { name: name.into(), description: None, definition };
        self.store.create_segment(shop_id, &input, &Actor::cli("conformance"), now).unwrap().id
    }

    fn create_journey(&self, shop_id: i64, definition: Value, now: chrono::DateTime<Utc>) -> i64 {
        let input = kith_domain::journeys::JourneyInput { name: "Conformance journey".into(), description: None, definition };
        let cli = Actor::cli("conformance");
        let id = self.store.create_journey(shop_id, &input, &cli, now).unwrap().id;
        self.store.set_journey_status(shop_id, id, kith_domain::journeys::JourneyStatus::Active, &cli, now).unwrap();
        id
    }

    fn journey_runs(&self, shop_id: i64, journey_id: i64) -> Vec<kith_domain::journeys::JourneyRun> {
        let filter = kith_core::journeys::RunFilter::default();
        self.store.journey_runs(shop_id, journey_id, &filter, None, 100_000).unwrap()
    }

    fn delete_segment(&self, shop_id: i64, segment_id: i64, now: chrono::DateTime<Utc>) {
        self.store.delete_segment(shop_id, segment_id, &Actor::cli("conformance"), now).unwrap();
    }

    fn events(&self, shop_id: i64) -> Vec<(String, Value)> {
        let events = self.store.events_after(shop_id, 0, 100_000).unwrap();
        events.into_iter().map(|e| (e.kind, e.payload.value())).collect()
    }
}

kith_conformance::suite!(Sqlite);
