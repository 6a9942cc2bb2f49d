//! The API's contract is exact: the OpenAPI document describes the server, bodies of
//! the wrong shape are refused, connections survive early rejections, and names and
//! identifiers hold no invisible characters.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use axum::http::{Method, StatusCode};
use kith_core::prelude::*;
use kith_domain::auth::Role;
use serde_json::{Value, json};

use crate::harness::Harness;

#[test]
fn dump_openapi_for_inspection() {
    if let Ok(path) = std::env::var("KITH_DUMP_OPENAPI") {
        std::fs::write(path, serde_json::to_string_pretty(kith_api::openapi()).unwrap()).unwrap();
    }
}

fn doc() -> Value {
    serde_json::to_value(kith_api::openapi()).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn the_openapi_document_describes_parameters_errors_and_bodies_as_served() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        let at = format!("{method} {path}");
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                assert!(path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())), "{at}: {} is no path parameter", p["name"]);
            }
        }
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            for mime in response["content"].as_object().into_iter().flatten().map(|(m, _)| m) {
                if status.starts_with(['4', '5']) || status == "301" {
                    assert_eq!(mime, "application/problem+json", "{at} {status}");
                }
            }
        }
        if let Some(content) = op["requestBody"]["content"].as_object() {
            for status in ["400", "413", "415"] {
                if content.contains_key("application/json") || status != "415" {
                    assert!(responses.contains_key(status), "{at} does not document {status}");
                }
            }
            for (mime, media) in content {
                if mime != "application/json" {
                    assert_eq!(media["schema"], json!({"type": "string", "format": "binary"}), "{at}: {mime}");
                }
            }
        }
        if path.contains('{') {
            assert!(responses.contains_key("400"), "{at}: a malformed path parameter answers 400");
        }
    }
    let schemas = &doc["components"]["schemas"];
    // Plugin runs and journey runs are different things.
    assert!(schemas["Run"]["properties"].get("plugin_id").is_some());
    assert!(schemas["JourneyRun"]["properties"].get("journey_id").is_some());
    let plugin_statuses = schemas["RunStatus"]["enum"].as_array().unwrap();
    assert!(plugin_statuses.contains(&json!("running")), "{plugin_statuses:?}");
    // Journey statistics' coupons are the journey's figures, without the dashboard's `cost`.
    let coupons = &schemas["JourneyStats"]["properties"]["coupons"]["$ref"];
    assert_eq!(coupons, "#/components/schemas/JourneyCouponFigures");
    assert!(!schemas["JourneyCouponFigures"]["required"].as_array().unwrap().contains(&json!("cost")));
    assert_eq!(schemas["Batch"]["properties"]["events"]["minItems"], 1);
    assert_eq!(schemas["Batch"]["properties"]["events"]["maxItems"], 1000);
    assert_eq!(schemas["JourneyInput"]["properties"]["name"]["minLength"], 1);
    assert_eq!(schemas["SegmentInput"]["properties"]["name"]["minLength"], 1);
}

/// Names of the properties a schema holds that are personal by `kith_domain::personal`.
fn personal_properties(schema: &Value) -> Vec<String> {
    // Free text a plugin, an operator or a caller writes may hold a phone: a reason, an explanation, an audit target.
    let personal = [
        "name",
        "birthday",
        "identities",
        "recipient",
        "variables",
        "payload",
        "detail",
        "message",
        "error",
        "last_error",
        "profile",
        "reason",
        "explanation",
        "target",
        // What a plugin reports about itself (its kv key `status`), JSON it wrote.
        "report",
    ];
    schema["properties"].as_object().into_iter().flatten().filter(|(k, _)| personal.contains(&k.as_str())).map(|(k, _)| k.clone()).collect()
}

/// Every schema the API answers that holds a personal field is masked through `Personal`
/// (`kith_api::MASKED_SCHEMAS`), or holds no personal data by the definition (the names of
/// shops, keys, segments, rewards, coupon templates, plugins, tiers; a detail of a step).
#[test]
fn every_schema_holding_personal_data_is_masked() {
    let not_personal = [
        "Shop",
        "NewShop",
        "ApiKey",
        "NewKey",
        "Segment",
        "SegmentInput",
        "SegmentVersion",
        "Snapshot",
        "JourneyInput",
        "Reward",
        "RewardInput",
        "CouponTemplate",
        "CouponTemplateInput",
        "Manifest",
        "InstalledPlugin",
        "Problem",
        "FieldError",
        "MessageEvent",
        "Tier",
        "TierDistribution",
        "VariantStats",
        "StepStats",
        "Redemption",
        "PointsAdjustment",
        "Subject",
        "EnableRequest",
        "CallStats",
        "Health",
        "TestSendRequest",
        "NewTag",
        "ClockView",
        "ClockMove",
        "PreviewRequest",
        "Preview",
        "RedeemRequest",
        "Coupon",
        "LoyaltySettings",
        "CreatedKey",
        // The kernel's reason for refusing an event of the batch the caller has just sent (it
        // names a field and a rule, never a stored value).
        "EventOutcome",
        // The shop's own staff as console users, shown only to the shop's owners and to themselves:
        // no customer's data.
        "ConsoleUser",
        "NewConsoleUser",
        "ConsoleSession",
        "ConsoleInvite",
        "ConsoleUserList",
        // Requests: what a client sends, never answered.
        "EventInput",
        "RefundInput",
        "ProfileInput",
        "SendRequest",
    ];
    let doc = doc();
    let mut missing = Vec::new();
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let fields = personal_properties(schema);
        if !fields.is_empty() && !kith_api::MASKED_SCHEMAS.contains(&name.as_str()) && !not_personal.contains(&name.as_str()) {
            missing.push(format!("{name} ({})", fields.join(", ")));
        }
    }
    assert!(missing.is_empty(), "schemas holding personal fields that nothing masks: {missing:?}");
}

#[tokio::test]
async fn a_top_level_array_is_refused_where_an_object_is_required() {
    let h = Harness::new().await;
    let key = h.key(Role::Owner).to_owned();
    let event = json!({"id": "a1", "type": "customer.upsert", "identities": [{"kind": "nick", "value": "arr"}]});
    let r = h.call(Method::POST, "/v1/events", Some(&key), Some(json!([[event]]))).await;
    r.assert_problem(400, "invalid-request");
    let r = h.call(Method::PUT, "/v1/shop/settings/loyalty", Some(&key), Some(json!([]))).await;
    r.assert_problem(400, "invalid-request");
    assert!(h.store.events_after(h.shop_a, 0, 1000).unwrap().iter().all(|e| !e.payload.as_str().contains("arr")));
}

/// Send `request` on `conn` (opening one when `None`) and read the answer: status and whether the server closes.
fn exchange(conn: &mut Option<BufReader<TcpStream>>, addr: std::net::SocketAddr, request: &[u8]) -> std::io::Result<(u16, bool)> {
    if conn.is_none() {
        *conn = Some(BufReader::new(TcpStream::connect(addr)?));
    }
    let reader = conn.as_mut().unwrap();
    reader.get_mut().write_all(request)?;
    let mut status_line = String::new();
    if reader.read_line(&mut status_line)? == 0 {
        return Err(std::io::Error::other("the connection closed without an answer"));
    }
    let status: u16 =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other(status_line.clone()))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "connection" => close = value.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if close {
        *conn = None;
    }
    Ok((status, close))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_kept_or_closed_properly_after_an_early_rejection() {
    let h = Harness::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let key = h.key(Role::Owner).to_owned();
    let failures = tokio::task::spawn_blocking(move || {
        // Larger than what hyper reads ahead and discards on its own.
        let body = format!("{{\"events\": [{}]}}", vec![r#"{"id":"k","type":"customer.upsert","identities":[{"kind":"nick","value":"k"}]}"#; 8000].join(","));
        let rejected = [
            // No key: 401 before the body is read.
            format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
            // The wrong content type: 415 before the body is read.
            format!(
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        ];
        let fine = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned();
        let (mut conn, mut failures, mut closes) = (None, 0, 0);
        for i in 0..200 {
            let request = if i % 2 == 0 { &rejected[(i / 2) % 2] } else { &fine };
            match exchange(&mut conn, addr, request.as_bytes()) {
                Ok((status, close)) => {
                    assert!(matches!(status, 200 | 401 | 415), "{status}");
                    closes += usize::from(close);
                }
                Err(_) => {
                    failures += 1;
                    conn = None;
                }
            }
        }
        (failures, closes)
    })
    .await
    .unwrap();
    assert_eq!(failures, (0, 0), "requests on reused connections failed, or connections were closed");
}

#[tokio::test]
async fn invisible_characters_and_junk_phones_are_refused_everywhere_a_client_names_something() {
    let h = Harness::new().await;
    let owner = h.key(Role::Owner).to_owned();
    let upsert =
        |id: &str, kind: &str, value: &str| json!({"id": id, "type": "customer.upsert", "identities": [{"kind": kind, "value": value}]});
    let batch = json!({"events": [
        upsert("alice-1", "nick", "alice"),
        upsert("alice-2", "nick", "alice\u{200b}"),
        upsert("e\u{0}3", "nick", "bob"),
        upsert("e4", "phone", "++8613800001234"),
        upsert("e5", "phone", "+86-138-0000-1234-"),
        upsert("e6", "unionid", "o\u{202e}abc"),
    ]});
    let r = h.call(Method::POST, "/v1/events", Some(&owner), Some(batch)).await;
    assert_eq!((r.body["accepted"].as_u64(), r.body["rejected"].as_u64()), (Some(1), Some(5)), "{}", r.body);
    let tag = h.call(Method::POST, &format!("/v1/customers/{}/tags", h.customer), Some(&owner), Some(json!({"tag": "vip\u{200d}"}))).await;
    tag.assert_problem(400, "invalid-request");
    let reason = json!({"tag": "vip", "reason": "x".repeat(1001)});
    h.call(Method::POST, &format!("/v1/customers/{}/tags", h.customer), Some(&owner), Some(reason))
        .await
        .assert_problem(400, "invalid-request");
    let segment = h.post("/v1/segments", Role::Owner, json!({"name": "vip\u{202e}", "definition": {"tag": "vip"}})).await;
    assert_eq!((segment.status, segment.body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("name")));
    let huge: Vec<String> = (0..1001).map(|i| format!("c{i}")).collect();
    let segment =
        h.post("/v1/segments", Role::Owner, json!({"name": "big", "definition": {"profile": "city", "op": "in", "value": huge}})).await;
    segment.assert_problem(400, "invalid-request");
    let long = json!({"name": "long", "definition": {"profile": "city", "op": "eq", "value": "x".repeat(1001)}});
    h.post("/v1/segments", Role::Owner, long).await.assert_problem(400, "invalid-request");
    let journey = h
        .post(
            "/v1/journeys",
            Role::Owner,
            json!({"name": "j\u{200b}", "definition": {"trigger": {"event": "order.paid"}, "start": "x", "steps": {"x": {"exit": true}}}}),
        )
        .await;
    assert_eq!(journey.body["field"], "name", "{}", journey.body);
    let filters: Vec<Value> = (0..51).map(|_| json!({"field": "amount", "op": "gt", "value": 1})).collect();
    let journey = h.post("/v1/journeys", Role::Owner, json!({"name": "j", "definition": {"trigger": {"event": "order.paid", "where": filters}, "start": "x", "steps": {"x": {"exit": true}}}})).await;
    journey.assert_problem(400, "invalid-request");
    let message = json!({"customer_id": h.customer, "channel": "sms", "template": "T", "idempotency_key": "big", "variables": {"v": "x".repeat(1_000_000)}});
    h.post("/v1/messages", Role::Owner, message).await.assert_problem(400, "invalid-request");
}
