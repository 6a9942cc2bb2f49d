//! Churn risk and customer lifetime value: BG/NBD and Gamma-Gamma (the `btyd`
//! crate) fitted per shop over its buyer summaries, and five scores per buyer.
//! The definitions are in this plugin's README; the logic here is plain Rust
//! that the unit tests call natively, the component glue is at the end.

use btyd::{BgNbd, ClvSettings, GammaGamma, History, MinimumData, Shortfall, TimeUnit};
use kith_sdk::{BuyerSummary, Customer, Decision, Error, ScoringModel, ShopContext};
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

/// Buyers the models are fitted on at most: above it, every k-th buyer by id
/// with k = ⌈buyers / SAMPLE_LIMIT⌉ (see the README for the timings behind it).
pub const SAMPLE_LIMIT: usize = 20_000;

/// kv key of the fit the scores are computed from (and of a refusal).
pub const FIT_KEY: &str = "fit";
/// kv key of the report to the merchant, shown by `GET /v1/shop/plugins/predict`.
pub const STATUS_KEY: &str = "status";

/// The shop's configuration; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub refit_days: u32,
    pub min_buyers: u32,
    pub min_repeat_buyers: u32,
    pub min_history_days: u32,
    pub horizon_days: u32,
    pub clv_months: u32,
    pub margin: f64,
    pub monthly_discount: f64,
    pub churn_medium: f64,
    pub churn_high: f64,
}

impl Default for Config {
    fn default() -> Self {
        let min = MinimumData::default();
        Config {
            refit_days: 7,
            min_buyers: min.buyers as u32,
            min_repeat_buyers: min.repeat_buyers as u32,
            min_history_days: min.history_days as u32,
            horizon_days: 90,
            clv_months: 12,
            margin: 1.0,
            monthly_discount: 0.01,
            churn_medium: 0.3,
            churn_high: 0.7,
        }
    }
}

impl Config {
    /// Parses a configuration and checks what the schema cannot say; the error names the field.
    pub fn parse(json: &str) -> Result<Config, Error> {
        let config: Config = serde_json::from_str(json).map_err(|e| Error::Invalid(format!("configuration: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The bounds of the manifest's schema again (a plugin may be handed any
    /// JSON natively), and the bands' order.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &str, why: String| Err(Error::Invalid(format!("config.{field}: {why}")));
        for (field, value, min, max) in [
            ("refit_days", self.refit_days, 1, 365),
            ("min_buyers", self.min_buyers, 1, 1_000_000),
            ("min_repeat_buyers", self.min_repeat_buyers, 1, 1_000_000),
            ("min_history_days", self.min_history_days, 0, 3650),
            ("horizon_days", self.horizon_days, 1, 3650),
            ("clv_months", self.clv_months, 1, 120),
        ] {
            if !(min..=max).contains(&value) {
                return bad(field, format!("{value} is not between {min} and {max}"));
            }
        }
        for (field, value) in [
            ("margin", self.margin),
            ("monthly_discount", self.monthly_discount),
            ("churn_medium", self.churn_medium),
            ("churn_high", self.churn_high),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return bad(field, format!("{value} is not between 0 and 1"));
            }
        }
        if self.churn_high < self.churn_medium {
            return bad("churn_high", format!("{} is below churn_medium {}", self.churn_high, self.churn_medium));
        }
        Ok(())
    }

    fn minimum(&self) -> MinimumData {
        MinimumData {
            buyers: self.min_buyers as usize,
            repeat_buyers: self.min_repeat_buyers as usize,
            history_days: f64::from(self.min_history_days),
        }
    }

    /// What a stored fit remembers of the configuration: any change refits.
    pub fn fingerprint(&self) -> String {
        serde_json::to_string(self).expect("a config serialises")
    }
}

/// What BG/NBD reads of a buyer, in days: x = purchase days − 1, tₓ = the span
/// from the first purchase day to the last, T = the first purchase day's age.
/// The fit and each customer's scores both go through here.
pub fn history(b: &BuyerSummary) -> History {
    let x = b.purchase_days.saturating_sub(1);
    let t = f64::from(b.age_days);
    // A summary is consistent by construction; clamp rather than refuse a day's rounding.
    let t_x = if x == 0 { 0.0 } else { f64::from(b.span_days).min(t) };
    History { x, t_x, t }
}

/// The mean value of a buyer's repeat purchases in minor units; `None` without
/// repeats or when it is not positive (repeat orders refunded to nothing),
/// which Gamma-Gamma cannot read.
pub fn repeat_value(b: &BuyerSummary) -> Option<f64> {
    let x = b.purchase_days.saturating_sub(1);
    (x > 0 && b.repeat_spent > 0).then(|| b.repeat_spent as f64 / f64::from(x))
}

/// The shop's buyers, counted over all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub buyers: u64,
    pub repeat_buyers: u64,
    /// Days since the earliest first purchase.
    pub history_days: u32,
    /// Buyers the models were fitted on (all of them up to [`SAMPLE_LIMIT`]).
    pub sample: u64,
}

/// BG/NBD as fitted, in days.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    pub log_likelihood: f64,
    pub converged: bool,
    pub iterations: u64,
}

impl BgNbdFit {
    pub fn model(&self) -> BgNbd {
        BgNbd { r: self.r, alpha: self.alpha, a: self.a, b: self.b }
    }
}

/// Gamma-Gamma as fitted, in minor units of the shop's currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
    pub log_likelihood: f64,
    pub converged: bool,
    pub iterations: u64,
    /// Repeat buyers of the sample it was fitted on.
    pub buyers: u64,
}

impl GammaGammaFit {
    pub fn model(&self) -> GammaGamma {
        GammaGamma { p: self.p, q: self.q, gamma: self.gamma }
    }
}

/// The outcome of a fit, kept in kv under [`FIT_KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitState {
    /// [`Config::fingerprint`] of the configuration it was made with.
    pub config: String,
    /// When (the kernel's clock, ms).
    pub at: i64,
    pub counts: Counts,
    /// `None`: refused, for `reasons`.
    pub bg_nbd: Option<BgNbdFit>,
    /// `None` with a fitted BG/NBD: the order values could not be fitted (in `reasons`),
    /// so no expected order value and no CLV.
    pub gamma_gamma: Option<GammaGammaFit>,
    /// Why there is no fit, or no Gamma-Gamma fit, in words.
    pub reasons: Vec<String>,
    /// The shop context's buyer count when fitted: what a refusal is compared with later. The
    /// context is cached by the kernel for up to a minute, so the live count of the reading
    /// may differ from it, and comparing with that would refit on every call meanwhile.
    #[serde(default)]
    pub context_buyers: u64,
}

/// Whether the models are fitted again before scoring: no fit yet, another
/// configuration, a fit `refit_days` old; a refusal is checked again daily and
/// whenever the shop's buyer count moved.
pub fn needs_fit(state: Option<&FitState>, config: &Config, now: i64, buyer_count: u64) -> bool {
    let Some(s) = state else { return true };
    let age = now.saturating_sub(s.at);
    s.config != config.fingerprint()
        || age >= i64::from(config.refit_days) * DAY_MS
        || age < 0
        || (s.bg_nbd.is_none() && (age >= DAY_MS || s.context_buyers != buyer_count))
}

/// The stride of the sample over `buyers` buyers: 1 (all of them) up to
/// [`SAMPLE_LIMIT`], else ⌈buyers / SAMPLE_LIMIT⌉.
pub fn stride(buyers: u64) -> u64 {
    buyers.div_ceil(SAMPLE_LIMIT as u64).max(1)
}

/// The shop's buyers read once, in id order: counted over all of them, and every
/// `stride`-th kept for the fit, so a shop of any size holds at most about
/// [`SAMPLE_LIMIT`] summaries in memory.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub stride: u64,
    pub buyers: u64,
    pub repeat_buyers: u64,
    pub history_days: u32,
    pub sample: Vec<BuyerSummary>,
}

impl Reading {
    /// A reading whose stride is set from the shop's buyer count as the kernel
    /// last counted it (the shop context's `buyer-count`).
    pub fn new(expected_buyers: u64) -> Reading {
        Reading { stride: stride(expected_buyers), ..Reading::default() }
    }

    pub fn add(&mut self, b: BuyerSummary) {
        if self.buyers.is_multiple_of(self.stride) {
            self.sample.push(b);
        }
        self.buyers += 1;
        self.repeat_buyers += u64::from(b.purchase_days > 1);
        self.history_days = self.history_days.max(b.age_days);
    }
}

/// Fits BG/NBD and Gamma-Gamma over the shop's buyers (in id order), or says
/// why not: the minimum data is checked over all buyers, the models are fitted
/// on every k-th buyer ([`stride`]).
pub fn fit(buyers: &[BuyerSummary], config: &Config, now: i64) -> FitState {
    let mut reading = Reading::new(buyers.len() as u64);
    buyers.iter().for_each(|&b| reading.add(b));
    fit_reading(&reading, config, now)
}

/// [`fit`] over a [`Reading`] of the shop.
pub fn fit_reading(reading: &Reading, config: &Config, now: i64) -> FitState {
    let counts = |sample: usize| Counts {
        buyers: reading.buyers,
        repeat_buyers: reading.repeat_buyers,
        history_days: reading.history_days,
        sample: sample as u64,
    };
    let refused = |reasons: Vec<String>, sample: usize| FitState {
        config: config.fingerprint(),
        at: now,
        counts: counts(sample),
        bg_nbd: None,
        gamma_gamma: None,
        reasons,
        context_buyers: 0,
    };
    let c = counts(0);
    let rules = config.minimum();
    let mut short = Vec::new();
    if (c.buyers as usize) < rules.buyers {
        short.push(Shortfall::TooFewBuyers { have: c.buyers as usize, need: rules.buyers });
    }
    if (c.repeat_buyers as usize) < rules.repeat_buyers {
        short.push(Shortfall::TooFewRepeatBuyers { have: c.repeat_buyers as usize, need: rules.repeat_buyers });
    }
    if f64::from(c.history_days) < rules.history_days {
        short.push(Shortfall::HistoryTooShort { have: f64::from(c.history_days), need: rules.history_days });
    }
    if !short.is_empty() {
        return refused(short.iter().map(ToString::to_string).collect(), 0);
    }
    let chosen = &reading.sample;
    let sampled: Vec<History> = chosen.iter().map(history).collect();
    let bg = match BgNbd::fit(&sampled) {
        Ok(f) if f.converged && !identified(&[f.params.r, f.params.a, f.params.b], f.params.alpha) => {
            return refused(
                vec![format!(
                    "the BG/NBD fit runs off to an extreme (r {:.4}, α {:.4}, a {:.4}, b {:.4}): the buyers' purchases are too alike to tell how they differ",
                    f.params.r, f.params.alpha, f.params.a, f.params.b
                )],
                chosen.len(),
            );
        }
        Ok(f) if f.converged => BgNbdFit {
            r: f.params.r,
            alpha: f.params.alpha,
            a: f.params.a,
            b: f.params.b,
            log_likelihood: f.log_likelihood,
            converged: true,
            iterations: f.iterations,
        },
        Ok(f) => {
            return refused(
                vec![format!(
                    "the BG/NBD fit did not converge (r {:.4}, α {:.4}, a {:.4}, b {:.4}): the purchases do not identify the model",
                    f.params.r, f.params.alpha, f.params.a, f.params.b
                )],
                chosen.len(),
            );
        }
        Err(e) => return refused(vec![format!("the BG/NBD fit failed: {e}")], chosen.len()),
    };
    let values: Vec<(u32, f64)> = chosen.iter().filter_map(|b| Some((history(b).x, repeat_value(b)?))).collect();
    let (gamma_gamma, reasons) = match GammaGamma::fit(&values) {
        Ok(f) if f.converged && !identified(&[f.params.p, f.params.q], f.params.gamma) => (
            None,
            vec![format!(
                "the Gamma-Gamma fit runs off to an extreme (p {:.4}, q {:.4}, γ {:.4}): the order values are too alike to tell how customers differ",
                f.params.p, f.params.q, f.params.gamma
            )],
        ),
        Ok(f) if f.converged && f.params.q > 1.0 => (
            Some(GammaGammaFit {
                p: f.params.p,
                q: f.params.q,
                gamma: f.params.gamma,
                log_likelihood: f.log_likelihood,
                converged: true,
                iterations: f.iterations,
                buyers: values.len() as u64,
            }),
            Vec::new(),
        ),
        Ok(f) if f.converged => (None, vec![format!("the Gamma-Gamma fit gives no finite mean order value (q {:.4} ≤ 1)", f.params.q)]),
        Ok(_) => (None, vec!["the Gamma-Gamma fit of the order values did not converge".to_owned()]),
        Err(e) => (None, vec![format!("the Gamma-Gamma fit failed: {e}")]),
    };
    // The fitted model must compute for the shop's most frequent and oldest buyers over the
    // longest horizon the scores use; a fit that cannot is no use to any of them.
    let model = bg.model();
    let horizon = f64::from(config.horizon_days).max(f64::from(config.clv_months) * TimeUnit::Days.per_month());
    let extremes = [sampled.iter().max_by_key(|h| h.x), sampled.iter().max_by(|a, b| a.t.total_cmp(&b.t))];
    for h in extremes.into_iter().flatten() {
        if let Err(e) = model.p_alive(h).and_then(|_| model.conditional_expected_purchases(h, horizon)) {
            return refused(vec![format!("the BG/NBD fit cannot predict the shop's extreme buyers: {e}")], chosen.len());
        }
    }
    FitState {
        config: config.fingerprint(),
        at: now,
        counts: counts(chosen.len()),
        bg_nbd: Some(bg),
        gamma_gamma,
        reasons,
        context_buyers: 0,
    }
}

/// Shape parameters of a fit that tell customers apart lie within 10⁻⁴ to 10⁴
/// (CDNOW's are 0.24 to 6.25); beyond, the likelihood is flat towards a limit
/// (every customer alike), the optimiser stops anywhere along it and the
/// formulas' series no longer converge. The scale (α in days, γ in minor
/// units) depends on the units, so it is only kept finite.
pub fn identified(shapes: &[f64], scale: f64) -> bool {
    shapes.iter().all(|s| (1e-4..=1e4).contains(s)) && scale.is_finite() && scale > 0.0 && scale < 1e12
}

/// `YYYY-MM-DD` (UTC) of a time in ms.
fn date(ms: i64) -> String {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm): no calendar crate in the component.
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The report to the merchant, kept under [`STATUS_KEY`]: `state` `fitted` or
/// `refused`, the counts, the parameters by name and the reasons in words.
pub fn report(state: &FitState, config: &Config, currency: &str) -> serde_json::Value {
    use serde_json::json;
    let Counts { buyers, repeat_buyers, history_days, sample } = state.counts;
    let minimum = json!({"buyers": config.min_buyers, "repeat_buyers": config.min_repeat_buyers, "history_days": config.min_history_days});
    let Some(bg) = state.bg_nbd else {
        return json!({
            "state": "refused",
            "summary": format!("not fitted: {}", state.reasons.join("; ")),
            "reasons": state.reasons,
            "checked_at": date(state.at),
            "buyers": buyers,
            "repeat_buyers": repeat_buyers,
            "history_days": history_days,
            "minimum": minimum,
        });
    };
    let gamma_gamma = state.gamma_gamma.map(|g| {
        let mean = g.model().population_mean();
        json!({
            "p": g.p, "q": g.q, "gamma": g.gamma,
            "log_likelihood": g.log_likelihood, "converged": g.converged,
            "repeat_buyers": g.buyers,
            "mean_order_value": mean,
            "mean_order_value_text": mean.map(|m| explain::money(m, currency)),
        })
    });
    let sampled =
        if sample < buyers { format!(", a sample of {sample} fitted (1 buyer in {} by id)", stride(buyers)) } else { String::new() };
    json!({
        "state": "fitted",
        "summary": format!("fitted on {date}: {buyers} buyers, {repeat_buyers} repeat buyers, {history_days} days of history{sampled}", date = date(state.at)),
        "fitted_at": date(state.at),
        "next_fit": date(state.at + i64::from(config.refit_days) * DAY_MS),
        "unit": "days",
        "buyers": buyers,
        "repeat_buyers": repeat_buyers,
        "history_days": history_days,
        "sample": sample,
        "bg_nbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "log_likelihood": bg.log_likelihood, "converged": bg.converged},
        "gamma_gamma": gamma_gamma,
        "reasons": state.reasons,
        "minimum": minimum,
    })
}

/// The churn band: `high` from `churn_high`, `medium` from `churn_medium`, `low` below.
pub fn band(risk: f64, config: &Config) -> &'static str {
    if risk >= config.churn_high {
        "high"
    } else if risk >= config.churn_medium {
        "medium"
    } else {
        "low"
    }
}

/// A probability as a whole percentage that never reads 0 % or 100 % when it is neither.
pub fn percent(p: f64) -> String {
    let pct = (p * 100.0).round();
    if p > 0.0 && pct < 1.0 {
        "under 1 %".into()
    } else if p < 1.0 && pct > 99.0 {
        "over 99 %".into()
    } else {
        format!("{pct:.0} %")
    }
}

fn plural(n: f64, one: &str, many: &str) -> String {
    if n == 1.0 { format!("1 {one}") } else { format!("{} {many}", explain::number(n)) }
}

/// The five scores of one buyer from the shop's fit: churn risk with its band,
/// expected purchases in the horizon, expected order value, CLV, days to the
/// next order; the last two and the order value only with a Gamma-Gamma fit.
pub fn score(buyer: &BuyerSummary, state: &FitState, config: &Config, currency: &str) -> Result<Vec<Decision>, btyd::Error> {
    let Some(bg) = state.bg_nbd else { return Ok(Vec::new()) };
    let model = bg.model();
    let h = history(buyer);
    let id = buyer.customer_id;
    let alive = model.p_alive(&h)?;
    let risk = (1.0 - alive).clamp(0.0, 1.0);
    let since_last = f64::from(buyer.age_days.saturating_sub(buyer.span_days));
    let mut orders = plural(f64::from(buyer.order_count), "order", "orders");
    if buyer.purchase_days != buyer.order_count {
        orders.push_str(&format!(" on {}", plural(f64::from(buyer.purchase_days), "day", "days")));
    }
    let ago = if since_last == 0.0 { "today".to_owned() } else { format!("{} ago", plural(since_last, "day", "days")) };
    let rhythm = if h.x == 0 { 0.0 } else { h.t_x / f64::from(h.x) };
    let every = match explain::days(rhythm) {
        one if one == "1" => "day".to_owned(),
        days => format!("{days} days"),
    };
    let churn = format!("{orders}, last {ago}, usually every {every}: {} likely to be lost", percent(risk));
    let horizon = f64::from(config.horizon_days);
    let expected = model.conditional_expected_purchases(&h, horizon)?;
    let wait = btyd::expected_wait(&model, &h)?;
    let still = if h.x == 0 { String::new() } else { format!("; {} likely still a customer", percent(alive)) };
    let mut decisions = Vec::new();
    // BG/NBD lets a customer leave only after a repeat purchase, so P(alive) is 1 for every
    // one-time buyer however long ago they bought: a churn risk of 0 would read as safe when
    // the model cannot tell. They get no churn risk; the other scores fall with their age.
    if h.x > 0 {
        decisions.push(Decision::set_score(id, "predict.churn_risk", risk, Some(band(risk, config)), &churn));
    }
    decisions.push(Decision::set_score(
        id,
        "predict.expected_purchases",
        expected,
        None,
        &format!("{} expected in the next {}", plural(expected, "purchase", "purchases"), plural(horizon, "day", "days")),
    ));
    decisions.push(Decision::set_score(
        id,
        "predict.next_order_days",
        wait,
        None,
        &format!(
            "if still a customer, the next order in about {} days ({} in {} so far){still}",
            explain::days(wait),
            plural(f64::from(h.x + 1), "purchase day", "purchase days"),
            plural(h.t, "day", "days"),
        ),
    ));
    if let Some(gg) = state.gamma_gamma {
        let spend = gg.model();
        let own = repeat_value(buyer);
        let value = spend.conditional_expected_value(h.x, own.filter(|_| h.x > 0))?;
        let mean = spend.population_mean().unwrap_or(value);
        let aov = match own {
            Some(m) => format!(
                "{} per order expected: {} average over {}, drawn towards the shop's {}",
                explain::money(value, currency),
                explain::money(m, currency),
                plural(f64::from(h.x), "repeat purchase", "repeat purchases"),
                explain::money(mean, currency)
            ),
            None => format!("{} per order expected: no repeat purchase to go on, the shop's mean", explain::money(value, currency)),
        };
        let settings = ClvSettings { months: config.clv_months, monthly_discount_rate: config.monthly_discount, margin: config.margin };
        let clv = btyd::clv(&model, &h, value, TimeUnit::Days, &settings)?;
        let purchases = model.conditional_expected_purchases(&h, f64::from(config.clv_months) * TimeUnit::Days.per_month())?;
        let margin = if config.margin == 1.0 { String::new() } else { format!(" at a {} margin", percent(config.margin)) };
        let clv_text = format!(
            "{} over {}: {} expected at {}{margin}, discounted {} a month",
            explain::money(clv, currency),
            plural(f64::from(config.clv_months), "month", "months"),
            plural(purchases, "purchase", "purchases"),
            explain::money(value, currency),
            format_rate(config.monthly_discount)
        );
        decisions.push(Decision::set_score(id, "predict.aov", value, None, &aov));
        decisions.push(Decision::set_score(id, "predict.clv", clv, None, &clv_text));
    }
    Ok(decisions)
}

fn format_rate(rate: f64) -> String {
    format!("{} %", explain::number(rate * 100.0))
}

/// The buyer summaries of `ids` (customer ids, any order): one page over the
/// range while the batch is dense among the shop's buyers (a scheduled run
/// hands customers by id), one call per customer once a page shows it is not
/// (an event delivery's scattered customers).
pub fn own_summaries(
    ids: &[i64],
    mut page: impl FnMut(Option<i64>, u32) -> Result<Vec<BuyerSummary>, Error>,
) -> Result<Vec<BuyerSummary>, Error> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut found = Vec::new();
    let mut dense = true;
    let mut i = 0;
    while i < ids.len() {
        let limit = if dense { (ids.len() - i).min(kith_sdk::summaries::MAX_PAGE as usize) as u32 } else { 1 };
        let got = page(Some(ids[i] - 1), limit)?;
        // Every id up to the page's last is answered, or every id if the page is short.
        let covered = if (got.len() as u32) < limit { i64::MAX } else { got.last().map_or(i64::MAX, |b| b.customer_id) };
        let before = i;
        while i < ids.len() && ids[i] <= covered {
            i += 1;
        }
        let wanted: Vec<BuyerSummary> = got.into_iter().filter(|b| ids[before..i].binary_search(&b.customer_id).is_ok()).collect();
        if limit > 1 && wanted.len() * 2 < limit as usize {
            dense = false;
        }
        found.extend(wanted);
    }
    Ok(found)
}

/// Every buyer of the shop, by id, read into a [`Reading`].
fn read_shop(expected_buyers: u64) -> Result<Reading, Error> {
    let mut reading = Reading::new(expected_buyers);
    for buyer in kith_sdk::summaries::all(kith_sdk::summaries::MAX_PAGE) {
        reading.add(buyer?);
    }
    Ok(reading)
}

struct Predict;

impl ScoringModel for Predict {
    fn score(ctx: &ShopContext, batch: Vec<Customer>) -> Result<Vec<Decision>, Error> {
        let config = Config::parse(&kith_sdk::config::raw()?)?;
        // A fit stored by another version of this plugin that does not read is refitted.
        let stored = kith_sdk::kv::get_json::<FitState>(FIT_KEY).unwrap_or(None);
        let state = if needs_fit(stored.as_ref(), &config, ctx.now, ctx.buyer_count) {
            let state = FitState { context_buyers: ctx.buyer_count, ..fit_reading(&read_shop(ctx.buyer_count)?, &config, ctx.now) };
            kith_sdk::kv::set_json(FIT_KEY, &state)?;
            let shown = report(&state, &config, &ctx.currency);
            kith_sdk::kv::set_json(STATUS_KEY, &shown)?;
            let level = if state.bg_nbd.is_some() { kith_sdk::LogLevel::Info } else { kith_sdk::LogLevel::Warn };
            kith_sdk::log(level, shown["summary"].as_str().unwrap_or_default());
            state
        } else {
            stored.expect("needs_fit is true without a stored fit")
        };
        if state.bg_nbd.is_none() {
            return Ok(Vec::new());
        }
        // Customers without an order that counts are not buyers: no prediction for them.
        let ids: Vec<i64> = batch.iter().filter(|c| c.stats.order_count > 0).map(|c| c.id).collect();
        let own = own_summaries(&ids, kith_sdk::summaries::buyers)?;
        let mut decisions = Vec::new();
        for buyer in &own {
            match score(buyer, &state, &config, &ctx.currency) {
                Ok(d) => decisions.extend(d),
                Err(e) => kith_sdk::log(kith_sdk::LogLevel::Warn, &format!("customer {}: not scored: {e}", buyer.customer_id)),
            }
        }
        Ok(decisions)
    }
}

kith_sdk::export_scoring_model!(Predict);

#[cfg(test)]
mod tests;
