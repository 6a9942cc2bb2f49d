//! Each route's behaviour and each of its errors.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use futures::StreamExt;
use kith_api::ApiConfig;
use kith_bus::Clock;
use kith_core::prelude::*;
use kith_domain::auth::Role;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::harness::Harness;

fn order(id: &str, phone: &str, order_id: &str, amount: i64) -> Value {
    json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}], "order": {"id": order_id, "amount": amount}})
}

#[tokio::test]
async fn system_routes() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");

    h.get("/v1/customers", Role::Analyst).await;
    let r = h.call(Method::GET, "/metrics", None, None).await;
    let text = r.body.as_str().unwrap();
    assert!(text.contains(r#"kith_http_requests_total{method="GET",route="/v1/customers",status="200"} 1"#), "{text}");
    assert!(text.contains("kith_db_operation_duration_seconds_count{op=\"list_customers\"}"), "{text}");
    assert!(r.headers.contains_key("x-request-id"));

    let r = h.call(Method::GET, "/openapi.json", None, None).await;
    let paths: Vec<&str> = r.body["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/admin/clock",
        "/v1/audit",
        "/v1/console/invites/accept",
        "/v1/console/password",
        "/v1/console/session",
        "/v1/console/sign-in",
        "/v1/console/sign-out",
        "/v1/console/users",
        "/v1/console/users/{id}",
        "/v1/console/users/{id}/unlock",
        "/v1/coupon-templates",
        "/v1/coupon-templates/{id}",
        "/v1/coupon-templates/{id}/issue",
        "/v1/coupon-templates/{id}/stats",
        "/v1/coupons/{code}",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/customers/{id}/consents",
        "/v1/customers/{id}/consents/{channel}",
        "/v1/customers/{id}/coupons",
        "/v1/customers/{id}/journeys",
        "/v1/customers/{id}/merges",
        "/v1/customers/{id}/points",
        "/v1/customers/{id}/points/adjustments",
        "/v1/customers/{id}/points/ledger",
        "/v1/customers/{id}/redemptions",
        "/v1/customers/{id}/tags",
        "/v1/customers/{id}/tags/{tag}",
        "/v1/events",
        "/v1/events/stream",
        "/v1/journeys",
        "/v1/journeys/{id}",
        "/v1/journeys/{id}/activate",
        "/v1/journeys/{id}/archive",
        "/v1/journeys/{id}/dry-run",
        "/v1/journeys/{id}/pause",
        "/v1/journeys/{id}/runs",
        "/v1/journeys/{id}/stats",
        "/v1/journeys/{id}/test-send",
        "/v1/journeys/{id}/versions",
        "/v1/keys",
        "/v1/keys/{id}",
        "/v1/merges/{id}/unmerge",
        "/v1/messages",
        "/v1/messages/{id}",
        "/v1/metrics/cohorts",
        "/v1/metrics/overview",
        "/v1/metrics/scores/{model}",
        "/v1/plugins",
        "/v1/plugins/{id}",
        "/v1/receipts/{token}",
        "/v1/rewards",
        "/v1/rewards/{id}",
        "/v1/segments",
        "/v1/segments/preview",
        "/v1/segments/{id}",
        "/v1/segments/{id}/counts",
        "/v1/segments/{id}/export",
        "/v1/segments/{id}/members",
        "/v1/segments/{id}/snapshots",
        "/v1/segments/{id}/snapshots/{snapshot}/members",
        "/v1/segments/{id}/versions",
        "/v1/shop",
        "/v1/shop/channels",
        "/v1/shop/plugins",
        "/v1/shop/plugins/{id}",
        "/v1/shop/plugins/{id}/dead-letters",
        "/v1/shop/plugins/{id}/dead-letters/{letter}/redrive",
        "/v1/shop/plugins/{id}/fixture",
        "/v1/shop/plugins/{id}/logs",
        "/v1/shop/plugins/{id}/runs",
        "/v1/shop/plugins/{id}/runs/{run}",
        "/v1/shop/plugins/{id}/runs/{run}/resume",
        "/v1/shop/settings/export",
        "/v1/shop/settings/loyalty",
        "/v1/shop/settings/messaging",
        "/v1/shops",
    ];
    assert_eq!(paths, expected);
    assert!(r.body["components"]["schemas"]["EventInput"].is_object());
    assert!(r.body["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = Harness::new().await;
    h.get("/v1/nothing", Role::Owner).await.assert_problem(404, "not-found");
    h.call(Method::PUT, "/v1/customers", Some(h.key(Role::Owner)), None).await.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn authentication_errors() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/v1/customers", None, None).await;
    r.assert_problem(401, "unauthorized");
    h.call(Method::GET, "/v1/customers", Some("kith_nothere_00"), None).await.assert_problem(401, "unauthorized");
    let r = h.send(Request::get("/v1/customers").header(header::AUTHORIZATION, "Basic abc").body(Body::empty()).unwrap()).await;
    r.assert_problem(401, "unauthorized");
    let r = h.get("/v1/customers", Role::Admin).await;
    r.assert_problem(403, "forbidden");
    assert!(r.body["detail"].as_str().unwrap().contains("admin keys"));
}

#[tokio::test]
async fn ingest_reports_each_event() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/v1/events",
            Role::App,
            json!({"events": [
                order("n1", "13912345678", "N1", 5000),
                order("n1", "13912345678", "N1", 5000),
                order("n2", "13912345678", "N2", -1),
                {"id": "n3", "type": "behaviour", "identities": [{"kind": "phone", "value": "13912345678"}], "behaviour": {"kind": "cart", "sku": "X"}},
                {"type": "behaviour"},
                "not an object",
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["accepted"].as_u64(), r.body["duplicates"].as_u64(), r.body["rejected"].as_u64()), (Some(2), Some(1), Some(3)));
    let o = &r.body["outcomes"];
    assert_eq!(o[0]["status"], "accepted");
    assert_eq!(o[1]["status"], "duplicate");
    assert_eq!((o[2]["status"].as_str(), o[2]["field"].as_str()), (Some("rejected"), Some("order.amount")));
    assert_eq!(o[3]["customer_id"], o[0]["customer_id"]);
    assert_eq!((o[4]["id"].clone(), o[4]["field"].as_str()), (Value::Null, Some("id")), "{}", o[4]);
    assert_eq!(o[5]["status"], "rejected");

    // Resending the whole batch applies nothing.
    let again = h.post("/v1/events", Role::App, json!({"events": [order("n1", "13912345678", "N1", 5000)]})).await;
    assert_eq!(again.body["outcomes"][0]["status"], "duplicate");
    let customer = o[0]["customer_id"].as_i64().unwrap();
    let c = h.get(&format!("/v1/customers/{customer}"), Role::Owner).await;
    assert_eq!(c.body["stats"]["total_spent"], 5000);
    assert_eq!(c.body["stats"]["order_count"], 1);
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let h = Harness::new().await;
    let owner = h.key(Role::Owner).to_owned();
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = Request::post("/v1/events").header(header::AUTHORIZATION, format!("Bearer {owner}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(Body::from(body)).unwrap()
    };
    let r = h.send(raw("{\"events\": [", Some("application/json"))).await;
    r.assert_problem(400, "invalid-request");
    assert!(r.body["detail"].as_str().unwrap().contains("not valid JSON"), "{}", r.body);
    let r = h.send(raw("{\"events\": 3}", Some("application/json"))).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "events");
    let r = h.send(raw("{\"events\": [], \"extra\": 1}", Some("application/json"))).await;
    assert_eq!(r.body["field"], "extra");
    h.send(raw("{\"events\": []}", Some("text/plain"))).await.assert_problem(415, "unsupported-media-type");
    h.send(raw("{\"events\": []}", None)).await.assert_problem(415, "unsupported-media-type");
    let r = h.post("/v1/events", Role::Owner, json!({"events": []})).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "events");
    let many: Vec<Value> = (0..1001).map(|i| order(&format!("m{i}"), "13912345678", &format!("M{i}"), 1)).collect();
    let r = h.post("/v1/events", Role::Owner, json!({ "events": many })).await;
    r.assert_problem(400, "invalid-request");
    assert!(r.body["detail"].as_str().unwrap().contains("at most 1000"));
    assert_eq!(h.store.count_customers(h.shop_a).unwrap(), 1, "a refused batch applies nothing");

    let small = Harness::with_config(ApiConfig { body_limit: 1024, ..Default::default() }).await;
    let events: Vec<Value> = (0..50).map(|i| order(&format!("m{i}"), "13912345678", &format!("M{i}"), 1)).collect();
    let r = small.post("/v1/events", Role::Owner, json!({ "events": events })).await;
    r.assert_problem(413, "payload-too-large");
}

#[tokio::test]
async fn customer_list_paginates_and_filters() {
    let h = Harness::new().await;
    let events: Vec<Value> = (0..5).map(|i| order(&format!("p{i}"), &format!("1391234567{i}"), &format!("P{i}"), 100)).collect();
    h.post("/v1/events", Role::Owner, json!({ "events": events })).await;

    let mut seen = Vec::new();
    let mut uri = "/v1/customers?limit=2".to_owned();
    loop {
        let r = h.get(&uri, Role::Analyst).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        seen.extend(r.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()));
        match r.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/customers?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "one seeded active customer and five new ones: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert!(!seen.contains(&h.merged_customer), "merged customers are not listed");

    let r = h.get("/v1/customers?tag=seeded", Role::Analyst).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = h.get("/v1/customers?identity=phone:138%201234%205678", Role::Owner).await;
    assert_eq!(r.body["items"][0]["id"], h.customer);
    let r = h.get("/v1/customers?identity=email:MING@example.com", Role::Owner).await;
    assert_eq!(r.body["items"][0]["id"], h.customer, "lookup normalises like ingest");
    // A key without pii:read may not test personal identifiers: the answer would confirm one.
    h.get("/v1/customers?identity=phone:138%201234%205678", Role::Analyst).await.assert_problem(403, "forbidden");
    let erp = json!({"id": "erp", "type": "customer.upsert", "identities": [{"kind": "external:erp", "value": "C:001"}]});
    let erp_customer = h.post("/v1/events", Role::Owner, json!({"events": [erp]})).await.body["outcomes"][0]["customer_id"].clone();
    let r = h.get("/v1/customers?identity=external:erp:C:001", Role::Analyst).await;
    assert_eq!(r.body["items"][0]["id"], erp_customer, "{}", r.body);
    assert_eq!(h.get("/v1/customers?identity=external:erp", Role::Analyst).await.body["field"], "identity");
    let r = h.get("/v1/customers?updated_since=2999-01-01T00:00:00Z", Role::Analyst).await;
    assert!(r.body["items"].as_array().unwrap().is_empty());

    let r = h.get("/v1/customers?limit=0", Role::Analyst).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "limit");
    assert_eq!(h.get("/v1/customers?cursor=zzz", Role::Analyst).await.body["field"], "cursor");
    assert_eq!(h.get("/v1/customers?identity=phone:12", Role::Owner).await.body["field"], "identity");
    assert_eq!(h.get("/v1/customers?identity=fax:1", Role::Analyst).await.body["field"], "identity");
    h.get("/v1/customers?updated_since=yesterday", Role::Analyst).await.assert_problem(400, "invalid-request");
    h.get("/v1/customers?colour=red", Role::Analyst).await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn personal_data_is_masked_without_pii_read_and_unmasked_reads_are_audited() {
    let h = Harness::new().await;
    let uri = format!("/v1/customers/{}", h.customer);
    let masked = h.get(&uri, Role::Analyst).await;
    let values: Vec<&str> = masked.body["identities"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["m***@example.com", "+86138****5678"]);
    let timeline = masked.body["timeline"].to_string();
    assert!(!timeline.contains("13812345678") && !timeline.contains("ming@"), "{timeline}");

    let audit_before = h.get("/v1/audit", Role::Owner).await.body["items"].as_array().unwrap().len();
    let clear = h.get(&uri, Role::Owner).await;
    let values: Vec<&str> = clear.body["identities"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
    assert_eq!(values, vec!["ming@example.com", "+8613812345678"]);
    let audit = h.get("/v1/audit", Role::Owner).await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), audit_before + 1);
    assert_eq!(items[0]["action"], "customer.read_unmasked");
    assert_eq!(items[0]["target"], format!("customer:{}", h.customer));

    let events = h.get("/v1/events?limit=1000", Role::Analyst).await;
    assert!(!events.body.to_string().contains("13812345678"));
    let events = h.get("/v1/events?limit=1000", Role::Owner).await;
    assert!(events.body.to_string().contains("+8613812345678"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unmasked_reads_each_leave_an_audit_entry() {
    let h = Harness::new().await;
    let uri = format!("/v1/customers/{}", h.customer);
    let reads = futures::future::join_all((0..40).map(|_| h.get(&uri, Role::Owner))).await;
    assert!(reads.iter().all(|r| r.status == StatusCode::OK));
    let pages = futures::future::join_all((0..10).map(|_| h.get("/v1/customers?limit=3", Role::Owner))).await;
    assert!(pages.iter().all(|r| r.status == StatusCode::OK));

    let audit = h.get("/v1/audit?limit=500", Role::Owner).await;
    let items = audit.body["items"].as_array().unwrap();
    let unmasked = |target: &str| items.iter().filter(|e| e["action"] == "customer.read_unmasked" && e["target"] == target).count();
    assert_eq!(unmasked(&format!("customer:{}", h.customer)), 40);
    assert_eq!(unmasked("customers"), 10);
    let listed = pages[0].body["items"].as_array().unwrap().len();
    assert!(items.iter().filter(|e| e["target"] == "customers").all(|e| e["detail"]["customers"] == listed));
    // A key without pii:read reads masked data and leaves no entry.
    h.get(&uri, Role::Analyst).await;
    assert_eq!(h.get("/v1/audit?limit=500", Role::Owner).await.body["items"].as_array().unwrap().len(), items.len());
}

#[tokio::test]
async fn customer_profile_and_errors() {
    let h = Harness::new().await;
    let r = h.get(&format!("/v1/customers/{}?timeline=50", h.customer), Role::Analyst).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["profile"]["name"], "M***", "the survivor took the merged side's name, masked without pii:read");
    assert_eq!(r.body["stats"]["total_spent"], 9900);
    assert_eq!(r.body["tags"][0]["tag"], "seeded");
    let kinds: Vec<&str> = r.body["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"order.paid") && kinds.contains(&"customer.merged") && kinds.contains(&"tag.added"), "{kinds:?}");

    let r = h.get(&format!("/v1/customers/{}", h.merged_customer), Role::Analyst).await;
    r.assert_problem(301, "customer-merged");
    assert_eq!(r.headers[header::LOCATION], format!("/v1/customers/{}", h.customer));
    assert_eq!(r.body["merged_into"], h.customer);

    h.get("/v1/customers/999999", Role::Analyst).await.assert_problem(404, "not-found");
    let r = h.get("/v1/customers/abc", Role::Analyst).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "path");
    assert_eq!(h.get(&format!("/v1/customers/{}?timeline=201", h.customer), Role::Analyst).await.body["field"], "timeline");
}

#[tokio::test]
async fn manual_tags() {
    let h = Harness::new().await;
    let uri = format!("/v1/customers/{}/tags", h.customer);
    let r = h.post(&uri, Role::Operator, json!({"tag": "vip", "reason": "big spender"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((r.body["tag"].as_str(), r.body["source"].as_str()), (Some("vip"), Some("manual")));
    let r = h.get("/v1/customers?tag=vip", Role::Analyst).await;
    assert_eq!(r.body["items"][0]["id"], h.customer);

    let r = h.post(&uri, Role::Operator, json!({"tag": ""})).await;
    r.assert_problem(400, "invalid-request");
    assert_eq!(r.body["field"], "tag");
    assert_eq!(h.post(&uri, Role::Operator, json!({"reason": "x"})).await.body["field"], "tag");
    h.post("/v1/customers/999999/tags", Role::Operator, json!({"tag": "vip"})).await.assert_problem(404, "not-found");

    let vip = format!("{uri}/vip");
    let r = h.call(Method::DELETE, &vip, Some(h.key(Role::Operator)), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    h.call(Method::DELETE, &vip, Some(h.key(Role::Operator)), None).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn merges_and_unmerge() {
    let h = Harness::new().await;
    let r = h.get(&format!("/v1/customers/{}/merges", h.customer), Role::Analyst).await;
    let merge = &r.body["items"][0];
    assert_eq!((merge["survivor_id"].as_i64(), merge["merged_id"].as_i64()), (Some(h.customer), Some(h.merged_customer)));
    assert_eq!(merge["identities"][0]["value"], "m***@example.com");
    assert!(merge["reason"].as_str().unwrap().contains("s3"), "{merge}");

    let uri = format!("/v1/merges/{}/unmerge", h.merge_id);
    let r = h.call(Method::POST, &uri, Some(h.key(Role::Operator)), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["unmerged_at"].is_string());
    let back = h.get(&format!("/v1/customers/{}", h.merged_customer), Role::Analyst).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.body["profile"]["name"], "M***");
    let survivor = h.get(&format!("/v1/customers/{}", h.customer), Role::Analyst).await;
    assert_eq!(survivor.body["profile"]["name"], Value::Null);
    h.call(Method::POST, &uri, Some(h.key(Role::Operator)), None).await.assert_problem(409, "conflict");
    h.call(Method::POST, "/v1/merges/999/unmerge", Some(h.key(Role::Operator)), None).await.assert_problem(404, "not-found");
    h.get("/v1/customers/999999/merges", Role::Analyst).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn keys_lifecycle() {
    let h = Harness::new().await;
    let r = h.post("/v1/keys", Role::Owner, json!({"name": "bi tool", "role": "analyst", "scopes": ["customers:read", "pii:read"]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["key"]["shop_id"], h.shop_a);
    assert_eq!(r.body["key"]["scopes"], json!(["customers:read", "pii:read"]));
    let token = r.body["token"].as_str().unwrap().to_owned();
    let id = r.body["key"]["id"].as_str().unwrap().to_owned();
    let seen = h.call(Method::GET, &format!("/v1/customers/{}", h.customer), Some(&token), None).await;
    assert_eq!(seen.body["identities"][1]["value"], "+8613812345678", "an explicit pii:read scope unmasks");
    h.call(Method::GET, "/v1/events", Some(&token), None).await.assert_problem(403, "forbidden");

    h.post("/v1/keys", Role::Owner, json!({"name": "x", "role": "admin"})).await.assert_problem(403, "forbidden");
    h.post("/v1/keys", Role::Owner, json!({"name": "x", "role": "app", "shop_id": h.shop_b})).await.assert_problem(404, "not-found");
    assert_eq!(
        h.post("/v1/keys", Role::Owner, json!({"name": "x", "role": "app", "scopes": ["everything"]})).await.body["field"],
        "scopes[0]"
    );
    assert_eq!(h.post("/v1/keys", Role::Admin, json!({"name": "x", "role": "app"})).await.body["field"], "shop_id");
    assert_eq!(h.post("/v1/keys", Role::Admin, json!({"name": "x", "role": "app", "shop_id": 999})).await.body["field"], "shop_id");
    let r = h.post("/v1/keys", Role::Admin, json!({"name": "ops", "role": "admin"})).await;
    assert_eq!(r.status, StatusCode::CREATED);

    let listed = h.get("/v1/keys", Role::Owner).await;
    assert!(listed.body["items"].as_array().unwrap().iter().all(|k| k["shop_id"] == h.shop_a));
    assert!(!listed.body.to_string().contains("secret"), "keys are listed without secrets");
    let all = h.get(&format!("/v1/keys?shop_id={}", h.shop_b), Role::Admin).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);

    let uri = format!("/v1/keys/{id}");
    let r = h.call(Method::DELETE, &uri, Some(h.key(Role::Owner)), None).await;
    assert!(r.body["revoked_at"].is_string());
    h.call(Method::GET, "/v1/customers", Some(&token), None).await.assert_problem(401, "unauthorized");
    h.call(Method::DELETE, &uri, Some(h.key(Role::Owner)), None).await.assert_problem(409, "conflict");
    h.call(Method::DELETE, &uri, Some(&h.foreign), None).await.assert_problem(404, "not-found");

    let audit = h.get("/v1/audit", Role::Owner).await;
    let actions: Vec<&str> = audit.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"key.create") && actions.contains(&"key.revoke"), "{actions:?}");
}

#[tokio::test]
async fn shops() {
    let h = Harness::new().await;
    let r = h
        .post("/v1/shops", Role::Admin, json!({"name": "Tokyo store", "time_zone": "Asia/Tokyo", "currency": "JPY", "region": "JP"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["time_zone"], "Asia/Tokyo");
    let r = h.post("/v1/shops", Role::Admin, json!({"name": "Defaults"})).await;
    assert_eq!(
        (r.body["time_zone"].as_str(), r.body["currency"].as_str(), r.body["region"].as_str()),
        (Some("Asia/Shanghai"), Some("CNY"), Some("CN"))
    );
    assert_eq!(h.post("/v1/shops", Role::Admin, json!({"name": "X", "time_zone": "Mars/Base"})).await.body["field"], "time_zone");
    assert_eq!(h.post("/v1/shops", Role::Admin, json!({"name": "X", "currency": "yuan"})).await.body["field"], "currency");
    assert_eq!(h.post("/v1/shops", Role::Admin, json!({"name": " "})).await.body["field"], "name");
    assert_eq!(h.get("/v1/shops", Role::Admin).await.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(h.get("/v1/shop", Role::App).await.body["id"], h.shop_a);
    assert_eq!(h.call(Method::GET, "/v1/shop", Some(&h.foreign), None).await.body["id"], h.shop_b);
}

#[tokio::test]
async fn audit_log_pages() {
    let h = Harness::new().await;
    let r = h.get("/v1/audit?limit=2", Role::Owner).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let before = r.body["next_before"].as_i64().unwrap();
    let next = h.get(&format!("/v1/audit?limit=2&before={before}"), Role::Owner).await;
    assert!(next.body["items"][0]["id"].as_i64().unwrap() < before);
    assert_eq!(h.get("/v1/audit?limit=501", Role::Owner).await.body["field"], "limit");
    let foreign = h.call(Method::GET, "/v1/audit?limit=500", Some(&h.foreign), None).await;
    assert!(foreign.body["items"].as_array().unwrap().iter().all(|e| e["shop_id"] == h.shop_b));
}

#[tokio::test]
async fn event_stream_resumes_from_a_sequence_number() {
    let h = Harness::new().await;
    let all = h.get("/v1/events?limit=1000", Role::Analyst).await;
    let seqs: Vec<i64> = all.body["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.len() >= 4);
    let page = h.get(&format!("/v1/events?after={}&limit=1", seqs[0]), Role::Analyst).await;
    assert_eq!(page.body["items"][0]["seq"], seqs[1]);
    assert_eq!(page.body["next_after"], seqs[1]);
    assert_eq!(h.get("/v1/events?limit=0", Role::Analyst).await.body["field"], "limit");

    let req = Request::get("/v1/events/stream")
        .header(header::AUTHORIZATION, format!("Bearer {}", h.key(Role::Analyst)))
        .header("last-event-id", seqs[1].to_string())
        .body(Body::empty())
        .unwrap();
    let response = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        text.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    assert!(text.starts_with(&format!("id: {}\n", seqs[2])), "{text}");

    // A live event arrives on the open stream.
    h.post("/v1/events", Role::Owner, json!({"events": [order("live", "13712345678", "L1", 1)]})).await;
    let mut rest = String::new();
    while !rest.contains("event: order.paid") {
        rest.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    assert!(rest.contains("\"order_id\":\"L1\""), "{rest}");
    assert!(!rest.contains("13712345678"), "the stream masks identifiers for keys without pii:read");

    let r = h
        .send(
            Request::get("/v1/events/stream")
                .header(header::AUTHORIZATION, format!("Bearer {}", h.key(Role::Analyst)))
                .header("last-event-id", "abc")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn a_test_clock_moves_forward_for_admins_only() {
    let h = Harness::new().await;
    let before = h.get("/v1/admin/clock", Role::Admin).await;
    assert_eq!((before.status, before.body["test"].as_bool()), (StatusCode::OK, Some(true)), "{}", before.body);
    let moved = h.post("/v1/admin/clock", Role::Admin, json!({"advance_seconds": 86_400})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let (from, to) = (before.body["now"].as_str().unwrap(), moved.body["now"].as_str().unwrap());
    let elapsed = chrono::DateTime::parse_from_rfc3339(to).unwrap() - chrono::DateTime::parse_from_rfc3339(from).unwrap();
    assert_eq!(elapsed, chrono::Duration::days(1));
    assert_eq!(chrono::DateTime::parse_from_rfc3339(to).unwrap(), h.clock.now(), "the kernel's clock moved");
    for bad in [json!({"advance_seconds": 0}), json!({"advance_seconds": -5}), json!({"advance_seconds": 400 * 86_400})] {
        let r = h.post("/v1/admin/clock", Role::Admin, bad).await;
        r.assert_problem(400, "invalid-request");
        assert_eq!(r.body["field"], "advance_seconds");
    }
    h.post("/v1/admin/clock", Role::Owner, json!({"advance_seconds": 1})).await.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn money_and_points_beyond_their_documented_range_are_refused_with_the_field() {
    // Issue 25: an order of i64::MAX was accepted, and the customer's second order then made
    // every read of the shop answer 500; a points adjustment of i64::MIN passed its check.
    let h = Harness::new().await;
    let order = |id: &str, amount: i64| {
        json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}],
               "order": {"id": id, "amount": amount}})
    };
    let item = |id: &str, quantity: i64, unit_price: i64| {
        json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}],
               "order": {"id": id, "items": [{"sku": "A", "quantity": quantity, "unit_price": unit_price}]}})
    };
    let events = json!({"events": [
        order("huge", i64::MAX),
        item("many", 1_000_001, 1),
        item("dear", 2, 600_000_000_000),
        {"id": "r", "type": "order.refunded", "refund": {"order_id": "T1", "amount": i64::MAX}},
        order("max-1", 1_000_000_000_000),
        order("max-2", 1_000_000_000_000),
    ]});
    let r = h.post("/v1/events", Role::Owner, events).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fields: Vec<&str> = r.body["outcomes"].as_array().unwrap().iter().map(|o| o["field"].as_str().unwrap_or("")).collect();
    assert_eq!(fields, ["order.amount", "order.items[0].quantity", "order.items[0].unit_price", "refund.amount", "", ""]);
    assert_eq!(r.body["accepted"], 2, "the largest orders there are are taken, twice");
    for uri in ["/v1/customers", &format!("/v1/customers/{}", h.customer), "/v1/metrics/overview"] {
        let read = h.get(uri, Role::Owner).await;
        assert_eq!(read.status, StatusCode::OK, "{uri}: {}", read.body);
    }

    let customer = h.customer;
    for points in [i64::MIN, i64::MAX, 1_000_000_001, -1_000_000_001, 0] {
        let r = h
            .post(
                &format!("/v1/customers/{customer}/points/adjustments"),
                Role::Owner,
                json!({"points": points, "reason": "test", "idempotency_key": format!("adj-{points}")}),
            )
            .await;
        r.assert_problem(400, "invalid-request");
        assert_eq!(r.body["field"], "points", "{points}");
    }
    let template = |field: &str, value: i64| {
        let mut t = json!({"name": "t", "face_value": 100, "valid_days": 30});
        t[field] = json!(value);
        t
    };
    for (field, value) in [("budget_money", i64::MAX), ("budget_count", i64::MAX), ("threshold", i64::MAX), ("face_value", i64::MAX)] {
        let r = h.post("/v1/coupon-templates", Role::Owner, template(field, value)).await;
        r.assert_problem(400, "invalid-request");
        assert_eq!(r.body["field"], field);
    }
    let doc = &h.get("/openapi.json", Role::Owner).await.body["components"]["schemas"];
    assert_eq!(doc["OrderInput"]["properties"]["amount"]["maximum"], json!(1_000_000_000_000_i64));
    assert_eq!(doc["PointsAdjustment"]["properties"]["points"]["minimum"], json!(-1_000_000_000));
}
