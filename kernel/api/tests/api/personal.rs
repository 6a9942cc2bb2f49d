//! Personal data never escapes its permission: every route walked with keys with and
//! without `pii:read`, connectors routed only by the owner, secrets write-only, journey
//! templates, lookups, exports, and each shop's own event positions.

use kith_core::prelude::*;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_core::Actor;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::NewKey;
use serde_json::{Value, json};

use crate::harness::Harness;

/// Every personal value the walked shop holds; none may reach a key without `pii:read`.
const SECRETS: [&str; 19] = [
    "Li Receiver",
    "136 0000 0006",
    "13600000006",
    "138-1234-5678",
    "138 1234 5678",
    "１３８１２３４５６７８",
    "West Lake 8",
    "+8613812345678",
    "13812345678",
    "ming@example.com",
    "Ming",
    "1990-04-01",
    "oUnionSecret42",
    "nick_secret_77",
    "88 Secret Road",
    "+8613700000009",
    "13700000009",
    "+8613912345670",
    "13912345670",
];

/// A key of shop A with every scope but `pii:read` (an owner's role, so that owner-only routes are walked too).
fn key_without_pii(h: &Harness) -> String {
    let scopes = Scope::ALL.into_iter().filter(|s| *s != Scope::PiiRead).collect();
    let new = NewKey { shop_id: Some(h.shop_a), name: "no pii".into(), role: Role::Owner, scopes: Some(scopes) };
    h.store.create_key(&new, &Actor::cli("test")).unwrap().token
}

/// Shop A's customer with every kind of personal field, a journey that copies them into a
/// message, an attached identity, the harness's merge, and a plugin with logs and a dead letter.
async fn personal_shop(h: &Harness) -> (String, i64) {
    let owner = h.key(Role::Owner).to_owned();
    let events = json!({"events": [
        {"id": "p1", "type": "customer.upsert", "customer_id": h.customer,
         "identities": [{"kind": "unionid", "value": "oUnionSecret42"}, {"kind": "nick", "value": "nick_secret_77"}],
         "profile": {"birthday": "1990-04-01", "attributes": {"address": "88 Secret Road", "vip_level": 2,
             "shipping": {"name": "Li Receiver", "receiver_mobile": "138-1234-5678"}, "收货人": "Li Receiver"}}}
    ]});
    let r = h.call(Method::POST, "/v1/events", Some(&owner), Some(events)).await;
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
    // An owner writes a journey that copies personal data into a message (allowed with pii:read).
    let definition = json!({"trigger": {"event": "identity.attached"}, "start": "s",
        "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {"who": "{{customer.name}}", "p": "{{trigger.value}}", "n": "{{journey.name}}"}}}}});
    let created = h.call(Method::POST, "/v1/journeys", Some(&owner), Some(json!({"name": "copy", "definition": definition}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let journey = created.body["id"].as_i64().unwrap();
    let sent =
        h.call(Method::POST, &format!("/v1/journeys/{journey}/test-send"), Some(&owner), Some(json!({"customer_id": h.customer}))).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    h.call(Method::POST, &format!("/v1/journeys/{journey}/activate"), Some(&owner), Some(json!({}))).await;
    let attach = json!({"events": [{"id": "p2", "type": "customer.upsert", "customer_id": h.customer,
        "identities": [{"kind": "phone", "value": "13912345670"}]}]});
    h.call(Method::POST, "/v1/events", Some(&owner), Some(attach)).await;
    h.bus.drain().unwrap();
    let (_, run) = h.with_plugin();
    plugin_writes_an_order_with_its_receiver(h);
    // A points adjustment's reason (ledger, audit) and a message's variables set by an API caller.
    let adjust = json!({"points": 5, "reason": "called 138-1234-5678 back", "idempotency_key": "pii"});
    let r = h.call(Method::POST, &format!("/v1/customers/{}/points/adjustments", h.customer), Some(&owner), Some(adjust)).await;
    assert!(r.status.is_success(), "{}", r.body);
    // (Enqueued through the store: the API sends only through an enabled connector.)
    let send = kith_domain::messaging::SendRequest {
        customer_id: h.customer,
        channel: "sms".into(),
        template: "T".into(),
        variables: [("name", "Li Receiver"), ("receiver_phone", "138 1234 5678"), ("note", "(+86)13812345678")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        idempotency_key: "pii".into(),
    };
    h.store.enqueue_message(h.shop_a, &send, "api", chrono::Utc::now()).unwrap();
    // A journey (not active) whose filter compares personal fields of the connector's order.
    let filtered = json!({"trigger": {"event": "plugin.order_synced", "where": [
            {"field": "order.receiver_name", "op": "eq", "value": "Li Receiver"},
            {"field": "收货人", "op": "in", "value": ["Li Receiver"]},
            {"field": "order.receiver_mobile", "op": "eq", "value": 13812345678_u64}]},
        "start": "s", "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {}}}}});
    let r = h.call(Method::POST, "/v1/journeys", Some(&owner), Some(json!({"name": "filtered", "definition": filtered}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A segment and a journey's customer condition comparing personal fields (the owner's to write).
    let conditions = json!({"or": [
        {"profile": "name", "op": "eq", "value": "Li Receiver"},
        {"profile": "birthday", "op": "eq", "value": "1990-04-01"},
        {"attribute": "receiver_mobile", "op": "in", "value": ["138-1234-5678", "13812345678"]},
        {"attribute": "note", "op": "contains", "value": "+8613812345678"}]});
    let r = h.call(Method::POST, "/v1/segments", Some(&owner), Some(json!({"name": "personal", "definition": conditions.clone()}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let audience = json!({"trigger": {"event": "order.paid", "customer": conditions}, "start": "s",
        "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {}}}}});
    let r = h.call(Method::POST, "/v1/journeys", Some(&owner), Some(json!({"name": "audience", "definition": audience}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // A single condition, not wrapped in `and` / `or`, and a phone compared as a number.
    let single = json!({"trigger": {"event": "order.paid", "customer": {"profile": "birthday", "op": "eq", "value": "1990-04-01"},
            "where": [{"field": "remark", "op": "in", "value": [13812345678_u64]}]},
        "start": "s", "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {}}}}});
    let r = h.call(Method::POST, "/v1/journeys", Some(&owner), Some(json!({"name": "single", "definition": single}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (owner, run)
}

/// What a Tmall connector writes: an order naming its receiver (收货人) by name, phone and
/// address under keys of its own, phones written every way, and a log line holding the order.
fn plugin_writes_an_order_with_its_receiver(h: &Harness) {
    let payload = json!({
        "name": "Li Receiver",
        "order": {"id": "TM-20260501000000000123", "receiver_name": "Li Receiver", "receiver_mobile": "+86 138 1234 5678",
                  "receiver_address": "West Lake 8", "items": [{"sku": "TEA-1", "name": "Green tea"}]},
        "contact": {"name": "Li Receiver", "tel": "8613812345678"},
        "note": "call (+86)13812345678, ８６１３８１２３４５６７８ or 138 1234 5678",
    });
    let decisions = [
        kith_domain::plugin::Decision::EmitEvent {
            customer_id: Some(h.customer),
            event_type: "plugin.order_synced".into(),
            payload: payload.to_string(),
        },
        kith_domain::plugin::Decision::AddTag {
            customer_id: h.customer,
            tag: "vip-receiver".into(),
            reason: "receiver 138 1234 5678 spent 13800.00".into(),
        },
        kith_domain::plugin::Decision::ChangeTier {
            customer_id: h.customer,
            tier: "gold".into(),
            reason: "promised on the phone, 136 0000 0006".into(),
        },
        kith_domain::plugin::Decision::SetScore {
            customer_id: h.customer,
            model: "churn".into(),
            value: 0.5,
            label: None,
            explanation: "no answer on ８６１３８１２３４５６７８".into(),
        },
    ];
    let logs = [kith_domain::plugin::LogLine {
        level: kith_domain::plugin::LogLevel::Info,
        message: format!("[info] synced {payload} for 138-1234-5678, ok"),
    }];
    let cursor = h.store.subscription(h.shop_a, "vip-tag").unwrap().cursor;
    let attempt = kith_core::delivery::Attempt {
        shop_id: h.shop_a,
        plugin_id: "vip-tag",
        logs: &logs,
        duration: Duration::from_millis(1),
        now: chrono::Utc::now(),
    };
    h.store
        .commit_delivery(&attempt, cursor, cursor, &kith_core::delivery::Effects { decisions: &decisions, kv_writes: &[], chain: None })
        .unwrap();
}

/// The GET routes of the OpenAPI document, with the walked shop's ids in their paths.
fn get_routes(h: &Harness, journey: i64, message: &str, run: i64) -> Vec<String> {
    let doc = serde_json::to_value(kith_api::openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path == "/v1/events/stream" {
            continue;
        }
        let id = if path.starts_with("/v1/customers/") {
            h.customer.to_string()
        } else if path.starts_with("/v1/journeys/") {
            journey.to_string()
        } else if path.starts_with("/v1/segments/") {
            h.segment.to_string()
        } else if path.starts_with("/v1/messages/") {
            message.to_owned()
        } else if path.starts_with("/v1/coupon-templates/") {
            h.template.to_string()
        } else if path.starts_with("/v1/rewards/") {
            h.reward.to_string()
        } else {
            "vip-tag".to_owned()
        };
        let uri = path
            .replace("{id}", &id)
            .replace("{snapshot}", &h.snapshot.to_string())
            .replace("{code}", &h.coupon_code)
            .replace("{run}", &run.to_string());
        out.push(uri.clone());
        if path == "/v1/customers/{id}" {
            out.push(format!("{uri}?timeline=200"));
        }
        if path == "/v1/events" {
            out.push(format!("{uri}?limit=1000"));
        }
        if path == "/v1/audit" {
            out.push(format!("{uri}?limit=500"));
        }
    }
    out
}

/// Read an event stream for a while and return what came.
async fn stream_text(h: &Harness, key: &str) -> String {
    let req = Request::get("/v1/events/stream").header(header::AUTHORIZATION, format!("Bearer {key}")).body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(h.app.clone(), req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = String::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(500), body.frame()).await {
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text
}

#[tokio::test]
async fn every_route_masks_every_personal_field_without_pii_read() {
    let h = Harness::new().await;
    let (owner, run) = personal_shop(&h).await;
    let journey = h.store.journeys(h.shop_a).unwrap().into_iter().find(|j| j.name == "copy").unwrap().id;
    let messages = h.get("/v1/messages?limit=200", Role::Owner).await;
    let rendered = messages.body["items"].as_array().unwrap();
    assert!(rendered.iter().any(|m| m["variables"]["p"] == "+8613912345670"), "the journey ran: {}", messages.body);
    let message = rendered.iter().find(|m| m["variables"]["who"] == "Ming").unwrap()["id"].as_str().unwrap().to_owned();
    // Keys with pii:read see the data: the walk below would prove nothing otherwise.
    let mut seen = String::new();
    for uri in get_routes(&h, journey, &message, run) {
        seen.push_str(&h.call(Method::GET, &uri, Some(&owner), None).await.body.to_string());
    }
    for secret in [
        "+8613812345678",
        "ming@example.com",
        "Ming",
        "1990-04-01",
        "oUnionSecret42",
        "nick_secret_77",
        "88 Secret Road",
        "Li Receiver",
        "138-1234-5678",
        "138 1234 5678",
        "１３８１２３４５６７８",
        "West Lake 8",
        "136 0000 0006",
        "13812345678",
    ] {
        assert!(seen.contains(secret), "the owner never saw `{secret}`");
    }
    // A thing's name is not personal: the order's item and the segment keep theirs.
    let events = h.call(Method::GET, "/v1/events?limit=1000", Some(&key_without_pii(&h)), None).await;
    let synced = events.body["items"].as_array().unwrap().iter().find(|e| e["type"] == "plugin.order_synced").unwrap();
    assert_eq!(synced["payload"]["order"]["items"][0]["name"], "Green tea", "{synced}");
    assert_eq!(synced["payload"]["order"]["id"], "TM-20260501000000000123", "{synced}");
    assert_eq!(synced["payload"]["order"]["receiver_mobile"], "+86 138 **** 5678", "{synced}");
    // The event stream masks it exactly as the list does.
    let streamed = stream_text(&h, &key_without_pii(&h)).await;
    let data = streamed.split("\n\n").find(|frame| frame.contains("event: plugin.order_synced")).unwrap();
    let data: Value = serde_json::from_str(data.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["payload"], synced["payload"]);

    let without = key_without_pii(&h);
    let mut keys = vec![("every scope but pii:read", without.clone())];
    for role in [Role::Operator, Role::Analyst, Role::App] {
        keys.push((role.as_str(), h.key(role).to_owned()));
    }
    let mut walked = 0;
    for (who, key) in &keys {
        for uri in get_routes(&h, journey, &message, run) {
            let reply = h.call(Method::GET, &uri, Some(key), None).await;
            assert!(!reply.status.is_server_error(), "{who} GET {uri}: {}", reply.body);
            if reply.status.is_success() {
                walked += 1;
            }
            let text = reply.body.to_string();
            for secret in SECRETS {
                assert!(!text.contains(secret), "{who} GET {uri} shows `{secret}`: {text}");
            }
        }
        let text = stream_text(&h, key).await;
        assert!(text.contains("identity.attached"), "{who}: the stream carried the shop's events");
        for secret in SECRETS {
            assert!(!text.contains(secret), "{who}: the event stream shows `{secret}`");
        }
    }
    assert!(walked > 100, "only {walked} routes answered");
    // Writes that answer personal data mask it too: a test send, an unmerge.
    let sent =
        h.call(Method::POST, &format!("/v1/journeys/{journey}/test-send"), Some(&without), Some(json!({"customer_id": h.customer}))).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let unmerged = h.call(Method::POST, &format!("/v1/merges/{}/unmerge", h.merge_id), Some(&without), None).await;
    assert_eq!(unmerged.status, StatusCode::OK, "{}", unmerged.body);
    // A replayed adjustment answers the first entry, whose reason an owner wrote.
    let adjust = json!({"points": 5, "reason": "called 138-1234-5678 back", "idempotency_key": "pii"});
    let replayed = h.call(Method::POST, &format!("/v1/customers/{}/points/adjustments", h.customer), Some(&without), Some(adjust)).await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.body);
    assert_eq!(replayed.body["reason"], "called 138-****-5678 back");
    for reply in [sent, unmerged, replayed] {
        for secret in SECRETS {
            assert!(!reply.body.to_string().contains(secret), "a write answered `{secret}`: {}", reply.body);
        }
    }
}

#[tokio::test]
async fn rendered_message_variables_are_masked_and_authors_without_pii_read_cannot_place_personal_fields() {
    let h = Harness::new().await;
    let (_, _) = personal_shop(&h).await;
    for role in [Role::Analyst, Role::App, Role::Operator] {
        let r = h.get("/v1/messages?limit=200", role).await;
        let text = r.body.to_string();
        assert!(r.body["items"].as_array().unwrap().iter().any(|m| m["variables"]["n"] == "copy"), "other variables stay: {text}");
        for secret in ["+8613912345670", "Ming"] {
            assert!(!text.contains(secret), "{role}: {text}");
        }
        // The owner's `{{customer.name}}` is marked personal and shown as its first character.
        let items = r.body["items"].as_array().unwrap();
        assert!(items.iter().any(|m| m["variables"]["who"] == "M***"), "{role}: {text}");
    }
    // The owner's own key reads them in full.
    let text = h.get("/v1/messages?limit=200", Role::Owner).await.body.to_string();
    assert!(text.contains("Ming"), "{text}");
    // A placeholder stopping at an object (the whole trigger, the customer, the order, the
    // identifiers) would copy every field below it: refused when saved, for every author.
    for text in ["{{trigger}}", "{{customer}}", "{{trigger.order}}", "{{ trigger.identities }}", "Hi {{trigger.profile}}"] {
        let definition = json!({"trigger": {"event": "order.paid"}, "start": "s",
            "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {"p": text}}}}});
        for role in [Role::Operator, Role::Owner] {
            let r = h.post("/v1/journeys", role, json!({"name": "leak", "definition": definition})).await;
            r.assert_problem(400, "invalid-request");
            assert_eq!(r.body["field"], "definition.steps.s.send.variables.p", "{text}: {}", r.body);
        }
    }
    // The operator (journeys:manage, no pii:read) may not write personal placeholders or tests.
    for (variables, filters, at) in [
        (json!({"p": "{{trigger.value}}"}), json!([]), "definition.steps.s.send.variables.p"),
        (json!({"p": "{{trigger.identities.value}}"}), json!([]), "definition.steps.s.send.variables.p"),
        (json!({"p": "{{trigger.customer.nick}}"}), json!([]), "definition.steps.s.send.variables.p"),
        (json!({"p": "Hi {{ customer.name }}"}), json!([]), "definition.steps.s.send.variables.p"),
        (json!({}), json!([{"field": "value", "op": "eq", "value": "+8613812345678"}]), "definition.trigger.where[0].field"),
    ] {
        let definition = json!({"trigger": {"event": "identity.attached", "where": filters}, "start": "s",
            "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": variables}}}});
        let r = h.post("/v1/journeys", Role::Operator, json!({"name": "leak", "definition": definition})).await;
        r.assert_problem(403, "forbidden");
        assert!(r.body["detail"].as_str().unwrap().contains(at), "{}", r.body);
    }
    let fine = json!({"trigger": {"event": "order.paid"}, "start": "s",
        "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {"a": "{{trigger.amount}}", "c": "{{customer.id}}", "o": "{{trigger.order.id}}"}}}}});
    let r = h.post("/v1/journeys", Role::Operator, json!({"name": "fine", "definition": fine})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// An operator (segments:manage, no pii:read) may not write, preview or count a definition that
/// reads personal data, so that a preview's count cannot tell what masking hides; the same rule
/// holds for a journey's customer conditions, and the owner's such definitions read masked.
#[tokio::test]
async fn segment_conditions_on_personal_fields_need_pii_read() {
    let h = Harness::new().await;
    let refused = [
        (json!({"profile": "name", "op": "contains", "value": "Li"}), "definition.and[1].profile"),
        (json!({"profile": "birthday", "op": "between", "value": ["1990-01-01", "1990-12-31"]}), "definition.and[1].profile"),
        (json!({"attribute": "receiver_mobile", "op": "eq", "value": "13812345678"}), "definition.and[1].attribute"),
        (json!({"attribute": "note", "op": "contains", "value": "1381"}), "definition.and[1].value"),
        (json!({"attribute": "note", "op": "eq", "value": "ming@example.com"}), "definition.and[1].value"),
    ];
    for (condition, at) in refused {
        let definition = json!({"and": [{"stat": "order_count", "op": "gte", "value": 1}, condition]});
        for (method, uri) in [(Method::POST, "/v1/segments".to_owned()), (Method::PUT, format!("/v1/segments/{}", h.segment))] {
            let r =
                h.call(method, &uri, Some(h.key(Role::Operator)), Some(json!({"name": "oracle", "definition": definition.clone()}))).await;
            r.assert_problem(403, "forbidden");
            assert!(r.body["detail"].as_str().unwrap().contains(at), "{}", r.body);
        }
        for role in [Role::Analyst, Role::Operator] {
            let r = h.post("/v1/segments/preview", role, json!({"definition": definition.clone()})).await;
            r.assert_problem(403, "forbidden");
            assert!(r.body["detail"].as_str().unwrap().contains(at), "{}", r.body);
        }
        let journey = json!({"trigger": {"event": "order.paid", "customer": definition.clone()}, "start": "s",
            "steps": {"s": {"send": {"channel": "sms", "template": "T", "variables": {}}}}});
        let r = h.post("/v1/journeys", Role::Operator, json!({"name": "oracle", "definition": journey})).await;
        r.assert_problem(403, "forbidden");
        let owner = h.post("/v1/segments/preview", Role::Owner, json!({"definition": definition})).await;
        assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    }
    // Birthday campaigns, presence tests and short text need no pii:read.
    let fine = json!({"and": [{"profile": "birthday", "op": "within_next_days", "value": 7},
        {"attribute": "receiver_mobile", "op": "exists", "value": true}, {"attribute": "vip_expires", "op": "lt", "value": "2027-01-01"}]});
    let r = h.post("/v1/segments", Role::Operator, json!({"name": "birthdays", "definition": fine})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The owner's definition reads masked to the operator and analyst, whole to the owner.
    let personal = json!({"and": [{"profile": "name", "op": "eq", "value": "Li Ming"},
        {"attribute": "receiver_mobile", "op": "eq", "value": "13812345678"}]});
    let r = h.post("/v1/segments", Role::Owner, json!({"name": "by name", "definition": personal})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    for role in [Role::Analyst, Role::Operator] {
        for uri in [format!("/v1/segments/{id}"), "/v1/segments".to_owned(), format!("/v1/segments/{id}/versions")] {
            let text = h.get(&uri, role).await.body.to_string();
            assert!(!text.contains("Li Ming") && !text.contains("13812345678"), "{role} {uri}: {text}");
            assert!(text.contains("138****5678"), "{role} {uri}: {text}");
        }
    }
    let text = h.get(&format!("/v1/segments/{id}"), Role::Owner).await.body.to_string();
    assert!(text.contains("Li Ming") && text.contains("13812345678"), "{text}");
}

#[tokio::test]
async fn a_key_without_pii_read_cannot_confirm_a_personal_identifier_by_lookup() {
    let h = Harness::new().await;
    for identity in ["phone:13812345678", "email:ming@example.com", "nick:x", "unionid:y"] {
        for role in [Role::Analyst, Role::App, Role::Operator] {
            h.get(&format!("/v1/customers?identity={identity}"), role).await.assert_problem(403, "forbidden");
        }
    }
    let r = h.get("/v1/customers?identity=phone:13812345678", Role::Owner).await;
    assert_eq!(r.body["items"][0]["id"], h.customer);
    let r = h.get("/v1/customers?identity=external:erp:C-404", Role::App).await;
    assert_eq!(r.status, StatusCode::OK, "external ids are the shop's own keys: {}", r.body);
}

#[tokio::test]
async fn the_export_policy_allows_no_personal_columns_until_the_owner_says_so_and_is_audited() {
    let h = Harness::new().await;
    let owner = h.key(Role::Owner).to_owned();
    let policy = h.get("/v1/shop/settings/export", Role::Owner).await;
    assert_eq!(policy.body, json!({"personal_columns": false}));
    let uri = format!("/v1/segments/{}/export?columns=id,phone", h.segment);
    let refused = h.call(Method::GET, &uri, Some(&owner), None).await;
    refused.assert_problem(403, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("export policy"));
    let operator = h.key(Role::Operator).to_owned();
    let on = json!({"personal_columns": true});
    h.call(Method::PUT, "/v1/shop/settings/export", Some(&operator), Some(on.clone())).await.assert_problem(403, "forbidden");
    h.call(Method::PUT, "/v1/shop/settings/export", Some(&owner), Some(json!([]))).await.assert_problem(400, "invalid-request");
    assert_eq!(h.call(Method::PUT, "/v1/shop/settings/export", Some(&owner), Some(on)).await.status, StatusCode::OK);
    let csv = h.call(Method::GET, &uri, Some(&owner), None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.as_str().unwrap().contains("+8613812345678"));
    let audit = h.store.list_audit(h.shop_a, None, 50).unwrap();
    assert!(audit.iter().any(|e| e.action == "settings.export" && e.detail["personal_columns"] == true), "{audit:?}");
}

#[tokio::test]
async fn only_the_owner_points_a_connector_somewhere_and_its_secrets_are_never_read_back() {
    let h = Harness::new().await;
    let package = kith_bus::Package::from_tar_gz(&kith_test_plugins::SMS_HTTP.tar_gz()).unwrap();
    h.bus.install(&package, &Actor::cli("test")).unwrap();
    let request = json!({"config": {"endpoint": "http://127.0.0.1:9/send", "api_key": "sk-very-secret"},
        "grant": {"capabilities": ["config", "http", "log"], "allowed_hosts": ["127.0.0.1:9"]}});
    let (owner, operator) = (h.key(Role::Owner).to_owned(), h.key(Role::Operator).to_owned());
    let r = h.call(Method::PUT, "/v1/shop/plugins/sms-http", Some(&operator), Some(request.clone())).await;
    r.assert_problem(403, "forbidden");
    let r = h.call(Method::PUT, "/v1/shop/plugins/sms-http", Some(&owner), Some(request.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["config"], json!({"endpoint": "http://127.0.0.1:9/send"}), "the secret is write-only");
    for uri in ["/v1/shop/plugins/sms-http", "/v1/shop/plugins", "/v1/shop/plugins/sms-http/fixture"] {
        let text = h.call(Method::GET, uri, Some(&operator), None).await.body.to_string();
        assert!(!text.contains("sk-very-secret"), "{uri}: {text}");
    }
    // Another endpoint or another host: the owner's only.
    let mut elsewhere = request.clone();
    elsewhere["config"]["endpoint"] = json!("http://127.0.0.1:9/other");
    h.call(Method::PUT, "/v1/shop/plugins/sms-http", Some(&operator), Some(elsewhere)).await.assert_problem(403, "forbidden");
    let mut hosts = request.clone();
    hosts["grant"]["allowed_hosts"] = json!(["127.0.0.1:9", "evil.example"]);
    h.call(Method::PUT, "/v1/shop/plugins/sms-http", Some(&operator), Some(hosts)).await.assert_problem(403, "forbidden");
    // Re-enabling it as it is stays open to operators, and a change that leaves the secret out keeps it.
    let disabled = h.call(Method::DELETE, "/v1/shop/plugins/sms-http", Some(&operator), None).await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert!(!disabled.body.to_string().contains("sk-very-secret"));
    let again = json!({"config": {"endpoint": "http://127.0.0.1:9/send"}, "grant": request["grant"]});
    let r = h.call(Method::PUT, "/v1/shop/plugins/sms-http", Some(&operator), Some(again)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(h.store.subscription(h.shop_a, "sms-http").unwrap().config["api_key"], "sk-very-secret");
    let routes: Vec<_> = h.store.list_audit(h.shop_a, None, 50).unwrap().into_iter().filter(|e| e.action == "connector.route").collect();
    assert_eq!(routes.len(), 1, "the owner's one change: {routes:?}");
    assert_eq!(routes[0].detail["hosts"], json!(["127.0.0.1:9"]));
    assert!(!routes[0].detail.to_string().contains("sk-very-secret"));
}

#[tokio::test]
async fn each_shop_sees_its_own_event_positions() {
    let h = Harness::new().await;
    let (a, b) = (h.key(Role::Owner).to_owned(), h.foreign.clone());
    for i in 0..3 {
        for (key, n) in [(&a, 1), (&b, 4)] {
            let events: Vec<Value> = (0..n)
                .map(|j| json!({"id": format!("x{i}-{j}"), "type": "customer.upsert", "identities": [{"kind": "nick", "value": format!("n{i}{j}")}]}))
                .collect();
            h.call(Method::POST, "/v1/events", Some(key), Some(json!({"events": events}))).await;
        }
    }
    for key in [&a, &b] {
        let page = h.call(Method::GET, "/v1/events?limit=1000", Some(key), None).await;
        let seqs: Vec<i64> = page.body["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        assert_eq!(page.body["next_after"], seqs.len());
        let rest = h.call(Method::GET, "/v1/events?after=2&limit=1", Some(key), None).await;
        assert_eq!(rest.body["items"][0]["seq"], 3);
        // The event stream's ids are the same positions.
        let ids: Vec<i64> = stream_text(&h, key).await.lines().filter_map(|l| l.strip_prefix("id: ")?.parse().ok()).collect();
        assert_eq!(ids, seqs, "SSE ids");
    }
}

/// The export's personal columns are the domain's (`kith_domain::personal::EXPORT_COLUMNS`): each
/// is refused under the default policy for every key, and without `pii:read` once the owner allows
/// them; every column the domain lists is exported, personal ones holding the data once allowed.
#[tokio::test]
async fn every_personal_export_column_of_the_one_definition_is_refused_by_default() {
    let h = Harness::new().await;
    let (owner, _) = personal_shop(&h).await;
    let without = key_without_pii(&h);
    let columns = kith_domain::personal::EXPORT_COLUMNS;
    let personal: Vec<&str> = columns.iter().filter(|c| c.personal.is_some()).map(|c| c.name).collect();
    assert!(!personal.is_empty());
    let h = &h;
    let export = |key: &str, columns: &str| {
        let uri = format!("/v1/segments/{}/export?columns={columns}", h.segment);
        let key = key.to_owned();
        async move { h.call(Method::GET, &uri, Some(&key), None).await }
    };
    for column in &personal {
        for key in [&owner, &without] {
            let r = export(key, &format!("id,{column}")).await;
            r.assert_problem(403, "forbidden");
            assert!(r.body["detail"].as_str().unwrap().contains("export policy"), "{column}: {}", r.body);
        }
    }
    let plain: Vec<&str> = columns.iter().filter(|c| c.personal.is_none()).map(|c| c.name).collect();
    let r = export(&without, &plain.join(",")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.as_str().unwrap().starts_with(&plain.join(",")), "{}", r.body);

    let on = json!({"personal_columns": true});
    assert_eq!(h.call(Method::PUT, "/v1/shop/settings/export", Some(&owner), Some(on)).await.status, StatusCode::OK);
    for column in &personal {
        let r = export(&without, &format!("id,{column}")).await;
        r.assert_problem(403, "forbidden");
        assert!(r.body["detail"].as_str().unwrap().contains("pii:read"), "{column}: {}", r.body);
    }
    let all: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let r = export(&owner, &all.join(",")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let csv = r.body.as_str().unwrap();
    assert!(csv.starts_with(&all.join(",")), "{csv}");
    for value in ["+8613812345678", "ming@example.com", "Ming", "1990-04-01"] {
        assert!(csv.contains(value), "`{value}` in {csv}");
    }
}
