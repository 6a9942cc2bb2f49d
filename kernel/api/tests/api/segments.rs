//! Segments, exports and dashboards through the router.

use axum::http::{Method, StatusCode};
use chrono::{TimeZone, Utc};
use kith_bus::Clock;
use kith_core::Actor;
use kith_core::prelude::*;
use kith_domain::auth::{Role, Scope};
use kith_domain::model::NewKey;
use serde_json::{Value, json};

use crate::harness::Harness;

#[tokio::test]
async fn malformed_definitions_point_at_the_faulty_node() {
    let h = Harness::new().await;
    let cases = [
        (json!({"and": [{"tag": "vip"}, {"stat": "spend", "op": "gt", "value": 1}]}), "definition.and[1].stat"),
        (json!({"or": [{"not": {"profile": "city", "op": "gt", "value": "x"}}]}), "definition.or[0].not.op"),
        (json!({"purchase": {"sku": "A"}, "window": {"last_days": 0}}), "definition.window.last_days"),
        (json!({"behaviour": "view", "window": {"between": ["2026-13-01", "2026-12-01"]}}), "definition.window.between[0]"),
        (json!({"segment": 424242}), "definition"),
        (json!("vip"), "definition"),
        (json!({"and": [{"tag": "vip"}, {"score": "predict.clv", "top_percent": 0}]}), "definition.and[1].top_percent"),
        (json!({"score": "predict.clv", "bottom_percent": 101}), "definition.bottom_percent"),
        (json!({"score": "predict.clv", "top_percent": "20"}), "definition.top_percent"),
        (json!({"score": "predict.clv", "top_percent": 20, "bottom_percent": 20}), "definition.top_percent"),
        (json!({"score": "predict.clv", "top_percent": 20, "value": 1}), "definition.value"),
        (json!({"not": {"score": "predict.clv", "op": "gte", "value": 1, "top_percent": 20}}), "definition.not.op"),
    ];
    for (definition, field) in cases {
        for (uri, body) in [
            ("/v1/segments", json!({"name": "bad", "definition": definition})),
            ("/v1/segments/preview", json!({"definition": definition})),
        ] {
            let reply = h.post(uri, Role::Operator, body).await;
            reply.assert_problem(400, "invalid-request");
            assert_eq!(reply.body["field"], field, "{uri} {definition}: {}", reply.body);
        }
    }
    let reply = h.post("/v1/segments", Role::Operator, json!({"name": " ", "definition": {"tag": "vip"}})).await;
    assert_eq!(reply.body["field"], "name");
    assert!(h.store.list_segments(h.shop_a).unwrap().len() == 1, "only the harness's segment exists");
}

#[tokio::test]
async fn segments_are_versioned_previewed_and_paged_with_masking() {
    let h = Harness::new().await;
    let events: Vec<Value> = (0..2500)
        .map(|i| {
            json!({"id": format!("u{i}"), "type": "customer.upsert",
                   "identities": [{"kind": "phone", "value": format!("1390000{i:04}")}],
                   "profile": {"city": if i % 2 == 0 { "杭州" } else { "上海" }, "name": format!("Buyer {i}")}})
        })
        .collect();
    for chunk in events.chunks(1000) {
        let report = h.store.ingest(h.shop_a, chunk.to_vec(), &Actor::cli("test")).unwrap();
        assert_eq!(report.accepted, chunk.len());
    }
    let created = h
        .post("/v1/segments", Role::Operator, json!({"name": "Hangzhou", "definition": {"profile": "city", "op": "eq", "value": "杭州"}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!((created.body["version"].as_i64(), created.body["members"].as_i64()), (Some(1), Some(1250)));
    let id = created.body["id"].as_i64().unwrap();

    // Preview: a count and a sample, masked for an analyst.
    let preview = h
        .post("/v1/segments/preview", Role::Analyst, json!({"definition": {"profile": "city", "op": "eq", "value": "上海"}, "limit": 3}))
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.body["count"], 1250);
    let sample = preview.body["sample"].as_array().unwrap();
    assert_eq!(sample.len(), 3);
    let phone = sample[0]["identities"][0]["value"].as_str().unwrap();
    assert!(phone.contains('*'), "masked for an analyst: {phone}");

    // Members, page by page with the cursor: every member once, in id order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = h.get(&format!("/v1/segments/{id}/members?limit=1000&count=true&cursor={cursor}"), Role::Owner).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(page.body["count"], 1250);
        let items = page.body["items"].as_array().unwrap();
        seen.extend(items.iter().map(|c| c["id"].as_i64().unwrap()));
        assert!(!items[0]["identities"][0]["value"].as_str().unwrap().contains('*'), "owners hold pii:read");
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1250);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let analyst = h.get(&format!("/v1/segments/{id}/members?limit=1"), Role::Analyst).await;
    assert!(analyst.body["items"][0]["identities"][0]["value"].as_str().unwrap().contains('*'));

    // A new definition is a new version; the first stays readable at its time.
    let before = h.clock.now();
    h.clock.advance(chrono::Duration::minutes(1));
    let updated = h
        .call(
            Method::PUT,
            &format!("/v1/segments/{id}"),
            Some(h.key(Role::Operator)),
            Some(json!({"name": "Hangzhou", "definition": {"profile": "city", "op": "in", "value": ["杭州", "上海"]}})),
        )
        .await;
    assert_eq!((updated.body["version"].as_i64(), updated.body["members"].as_i64()), (Some(2), Some(2500)), "{}", updated.body);
    let then = h.get(&format!("/v1/segments/{id}?at={}", before.to_rfc3339().replace('+', "%2B")), Role::Analyst).await;
    assert_eq!(then.body["definition"]["value"], "杭州", "{}", then.body);
    let versions = h.get(&format!("/v1/segments/{id}/versions"), Role::Analyst).await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 2);
    let entered = h.store.events_after(h.shop_a, 0, 100_000).unwrap().into_iter().filter(|e| e.kind == "segment.entered").count();
    assert_eq!(entered, 1250, "the redefinition brought Shanghai in, with events");

    // Snapshots, and another shop's key sees nothing.
    let snap = h.post(&format!("/v1/segments/{id}/snapshots"), Role::Operator, json!(null)).await;
    assert_eq!((snap.status, snap.body["size"].as_i64()), (StatusCode::CREATED, Some(2500)), "{}", snap.body);
    let foreign = h.call(Method::GET, &format!("/v1/segments/{id}/members"), Some(&h.foreign), None).await;
    foreign.assert_problem(404, "not-found");
    let counts = h.get(&format!("/v1/segments/{id}/counts"), Role::Analyst).await;
    assert_eq!(counts.body["items"].as_array().unwrap().last().unwrap()["members"], 2500, "{}", counts.body);
}

#[tokio::test]
async fn exports_need_the_scope_stream_every_row_and_are_audited() {
    let h = Harness::new().await;
    let events: Vec<Value> = (0..2100)
        .map(|i| {
            json!({"id": format!("u{i}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": format!("1370000{i:04}")}],
                         "profile": {"name": if i == 7 { "=HYPERLINK(\"x\")".to_owned() } else { format!("Buyer {i}") }, "city": "杭州"}})
        })
        .collect();
    for chunk in events.chunks(1000) {
        h.store.ingest(h.shop_a, chunk.to_vec(), &Actor::cli("test")).unwrap();
    }
    let created = h
        .post("/v1/segments", Role::Owner, json!({"name": "Hangzhou", "definition": {"profile": "city", "op": "eq", "value": "杭州"}}))
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let export = |key: String, columns: &'static str| {
        let uri = format!("/v1/segments/{id}/export{columns}");
        let h = &h;
        async move { h.call(Method::GET, &uri, Some(&key), None).await }
    };

    // Whoever lacks the scope is told which one.
    for role in [Role::Operator, Role::Analyst, Role::App] {
        let refused = export(h.key(role).to_owned(), "").await;
        refused.assert_problem(403, "forbidden");
        assert!(refused.body["detail"].as_str().unwrap().contains("`segments:export`"), "{}", refused.body);
    }
    // An exporter without pii:read may not choose personal columns.
    let exporter = h
        .store
        .create_key(
            &NewKey {
                shop_id: Some(h.shop_a),
                name: "bi".into(),
                role: Role::Analyst,
                scopes: Some(vec![Scope::CustomersRead, Scope::SegmentsExport]),
            },
            &Actor::cli("test"),
        )
        .unwrap()
        .token;
    let refused = export(exporter.clone(), "?columns=id,phone").await;
    refused.assert_problem(403, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("export policy"), "{}", refused.body);
    // Only the owner opens the export policy to personal columns; pii:read is still needed.
    let policy = json!({"personal_columns": true});
    let key = h.key(Role::Operator).to_owned();
    h.call(Method::PUT, "/v1/shop/settings/export", Some(&key), Some(policy.clone())).await.assert_problem(403, "forbidden");
    let key = h.key(Role::Owner).to_owned();
    let put = h.call(Method::PUT, "/v1/shop/settings/export", Some(&key), Some(policy.clone())).await;
    assert_eq!((put.status, &put.body), (StatusCode::OK, &policy));
    let refused = export(exporter.clone(), "?columns=id,phone").await;
    refused.assert_problem(403, "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("`pii:read`"), "{}", refused.body);
    let unknown = export(exporter.clone(), "?columns=id,password").await;
    unknown.assert_problem(400, "invalid-request");
    assert_eq!(unknown.body["field"], "columns");

    // The default columns: every member, once, past the export's page size.
    let csv = export(exporter, "").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(csv.headers["content-disposition"], format!("attachment; filename=\"segment-{id}-v1.csv\""));
    let text = csv.body.as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,gender,province,city,tier,points,total_spent,order_count,last_order_at");
    assert_eq!(lines.len(), 2101);
    let ids: Vec<i64> = lines[1..].iter().map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "each member once, in id order");

    // The owner may export personal data; formulas are defused.
    let csv = export(h.key(Role::Owner).to_owned(), "?columns=id,name,phone").await;
    let text = csv.body.as_str().unwrap();
    assert!(text.contains(",+8613700000000\n") || text.contains(",+8613700000000\r\n"), "phones unmasked");
    assert!(text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "a formula in a name is exported as text");

    let audit = h.store.list_audit(h.shop_a, None, 50).unwrap();
    let exported: Vec<&Value> = audit.iter().filter(|e| e.action == "segment.exported").map(|e| &e.detail).collect();
    assert_eq!(exported.len(), 2, "{exported:?}");
    assert_eq!(exported[0]["rows"], 2100);
    assert_eq!(exported[0]["version"], 1);
    assert_eq!(exported[0]["columns"], json!(["id", "name", "phone"]));
    assert_eq!(exported[0]["complete"], true);
    assert_eq!(audit.iter().filter(|e| e.action == "segment.export_started").count(), 2);
}

#[tokio::test]
async fn the_dashboard_figures_match_the_shop() {
    let h = Harness::new().await;
    let cli = Actor::cli("test");
    // Customer 1 (phone 13812345678) ordered T1 on 05-01 (harness); T2 on 06-10. X ordered T3 on
    // 06-15, refunded in part on 06-20. Y never ordered.
    let report = h
        .store
        .ingest(
            h.shop_a,
            vec![
                json!({"id": "t2", "type": "order.paid", "identities": [{"kind": "phone", "value": "13812345678"}],
                       "order": {"id": "T2", "amount": 5000, "paid_at": "2026-06-10T02:00:00Z"}}),
                json!({"id": "t3", "type": "order.paid", "identities": [{"kind": "phone", "value": "13900000001"}],
                       "order": {"id": "T3", "amount": 20000, "paid_at": "2026-06-15T02:00:00Z"}}),
                json!({"id": "r3", "type": "order.refunded", "refund": {"order_id": "T3", "amount": 5000, "refunded_at": "2026-06-20T02:00:00Z"}}),
                json!({"id": "y", "type": "customer.upsert", "identities": [{"kind": "phone", "value": "13900000002"}]}),
            ],
            &cli,
        )
        .unwrap();
    assert_eq!(report.accepted, 4, "{report:?}");
    // Customers are created now (by the wall clock): the range runs to today.
    let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
    let today = Utc::now().with_timezone(&shanghai).date_naive();
    let end = shanghai.from_local_datetime(&today.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap()).unwrap().with_timezone(&Utc);
    // X's last order is `active` days old at the end of the range; customer 1's five days more.
    let x_age = (end - Utc.with_ymd_and_hms(2026, 6, 15, 2, 0, 0).unwrap()).num_days() + 1;
    let uri = format!("/v1/metrics/overview?from=2026-06-01&to={today}&active_days={x_age}&churn_days={}", x_age + 30);
    let reply = h.get(&uri, Role::Analyst).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let o = &reply.body;
    assert_eq!(
        o["customers"],
        json!({"total": 3, "new": 2, "buyers": 2, "new_buyers": 1, "active": 1, "sleeping": 1, "churned": 0, "never_bought": 1,
               "repurchase_rate": 0.0, "active_days": x_age, "churn_days": x_age + 30}),
        "customer 1 was first seen at their order of 05-01, whenever it arrived"
    );
    // A range before any of it arrived (issue 25: customers were counted from their arrival, so
    // history showed GMV without buyers): customer 1 alone, as the data says.
    let may = h.get("/v1/metrics/overview?from=2026-05-01&to=2026-05-31&active_days=90&churn_days=180", Role::Analyst).await;
    assert_eq!(may.status, StatusCode::OK, "{}", may.body);
    assert_eq!(
        may.body["customers"],
        json!({"total": 1, "new": 1, "buyers": 1, "new_buyers": 1, "active": 1, "sleeping": 0, "churned": 0, "never_bought": 0,
               "repurchase_rate": 0.0, "active_days": 90, "churn_days": 180})
    );
    assert_eq!((may.body["sales"]["gmv"].as_i64(), may.body["sales"]["orders"].as_i64()), (Some(9900), Some(1)));
    assert_eq!(
        o["sales"],
        json!({"gmv": 25000, "orders": 2, "aov": 12500, "refunds": 5000, "net": 20000,
               "new_customer_revenue": 20000, "returning_customer_revenue": 5000})
    );
    assert_eq!(o["points"], json!({"issued": 100, "redeemed": 0, "expired": 0, "clawed_back": 0, "outstanding": 100, "debt": 0}));
    assert_eq!(o["coupons"], json!({"issued": 1, "redeemed": 0, "cost": 0}));
    assert_eq!(o["messages"], json!([{"channel": "sms", "sent": 0, "delivered": 0, "failed": 0, "suppressed": 0, "pending": 1}]));
    assert_eq!(o["aipl"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect::<Vec<_>>(), ["A", "I", "P", "L"]);
    assert_eq!((o["time_zone"].as_str(), o["currency"].as_str()), (Some("Asia/Shanghai"), Some("CNY")));

    let bad = h.get("/v1/metrics/overview?from=2026-07-01&to=2026-06-01", Role::Analyst).await;
    bad.assert_problem(400, "invalid-request");
    assert_eq!(bad.body["field"], "from");
    let bad = h.get("/v1/metrics/overview?active_days=100&churn_days=50", Role::Analyst).await;
    assert_eq!(bad.body["field"], "churn_days");

    // Cohorts: customer 1 first ordered in May and again in June; X first in June.
    let reply = h.get("/v1/metrics/cohorts?from=2026-05&to=2026-06", Role::Analyst).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cohorts = reply.body["cohorts"].as_array().unwrap();
    let row = |i: usize| -> Vec<(i64, f64)> {
        cohorts[i]["months"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|m| (m["customers"].as_i64().unwrap(), m["rate"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!((cohorts[0]["month"].as_str(), cohorts[0]["customers"].as_i64()), (Some("2026-05"), Some(1)));
    assert_eq!(row(0), vec![(1, 1.0), (1, 1.0), (0, 0.0)]);
    assert_eq!((cohorts[1]["month"].as_str(), cohorts[1]["customers"].as_i64()), (Some("2026-06"), Some(1)));
    assert_eq!(row(1)[..2], [(1, 1.0), (0, 0.0)]);
    let bad = h.get("/v1/metrics/cohorts?from=2026-5", Role::Analyst).await;
    assert_eq!(bad.body["field"], "from");
}

/// Write scores of `model` in shop A as a delivery of a scoring plugin `ranker` writes them.
fn write_scores(h: &Harness, model: &str, scores: &[(i64, f64, Option<&str>)]) {
    use kith_domain::plugin::{Decision, Grant, Manifest};
    let cli = Actor::cli("test");
    let manifest = Manifest::parse(
        "id = \"ranker\"\nversion = \"1.0.0\"\nkind = \"scoring-model\"\napi-version = \"0.2.0\"\ndescription = \"Scores for tests\"\nvendor = \"Kith tests\"\ncapabilities = [\"customers:read\", \"scores:write\"]\n",
    )
    .unwrap();
    h.store.install_plugin(&manifest, b"\0asm", "ranker-api-test", &cli).unwrap();
    let grant = Grant::all_requested(&manifest);
    let put = kith_core::plugins::PutSubscription {
        plugin_id: "ranker",
        version_req: "1.0.0",
        version: "1.0.0",
        config: &json!({}),
        grant: &grant,
        run_every_hours: None,
        channel: None,
    };
    h.store.put_subscription(h.shop_a, &put, &cli).unwrap();
    let decisions: Vec<Decision> = scores
        .iter()
        .map(|(customer_id, value, label)| Decision::SetScore {
            customer_id: *customer_id,
            model: model.into(),
            value: *value,
            label: label.map(str::to_owned),
            explanation: "test".into(),
        })
        .collect();
    let attempt = kith_core::delivery::Attempt {
        shop_id: h.shop_a,
        plugin_id: "ranker",
        logs: &[],
        duration: std::time::Duration::ZERO,
        now: Utc::now(),
    };
    let cursor = h.store.subscription(h.shop_a, "ranker").unwrap().cursor;
    h.store
        .commit_delivery(&attempt, cursor, cursor, &kith_core::delivery::Effects { decisions: &decisions, kv_writes: &[], chain: None })
        .unwrap();
}

#[tokio::test]
async fn a_score_models_distribution_and_ranks_over_the_shop() {
    let h = Harness::new().await;
    let cli = Actor::cli("test");
    let events: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("r{i}"), "type": "customer.upsert", "identities": [{"kind": "email", "value": format!("r{i}@example.com")}]}))
        .collect();
    let report = h.store.ingest(h.shop_a, events, &cli).unwrap();
    let ids: Vec<i64> = report.outcomes.iter().map(|o| o.customer_id.unwrap()).collect();
    // Ten customers: values 100, 200 … 1000 (minor units); the two lowest low, the rest high.
    let scores: Vec<(i64, f64, Option<&str>)> =
        ids.iter().enumerate().map(|(i, id)| (*id, (i as f64 + 1.0) * 100.0, Some(if i < 2 { "low" } else { "high|高|High" }))).collect();
    write_scores(&h, "ranker.clv", &scores);

    let reply = h.get("/v1/metrics/scores/ranker.clv", Role::Analyst).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let d = &reply.body;
    assert_eq!((d["model"].as_str(), d["customers"].as_i64(), d["sum"].as_f64()), (Some("ranker.clv"), Some(10), Some(5500.0)));
    assert_eq!((d["mean"].as_f64(), d["min"].as_f64(), d["max"].as_f64()), (Some(550.0), Some(100.0), Some(1000.0)));
    let quantiles: Vec<(u64, f64)> =
        d["quantiles"].as_array().unwrap().iter().map(|q| (q["p"].as_u64().unwrap(), q["value"].as_f64().unwrap())).collect();
    assert_eq!(quantiles, (1..=9).map(|k| (k * 10, k as f64 * 100.0)).collect::<Vec<_>>());
    let buckets: Vec<i64> = d["histogram"].as_array().unwrap().iter().map(|b| b["customers"].as_i64().unwrap()).collect();
    assert_eq!(buckets, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert_eq!(
        d["labels"],
        json!([{"code": "high", "label": "high|高|High", "customers": 8}, {"code": "low", "label": "low", "customers": 2}])
    );

    // Tenant-scoped: shop B holds no such scores, nor does any model nobody wrote.
    let foreign = h.call(Method::GET, "/v1/metrics/scores/ranker.clv", Some(&h.foreign.clone()), None).await;
    assert_eq!((foreign.status, foreign.body["customers"].as_i64(), foreign.body["sum"].as_f64()), (StatusCode::OK, Some(0), Some(0.0)));
    let unknown = h.get("/v1/metrics/scores/predict.clv", Role::Analyst).await;
    assert_eq!((unknown.body["customers"].as_i64(), unknown.body["quantiles"].clone()), (Some(0), json!([])));
    for bad in ["Predict.clv", "predict.clv%E2%80%8B", &"x".repeat(129)] {
        let reply = h.get(&format!("/v1/metrics/scores/{bad}"), Role::Analyst).await;
        reply.assert_problem(400, "invalid-request");
        assert_eq!(reply.body["field"], "model", "{bad}");
    }

    // The top 20 % of ten is the two highest; the bottom 30 % the three lowest; with a label.
    let preview = |definition: Value| {
        let h = &h;
        async move {
            let reply = h.post("/v1/segments/preview", Role::Analyst, json!({"definition": definition, "limit": 100})).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            let mut got: Vec<i64> = reply.body["sample"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
            got.sort_unstable();
            (reply.body["count"].as_i64().unwrap(), got)
        }
    };
    assert_eq!(preview(json!({"score": "ranker.clv", "top_percent": 20})).await, (2, ids[8..].to_vec()));
    assert_eq!(preview(json!({"score": "ranker.clv", "bottom_percent": 30})).await, (3, ids[..3].to_vec()));
    assert_eq!(
        preview(json!({"and": [{"score": "ranker.clv", "label": "high"}, {"score": "ranker.clv", "bottom_percent": 30}]})).await,
        (1, vec![ids[2]])
    );
}
