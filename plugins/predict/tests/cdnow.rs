//! The plugin's own fit path on the CDNOW sample (2,357 customers, calibration
//! to 1997-09-30), converted to the buyer summaries the kernel hands it: days
//! as the unit and money in cents, as a shop's minor units. Fader, Hardie &
//! Lee publish the fit in weeks and dollars: α here is 7 times theirs, γ 100
//! times; r, a, b, p and q do not depend on the units.
//!
//! The data is `CDNOW_sample.txt` from the `lifetimes` wheel, which `cargo
//! xtask test` fetches into `target/datasets/` and passes in `KITH_CDNOW_SAMPLE`;
//! the test fails without it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use kith_sdk::BuyerSummary;
use predict::{Config, SAMPLE_LIMIT, fit, report};

const ENV: &str = "KITH_CDNOW_SAMPLE";

/// (customer, date, dollars) of each line: customer id, sample id, yyyymmdd, CDs, dollars.
fn cdnow() -> Vec<(u32, NaiveDate, f64)> {
    let path = std::env::var(ENV).unwrap_or_else(|_| {
        panic!(
            "{ENV} is not set: run `cargo xtask test`, which fetches the CDNOW sample, or point it at CDNOW_sample.txt of lifetimes==0.11.3"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{ENV}={path} cannot be read ({e})"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 5, "a CDNOW line has five fields: {line:?}");
            (f[1].parse().unwrap(), NaiveDate::parse_from_str(f[2], "%Y%m%d").unwrap(), f[4].parse().unwrap())
        })
        .collect()
}

/// What `summaries.buyers` would answer on `end`: per customer, by id, orders up to `end`.
fn summaries(lines: &[(u32, NaiveDate, f64)], end: NaiveDate) -> Vec<BuyerSummary> {
    let mut days: BTreeMap<u32, BTreeMap<NaiveDate, (u32, i64)>> = BTreeMap::new();
    for &(customer, date, dollars) in lines.iter().filter(|l| l.1 <= end) {
        let day = days.entry(customer).or_default().entry(date).or_default();
        day.0 += 1;
        day.1 += (dollars * 100.0).round() as i64;
    }
    let ms = |d: NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis();
    days.into_iter()
        .map(|(customer, days)| {
            let (&first, _) = days.first_key_value().unwrap();
            let (&last, _) = days.last_key_value().unwrap();
            BuyerSummary {
                customer_id: i64::from(customer),
                first_order_at: ms(first),
                last_order_at: ms(last),
                purchase_days: days.len() as u32,
                order_count: days.values().map(|d| d.0).sum(),
                total_spent: days.values().map(|d| d.1).sum(),
                repeat_spent: days.values().skip(1).map(|d| d.1).sum(),
                span_days: (last - first).num_days() as u32,
                age_days: (end - first).num_days() as u32,
            }
        })
        .collect()
}

fn within(name: &str, got: f64, published: f64) {
    assert!((got - published).abs() <= 0.01 * published.abs(), "{name}: fitted {got}, published {published} (tolerance 1 %)");
}

#[test]
fn the_plugins_fit_reproduces_the_published_parameters() {
    let end = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
    let buyers = summaries(&cdnow(), end);
    assert_eq!(buyers.len(), 2357);
    assert!(buyers.len() < SAMPLE_LIMIT, "all of them are fitted on");
    let now = end.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis();
    let config = Config::default();
    let started = std::time::Instant::now();
    let state = fit(&buyers, &config, now);
    eprintln!("fit in {:?}: {state:?}", started.elapsed());
    assert_eq!(state.reasons, Vec::<String>::new());
    let bg = state.bg_nbd.expect("fitted");
    within("r", bg.r, 0.243);
    within("alpha (weeks)", bg.alpha / 7.0, 4.414);
    within("a", bg.a, 0.793);
    within("b", bg.b, 2.426);
    let gg = state.gamma_gamma.expect("order values fitted");
    assert_eq!(gg.buyers, 946, "the 946 repeat buyers");
    within("p", gg.p, 6.25);
    within("q", gg.q, 3.74);
    within("gamma (dollars)", gg.gamma / 100.0, 15.44);
    assert_eq!((state.counts.buyers, state.counts.repeat_buyers, state.counts.sample), (2357, 946, 2357));
    // The paper's ln L = −9582.4 is in weeks; in days each customer's density gains ln(1/7) per purchase day
    // counted as a rate (x·ln 7 less): the likelihood of the same fit differs by that constant.
    let repeat_days: u32 = buyers.iter().map(|b| b.purchase_days - 1).sum();
    within("log-likelihood (weeks)", bg.log_likelihood + f64::from(repeat_days) * 7f64.ln(), -9582.4);

    let shown = report(&state, &config, "USD");
    assert_eq!(shown["state"], "fitted");
    assert_eq!(shown["buyers"], 2357);
    assert_eq!(shown["fitted_at"], "1997-09-30");
    assert_eq!(shown["gamma_gamma"]["repeat_buyers"], 946);
}
