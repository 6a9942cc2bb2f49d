//! Journeys through the router: validation with pointers, the lifecycle and
//! versions, dry runs, test sends, statistics and the per-customer view.

use axum::http::{Method, StatusCode};
use kith_core::prelude::*;
use kith_domain::auth::Role;
use serde_json::{Value, json};

use crate::harness::Harness;

fn definition(segment: i64) -> Value {
    json!({
        "trigger": {"segment": segment},
        "holdout_percent": 0,
        "start": "hello",
        "steps": {
            "hello": {"send": {"channel": "sms", "template": "SMS_HELLO", "variables": {"name": "{{journey.name}}"}}, "next": "tag"},
            "tag": {"tag": {"add": "greeted"}}
        }
    })
}

#[tokio::test]
async fn malformed_journeys_point_at_the_faulty_node() {
    let h = Harness::new().await;
    let other_shop_segment = {
        let input = kith_domain::segments::SegmentInput { name: "b".into(), description: None, definition: json!({"tag": "x"}) };
        h.store.create_segment(h.shop_b, &input, &kith_core::Actor::cli("test"), chrono::Utc::now()).unwrap().id
    };
    let with = |pointer: &str, value: Value| {
        let mut d = definition(h.segment);
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        d.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.to_owned(), value);
        d
    };
    let cases = [
        (with("/steps/tag/next", json!("hello")), "definition.steps.tag.next"),
        (with("/steps/hello/next", json!("nowhere")), "definition.steps.hello.next"),
        (with("/trigger/segment", json!(other_shop_segment)), "definition.trigger.segment"),
        (with("/steps/gift", json!({"coupon": {"template_id": 424242}})), "definition.steps.gift"),
        (with("/steps/tag/branch", json!({"customer": {"stat": "spend", "op": "gt", "value": 1}})), "definition.steps.tag"),
        (with("/steps/wait", json!({"wait": {"hours": 1, "until": "7pm"}})), "definition.steps.wait.wait.until"),
        (with("/holdout_percent", json!(99)), "definition.holdout_percent"),
        (with("/start", json!("tag")), "definition.steps.hello"),
        (json!({"start": "a"}), "definition.trigger"),
    ];
    for (definition, field) in cases {
        let reply = h.post("/v1/journeys", Role::Operator, json!({"name": "bad", "definition": definition})).await;
        reply.assert_problem(400, "invalid-request");
        assert_eq!(reply.body["field"], field, "{definition}: {}", reply.body);
    }
    let mut gift = definition(h.segment);
    gift["steps"]["tag"]["next"] = json!("gift");
    gift["steps"]["gift"] = json!({"coupon": {"template_id": h.template}});
    let reply = h.post("/v1/journeys", Role::Operator, json!({"name": "with a coupon", "definition": gift})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(h.store.journeys(h.shop_a).unwrap().len(), 3, "the harness's two and the valid one");
}

#[tokio::test]
async fn a_journey_goes_from_draft_to_active_to_archived_with_versions() {
    let h = Harness::new().await;
    let created = h.post("/v1/journeys", Role::Operator, json!({"name": "welcome", "definition": definition(h.segment)})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!((created.body["status"].as_str(), created.body["version"].as_i64()), (Some("draft"), Some(1)));
    let id = created.body["id"].as_i64().unwrap();
    let mut changed = definition(h.segment);
    changed["steps"]["hello"]["send"]["template"] = json!("SMS_HELLO_2");
    let key = h.key(Role::Operator).to_owned();
    let put = h.call(Method::PUT, &format!("/v1/journeys/{id}"), Some(&key), Some(json!({"name": "welcome", "definition": changed}))).await;
    assert_eq!(put.body["version"], 2);
    let renamed =
        h.call(Method::PUT, &format!("/v1/journeys/{id}"), Some(&key), Some(json!({"name": "hello", "definition": changed}))).await;
    assert_eq!((renamed.body["version"].as_i64(), renamed.body["name"].as_str()), (Some(2), Some("hello")), "a rename is no new version");
    let versions = h.get(&format!("/v1/journeys/{id}/versions"), Role::Analyst).await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 2);

    let active = h.post(&format!("/v1/journeys/{id}/activate"), Role::Operator, json!({})).await;
    assert_eq!(active.body["status"], "active", "{}", active.body);
    h.post(&format!("/v1/journeys/{id}/activate"), Role::Operator, json!({})).await.assert_problem(409, "conflict");
    h.post(&format!("/v1/journeys/{id}/archive"), Role::Operator, json!({})).await;
    let frozen = h.call(Method::PUT, &format!("/v1/journeys/{id}"), Some(&key), Some(json!({"name": "x", "definition": changed}))).await;
    frozen.assert_problem(409, "conflict");
    // A journey that ran cannot be deleted; a draft can.
    let gone = h.call(Method::DELETE, &format!("/v1/journeys/{id}"), Some(&key), None).await;
    gone.assert_problem(409, "conflict");
    let draft = h.call(Method::DELETE, &format!("/v1/journeys/{}", h.draft_journey), Some(&key), None).await;
    assert_eq!(draft.status, StatusCode::NO_CONTENT);
    h.get(&format!("/v1/journeys/{}", h.draft_journey), Role::Operator).await.assert_problem(404, "not-found");
    // Analysts read but do not write.
    h.post("/v1/journeys", Role::Analyst, json!({"name": "x", "definition": definition(h.segment)})).await.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn dry_runs_test_sends_and_the_customer_view() {
    let h = Harness::new().await;
    let j = h.journey;
    // The seeded segment holds customer 1, who would enter now.
    let dry = h.get(&format!("/v1/journeys/{j}/dry-run"), Role::Analyst).await;
    assert_eq!((dry.body["count"].as_i64(), dry.body["sample"][0].as_i64()), (Some(1), Some(h.customer)), "{}", dry.body);
    // A test send queues the journey's message for one customer, outside the statistics.
    let sent = h.post(&format!("/v1/journeys/{j}/test-send"), Role::Operator, json!({"customer_id": h.customer})).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.body["messages"][0]["template"], "SMS_HELLO");
    let missing = h.post(&format!("/v1/journeys/{j}/test-send"), Role::Operator, json!({"customer_id": 424242})).await;
    missing.assert_problem(400, "invalid-request");
    assert_eq!(missing.body["field"], "customer_id");

    // A new member of the segment enters; the bus runs the journey.
    let key = h.key(Role::Operator).to_owned();
    let report = h
        .post(
            "/v1/events",
            Role::Operator,
            json!({"events": [{"id": "n1", "type": "customer.upsert",
            "identities": [{"kind": "phone", "value": "13900000001"}], "profile": {"name": "New"}}]}),
        )
        .await;
    let newcomer = report.body["outcomes"][0]["customer_id"].as_i64().unwrap();
    let tagged = h.call(Method::POST, &format!("/v1/customers/{newcomer}/tags"), Some(&key), Some(json!({"tag": "seeded"}))).await;
    assert!(tagged.status.is_success(), "{}", tagged.body);
    h.bus.drain().unwrap();
    let runs = h.get(&format!("/v1/customers/{newcomer}/journeys"), Role::Analyst).await;
    let run = &runs.body["items"][0];
    assert_eq!((run["journey_id"].as_i64(), run["status"].as_str()), (Some(j), Some("completed")), "{}", runs.body);
    assert_eq!(run["history"][0]["step"], "hello");
    assert_eq!(run["history"][0]["outcome"], "done");
    let by_journey = h.get(&format!("/v1/journeys/{j}/runs?customer_id={newcomer}"), Role::Analyst).await;
    assert_eq!(by_journey.body["items"].as_array().unwrap().len(), 1);
    h.get(&format!("/v1/journeys/{j}/runs?status=lost"), Role::Analyst).await.assert_problem(400, "invalid-request");
    let stats = h.get(&format!("/v1/journeys/{j}/stats"), Role::Analyst).await;
    assert_eq!((stats.body["entered"].as_i64(), stats.body["completed"].as_i64()), (Some(1), Some(1)), "{}", stats.body);
    assert_eq!(stats.body["messages"]["queued"], 1, "the test send is not counted: {}", stats.body);
    // Shop B sees none of it.
    let foreign = h.call(Method::GET, &format!("/v1/journeys/{j}/stats"), Some(&h.foreign), None).await;
    foreign.assert_problem(404, "not-found");
}
