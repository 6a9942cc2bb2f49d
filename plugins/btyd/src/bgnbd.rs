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
        let x = f64::from(h.x);
        Ok(self.expected_while_observed(x, self.alpha + h.t, t)? / (1.0 + self.dead_odds(h)))
    }

    /// (a + b + x − 1)/(a − 1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)]
    /// with z = t/(α+T+t), the numerator of eq. 10 (and eq. 9 with x = 0, T = 0).
    ///
    /// Evaluated through Euler's transformation ₂F₁(A, B; C; z) =
    /// (1 − z)^(C−A−B) ₂F₁(C−A, C−B; C; z): as 1 − z = (α+T)/(α+T+t), the
    /// bracket becomes 1 − (1 − z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z). The
    /// direct series overflows for frequent buyers (its terms grow like
    /// (1 − z)^(−x)); the transformed one has small numerator parameters and
    /// converges fast for any x, even as z nears 1.
    fn expected_while_observed(&self, x: f64, alpha_t: f64, t: f64) -> Result<f64, Error> {
        let BgNbd { r, a, b, .. } = *self;
        let z = t / (alpha_t + t);
        let f = hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)?;
        let ln_ratio = (a - 1.0) * (alpha_t.ln() - (alpha_t + t).ln());
        Ok((a + b + x - 1.0) / (a - 1.0) * (1.0 - ln_ratio.exp() * f))
    }

    /// Expected purchases in `t` time units of a customer just acquired, E[X(t)] (eq. 9).
    pub fn expected_purchases(&self, t: f64) -> Result<f64, Error> {
        self.validate()?;
        horizon(t)?;
        self.expected_while_observed(0.0, self.alpha, t)
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
    fn the_expectation_matches_the_direct_formula_for_any_frequency() {
        // Eq. 10 evaluated term by term by mpmath at 50 digits (rounded to f64): a frequent
        // buyer (whose direct series overflows f64), a long horizon, a typical case.
        for (x, t_x, t, horizon, want) in [
            (300, 38.5, 38.86, 390.0, 861.42847174372),
            (0, 0.0, 10.0, 5000.0, 7.798312711534465),
            (12, 20.0, 38.86, 52.0, 0.16387471731960088),
        ] {
            let got = PAPER.conditional_expected_purchases(&History { x, t_x, t }, horizon).unwrap();
            assert!((got - want).abs() <= 1e-9 * want, "x = {x}: {got} vs {want}");
        }
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
    fn a_fit_without_repeat_buyers_does_not_claim_convergence() {
        // Without repeats the likelihood (α/(α+T))^r grows as r → 0: no maximum inside.
        let histories: Vec<History> = (1..50).map(|i| History { x: 0, t_x: 0.0, t: f64::from(i) }).collect();
        let fit = BgNbd::fit(&histories).unwrap();
        assert!(!fit.converged, "{fit:?}");
    }

    #[test]
    fn the_fit_is_at_least_as_likely_as_the_papers_parameters() {
        // A made-up cohort: whatever the fit finds must be a maximum, at least
        // as likely as the paper's parameters, and report its own likelihood.
        let histories: Vec<History> = (0..400)
            .map(|i| {
                let x = [0, 0, 0, 1, 0, 2, 0, 1, 5, 0, 3, 0, 1, 9][i % 14];
                let t = 27.0 + f64::from(i as u32 % 12);
                History { x, t_x: if x == 0 { 0.0 } else { t * f64::from(i as u32 % 7 + 1) / 8.0 }, t }
            })
            .collect();
        let fit = BgNbd::fit(&histories).unwrap();
        assert!(fit.converged, "{fit:?}");
        assert!(fit.log_likelihood >= PAPER.log_likelihood(&histories), "{fit:?}");
        assert!((fit.log_likelihood - fit.params.log_likelihood(&histories)).abs() < 1e-9);
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
