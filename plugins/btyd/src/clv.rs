//! Customer lifetime value over a horizon and the expected date of the next order.

use chrono::{Days, NaiveDate};

use crate::{BgNbd, Error, History, TimeUnit};

/// How CLV is counted: over `months`, each month's expected purchases valued
/// at the expected order value times `margin`, discounted at `monthly_discount_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvSettings {
    pub months: u32,
    pub monthly_discount_rate: f64,
    /// The share of an order's value that is profit, 0 to 1 (1 gives revenue).
    pub margin: f64,
}

impl ClvSettings {
    fn validate(&self) -> Result<(), Error> {
        if !(self.monthly_discount_rate.is_finite() && self.monthly_discount_rate >= 0.0) {
            return Err(Error::invalid("monthly_discount_rate", format!("must be 0 or more, not {}", self.monthly_discount_rate)));
        }
        if !(self.margin.is_finite() && (0.0..=1.0).contains(&self.margin)) {
            return Err(Error::invalid("margin", format!("must lie between 0 and 1, not {}", self.margin)));
        }
        Ok(())
    }
}

/// CLV = Σᵢ₌₁..ₘ (E[Y(i·M)] − E[Y((i−1)·M)]) · v · margin / (1 + d)ⁱ, with
/// E[Y(t)] the BG/NBD conditional expectation (eq. 10), M a month in the
/// model's time unit, v the expected order value (Gamma-Gamma) and d the
/// monthly discount rate: each month's expected purchases discounted to the
/// end of observation, as the `lifetimes` package computes it.
pub fn clv(model: &BgNbd, history: &History, order_value: f64, unit: TimeUnit, settings: &ClvSettings) -> Result<f64, Error> {
    settings.validate()?;
    if !(order_value.is_finite() && order_value >= 0.0) {
        return Err(Error::invalid("order_value", format!("must be 0 or more, not {order_value}")));
    }
    let month = unit.per_month();
    let (mut total, mut before) = (0.0, 0.0);
    for i in 1..=settings.months {
        let upto = model.conditional_expected_purchases(history, f64::from(i) * month)?;
        total += (upto - before) * order_value * settings.margin / (1.0 + settings.monthly_discount_rate).powi(i as i32);
        before = upto;
    }
    Ok(total)
}

/// Expected wait for the next order, in the model's time unit, if the
/// customer is still alive: the mean gap 1 / E[λ | x, T] = (α + T) / (r + x)
/// at the customer's posterior purchase rate (Gamma(r + x, α + T) while alive).
/// An approximation: it ignores that the rate is uncertain (E[1/λ] is larger)
/// and that the customer may have left, which P(alive) tells separately.
pub fn expected_wait(model: &BgNbd, history: &History) -> Result<f64, Error> {
    history.validate()?;
    Ok((model.alpha + history.t) / (model.r + f64::from(history.x)))
}

/// The date of the expected next order: `as_of` (the end of observation) plus
/// [`expected_wait`], rounded to the day. `None` past the calendar's end.
pub fn expected_next_order(model: &BgNbd, history: &History, as_of: NaiveDate, unit: TimeUnit) -> Result<Option<NaiveDate>, Error> {
    let days = (expected_wait(model, history)? * unit.days()).round();
    if !(days.is_finite() && (0.0..1e7).contains(&days)) {
        return Ok(None);
    }
    Ok(as_of.checked_add_days(Days::new(days as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAPER: BgNbd = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

    #[test]
    fn undiscounted_clv_is_expected_purchases_times_value() {
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let settings = ClvSettings { months: 12, monthly_discount_rate: 0.0, margin: 0.5 };
        let got = clv(&PAPER, &h, 40.0, TimeUnit::Weeks, &settings).unwrap();
        let purchases = PAPER.conditional_expected_purchases(&h, 12.0 * TimeUnit::Weeks.per_month()).unwrap();
        assert!((got - purchases * 40.0 * 0.5).abs() < 1e-9, "{got}");
        // Discounting lowers it, and each month less than the one before.
        let discounted = clv(&PAPER, &h, 40.0, TimeUnit::Weeks, &ClvSettings { monthly_discount_rate: 0.01, ..settings }).unwrap();
        assert!(discounted < got && discounted > got / 1.01f64.powi(12), "{discounted} vs {got}");
    }

    #[test]
    fn the_next_order_is_the_mean_gap_after_the_end() {
        // (4.414 + 38.86) / (0.243 + 2) = 19.29 weeks = 135 days.
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        assert!((expected_wait(&PAPER, &h).unwrap() - 19.293).abs() < 1e-3);
        let end = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
        assert_eq!(expected_next_order(&PAPER, &h, end, TimeUnit::Weeks).unwrap(), NaiveDate::from_ymd_opt(1998, 2, 12));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let h = History { x: 1, t_x: 1.0, t: 2.0 };
        let bad = ClvSettings { months: 12, monthly_discount_rate: -0.1, margin: 0.3 };
        assert!(clv(&PAPER, &h, 1.0, TimeUnit::Days, &bad).unwrap_err().to_string().starts_with("`monthly_discount_rate`"));
        let bad = ClvSettings { margin: 1.5, monthly_discount_rate: 0.01, ..bad };
        assert!(clv(&PAPER, &h, 1.0, TimeUnit::Days, &bad).unwrap_err().to_string().starts_with("`margin`"));
    }
}
