//! What the bus's integration suites share: a real store in a temporary
//! directory, the host, a bus on the test clock, one shop in Shanghai.

#![allow(dead_code)]

use kith_core::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use kith_bus::{Bus, BusConfig, Clock, EnableRequest, Package, TestClock};
use kith_core::Actor;
use kith_domain::model::NewShop;
use kith_domain::plugin::{Capability, Grant};
use kith_host::{Host, HostConfig};
use kith_provider::Provider;
use kith_sqlite::Store;
use kith_test_plugins as plugins;
use serde_json::{Value, json};

/// The webhook connector's signing secret.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn host() -> Arc<Host> {
    static HOST: OnceLock<Arc<Host>> = OnceLock::new();
    HOST.get_or_init(|| Arc::new(Host::new(HostConfig { default_timeout: Duration::from_millis(500), ..HostConfig::default() }).unwrap()))
        .clone()
}

pub fn actor() -> Actor {
    Actor::cli("test")
}

pub struct World {
    pub _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub clock: Arc<TestClock>,
    pub shop: i64,
}

pub fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("kith.db"), Default::default()).unwrap());
    let shop = NewShop { name: "A".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() };
    let shop = store.create_shop(&shop, &actor()).unwrap().id;
    // 16:00 in Shanghai.
    let clock = Arc::new(TestClock::new(Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()));
    let bus = Bus::new(store.clone(), host(), clock.clone(), BusConfig::default());
    World { _dir: dir, store, bus, clock, shop }
}

impl World {
    pub fn enable(&self, package: &plugins::Package, config: Value, grant: Option<Grant>) {
        let id = Package::from_tar_gz(&package.tar_gz()).unwrap();
        self.bus.install(&id, &actor()).unwrap();
        let request = EnableRequest { config: Some(config), grant, ..Default::default() };
        self.bus.enable(self.shop, &id.manifest.id, &request, &actor()).unwrap();
    }

    pub fn ingest(&self, event: Value) {
        let report = self.store.ingest_at(self.shop, vec![event], &actor(), self.clock.now()).unwrap();
        assert_eq!(report.accepted, 1, "{report:?}");
        self.bus.drain().unwrap();
    }

    /// Enable the SMS, e-mail and webhook connectors, all sending to `provider`.
    pub fn connect(&self, provider: &Provider) {
        let grant = || {
            Some(Grant {
                capabilities: [Capability::Config, Capability::Http, Capability::Log].into(),
                allowed_hosts: vec![provider.host()],
            })
        };
        self.enable(&plugins::SMS_HTTP, json!({"endpoint": provider.url("/sms"), "api_key": "k", "sign_name": "【Kith】"}), grant());
        self.enable(&plugins::EMAIL_HTTP, json!({"endpoint": provider.url("/email"), "api_key": "k", "from": "shop@example.com"}), grant());
        self.enable(&plugins::WEBHOOK, json!({"url": provider.url("/webhook"), "secret": SECRET}), grant());
    }

    pub fn later(&self, duration: chrono::Duration) {
        self.clock.advance(duration);
        self.bus.drain().unwrap();
    }
}
