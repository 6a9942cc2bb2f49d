//! The first-party `predict` plugin through the bus with its real component: a
//! shop with a year of generated purchases is fitted (minimums lowered to keep
//! the shop small), its report is shown in the plugin's status, and every buyer
//! gets the five scores (four for a one-time buyer: no churn risk) computed from the stored fit and their own summary
//! (P(alive) and the expected wait recomputed here from the paper's formulas);
//! customers who never bought get none. A second shop with too little history is refused, with the
//! reasons in words, and gets no scores.

mod support;

use chrono::Duration;
use kith_bus::{Clock, EnableRequest, Package};
use kith_core::prelude::*;
use kith_domain::model::{Customer, NewShop};
use kith_test_plugins as plugins;
use serde_json::{Value, json};
use support::{World, actor, world};

/// A small deterministic generator (64-bit LCG, the high bits), so the shop is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `buyers` customers who first bought up to `oldest_days` ago, then bought again after
/// exponential gaps (mean 15 to 75 days) until they left (a chance of 5 to 65 % after
/// each purchase, their own) or the present came, each order around their own typical
/// amount (CNY 20 to 200); and `browsers` customers who never bought.
fn history(w: &World, shop: i64, prefix: &str, buyers: usize, browsers: usize, oldest_days: f64, seed: u64) {
    let mut rng = Lcg(seed);
    let now = w.clock.now();
    let mut events = Vec::new();
    for i in 0..buyers {
        let phone = format!("{prefix}{i:04}");
        let mean_gap = 15.0 + rng.next() * 60.0;
        let leaves = 0.05 + 0.6 * rng.next() * rng.next();
        let spends = 2_000.0 + 18_000.0 * rng.next() * rng.next();
        let mut ago = 1.0 + rng.next() * (oldest_days - 1.0);
        let mut o = 0;
        while ago > 0.0 {
            let id = format!("{phone}-o{o}");
            let amount = (spends * (0.5 + rng.next())) as i64;
            let at = now - Duration::milliseconds((ago * 86_400_000.0) as i64);
            events.push(json!({"id": id, "type": "order.paid", "identities": [{"kind": "phone", "value": phone}],
                "order": {"id": id, "paid_at": at.to_rfc3339(), "amount": amount}}));
            o += 1;
            if rng.next() < leaves {
                break;
            }
            ago -= 1.0 - (1.0 - rng.next()).ln() * mean_gap;
        }
    }
    for i in 0..browsers {
        events.push(json!({"id": format!("{prefix}-b{i}"), "type": "customer.upsert",
            "identities": [{"kind": "phone", "value": format!("{prefix}9{i:03}")}], "profile": {"name": "看看"}}));
    }
    let report = w.store.ingest_at(shop, events, &actor(), now).unwrap();
    assert_eq!(report.rejected, 0, "{report:?}");
}

fn enable(w: &World, shop: i64, config: Value) {
    let package = Package::from_tar_gz(&plugins::PREDICT.tar_gz()).unwrap();
    w.bus.install(&package, &actor()).unwrap();
    w.bus.enable(shop, "predict", &EnableRequest { config: Some(config), ..Default::default() }, &actor()).unwrap();
}

fn customers(w: &World, shop: i64) -> Vec<Customer> {
    w.store.list_customers(shop, &Default::default(), 0, 1000).unwrap()
}

fn kv(w: &World, shop: i64, key: &str) -> Option<Value> {
    w.store.plugin_kv_get(shop, "predict", key).unwrap().map(|v| serde_json::from_slice(&v).unwrap())
}

const MODELS: [&str; 5] = ["predict.churn_risk", "predict.expected_purchases", "predict.next_order_days", "predict.aov", "predict.clv"];

#[test]
fn a_shop_with_enough_history_is_fitted_and_every_buyer_scored() {
    let w = world();
    enable(
        &w,
        w.shop,
        json!({"min_buyers": 100, "min_repeat_buyers": 30, "min_history_days": 180, "churn_medium": 0.4, "churn_high": 0.8}),
    );
    history(&w, w.shop, "1380000", 160, 5, 400.0, 7);
    w.bus.drain().unwrap();

    // The report the merchant reads in the plugin's status.
    let status = w.bus.status(w.shop, "predict").unwrap();
    assert_eq!((status.calls.failures, status.lag), (0, 0), "{:?}", status.calls.last_errors);
    let report = status.report.expect("the plugin reports about itself");
    assert_eq!(report["state"], "fitted", "{report}");
    assert_eq!(report["buyers"], 160);
    assert_eq!(report["sample"], 160);
    assert_eq!(report["fitted_at"], w.clock.now().format("%Y-%m-%d").to_string());
    let repeat = report["repeat_buyers"].as_u64().unwrap();
    assert!((30..160).contains(&repeat), "{report}");
    assert!(report["history_days"].as_u64().unwrap() >= 180, "{report}");
    for p in ["r", "alpha", "a", "b", "log_likelihood"] {
        assert!(report["bg_nbd"][p].as_f64().is_some_and(f64::is_finite), "{p}: {report}");
    }
    assert_eq!(report["bg_nbd"]["converged"], true);
    assert_eq!(report["gamma_gamma"]["repeat_buyers"], repeat, "{report}");
    assert!(report["gamma_gamma"]["mean_order_value_text"].as_str().unwrap().starts_with("CNY "), "{report}");
    assert!(status.logs.iter().any(|l| l.message.starts_with("fitted on ")), "{:?}", status.logs);

    // Every buyer's scores, against the stored fit and the buyer's own summary: P(alive) by
    // Fader, Hardie & Lee's eq. 11 and the expected wait (α + T) / (r + x), computed here.
    let fit = kv(&w, w.shop, "fit").unwrap();
    let [r, alpha, a, b] = ["r", "alpha", "a", "b"].map(|p| fit["bg_nbd"][p].as_f64().unwrap());
    let summaries = w.store.buyer_summaries(w.shop, None, 1000, w.clock.now()).unwrap();
    assert_eq!(summaries.len(), 160);
    let all = customers(&w, w.shop);
    assert_eq!(all.len(), 165);
    let mut bands = std::collections::BTreeSet::new();
    for c in &all {
        let scores: Vec<_> = c.scores.iter().filter(|s| s.model.starts_with("predict.")).collect();
        let Some(s) = summaries.iter().find(|s| s.customer_id == c.id) else {
            assert!(scores.is_empty(), "a customer who never bought is not predicted: {scores:?}");
            continue;
        };
        let mut models: Vec<&str> = scores.iter().map(|s| s.model.as_str()).collect();
        models.sort();
        // A one-time buyer has no churn risk: BG/NBD cannot tell whether they left.
        let mut expected: Vec<&str> = MODELS.iter().copied().filter(|m| s.purchase_days > 1 || *m != "predict.churn_risk").collect();
        expected.sort();
        assert_eq!(models, expected, "customer {}", c.id);
        let get = |m: &str| scores.iter().find(|s| s.model == m).unwrap();
        let x = f64::from(s.purchase_days - 1);
        let (t_x, t) = (if x > 0.0 { f64::from(s.span_days) } else { 0.0 }, f64::from(s.age_days));
        let wait = get("predict.next_order_days");
        assert!((wait.value - (alpha + t) / (r + x)).abs() < 1e-9, "{wait:?}");
        let purchases = get("predict.expected_purchases");
        assert!(
            purchases.value >= 0.0 && purchases.explanation.as_deref().unwrap().ends_with(" expected in the next 90 days"),
            "{purchases:?}"
        );
        let aov = get("predict.aov");
        assert!(aov.value > 0.0 && aov.explanation.as_deref().unwrap().starts_with("CNY "), "{aov:?}");
        let clv = get("predict.clv");
        assert!(clv.value >= 0.0 && clv.explanation.as_deref().unwrap().contains(" over 12 months: "), "{clv:?}");
        if x == 0.0 {
            continue;
        }
        let alive = 1.0 / (1.0 + a / (b + x - 1.0) * ((alpha + t) / (alpha + t_x)).powf(r + x));
        let churn = get("predict.churn_risk");
        let risk = 1.0 - alive;
        assert!((churn.value - risk).abs() < 1e-9, "customer {}: {} against {risk}", c.id, churn.value);
        let band = if risk >= 0.8 {
            "high"
        } else if risk >= 0.4 {
            "medium"
        } else {
            "low"
        };
        assert_eq!(churn.label.as_deref(), Some(band));
        bands.insert(band);
        let text = churn.explanation.as_deref().unwrap();
        let orders = if s.order_count == 1 { "1 order".to_owned() } else { format!("{} orders", s.order_count) };
        assert!(text.starts_with(&orders), "{text}");
        assert!(text.ends_with(" likely to be lost"), "{text}");
    }
    assert!(bands.len() >= 2, "the generated shop spreads over the bands: {bands:?}");

    // A week on, the daily run refits.
    let fitted_at = |w: &World| kv(w, w.shop, "fit").unwrap()["at"].as_i64().unwrap();
    let first = fitted_at(&w);
    w.later(Duration::days(3));
    assert_eq!(fitted_at(&w), first, "three days on the fit is kept");
    w.later(Duration::days(5));
    assert!(fitted_at(&w) > first, "eight days on the run refitted");
    assert_eq!(w.bus.status(w.shop, "predict").unwrap().report.unwrap()["state"], "fitted");
}

#[test]
fn a_shop_with_too_little_history_is_refused_in_words_and_not_scored() {
    let w = world();
    let small = w
        .store
        .create_shop(
            &NewShop { name: "B".into(), time_zone: "Asia/Shanghai".into(), currency: "CNY".into(), region: "CN".into() },
            &actor(),
        )
        .unwrap()
        .id;
    enable(&w, small, json!({}));
    history(&w, small, "1390000", 100, 2, 175.0, 11);
    w.bus.drain().unwrap();
    w.bus.start_run(small, "predict", &actor()).unwrap();
    w.bus.drain().unwrap();

    let status = w.bus.status(small, "predict").unwrap();
    assert_eq!(status.calls.failures, 0, "{:?}", status.calls.last_errors);
    let report = status.report.expect("the plugin reports the refusal");
    assert_eq!(report["state"], "refused", "{report}");
    assert_eq!(report["buyers"], 100);
    let reasons: Vec<&str> = report["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(reasons[0], "too few buyers: 100, at least 500 are needed");
    assert!(reasons[1].starts_with("too few repeat buyers: ") && reasons[1].ends_with("at least 100 are needed"), "{reasons:?}");
    assert!(reasons[2].starts_with("too short a history: ") && reasons[2].ends_with("at least 180 are needed"), "{reasons:?}");
    assert_eq!(report["minimum"], json!({"buyers": 500, "repeat_buyers": 100, "history_days": 180}));
    assert!(customers(&w, small).iter().all(|c| c.scores.iter().all(|s| !s.model.starts_with("predict."))));
    // The other shop has no report of this plugin: it is not enabled there.
    assert!(w.bus.status(w.shop, "predict").is_err());

    // Lowering the minimums is a new configuration: fitted at once, scores follow.
    let config = json!({"min_buyers": 50, "min_repeat_buyers": 10, "min_history_days": 100});
    w.bus.enable(small, "predict", &EnableRequest { config: Some(config), ..Default::default() }, &actor()).unwrap();
    w.bus.start_run(small, "predict", &actor()).unwrap();
    w.bus.drain().unwrap();
    let report = w.bus.status(small, "predict").unwrap().report.unwrap();
    assert_eq!(report["state"], "fitted", "{report}");
    let scored = customers(&w, small).iter().filter(|c| c.scores.iter().any(|s| s.model == "predict.expected_purchases")).count();
    assert_eq!(scored, 100);

    // Raised again, the fit is refused: the next run writes no prediction, and the ones the
    // earlier run wrote are removed with it, so no segment or journey goes on reading them.
    w.clock.advance(chrono::Duration::minutes(1));
    let config = json!({"min_buyers": 500});
    w.bus.enable(small, "predict", &EnableRequest { config: Some(config), ..Default::default() }, &actor()).unwrap();
    w.bus.start_run(small, "predict", &actor()).unwrap();
    w.bus.drain().unwrap();
    assert_eq!(w.bus.status(small, "predict").unwrap().report.unwrap()["state"], "refused");
    assert!(customers(&w, small).iter().all(|c| c.scores.iter().all(|s| !s.model.starts_with("predict."))));
}

#[test]
fn out_of_range_configuration_is_refused_naming_the_field() {
    let w = world();
    let package = Package::from_tar_gz(&plugins::PREDICT.tar_gz()).unwrap();
    w.bus.install(&package, &actor()).unwrap();
    for (config, field) in
        [(json!({"margin": 1.5}), "config.margin"), (json!({"refit_days": 0}), "config.refit_days"), (json!({"horizon": 90}), "config")]
    {
        let err =
            w.bus.enable(w.shop, "predict", &EnableRequest { config: Some(config.clone()), ..Default::default() }, &actor()).unwrap_err();
        assert!(format!("{err:?}").contains(field), "{config}: {err:?}");
    }
}
