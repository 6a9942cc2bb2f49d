//! Coupons, rewards, messages and receipts through the router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::Role;
use kith_provider::Provider;
use serde_json::{Value, json};

use crate::harness::Harness;

#[tokio::test]
async fn concurrent_issues_never_exceed_the_budget() {
    let h = Harness::new().await;
    let created = h
        .post(
            "/v1/coupon-templates",
            Role::Operator,
            json!({"name": "20 off", "face_value": 2000, "valid_days": 7,
            "per_customer_limit": 100, "budget_count": 10, "budget_money": 10_000}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    let harness = &h;
    let calls = (0..20).map(|i| {
        let uri = format!("/v1/coupon-templates/{id}/issue");
        let body = json!({"customer_id": h.customer, "idempotency_key": format!("k{i}")});
        async move { harness.post(&uri, Role::Operator, body).await }
    });
    let replies = futures::future::join_all(calls).await;
    let issued: Vec<&Value> = replies.iter().filter(|r| r.status == StatusCode::CREATED).map(|r| &r.body).collect();
    assert_eq!(issued.len(), 5, "10000 of budget at 2000 a coupon");
    let mut codes: Vec<&str> = issued.iter().map(|c| c["code"].as_str().unwrap()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 5, "codes are unique");
    for refused in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        refused.assert_problem(409, "conflict");
        assert!(refused.body["detail"].as_str().unwrap().contains("budget of coupon template"), "{}", refused.body);
    }
    let stats = h.get(&format!("/v1/coupon-templates/{id}/stats"), Role::Analyst).await;
    assert_eq!((stats.body["issued"].as_i64(), stats.body["budget_money_left"].as_i64()), (Some(5), Some(0)));
    // A resend of an issued key answers its coupon, even with the budget spent.
    let again = h
        .post(
            &format!("/v1/coupon-templates/{id}/issue"),
            Role::Operator,
            json!({"customer_id": h.customer,
        "idempotency_key": issued_key(&replies)}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
}

fn issued_key(replies: &[crate::harness::Reply]) -> String {
    let i = replies.iter().position(|r| r.status == StatusCode::CREATED).unwrap();
    format!("k{i}")
}

#[tokio::test]
async fn an_order_with_the_code_redeems_the_coupon() {
    let h = Harness::new().await;
    let cli = Actor::cli("test");
    let order = |id: &str, phone: &str, amount: i64| {
        json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
               "order": {"id": id, "amount": amount, "coupon_code": h.coupon_code.to_lowercase()}})
    };
    // Someone else's order with the code: refused, the coupon stays issued.
    h.store.ingest(h.shop_a, vec![order("X1", "13900000000", 50_000)], &cli).unwrap();
    let coupon = h.get(&format!("/v1/coupons/{}", h.coupon_code), Role::Analyst).await;
    assert_eq!(coupon.body["status"], "issued", "{}", coupon.body);
    h.store.ingest(h.shop_a, vec![order("T2", "13812345678", 30_000)], &cli).unwrap();
    let coupon = h.get(&format!("/v1/coupons/{}", h.coupon_code), Role::Analyst).await;
    assert_eq!((coupon.body["status"].as_str(), coupon.body["order_id"].as_str()), (Some("redeemed"), Some("T2")));
    let events = h.get("/v1/events?limit=200", Role::Analyst).await;
    let kinds: Vec<(&str, Option<&str>)> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("coupon.re"))
        .map(|e| (e["type"].as_str().unwrap(), e["payload"]["reason"].as_str()))
        .collect();
    assert_eq!(kinds, vec![("coupon.refused", Some("the coupon belongs to another customer")), ("coupon.redeemed", None)]);
    let stats = h.get(&format!("/v1/coupon-templates/{}/stats", h.template), Role::Analyst).await;
    assert_eq!(
        (stats.body["redeemed"].as_i64(), stats.body["cost"].as_i64(), stats.body["revenue"].as_i64()),
        (Some(1), Some(1000), Some(30_000))
    );
}

#[tokio::test]
async fn redemptions_answer_clearly_and_spend_once() {
    let h = Harness::new().await;
    let uri = format!("/v1/customers/{}/redemptions", h.customer);
    let first = h.post(&uri, Role::App, json!({"reward_id": h.reward, "idempotency_key": "r-1"})).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["balance_after"], 50);
    let again = h.post(&uri, Role::App, json!({"reward_id": h.reward, "idempotency_key": "r-1"})).await;
    assert_eq!((again.status, &again.body["id"]), (StatusCode::OK, &first.body["id"]), "a double submission answers the first");
    let other = h.post(&uri, Role::App, json!({"reward_id": h.reward + 99, "idempotency_key": "r-1"})).await;
    other.assert_problem(409, "conflict");
    // The older name of the key is still taken, and names the same submission.
    let aliased = h.post(&uri, Role::App, json!({"reward_id": h.reward, "request_id": "r-1"})).await;
    assert_eq!((aliased.status, &aliased.body["id"]), (StatusCode::OK, &first.body["id"]), "{}", aliased.body);
    let both = h.post(&uri, Role::App, json!({"reward_id": h.reward, "request_id": "r-1", "idempotency_key": "r-1"})).await;
    both.assert_problem(400, "invalid-request");
    let api = h.call(Method::GET, "/openapi.json", None, None).await;
    let schema = &api.body["components"]["schemas"]["RedeemRequest"];
    let fields: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, vec!["idempotency_key", "reward_id"], "the document shows the canonical name: {schema}");

    let put =
        |stock: Option<i64>, cost: i64| json!({"name": "Coupon", "points_cost": cost, "coupon_template_id": h.template, "stock": stock});
    let pricey = h.call(Method::PUT, &format!("/v1/rewards/{}", h.reward), Some(h.key(Role::Operator)), Some(put(None, 500))).await;
    assert_eq!(pricey.status, StatusCode::OK);
    let poor = h.post(&uri, Role::App, json!({"reward_id": h.reward, "idempotency_key": "r-2"})).await;
    poor.assert_problem(409, "conflict");
    assert_eq!(poor.body["detail"], format!("insufficient points: 50 available, reward {} costs 500", h.reward));
    h.call(Method::PUT, &format!("/v1/rewards/{}", h.reward), Some(h.key(Role::Operator)), Some(put(Some(0), 10))).await;
    let gone = h.post(&uri, Role::App, json!({"reward_id": h.reward, "idempotency_key": "r-3"})).await;
    assert_eq!(gone.body["detail"], format!("reward {} is out of stock", h.reward));
    // The coupon's limit is reached: nothing is spent.
    h.call(Method::PUT, &format!("/v1/rewards/{}", h.reward), Some(h.key(Role::Operator)), Some(put(None, 10))).await;
    h.call(
        Method::PUT,
        &format!("/v1/coupon-templates/{}", h.template),
        Some(h.key(Role::Operator)),
        Some(json!({"name": "10 off", "face_value": 1000, "valid_days": 30, "budget_count": 2})),
    )
    .await;
    let exhausted = h.post(&uri, Role::App, json!({"reward_id": h.reward, "idempotency_key": "r-4"})).await;
    exhausted.assert_problem(409, "conflict");
    let account = h.get(&format!("/v1/customers/{}/points", h.customer), Role::Analyst).await;
    assert_eq!(account.body["balance"], 50, "refused redemptions spend nothing");
    let ledger = h.get(&format!("/v1/customers/{}/points/ledger", h.customer), Role::Analyst).await;
    let entries: Vec<(&str, i64)> =
        ledger.body["items"].as_array().unwrap().iter().map(|e| (e["kind"].as_str().unwrap(), e["points"].as_i64().unwrap())).collect();
    assert_eq!(entries, vec![("redeem", -50), ("earn", 100)]);
}

#[tokio::test]
async fn messages_are_idempotent_and_receipts_arrive_over_http() {
    let h = Harness::new().await;
    let provider = Provider::start().unwrap();
    let cli = Actor::cli("test");
    let send_body =
        |channel: &str, key: &str| json!({"customer_id": h.customer, "channel": channel, "template": "SMS_9", "idempotency_key": key});
    // No connector sends sms yet: the message could never go out.
    let early = h.post("/v1/messages", Role::App, send_body("sms", "early")).await;
    early.assert_problem(400, "invalid-request");
    assert_eq!(early.body["field"], "channel");
    assert_eq!(early.body["detail"], "channel: no connector is enabled for channel `sms` in this shop (channels sent: none)");
    let package = kith_bus::Package::from_tar_gz(&kith_test_plugins::SMS_HTTP.tar_gz()).unwrap();
    h.bus.install(&package, &cli).unwrap();
    let grant = kith_domain::plugin::Grant { capabilities: package.manifest.capabilities.clone(), allowed_hosts: vec![provider.host()] };
    let request = kith_bus::EnableRequest {
        config: Some(json!({"endpoint": provider.url("/sms"), "api_key": "k"})),
        grant: Some(grant),
        ..Default::default()
    };
    h.bus.enable(h.shop_a, "sms-http", &request, &cli).unwrap();

    let body = json!({"customer_id": h.customer, "channel": "sms", "template": "SMS_9", "variables": {"code": "1234"}, "idempotency_key": "otp-1"});
    let sent = h.post("/v1/messages", Role::App, body.clone()).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(h.post("/v1/messages", Role::App, body.clone()).await.status, StatusCode::OK);
    let mut changed = body.clone();
    changed["template"] = json!("SMS_10");
    h.post("/v1/messages", Role::App, changed).await.assert_problem(409, "conflict");
    let body_again = body.clone();
    let mut bad = body;
    bad["channel"] = json!("SMS!");
    let bad = h.post("/v1/messages", Role::App, bad).await;
    bad.assert_problem(400, "invalid-request");
    assert_eq!(bad.body["field"], "channel");
    let nowhere = h.post("/v1/messages", Role::App, send_body("dingtalk", "ding-1")).await;
    nowhere.assert_problem(400, "invalid-request");
    assert_eq!(
        (nowhere.body["field"].as_str(), nowhere.body["detail"].as_str()),
        (Some("channel"), Some("channel: no connector is enabled for channel `dingtalk` in this shop (channels sent: sms)"))
    );
    let listed = h.get("/v1/messages", Role::Analyst).await;
    assert!(listed.body["items"].as_array().unwrap().iter().all(|m| m["channel"] != "dingtalk"), "nothing was stored: {}", listed.body);

    let bus = h.bus.clone();
    tokio::task::spawn_blocking(move || bus.drain()).await.unwrap().unwrap();
    let id = sent.body["id"].as_str().unwrap();
    let message = h.get(&format!("/v1/messages/{id}"), Role::Analyst).await;
    assert_eq!(message.body["status"], "sent", "{}", message.body);
    assert_eq!(message.body["recipient"], "+86138****5678", "masked without pii:read");

    let channels = h.get("/v1/shop/channels", Role::Operator).await;
    let path = channels.body["items"][0]["receipt_path"].as_str().unwrap().to_owned();
    let post = |path: &str, body: &str| Request::builder().method(Method::POST).uri(path).body(Body::from(body.to_owned())).unwrap();
    let report = h.send(post(&path, &format!(r#"[{{"out_id": "{id}", "status": "DELIVERED"}}]"#))).await;
    assert_eq!((report.status, &report.body["matched"]), (StatusCode::OK, &json!(1)), "{}", report.body);
    let message = h.get(&format!("/v1/messages/{id}"), Role::Analyst).await;
    assert_eq!(message.body["status"], "delivered");
    let garbled = h.send(post(&path, "not json")).await;
    garbled.assert_problem(400, "invalid-request");
    assert_eq!(garbled.body["field"], "body");
    h.send(post("/v1/receipts/unknown-token", "[]")).await.assert_problem(404, "not-found");

    // Once the connector is disabled, new sms messages are refused; a resend of an accepted one still answers it.
    h.bus.disable(h.shop_a, "sms-http", &cli).unwrap();
    let resent = h.post("/v1/messages", Role::App, body_again).await;
    assert_eq!((resent.status, resent.body["id"].as_str()), (StatusCode::OK, Some(id)), "{}", resent.body);
    let late = h.post("/v1/messages", Role::App, send_body("sms", "late")).await;
    late.assert_problem(400, "invalid-request");
    assert_eq!(late.body["field"], "channel");
}
