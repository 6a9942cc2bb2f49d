//! Gamma-Gamma spend model: Fader, Hardie & Lee (2005), "RFM and CLV: using
//! iso-value curves for customer base analysis", Journal of Marketing
//! Research 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of
//! Monetary Value". A customer's order values are Gamma(p, ν) around their own
//! mean p/ν, and ν is Gamma(q, γ) across customers.

use crate::Error;
use crate::optimize::{Fit, minimise};
use crate::special::ln_gamma;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A repeat buyer: `x` repeat purchases of mean value `m`.
fn check(i: usize, x: u32, m: f64) -> Result<(), Error> {
    if x == 0 {
        return Err(Error::invalid(format!("buyers[{i}].x"), "must be at least 1 (only repeat buyers have a mean repeat value)"));
    }
    if !(m.is_finite() && m > 0.0) {
        return Err(Error::invalid(format!("buyers[{i}].m"), format!("must be a positive mean value, not {m}")));
    }
    Ok(())
}

impl GammaGamma {
    fn validate(&self) -> Result<(), Error> {
        for (field, v) in [("p", self.p), ("q", self.q), ("gamma", self.gamma)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(field, format!("must be a positive number, not {v}")));
            }
        }
        Ok(())
    }

    /// ln f(m | p, q, γ; x), the density of a customer's mean of x values
    /// (Fader & Hardie 2013, eq. 3).
    pub fn log_likelihood_of(&self, x: u32, m: f64) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let x = f64::from(x);
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q) + q * gamma.ln() + (p * x - 1.0) * m.ln() + p * x * x.ln()
            - (p * x + q) * (gamma + m * x).ln()
    }

    /// Maximum-likelihood fit over the repeat buyers, given as (x, mean repeat value).
    pub fn fit(buyers: &[(u32, f64)]) -> Result<Fit<GammaGamma>, Error> {
        if buyers.is_empty() {
            return Err(Error::NoData("Gamma-Gamma needs at least one repeat buyer"));
        }
        for (i, &(x, m)) in buyers.iter().enumerate() {
            check(i, x, m)?;
        }
        let from = |t: &[f64]| GammaGamma { p: t[0].exp(), q: t[1].exp(), gamma: t[2].exp() };
        let negative = |t: &[f64]| {
            let g = from(t);
            if g.validate().is_err() { f64::INFINITY } else { -buyers.iter().map(|&(x, m)| g.log_likelihood_of(x, m)).sum::<f64>() }
        };
        let min = minimise(&negative, &[0.0; 3])?;
        Ok(Fit {
            params: from(&min.theta),
            log_likelihood: -min.value,
            converged: min.converged,
            iterations: min.iterations,
            customers: buyers.len(),
        })
    }

    /// The population's mean order value, E[Z] = pγ / (q − 1); `None` when q ≤ 1 (no finite mean).
    pub fn population_mean(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.gamma / (self.q - 1.0))
    }

    /// Expected mean order value of a customer with `x` repeat purchases of
    /// mean `m` (Fader & Hardie 2013, eq. 5): a weighted average of the
    /// population mean and the customer's own, the weight growing with x. A
    /// customer without repeats gets the population mean.
    pub fn conditional_expected_value(&self, x: u32, m: Option<f64>) -> Result<f64, Error> {
        self.validate()?;
        let Some(population) = self.population_mean() else {
            return Err(Error::invalid("q", format!("must exceed 1 for a finite expected value, not {}", self.q)));
        };
        let (x, m) = match (x, m) {
            (0, _) => return Ok(population),
            (x, Some(m)) => {
                check(0, x, m).map_err(|_| Error::invalid("m", format!("must be a positive mean value, not {m}")))?;
                (f64::from(x), m)
            }
            (_, None) => return Err(Error::invalid("m", "is needed for a customer with repeat purchases")),
        };
        let GammaGamma { p, q, .. } = *self;
        let w = p * x / (p * x + q - 1.0);
        Ok((1.0 - w) * population + w * m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: GammaGamma = GammaGamma { p: 6.25, q: 3.74, gamma: 15.44 };

    #[test]
    fn the_expectation_is_the_notes_closed_form() {
        // (p(γ + x m)) / (p x + q − 1), the note's other way of writing eq. 5.
        let (x, m) = (3.0, 42.0);
        let want = NOTE.p * (NOTE.gamma + x * m) / (NOTE.p * x + NOTE.q - 1.0);
        let got = NOTE.conditional_expected_value(3, Some(42.0)).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // The population mean: 6.25 × 15.44 / 2.74 ≈ 35.22.
        assert!((NOTE.conditional_expected_value(0, None).unwrap() - 35.218978).abs() < 1e-5);
    }

    #[test]
    fn the_density_integrates_to_one() {
        // Trapezoid rule over m for x = 2: a wrong constant shows at once.
        let (step, mut sum) = (0.01, 0.0);
        for i in 1..200_000 {
            sum += NOTE.log_likelihood_of(2, f64::from(i) * step).exp() * step;
        }
        assert!((sum - 1.0).abs() < 1e-3, "integral {sum}");
    }

    #[test]
    fn bad_input_names_its_field() {
        assert_eq!(GammaGamma::fit(&[(2, 10.0), (0, 5.0)]).unwrap_err().to_string().split(' ').next(), Some("`buyers[1].x`"));
        assert!(GammaGamma::fit(&[(2, -1.0)]).unwrap_err().to_string().starts_with("`buyers[0].m`"));
        assert!(NOTE.conditional_expected_value(2, None).unwrap_err().to_string().starts_with("`m`"));
        let heavy = GammaGamma { q: 0.9, ..NOTE };
        assert!(heavy.conditional_expected_value(1, Some(3.0)).unwrap_err().to_string().starts_with("`q`"));
    }
}
