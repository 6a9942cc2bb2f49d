//! A kernel with two shops, keys of every role, and a little data.

use kith_core::prelude::*;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_api::{ApiConfig, AppState};
use kith_core::Actor;
use kith_domain::auth::Role;
use kith_domain::model::{NewKey, NewShop};
use kith_sqlite::{Store, StoreOptions};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct Harness {
    _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    /// The bus without workers: tests deliver with `bus.drain()`.
    pub bus: Arc<kith_bus::Bus>,
    /// The bus's clock, moved by tests past backoffs.
    pub clock: Arc<kith_bus::TestClock>,
    pub app: Router,
    pub shop_a: i64,
    pub shop_b: i64,
    pub admin: String,
    /// Keys of shop A by role.
    pub keys: Vec<(Role, String)>,
    /// The owner key of shop B.
    pub foreign: String,
    /// Customer 1 of shop A (phone +8613812345678, manual tag `seeded`), who absorbed customer 2.
    pub customer: i64,
    pub merged_customer: i64,
    pub merge_id: i64,
    /// Id of an analyst key of shop A, for revocation.
    pub analyst_key_id: String,
    /// Shop A's coupon template, a reward for 50 points of it, a coupon issued
    /// to `customer` (who holds 100 points), and a message to them.
    pub template: i64,
    pub reward: i64,
    pub coupon_code: String,
    pub message: String,
    /// Shop A's segment of customers tagged `seeded`, and a snapshot of it.
    pub segment: i64,
    pub snapshot: i64,
    /// Shop A's journeys: one active (a message on entry into the segment), one draft.
    pub journey: i64,
    pub draft_journey: i64,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Assert a problem+json answer with this status and problem type slug.
    pub fn assert_problem(&self, status: u16, slug: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(self.body["type"], format!("urn:kith:problem:{slug}"), "{}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["request_id"].as_str().is_some_and(|id| id.len() > 10), "problem lacks a request id: {}", self.body);
    }
}

/// One plugin host for all tests of the binary: an engine per test would only cost time.
fn host() -> Arc<kith_host::Host> {
    static HOST: std::sync::OnceLock<Arc<kith_host::Host>> = std::sync::OnceLock::new();
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        // Many harnesses load the same components: compile each once.
        let cache = CACHE.get_or_init(|| tempfile::tempdir().unwrap()).path().to_path_buf();
        let config =
            kith_host::HostConfig { default_timeout: std::time::Duration::from_millis(300), cache_dir: Some(cache), ..Default::default() };
        Arc::new(kith_host::Host::new(config).unwrap())
    })
    .clone()
}

pub fn shop(name: &str) -> NewShop {
    NewShop { name: name.into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() }
}

impl Harness {
    pub async fn new() -> Harness {
        Self::with_config(ApiConfig::default()).await
    }

    pub async fn with_config(config: ApiConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path().join("kith.db"), StoreOptions::default()).unwrap());
        let cli = Actor::cli("test");
        let shop_a = store.create_shop(&shop("A"), &cli).unwrap().id;
        let shop_b = store.create_shop(&shop("B"), &cli).unwrap().id;
        let key = |shop_id: Option<i64>, role: Role| {
            store.create_key(&NewKey { shop_id, name: format!("{role}"), role, scopes: None }, &cli).unwrap()
        };
        let admin = key(None, Role::Admin).token;
        let mut keys = Vec::new();
        let mut analyst_key_id = String::new();
        for role in [Role::Owner, Role::Operator, Role::Analyst, Role::App] {
            let created = key(Some(shop_a), role);
            if role == Role::Analyst {
                analyst_key_id = created.key.id.clone();
            }
            keys.push((role, created.token));
        }
        let foreign = key(Some(shop_b), Role::Owner).token;
        let report = store
            .ingest(
                shop_a,
                vec![
                    json!({"id": "s1", "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}],
                           "order": {"id": "T1", "paid_at": "2026-05-01T08:00:00Z", "items": [{"sku": "BE-1", "category": "beauty", "quantity": 1, "unit_price": 9900}]}}),
                    json!({"id": "s2", "type": "customer.upsert", "identities": [{"kind": "email", "value": "ming@example.com"}], "profile": {"name": "Ming"}}),
                    json!({"id": "s3", "type": "customer.upsert", "identities": [{"kind": "email", "value": "ming@example.com"}, {"kind": "phone", "value": "13812345678"}]}),
                ],
                &cli,
            )
            .unwrap();
        assert_eq!(report.accepted, 3, "{report:?}");
        let customer = report.outcomes[0].customer_id.unwrap();
        let merged_customer = report.outcomes[1].customer_id.unwrap();
        store.add_tag(shop_a, customer, "seeded", None, &cli).unwrap();
        let merge_id = store.list_merges(shop_a, customer).unwrap()[0].id;
        // Shop B has a customer of its own, with the same phone: shops never see each other's.
        store
            .ingest(
                shop_b,
                vec![json!({"id": "b1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13812345678"}]})],
                &cli,
            )
            .unwrap();
        let now = chrono::Utc::now();
        let template: kith_domain::coupons::CouponTemplateInput =
            serde_json::from_value(json!({"name": "10 off", "face_value": 1000, "valid_days": 30, "per_customer_limit": 5})).unwrap();
        let template = store.create_coupon_template(shop_a, &template, &cli, now).unwrap().id;
        let reward = kith_domain::loyalty::RewardInput {
            name: "Coupon".into(),
            description: None,
            points_cost: 50,
            coupon_template_id: template,
            stock: None,
            active: true,
        };
        let reward = store.create_reward(shop_a, &reward, &cli, now).unwrap().id;
        let issue = kith_domain::coupons::IssueRequest { customer_id: customer, idempotency_key: "seed".into() };
        let coupon_code = store.issue_coupon(shop_a, template, &issue, now).unwrap().0.code;
        let adjustment = kith_domain::loyalty::PointsAdjustment {
            points: 100,
            reason: "welcome".into(),
            idempotency_key: "seed".into(),
            expires_at: None,
        };
        store.adjust_points(shop_a, customer, &adjustment, &cli, now).unwrap();
        let send = kith_domain::messaging::SendRequest {
            customer_id: customer,
            channel: "sms".into(),
            template: "SMS_1".into(),
            variables: Default::default(),
            idempotency_key: "seed".into(),
        };
        let message = store.enqueue_message(shop_a, &send, "api", now).unwrap().0.id;
        let segment = kith_domain::segments::SegmentInput {
            name: "seeded".into(),
            description: None,
            definition: serde_json::json!({"tag": "seeded"}),
        };
        let segment = store.create_segment(shop_a, &segment, &cli, now).unwrap().id;
        let snapshot = store.snapshot_segment(shop_a, segment, &cli, now).unwrap().id;
        let journey = |name: &str| kith_domain::journeys::JourneyInput {
            name: name.into(),
            description: None,
            definition: serde_json::json!({"trigger": {"segment": segment}, "start": "hello",
                "steps": {"hello": {"send": {"channel": "sms", "template": "SMS_HELLO"}}}}),
        };
        let active = store.create_journey(shop_a, &journey("hello"), &cli, now).unwrap().id;
        store.set_journey_status(shop_a, active, kith_domain::journeys::JourneyStatus::Active, &cli, now).unwrap();
        let draft_journey = store.create_journey(shop_a, &journey("draft"), &cli, now).unwrap().id;
        let clock = Arc::new(kith_bus::TestClock::new(now));
        let bus = kith_bus::Bus::new(store.clone(), host(), clock.clone(), kith_bus::BusConfig::default());
        let app = kith_api::app(AppState::new(bus.clone(), config));
        Harness {
            _dir: dir,
            store,
            bus,
            clock,
            app,
            shop_a,
            shop_b,
            admin,
            keys,
            foreign,
            customer,
            merged_customer,
            merge_id,
            analyst_key_id,
            template,
            reward,
            coupon_code,
            message,
            segment,
            snapshot,
            journey: active,
            draft_journey,
        }
    }

    /// Install vip-tag and enable it in shop A, with one dead letter (already
    /// fixed, so it re-drives) and one finished run. Returns (dead letter, run).
    pub fn with_plugin(&self) -> (i64, i64) {
        let cli = Actor::cli("test");
        let package = kith_bus::Package::from_tar_gz(&kith_test_plugins::VIP_TAG.tar_gz()).unwrap();
        self.bus.install(&package, &cli).unwrap();
        let enable = |config: Value| {
            let request = kith_bus::EnableRequest { config: Some(config), ..Default::default() };
            self.bus.enable(self.shop_a, "vip-tag", &request, &cli).unwrap();
        };
        enable(json!({"threshold": 100, "fail": true}));
        let event = json!({"id": "dl", "type": "order.paid", "identities": [{"kind": "phone", "value": "13700000009"}], "order": {"id": "dl", "amount": 500}});
        self.store.ingest(self.shop_a, vec![event], &cli).unwrap();
        while self.store.dead_letters(self.shop_a, "vip-tag").unwrap().is_empty() {
            self.bus.drain().unwrap();
            self.clock.advance(chrono::Duration::minutes(10));
        }
        enable(json!({"threshold": 100}));
        let letter = self.store.dead_letters(self.shop_a, "vip-tag").unwrap()[0].id;
        let run = self.bus.start_run(self.shop_a, "vip-tag", &cli).unwrap().id;
        self.bus.drain().unwrap();
        (letter, run)
    }

    pub fn key(&self, role: Role) -> &str {
        if role == Role::Admin {
            return &self.admin;
        }
        &self.keys.iter().find(|(r, _)| *r == role).unwrap().1
    }

    pub async fn call(&self, method: Method, uri: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = match body {
            Some(body) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if headers.get(header::CONTENT_TYPE).is_some_and(|v| v == "text/event-stream") {
            return Reply { status, headers, body: Value::Null };
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, headers, body }
    }

    pub async fn get(&self, uri: &str, role: Role) -> Reply {
        self.call(Method::GET, uri, Some(self.key(role)), None).await
    }

    pub async fn post(&self, uri: &str, role: Role, body: Value) -> Reply {
        self.call(Method::POST, uri, Some(self.key(role)), Some(body)).await
    }
}
