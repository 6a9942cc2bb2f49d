//! BG/NBD: Fader, Hardie & Lee (2005), "'Counting your customers' the easy
//! way: an alternative to the Pareto/NBD model", Marketing Science 24(2).
//! Equation numbers below are the paper's.

use crate::optimize::{Fit, minimise};
use crate::special::{hyp2f1, ln_gamma};
use crate::{Error, History};

/// The four parameters: purchase rates are Gamma(r, α) across customers,
/// dropout probabilities Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    fn validate(&self) -> Result<(), Error> {
        for (field, v) in [("r", self.r), ("alpha", self.alpha), ("a", self.a), ("b", self.b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(field, format!("must be a positive number, not {v}")));
            }
        }
        Ok(())
    }

    /// One customer's log-likelihood (eq. 6, in logs: ln(A₁ A₂ (A₃ + δ A₄))).
    pub fn log_likelihood_of(&self, h: &History) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(h.x);
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + h.t).ln();
        let ln_sum = if h.x > 0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + h.t_x).ln();
            let m = a3.max(a4);
            m + ((a3 - m).exp() + (a4 - m).exp()).ln()
        } else {
            a3
        };
        a1 + a2 + ln_sum
    }

    /// The sample's log-likelihood.
    pub fn log_likelihood(&self, data: &[History]) -> f64 {
        data.iter().map(|h| self.log_likelihood_of(h)).sum()
    }

    /// Maximum-likelihood fit over the customers' histories.
    pub fn fit(data: &[History]) -> Result<Fit<BgNbd>, Error> {
        if data.is_empty() {
            return Err(Error::NoData("BG/NBD needs at least one customer"));
        }
        for (i, h) in data.iter().enumerate() {
            h.validate().map_err(|e| prefix(e, i))?;
        }
        let from = |t: &[f64]| BgNbd { r: t[0].exp(), alpha: t[1].exp(), a: t[2].exp(), b: t[3].exp() };
        let negative = |t: &[f64]| {
            let m = from(t);
            if m.validate().is_err() { f64::INFINITY } else { -m.log_likelihood(data) }
        };
        let min = minimise(&negative, &[0.0; 4])?;
        Ok(Fit {
            params: from(&min.theta),
            log_likelihood: -min.value,
            converged: min.converged,
            iterations: min.iterations,
            customers: data.len(),
        })
    }

    /// P(alive | x, tₓ, T) (eq. 11).
    pub fn p_alive(&self, h: &History) -> Result<f64, Error> {
        self.validate()?;
        h.validate()?;
        Ok(1.0 / (1.0 + self.dead_odds(h)))
    }

    /// δ_{x>0} · a / (b + x − 1) · ((α + T) / (α + tₓ))^(r+x): the odds that
    /// the customer dropped out after the last purchase.
    fn dead_odds(&self, h: &History) -> f64 {
        if h.x == 0 {
            return 0.0;
        }
        let x = f64::from(h.x);
        let ln = self.a.ln() - (self.b + x - 1.0).ln() + (self.r + x) * ((self.alpha + h.t).ln() - (self.alpha + h.t_x).ln());
        ln.exp()
    }

    /// Expected purchases in the next `t` time units of a customer with this
    /// history (eq. 10).
    pub fn conditional_expected_purchases(&self, h: &History, t: f64) -> Result<f64, Error> {
        self.validate()?;
        h.validate()?;
        horizon(t)?;
        if t == 0.0 {
            return Ok(0.0);
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(h.x);
        let z = t / (alpha + h.t + t);
        let f = hyp2f1(r + x, b + x, a + b + x - 1.0, z)?;
        let ln_ratio = (r + x) * ((alpha + h.t).ln() - (alpha + h.t + t).ln());
        let numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ln_ratio.exp() * f);
        Ok(numerator / (1.0 + self.dead_odds(h)))
    }

    /// Expected purchases in `t` time units of a customer just acquired, E[X(t)] (eq. 9).
    pub fn expected_purchases(&self, t: f64) -> Result<f64, Error> {
        self.validate()?;
        horizon(t)?;
        let BgNbd { r, alpha, a, b } = *self;
        let f = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))?;
        Ok((a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * f))
    }
}

fn horizon(t: f64) -> Result<(), Error> {
    if t.is_finite() && t >= 0.0 { Ok(()) } else { Err(Error::invalid("t", format!("must be a horizon of 0 or more, not {t}"))) }
}

fn prefix(e: Error, i: usize) -> Error {
    match e {
        Error::InvalidInput { field, reason } => Error::InvalidInput { field: format!("histories[{i}].{field}"), reason },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters the paper fits on CDNOW (weeks).
    const PAPER: BgNbd = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

    #[test]
    fn hardies_worked_example() {
        // Fader, Hardie & Lee (2005) §5 and Hardie's note on the conditional
        // expectation: x = 2, tₓ = 30.43, T = 38.86 weeks → 1.226 in the next 39 weeks.
        let h = History { x: 2, t_x: 30.43, t: 38.86 };
        let e = PAPER.conditional_expected_purchases(&h, 39.0).unwrap();
        assert!((e - 1.226).abs() <= 0.01 * 1.226, "expected 1.226 purchases, got {e}");
        // The same formula evaluated by mpmath at 30 digits.
        assert!((e - 1.22602817476714).abs() < 1e-9, "{e}");
    }

    #[test]
    fn the_formulas_agree_with_each_other() {
        // A customer with no repeats observed for T = 0 is a new customer: eq. 10 reduces to eq. 9.
        let new = History { x: 0, t_x: 0.0, t: 0.0 };
        let conditional = PAPER.conditional_expected_purchases(&new, 52.0).unwrap();
        let unconditional = PAPER.expected_purchases(52.0).unwrap();
        assert!((conditional - unconditional).abs() < 1e-12, "{conditional} vs {unconditional}");
        // Without repeats a customer cannot have dropped out yet.
        assert_eq!(PAPER.p_alive(&History { x: 0, t_x: 0.0, t: 30.0 }).unwrap(), 1.0);
        // A long silence since the last purchase lowers P(alive); a recent purchase raises it.
        let silent = PAPER.p_alive(&History { x: 5, t_x: 5.0, t: 38.0 }).unwrap();
        let recent = PAPER.p_alive(&History { x: 5, t_x: 37.0, t: 38.0 }).unwrap();
        assert!(silent < 0.01 && recent > 0.85 && silent < recent, "silent {silent}, recent {recent}");
        assert_eq!(PAPER.conditional_expected_purchases(&new, 0.0).unwrap(), 0.0);
    }

    #[test]
    fn the_likelihood_is_the_papers_equation() {
        // ln L for one customer with x = 2, tₓ = 30.43, T = 38.86, computed by
        // hand from eq. 6: A₁ A₂ (A₃ + A₄).
        let (r, al, a, b) = (PAPER.r, PAPER.alpha, PAPER.a, PAPER.b);
        let g = |v: f64| ln_gamma(v).exp();
        let a1 = g(r + 2.0) * al.powf(r) / g(r);
        let a2 = g(a + b) * g(b + 2.0) / (g(b) * g(a + b + 2.0));
        let a3 = (1.0 / (al + 38.86)).powf(r + 2.0);
        let a4 = a / (b + 1.0) * (1.0 / (al + 30.43)).powf(r + 2.0);
        let want = (a1 * a2 * (a3 + a4)).ln();
        let got = PAPER.log_likelihood_of(&History { x: 2, t_x: 30.43, t: 38.86 });
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn bad_input_names_its_field() {
        let bad = BgNbd { r: -1.0, ..PAPER };
        assert!(bad.expected_purchases(1.0).unwrap_err().to_string().starts_with("`r`"));
        assert!(PAPER.expected_purchases(f64::NAN).unwrap_err().to_string().starts_with("`t`"));
        let histories = [History { x: 0, t_x: 0.0, t: 3.0 }, History { x: 2, t_x: 9.0, t: 3.0 }];
        assert!(BgNbd::fit(&histories).unwrap_err().to_string().starts_with("`histories[1].t_x`"));
        assert!(matches!(BgNbd::fit(&[]), Err(Error::NoData(_))));
    }
}
