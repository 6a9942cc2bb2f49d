//! Churn risk and CLV end to end: a real `kith serve` on the test clock with the
//! first-party `predict` plugin (its minimum data lowered so that a small generated
//! shop fits) and the SMS connector pointed at the provider stand-in. A merchant
//! imports a year of history, sets up a segment on high churn risk, one on the top
//! 20 % by predicted CLV and a win-back journey on entering the first, then enables
//! predict: its run scores every buyer, both segments hold exactly the customers
//! their definitions name (checked against the scores read back), the dashboard's
//! distribution agrees, and the win-back SMS reaches exactly the customers at risk.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::http::Http;
use crate::{Server, bearers, get_json, install, post_json, setup};

/// A small deterministic generator (64-bit LCG, the high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `buyers` customers who first bought up to 400 days before `now` and again after
/// exponential gaps (mean 15 to 75 days) until they left (5 to 65 % after each purchase)
/// or `now` came; and 20 customers who never bought.
fn history(now: DateTime<Utc>, buyers: usize) -> Vec<Value> {
    let mut rng = Lcg(30);
    let mut events = Vec::new();
    for i in 0..buyers {
        let phone = format!("1390001{i:04}");
        let mean_gap = 15.0 + rng.next() * 60.0;
        let leaves = 0.05 + 0.6 * rng.next() * rng.next();
        let spends = 2_000.0 + 18_000.0 * rng.next() * rng.next();
        let mut ago = 1.0 + rng.next() * 399.0;
        let mut o = 0;
        while ago > 0.0 {
            let id = format!("{phone}-o{o}");
            let at = now - chrono::Duration::milliseconds((ago * 86_400_000.0) as i64);
            events.push(json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
                "order": {"id": id, "paid_at": at.to_rfc3339(), "amount": (spends * (0.5 + rng.next())) as i64}}));
            o += 1;
            if rng.next() < leaves {
                break;
            }
            ago -= 1.0 - (1.0 - rng.next()).ln() * mean_gap;
        }
    }
    for i in 0..20 {
        events.push(json!({"id": format!("b{i}"), "type": "customer.upsert",
            "identities": [{"kind": "phone", "value": format!("1390002{i:04}")}], "profile": {"name": "看看"}}));
    }
    events
}

/// Poll `url` until `done` holds (the bus works in the background on its own passes).
async fn until(http: &reqwest::Client, url: &str, auth: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let value = get_json(http, url, auth).await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not come: {value}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last 11 digits of a phone, as the identity and the provider may write it differently.
fn mobile(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    digits[digits.len().saturating_sub(11)..].to_owned()
}

#[tokio::test]
async fn churn_risk_and_clv_segments_drive_a_win_back_journey() {
    const BUYERS: usize = 160;
    let dir = tempfile::tempdir().unwrap();
    let (db, _shop, owner) = setup(dir.path());
    let (admin, owner) = bearers(dir.path(), db.to_str().unwrap(), &owner);
    let http = reqwest::Client::new();
    let provider = kith_provider::Provider::start().unwrap();
    // Runs score 40 customers a batch: the top 20 % moves with each batch after the first, which
    // the customers scored in it cannot tell the others (the sweep re-evaluates the rank whole).
    let server = Server::start_with(dir.path(), &db, "[testing]\nclock = true\n[plugins]\nbatch_size = 40\n");
    let url = |path: &str| format!("{}{path}", server.url);
    let now: DateTime<Utc> = get_json(&http, &url("/v1/admin/clock"), &admin).await["now"].as_str().unwrap().parse().unwrap();

    install(&http, &server, &admin, &kith_test_plugins::PREDICT).await;
    install(&http, &server, &admin, &kith_test_plugins::SMS_HTTP).await;
    let sms = http
        .put(url("/v1/shop/plugins/sms-http"))
        .header("authorization", &owner)
        .json(&json!({"config": {"endpoint": provider.url("/sms"), "api_key": "k", "sign_name": "【Kith】"},
            "grant": {"capabilities": ["log", "config", "http"], "allowed_hosts": [provider.host()]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sms.status(), 201, "{}", sms.text().await.unwrap());

    // A year of history, imported before anything predicts.
    for chunk in history(now, BUYERS).chunks(1000) {
        let report = post_json(&http, &url("/v1/events"), &owner, &json!({"events": chunk})).await;
        assert_eq!(report["rejected"], 0, "{report}");
    }

    // The merchant's segments and the win-back journey, before the first scores.
    let at_risk = post_json(
        &http,
        &url("/v1/segments"),
        &owner,
        &json!({"name": "At risk",
        "definition": {"score": "predict.churn_risk", "label": "high"}}),
    )
    .await;
    let at_risk = at_risk["id"].as_i64().unwrap_or_else(|| panic!("{at_risk}"));
    let top = post_json(
        &http,
        &url("/v1/segments"),
        &owner,
        &json!({"name": "Top 20 % by CLV",
        "definition": {"score": "predict.clv", "top_percent": 20}}),
    )
    .await;
    let top = top["id"].as_i64().unwrap_or_else(|| panic!("{top}"));
    let journey = post_json(
        &http,
        &url("/v1/journeys"),
        &owner,
        &json!({"name": "Win back", "definition": {
        "trigger": {"segment": at_risk}, "start": "win-back",
        "steps": {"win-back": {"send": {"channel": "sms", "template": "WIN_BACK"}}}}}),
    )
    .await;
    let journey = journey["id"].as_i64().unwrap_or_else(|| panic!("{journey}"));
    let active = post_json(&http, &url(&format!("/v1/journeys/{journey}/activate")), &owner, &json!({})).await;
    assert_eq!(active["status"], "active", "{active}");

    // Enable predict with the minimum data lowered for a small shop; its schedule starts a run.
    let config = json!({"config": {"min_buyers": 50, "min_repeat_buyers": 10, "min_history_days": 90}});
    let enabled = http.put(url("/v1/shop/plugins/predict")).header("authorization", &owner).json(&config).send().await.unwrap();
    assert_eq!(enabled.status(), 201, "{}", enabled.text().await.unwrap());
    let status = until(&http, &url("/v1/shop/plugins/predict"), &owner, "a finished run", |s| {
        s["runs"].as_array().is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["status"] == "done")) && s["lag"] == 0
    })
    .await;
    assert_eq!(status["report"]["state"], "fitted", "{}", status["report"]);

    // The scores as the profile shows them: every buyer holds a CLV, nobody else; a churn risk
    // every buyer who bought on more than one day (BG/NBD cannot tell whether a one-time buyer left).
    let customers = Http::new(http.clone(), "").all(&owner, &url("/v1/customers?limit=200")).await;
    let score = |c: &Value, model: &str| c["scores"].as_array().unwrap().iter().find(|s| s["model"] == model).cloned();
    let phone_of: BTreeMap<i64, String> =
        customers.iter().map(|c| (c["id"].as_i64().unwrap(), mobile(c["identities"][0]["value"].as_str().unwrap_or_default()))).collect();
    let scored: Vec<&Value> = customers.iter().filter(|c| score(c, "predict.clv").is_some()).collect();
    assert_eq!(scored.len(), BUYERS, "every buyer is scored, nobody else");
    let repeat: Vec<&Value> = customers.iter().filter(|c| c["stats"]["order_count"].as_i64().unwrap_or(0) > 1).collect();
    let at_risk_scored: Vec<&Value> = customers.iter().filter(|c| score(c, "predict.churn_risk").is_some()).collect();
    assert_eq!(at_risk_scored.len(), repeat.len(), "a churn risk for each repeat buyer");
    let high: BTreeSet<i64> = at_risk_scored
        .iter()
        .filter(|c| score(c, "predict.churn_risk").unwrap()["label"].as_str().is_some_and(|l| l == "high" || l.starts_with("high|")))
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(!high.is_empty() && high.len() < BUYERS, "some customers, not all, are at high risk: {}", high.len());
    // The top 20 % by CLV, read plainly: at least the ⌈n·20/100⌉-th highest value.
    let clv: BTreeMap<i64, f64> =
        scored.iter().map(|c| (c["id"].as_i64().unwrap(), score(c, "predict.clv").unwrap()["value"].as_f64().unwrap())).collect();
    let mut values: Vec<f64> = clv.values().copied().collect();
    values.sort_by(|a, b| b.total_cmp(a));
    let threshold = values[(values.len() * 20).div_ceil(100) - 1];
    let best: BTreeSet<i64> = clv.iter().filter(|(_, v)| **v >= threshold).map(|(id, _)| *id).collect();

    // A rank is swept whole at most once a minute while a run writes scores: a minute passes.
    let moved = post_json(&http, &url("/v1/admin/clock"), &admin, &json!({"advance_seconds": 90})).await;
    assert_eq!(moved["test"], true, "{moved}");

    // Both segments hold exactly those, evaluated now and as tracked for events.
    for (segment, want) in [(at_risk, &high), (top, &best)] {
        let members: BTreeSet<i64> = Http::new(http.clone(), "")
            .all(&owner, &url(&format!("/v1/segments/{segment}/members?limit=200")))
            .await
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(&members, want, "segment {segment}");
        until(&http, &url(&format!("/v1/segments/{segment}")), &owner, "tracked members", |s| s["members"] == want.len()).await;
    }

    // Some moved in or out of the top 20 % on others' scores, as later batches came (reason `ranking`).
    let mut ranked = 0;
    let mut after = 0;
    loop {
        let page = get_json(&http, &url(&format!("/v1/events?after={after}&limit=1000")), &owner).await;
        let items = page["items"].as_array().unwrap();
        ranked += items
            .iter()
            .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("segment.")) && e["payload"]["segment_id"] == top)
            .filter(|e| e["payload"]["reason"] == "ranking")
            .count();
        after = page["next_after"].as_i64().unwrap();
        if items.len() < 1000 {
            break;
        }
    }
    assert!(ranked > 0, "the rank was re-evaluated whole as batches came");

    // The dashboard's distribution of churn risk agrees with the profiles.
    let risk = get_json(&http, &url("/v1/metrics/scores/predict.churn_risk"), &owner).await;
    assert_eq!(risk["customers"], repeat.len(), "{risk}");
    let high_count =
        risk["labels"].as_array().unwrap().iter().find(|l| l["code"] == "high").map_or(0, |l| l["customers"].as_u64().unwrap());
    assert_eq!(high_count as usize, high.len(), "{risk}");
    let value = get_json(&http, &url("/v1/metrics/scores/predict.clv"), &owner).await;
    assert!((value["sum"].as_f64().unwrap() - clv.values().sum::<f64>()).abs() < 1e-6 * value["sum"].as_f64().unwrap().abs().max(1.0));

    // The win-back message went to exactly the customers at risk, once each.
    let stats = until(&http, &url(&format!("/v1/journeys/{journey}/stats")), &owner, "the win-back messages", |s| {
        s["entered"] == high.len() && s["messages"]["sent"] == high.len()
    })
    .await;
    assert_eq!(stats["completed"], high.len(), "{stats}");
    let sent: Vec<String> = provider
        .received()
        .into_iter()
        .filter(|r| r.path == "/sms" && r.json()["template_code"] == "WIN_BACK")
        .map(|r| mobile(r.json()["phone"].as_str().unwrap()))
        .collect();
    let want: BTreeSet<String> = high.iter().map(|id| phone_of[id].clone()).collect();
    assert_eq!(sent.len(), high.len(), "one message each");
    assert_eq!(sent.into_iter().collect::<BTreeSet<_>>(), want);
}
