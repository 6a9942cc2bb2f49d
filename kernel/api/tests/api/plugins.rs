//! Plugins through the API: install into the catalogue, enable per shop,
//! deliveries that show on the customer, status, dead letters, runs.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use kith_core::prelude::*;
use kith_domain::auth::Role;
use kith_test_plugins as plugins;
use serde_json::{Value, json};

use crate::harness::{Harness, Reply};

async fn install(h: &Harness, key: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/plugins")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    h.send(req).await
}

async fn put(h: &Harness, uri: &str, key: &str, body: Value) -> Reply {
    h.call(Method::PUT, uri, Some(key), Some(body)).await
}

fn order(id: &str, phone: &str, amount: i64) -> Value {
    json!({"events": [{"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}], "order": {"id": id, "amount": amount}}]})
}

#[tokio::test]
async fn the_catalogue_takes_valid_packages_from_admins_only() {
    let h = Harness::new().await;
    let admin = h.key(Role::Admin).to_owned();
    let r = install(&h, &admin, "application/gzip", plugins::VIP_TAG.tar_gz()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["manifest"]["id"], "vip-tag");
    assert_eq!(r.body["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(install(&h, &admin, "application/gzip", plugins::VIP_TAG.tar_gz()).await.status, StatusCode::OK, "the same package again");

    install(&h, h.key(Role::Owner), "application/gzip", plugins::VIP_TAG.tar_gz()).await.assert_problem(403, "forbidden");
    install(&h, &admin, "application/json", plugins::VIP_TAG.tar_gz()).await.assert_problem(415, "unsupported-media-type");
    let r = install(&h, &admin, "application/gzip", b"not a package".to_vec()).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "package");
    let wrong_world = plugins::VIP_TAG.tar_gz_with(&plugins::VIP_TAG.manifest().replace("\"tag-rule\"", "\"scoring-model\""));
    let r = install(&h, &admin, "application/gzip", wrong_world).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "plugin.wasm");
    assert!(r.body["detail"].as_str().unwrap().contains("does not export the `scoring-model` world"), "{}", r.body);

    let r = h.get("/v1/plugins", Role::Operator).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    h.get("/v1/plugins", Role::Analyst).await.assert_problem(403, "forbidden");
    h.get("/v1/plugins/nothing", Role::Operator).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn an_enabled_plugin_tags_customers_as_events_arrive() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::VIP_TAG.tar_gz()).await;
    let operator = h.key(Role::Operator).to_owned();
    let uri = "/v1/shop/plugins/vip-tag";

    let r = put(&h, uri, &operator, json!({"config": {"threshold": "lots"}})).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "config.threshold");
    let r = put(&h, uri, &operator, json!({"config": {"threshold": 1}, "grant": {"capabilities": ["points:write"]}})).await;
    assert_eq!(r.body["field"], "grant.capabilities");
    let r = put(&h, uri, &operator, json!({"config": {"threshold": 1}, "colour": "red"})).await;
    r.assert_problem(400, "invalid-request");
    put(&h, uri, h.key(Role::Analyst), json!({"config": {"threshold": 1}})).await.assert_problem(403, "forbidden");

    let r = put(&h, uri, &operator, json!({"version": "^1", "config": {"threshold": 10000}})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["status"].as_str(), r.body["version"].as_str()), (Some("enabled"), Some("1.0.0")));

    let r = h.post("/v1/events", Role::App, order("big", "13700000001", 25_000)).await;
    assert_eq!(r.body["accepted"], 1);
    h.bus.drain().unwrap();
    let customer =
        h.store.list_customers(h.shop_a, &Default::default(), 0, 100).unwrap().into_iter().find(|c| c.stats.total_spent == 25_000).unwrap();
    let r = h.get(&format!("/v1/customers/{}", customer.id), Role::Analyst).await;
    assert_eq!(
        r.body["tags"],
        json!([{"tag": "vip", "source": "vip-tag", "reason": "spent 25000 ≥ 10000", "created_at": r.body["tags"][0]["created_at"]}])
    );

    let r = h.get(uri, Role::Operator).await;
    assert_eq!(
        (r.body["lag"].as_i64(), r.body["calls"]["calls"].as_i64(), r.body["calls"]["failures"].as_i64()),
        (Some(0), Some(1), Some(0))
    );
    assert!(r.body["logs"][0]["message"].as_str().unwrap().starts_with("evaluating 1 customers"), "{}", r.body);
    let r = h.get(&format!("{uri}/logs?limit=1"), Role::Operator).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);

    // Another shop's key sees nothing of it.
    h.call(Method::GET, uri, Some(&h.foreign.clone()), None).await.assert_problem(404, "not-found");

    let r = h.call(Method::DELETE, uri, Some(&operator), None).await;
    assert_eq!(r.body["status"], "disabled");
    h.post("/v1/events", Role::App, order("bigger", "13700000002", 30_000)).await;
    h.bus.drain().unwrap();
    assert_eq!(h.get(uri, Role::Operator).await.body["lag"].as_i64().map(|lag| lag > 0), Some(true), "a disabled plugin keeps its cursor");
}

#[tokio::test]
async fn failed_batches_become_dead_letters_that_re_drive() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::VIP_TAG.tar_gz()).await;
    let operator = h.key(Role::Operator).to_owned();
    let uri = "/v1/shop/plugins/vip-tag";
    put(&h, uri, &operator, json!({"config": {"threshold": 100, "fail": true}})).await;
    h.post("/v1/events", Role::App, order("o1", "13700000003", 500)).await;
    for backoff in [1, 2, 4, 8, 16] {
        h.bus.drain().unwrap();
        h.clock.advance(chrono::Duration::seconds(backoff));
    }
    let letters = h.get(&format!("{uri}/dead-letters"), Role::Operator).await;
    let letter = letters.body["items"][0]["id"].as_i64().expect("a dead letter");
    assert_eq!(letters.body["items"][0]["attempts"], 5);
    assert_eq!(letters.body["items"][0]["error"], "the plugin returned an error: failed: configured to fail");
    let status = h.get(uri, Role::Operator).await;
    assert_eq!((status.body["open_dead_letters"].as_i64(), status.body["calls"]["failures"].as_i64()), (Some(1), Some(5)));

    let redrive = format!("{uri}/dead-letters/{letter}/redrive");
    let r = h.post(&redrive, Role::Operator, json!({})).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "dead_letter");

    put(&h, uri, &operator, json!({"config": {"threshold": 100}})).await;
    let r = h.post(&redrive, Role::Operator, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["redriven_at"].is_string());
    h.post(&redrive, Role::Operator, json!({})).await.assert_problem(409, "conflict");
    let tagged = h
        .store
        .list_customers(h.shop_a, &kith_core::customers::CustomerFilter { tag: Some("vip".into()), ..Default::default() }, 0, 10)
        .unwrap();
    assert_eq!(tagged.len(), 1);
}

#[tokio::test]
async fn a_run_tags_the_whole_shop() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::VIP_TAG.tar_gz()).await;
    let uri = "/v1/shop/plugins/vip-tag";
    put(&h, uri, h.key(Role::Operator), json!({"config": {"threshold": 5000}})).await;
    let r = h.post(&format!("{uri}/runs"), Role::Operator, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = r.body["id"].as_i64().unwrap();
    h.bus.drain().unwrap();
    let r = h.get(&format!("{uri}/runs/{run}"), Role::Operator).await;
    assert_eq!((r.body["status"].as_str(), r.body["done"].as_i64()), (Some("done"), r.body["total"].as_i64()));
    let r = h.get("/v1/customers?tag=vip", Role::Analyst).await;
    assert_eq!(r.body["items"][0]["id"], h.customer, "the seeded customer spent 9,900");
    h.post(&format!("{uri}/runs/{run}/resume"), Role::Operator, json!({})).await.assert_problem(409, "conflict");
}

#[tokio::test]
async fn scores_filter_the_customer_list() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::RFM.tar_gz()).await;
    let r = put(&h, "/v1/shop/plugins/rfm", h.key(Role::Operator), json!({})).await;
    assert_eq!(r.body["run_every_hours"], 24, "the manifest's schedule: {}", r.body);
    h.bus.drain().unwrap();
    // The seeded customer is the shop's only buyer, so on every average: important value.
    let r = h.get(&format!("/v1/customers/{}", h.customer), Role::Analyst).await;
    let rfm = r.body["scores"].as_array().unwrap().iter().find(|s| s["model"] == "rfm").cloned().unwrap();
    assert_eq!(rfm["label"], "important-value|重要价值|Important value");
    let ids = |r: Reply| -> Vec<i64> { r.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect() };
    assert_eq!(ids(h.get("/v1/customers?score=rfm:important-value", Role::Analyst).await), [h.customer]);
    assert!(ids(h.get("/v1/customers?score=rfm:general-winback", Role::Analyst).await).is_empty());
    assert!(ids(h.get("/v1/customers?score=rfm", Role::Analyst).await).contains(&h.customer));
    let r = h.get("/v1/customers?score=", Role::Analyst).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "score");
}

#[tokio::test]
async fn the_status_shows_what_the_plugin_reports_about_itself_masked_without_pii_read() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::PREDICT.tar_gz()).await;
    let uri = "/v1/shop/plugins/predict";
    let r = put(&h, uri, h.key(Role::Operator), json!({})).await;
    assert!(r.status.is_success(), "{}", r.body);
    h.bus.drain().unwrap();
    // The shop's one buyer is far below the prediction's minimum: the plugin says so in its report.
    let r = h.get(uri, Role::Operator).await;
    assert_eq!(r.body["report"]["state"], "refused", "{}", r.body);
    assert_eq!(r.body["report"]["reasons"][0], "too few buyers: 1, at least 500 are needed");
    // Plugin-written text may hold a phone: masked like the plugin's logs for a key without pii:read.
    let sub = h.store.subscription(h.shop_a, "predict").unwrap();
    let attempt = kith_core::delivery::Attempt {
        shop_id: h.shop_a,
        plugin_id: "predict",
        logs: &[],
        duration: std::time::Duration::ZERO,
        now: chrono::Utc::now(),
    };
    let writes = [("status".to_owned(), Some(br#"{"note": "asked to call 13812345678"}"#.to_vec()))];
    h.store
        .commit_delivery(
            &attempt,
            sub.cursor,
            sub.cursor,
            &kith_core::delivery::Effects { decisions: &[], kv_writes: &writes, chain: None },
        )
        .unwrap();
    let note = |r: Reply| r.body["report"]["note"].as_str().unwrap().to_owned();
    let masked = note(h.get(uri, Role::Operator).await);
    assert!(!masked.contains("13812345678") && masked.starts_with("asked to call "), "{masked}");
    assert_eq!(note(h.get(uri, Role::Owner).await), "asked to call 13812345678");
    // Only a JSON object is a report, as the API document says.
    let writes = [("status".to_owned(), Some(br#""just a string""#.to_vec()))];
    h.store
        .commit_delivery(
            &attempt,
            sub.cursor,
            sub.cursor,
            &kith_core::delivery::Effects { decisions: &[], kv_writes: &writes, chain: None },
        )
        .unwrap();
    assert_eq!(h.get(uri, Role::Owner).await.body["report"], Value::Null);
    // A plugin that stored nothing under `status` reports nothing.
    install(&h, h.key(Role::Admin), "application/gzip", plugins::RFM.tar_gz()).await;
    put(&h, "/v1/shop/plugins/rfm", h.key(Role::Operator), json!({})).await;
    assert_eq!(h.get("/v1/shop/plugins/rfm", Role::Operator).await.body["report"], Value::Null);
}

#[tokio::test]
async fn a_fixture_records_what_the_plugin_would_be_handed_masked_for_keys_without_pii_read() {
    let h = Harness::new().await;
    install(&h, h.key(Role::Admin), "application/gzip", plugins::VIP_TAG.tar_gz()).await;
    let (owner, operator) = (h.key(Role::Owner).to_owned(), h.key(Role::Operator).to_owned());
    let uri = "/v1/shop/plugins/vip-tag/fixture";
    h.call(Method::GET, uri, Some(&owner), None).await.assert_problem(404, "not-found");
    put(&h, "/v1/shop/plugins/vip-tag", &operator, json!({"config": {"threshold": 10000}})).await;
    let upsert = json!({"events": [{"id": "p1", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13700000021"}],
        "profile": {"name": "王小明", "city": "上海"}}]});
    h.post("/v1/events", Role::App, upsert).await;
    h.post("/v1/events", Role::App, order("f1", "13700000021", 25_000)).await;
    h.bus.drain().unwrap();

    let r = h.call(Method::GET, &format!("{uri}?sample=100"), Some(&owner), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["config"], json!({"threshold": 10000}));
    assert_eq!(r.body["shop"]["currency"], "CNY");
    let customers = r.body["customers"].as_array().unwrap();
    let buyer = customers.iter().find(|c| c["stats"]["total_spent"] == 25_000).unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(buyer["profile"]["name"], "王小明", "the owner reads personal data");
    // vip-tag reads customers: their histories come along, in the fixture's own shape.
    let history = &r.body["histories"][buyer["id"].to_string()];
    assert_eq!(history["orders"][0]["id"], "f1", "{}", r.body);
    assert!(history["orders"][0]["paid_at"].is_string(), "{history}");

    let r = h.call(Method::GET, &format!("{uri}?sample=1"), Some(&operator), None).await;
    assert_eq!(r.body["customers"].as_array().map(Vec::len), Some(1));
    let masked = h.call(Method::GET, &format!("{uri}?sample=100"), Some(&operator), None).await;
    let text = masked.body.to_string();
    assert!(!text.contains("王小明") && !text.contains("13700000021"), "an operator without pii:read: {text}");
    for bad in ["0", "101"] {
        let r = h.call(Method::GET, &format!("{uri}?sample={bad}"), Some(&owner), None).await;
        r.assert_problem(400, "invalid-request");
        assert_eq!(r.body["field"], "sample", "{}", r.body);
    }
    let r = h.call(Method::GET, &format!("{uri}?sample=x"), Some(&owner), None).await;
    r.assert_problem(400, "invalid-request");
    assert!(r.body["detail"].as_str().unwrap().contains("sample"), "{}", r.body);
    h.call(Method::GET, uri, Some(h.key(Role::Analyst)), None).await.assert_problem(403, "forbidden");
    // The owner's unmasked read is audited, with the count of customers it held.
    let audit = h.store.list_audit(h.shop_a, None, 50).unwrap();
    assert!(
        audit.iter().any(|e| e.action == "customer.read_unmasked" && e.target.as_deref() == Some("plugin-fixture:vip-tag")),
        "{audit:?}"
    );
    // A key that may manage plugins but not read customers gets no customers through it.
    let managing = h
        .store
        .create_key(
            &kith_domain::model::NewKey {
                shop_id: Some(h.shop_a),
                name: "plugins only".into(),
                role: Role::Owner,
                scopes: Some(vec![kith_domain::auth::Scope::PluginsManage]),
            },
            &kith_core::Actor::cli("test"),
        )
        .unwrap();
    let r = h.call(Method::GET, uri, Some(&managing.token), None).await;
    r.assert_problem(403, "forbidden");
    assert!(r.body["detail"].as_str().unwrap().contains("customers:read"), "{}", r.body);
}
