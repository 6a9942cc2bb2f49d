use super::*;

/// A buyer who bought on `days` distinct days (one order each, CNY 50.00 a day), the first
/// `age` days ago and the last `since_last` days ago.
fn buyer(id: i64, days: u32, age: u32, since_last: u32) -> BuyerSummary {
    let span = if days > 1 { age - since_last } else { 0 };
    BuyerSummary {
        customer_id: id,
        first_order_at: 0,
        last_order_at: 0,
        purchase_days: days,
        order_count: days,
        total_spent: 5000 * i64::from(days),
        repeat_spent: 5000 * i64::from(days - 1),
        span_days: span,
        age_days: age,
    }
}

/// The paper's fit (weeks, dollars) in days and fen.
fn paper_state() -> FitState {
    FitState {
        config: Config::default().fingerprint(),
        at: 0,
        counts: Counts { buyers: 2357, repeat_buyers: 946, history_days: 272, sample: 2357 },
        context_buyers: 2357,
        bg_nbd: Some(BgNbdFit {
            r: 0.243,
            alpha: 4.414 * 7.0,
            a: 0.793,
            b: 2.426,
            log_likelihood: -9582.4,
            converged: true,
            iterations: 1,
        }),
        gamma_gamma: Some(GammaGammaFit {
            p: 6.25,
            q: 3.74,
            gamma: 1544.0,
            log_likelihood: -4000.0,
            converged: true,
            iterations: 1,
            buyers: 946,
        }),
        reasons: Vec::new(),
    }
}

fn scores(decisions: &[Decision]) -> Vec<(String, f64, Option<String>, String)> {
    decisions
        .iter()
        .map(|d| match d {
            Decision::SetScore(s) => (s.model.clone(), s.value, s.label.clone(), s.explanation.clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_shop_below_the_minimum_is_refused_with_every_reason_in_words() {
    // 312 buyers, 40 of them repeat buyers, the oldest first purchase 90 days ago.
    let buyers: Vec<BuyerSummary> = (1..=312).map(|i| if i <= 40 { buyer(i, 3, 90, 10) } else { buyer(i, 1, 30, 30) }).collect();
    let config = Config::default();
    let state = fit(&buyers, &config, 0);
    assert_eq!(state.bg_nbd, None);
    assert_eq!(
        state.reasons,
        [
            "too few buyers: 312, at least 500 are needed",
            "too few repeat buyers: 40 bought more than once, at least 100 are needed",
            "too short a history: 90 days since the first purchase, at least 180 are needed",
        ]
    );
    let shown = report(&state, &config, "CNY");
    assert_eq!(shown["state"], "refused");
    assert_eq!(shown["buyers"], 312);
    assert_eq!(shown["repeat_buyers"], 40);
    assert_eq!(shown["checked_at"], "1970-01-01");
    assert!(shown["summary"].as_str().unwrap().starts_with("not fitted: too few buyers: 312, at least 500 are needed; "));
    // No fit, no scores.
    assert!(score(&buyers[0], &state, &config, "CNY").unwrap().is_empty());
    // Lowered minimums the shop meets: fitted.
    let lowered = Config { min_buyers: 300, min_repeat_buyers: 40, min_history_days: 90, ..config };
    assert!(fit(&buyers, &lowered, 0).reasons.iter().all(|r| !r.starts_with("too")));
}

#[test]
fn a_shop_without_a_single_repeat_buyer_is_refused_even_with_no_minimum_on_them() {
    let buyers: Vec<BuyerSummary> = (1..=50).map(|i| buyer(i, 1, 200, 200)).collect();
    let config = Config { min_buyers: 10, min_repeat_buyers: 1, min_history_days: 0, ..Config::default() };
    let state = fit(&buyers, &config, 0);
    assert_eq!(state.reasons, ["too few repeat buyers: 0 bought more than once, at least 1 are needed"]);
}

#[test]
fn churn_bands_start_at_their_thresholds() {
    let config = Config::default();
    let bands: Vec<&str> = [0.0, 0.29, 0.3, 0.69, 0.7, 1.0].iter().map(|&r| band(r, &config)).collect();
    assert_eq!(bands, ["low", "low", "medium", "medium", "high", "high"]);
    let narrow = Config { churn_medium: 0.5, churn_high: 0.5, ..config };
    assert_eq!(band(0.49, &narrow), "low");
    assert_eq!(band(0.5, &narrow), "high", "equal thresholds leave no medium band");
}

#[test]
fn percentages_never_read_as_certain_when_they_are_not() {
    assert_eq!([0.0, 0.004, 0.78, 0.996, 1.0].map(percent), ["0 %", "under 1 %", "78 %", "over 99 %", "100 %"]);
}

#[test]
fn each_score_explains_itself_in_words() {
    let state = paper_state();
    let config = Config::default();
    // Hardie's worked example in days: x = 2, tₓ = 30.43 weeks ≈ 213 days, T = 38.86 weeks ≈ 272 days.
    let b = BuyerSummary { order_count: 4, ..buyer(7, 3, 272, 59) };
    let got = scores(&score(&b, &state, &config, "CNY").unwrap());
    let models: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(models, ["predict.churn_risk", "predict.expected_purchases", "predict.next_order_days", "predict.aov", "predict.clv"]);
    let model = state.bg_nbd.unwrap().model();
    let h = History { x: 2, t_x: 213.0, t: 272.0 };
    let risk = 1.0 - model.p_alive(&h).unwrap();
    assert!((got[0].1 - risk).abs() < 1e-12);
    assert_eq!(got[0].2.as_deref(), Some(band(risk, &config)));
    assert_eq!(got[0].3, "4 orders on 3 days, last 59 days ago, usually every 106.5 days: 27 % likely to be lost");
    let expected = model.conditional_expected_purchases(&h, 90.0).unwrap();
    assert!((got[1].1 - expected).abs() < 1e-12);
    assert_eq!(got[1].3, format!("{} purchases expected in the next 90 days", explain::number(expected)));
    // (α + T) / (r + x) = (30.898 + 272) / 2.243 = 135.04 days.
    assert!((got[2].1 - 135.04).abs() < 0.01, "{}", got[2].1);
    assert!(
        got[2].3.starts_with("if still a customer, the next order in about 135 days (3 purchase days in 272 days so far); "),
        "{}",
        got[2].3
    );
    // Gamma-Gamma: (1 − w)·pγ/(q − 1) + w·m, w = px / (px + q − 1), m = CNY 50.00.
    let (p, q, gamma) = (6.25, 3.74, 1544.0);
    let w = p * 2.0 / (p * 2.0 + q - 1.0);
    let aov = (1.0 - w) * p * gamma / (q - 1.0) + w * 5000.0;
    assert!((got[3].1 - aov).abs() < 1e-9);
    assert_eq!(
        got[3].3,
        format!(
            "{} per order expected: CNY 50.00 average over 2 repeat purchases, drawn towards the shop's {}",
            explain::money(aov, "CNY"),
            explain::money(p * gamma / (q - 1.0), "CNY")
        )
    );
    let clv = btyd::clv(&model, &h, aov, TimeUnit::Days, &ClvSettings { months: 12, monthly_discount_rate: 0.01, margin: 1.0 }).unwrap();
    assert!((got[4].1 - clv).abs() < 1e-9);
    assert!(got[4].3.starts_with(&format!("{} over 12 months: ", explain::money(clv, "CNY"))), "{}", got[4].3);
    assert!(got[4].3.ends_with(&format!("expected at {}, discounted 1 % a month", explain::money(aov, "CNY"))), "{}", got[4].3);
}

#[test]
fn a_one_time_buyer_has_no_churn_risk_and_the_shops_mean_order_value() {
    let state = paper_state();
    let config = Config { margin: 0.3, ..Config::default() };
    let got = scores(&score(&buyer(9, 1, 41, 41), &state, &config, "JPY").unwrap());
    let models: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(models, ["predict.expected_purchases", "predict.next_order_days", "predict.aov", "predict.clv"]);
    assert!(got[1].3.starts_with("if still a customer, the next order in about "), "{}", got[1].3);
    assert!(got[1].3.ends_with(" days (1 purchase day in 41 days so far)"), "{}", got[1].3);
    assert_eq!(got[2].3, "JPY 3522 per order expected: no repeat purchase to go on, the shop's mean");
    assert!(got[3].3.contains(" at a 30 % margin, "), "{}", got[3].3);
    // The longer ago the one purchase, the fewer purchases expected.
    let later = scores(&score(&buyer(9, 1, 400, 400), &state, &config, "JPY").unwrap());
    assert!(later[0].1 < got[0].1);
    // Bought today: no days ago.
    let got = scores(&score(&buyer(9, 2, 41, 0), &state, &config, "CNY").unwrap());
    assert!(got[0].3.starts_with("2 orders, last today, usually every 41 days: "), "{}", got[0].3);
    let got = scores(&score(&buyer(9, 2, 41, 40), &state, &config, "CNY").unwrap());
    assert!(got[0].3.starts_with("2 orders, last 40 days ago, usually every day: "), "{}", got[0].3);
}

#[test]
fn without_a_gamma_gamma_fit_there_is_no_order_value_and_no_clv() {
    let state = FitState { gamma_gamma: None, ..paper_state() };
    let got = scores(&score(&buyer(1, 2, 100, 10), &state, &Config::default(), "CNY").unwrap());
    assert_eq!(got.len(), 3, "churn risk, expected purchases, next order");
}

#[test]
fn churn_risk_rises_with_the_time_since_the_last_purchase() {
    let state = paper_state();
    let risks: Vec<f64> = [10, 50, 150, 250]
        .iter()
        .map(|&since| scores(&score(&buyer(1, 4, 300, since), &state, &Config::default(), "CNY").unwrap())[0].1)
        .collect();
    assert!(risks.windows(2).all(|w| w[0] < w[1]), "{risks:?}");
}

#[test]
fn the_configuration_is_checked_and_named_by_field() {
    assert_eq!(Config::parse("{}").unwrap(), Config::default());
    let d = Config::default();
    assert_eq!((d.refit_days, d.min_buyers, d.min_repeat_buyers, d.min_history_days), (7, 500, 100, 180));
    assert_eq!((d.horizon_days, d.clv_months, d.margin, d.monthly_discount, d.churn_medium, d.churn_high), (90, 12, 1.0, 0.01, 0.3, 0.7));
    let err = |json: &str| match Config::parse(json).unwrap_err() {
        Error::Invalid(text) => text,
        other => panic!("{other:?}"),
    };
    assert!(err(r#"{"margin": 1.5}"#).starts_with("config.margin: 1.5 is not between 0 and 1"));
    assert!(err(r#"{"refit_days": 0}"#).starts_with("config.refit_days:"));
    assert!(err(r#"{"churn_medium": 0.8}"#).starts_with("config.churn_high: 0.7 is below churn_medium 0.8"));
    assert!(err(r#"{"window": 3}"#).contains("unknown field `window`"));
    assert!(err(r#"{"horizon_days": "90"}"#).contains("invalid type"));
}

#[test]
fn the_manifest_schema_bounds_every_field_of_the_configuration() {
    let manifest = include_str!("../plugin.toml");
    let fields: Vec<String> = serde_json::to_value(Config::default()).unwrap().as_object().unwrap().keys().cloned().collect();
    let declared: Vec<&str> = manifest.lines().filter_map(|l| l.strip_prefix("properties.")).collect();
    assert_eq!(declared.len(), fields.len(), "one schema property per field: {declared:?}");
    for field in &fields {
        let line = declared.iter().find(|l| l.starts_with(&format!("{field} "))).unwrap_or_else(|| panic!("{field} is not in the schema"));
        assert!(line.contains("minimum =") && line.contains("maximum ="), "{field} is bounded: {line}");
    }
    assert!(manifest.contains("additionalProperties = false"));
}

#[test]
fn a_fit_is_kept_until_it_is_old_or_the_configuration_changes() {
    let config = Config::default();
    let fitted = FitState { at: 0, ..paper_state() };
    assert!(needs_fit(None, &config, 0, 10));
    assert!(!needs_fit(Some(&fitted), &config, 7 * DAY_MS - 1, 10));
    assert!(needs_fit(Some(&fitted), &config, 7 * DAY_MS, 10), "a week old");
    assert!(needs_fit(Some(&fitted), &Config { horizon_days: 30, ..config.clone() }, 1, 10), "another configuration");
    // A refusal is looked at again when the buyers change, and daily.
    // The live count read while fitting (12) may be ahead of the kernel's cached context (10):
    // the refusal is compared with the context, or every call in that minute would refit.
    let refused = FitState {
        bg_nbd: None,
        counts: Counts { buyers: 12, repeat_buyers: 0, history_days: 0, sample: 0 },
        context_buyers: 10,
        ..fitted
    };
    assert!(!needs_fit(Some(&refused), &config, DAY_MS - 1, 10));
    assert!(needs_fit(Some(&refused), &config, 1, 11));
    assert!(needs_fit(Some(&refused), &config, DAY_MS, 10));
}

#[test]
fn a_large_shop_is_counted_whole_and_sampled_by_a_stride_over_ids() {
    assert_eq!([0, 20_000, 20_001, 50_001].map(stride), [1, 1, 2, 3]);
    let mut reading = Reading::new(50_001);
    for id in 0..50_001 {
        reading.add(buyer(id, if id % 2 == 0 { 2 } else { 1 }, 200 + (id % 7) as u32, 5));
    }
    assert_eq!((reading.buyers, reading.repeat_buyers, reading.history_days), (50_001, 25_001, 206));
    assert_eq!(reading.sample.len(), 16_667, "every third buyer");
    assert_eq!(reading.sample[..3].iter().map(|b| b.customer_id).collect::<Vec<_>>(), [0, 3, 6]);
    // The kernel's count may lag: more buyers than it said are still all counted, the sample a little larger.
    let mut lagging = Reading::new(20_000);
    (0..20_010).for_each(|id| lagging.add(buyer(id, 1, 1, 1)));
    assert_eq!((lagging.buyers, lagging.sample.len()), (20_010, 20_010));
    // The minimum is checked over all of them (refused here before any fit).
    let state = fit_reading(&reading, &Config { min_buyers: 60_000, ..Config::default() }, 0);
    assert_eq!(state.reasons, ["too few buyers: 50001, at least 60000 are needed"]);
    assert_eq!((state.counts.buyers, state.counts.repeat_buyers, state.counts.history_days), (50_001, 25_001, 206));
}

#[test]
fn dates_are_civil_days() {
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(1_795_996_800_000), "2026-11-30");
    assert_eq!(date(951_782_400_000), "2000-02-29");
}

/// The shop's buyers, answered as `summaries.buyers` does, counting calls.
fn shop(ids: &[i64]) -> impl FnMut(Option<i64>, u32) -> Result<Vec<BuyerSummary>, Error> + '_ {
    move |after, limit| {
        Ok(ids.iter().filter(|&&id| id > after.unwrap_or(i64::MIN)).take(limit as usize).map(|&id| buyer(id, 1, 1, 1)).collect())
    }
}

#[test]
fn own_summaries_read_a_dense_batch_in_one_page_and_a_scattered_one_per_customer() {
    let buyers: Vec<i64> = (1..=5000).map(|i| i * 2).collect();
    let calls = std::cell::Cell::new(0);
    let counted = |after, limit| {
        calls.set(calls.get() + 1);
        shop(&buyers)(after, limit)
    };
    // A run's batch: consecutive buyers (ids of other shops in between), and a customer who is not a buyer.
    let batch: Vec<i64> = (100..600).map(|i| i * 2).chain([1001]).collect();
    let got = own_summaries(&batch, counted).unwrap();
    assert_eq!(got.len(), 500);
    assert_eq!(calls.get(), 1);
    // Events of customers spread over the shop: one wasted page, then one call each.
    calls.set(0);
    let scattered: Vec<i64> = (1..=40).map(|i| i * 250).collect();
    let got = own_summaries(&scattered, counted).unwrap();
    assert_eq!(got.iter().map(|b| b.customer_id).collect::<Vec<_>>(), scattered);
    assert_eq!(calls.get(), 40);
}

#[test]
fn a_fit_that_runs_off_to_an_extreme_is_not_used() {
    // The paper's shapes, and the demo's 60-customer shop, whose a and b ran off to millions.
    assert!(identified(&[0.243, 0.793, 2.426], 30.9));
    assert!(!identified(&[0.2476, 6_111_323.6, 5_333_934.7], 16.8));
    assert!(!identified(&[777_289.8, 2.71], 0.138));
    assert!(!identified(&[1.0, 1.0], f64::INFINITY));
    // Every buyer alike: one purchase a month for a year, none gone. The BG/NBD likelihood has no
    // interior maximum; the refusal says so rather than scoring.
    let buyers: Vec<BuyerSummary> = (1..=200).map(|i| buyer(i, 12, 365, 30)).collect();
    let config = Config { min_buyers: 100, min_repeat_buyers: 50, min_history_days: 180, ..Config::default() };
    let state = fit(&buyers, &config, 0);
    assert_eq!(state.bg_nbd, None, "{state:?}");
    assert!(state.reasons[0].starts_with("the BG/NBD fit "), "{:?}", state.reasons);
}
