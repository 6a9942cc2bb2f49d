//! The special functions the models need: ln Γ (from `libm`, a port of the
//! FreeBSD/musl implementation) and the Gauss hypergeometric ₂F₁, written here
//! because no small, kept crate offers it for real arguments.

use crate::Error;

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// Terms the ₂F₁ series may take before it gives up; at z = 0.999 a model's
/// arguments need some tens of thousands.
const MAX_TERMS: usize = 1_000_000;

/// The Gauss hypergeometric function ₂F₁(a, b; c; z) for −1 < z < 1 by its
/// power series Σ (a)ₙ(b)ₙ / ((c)ₙ n!) zⁿ.
///
/// The series is summed until the tail is provably below the precision: once
/// the ratio of successive terms is below 1 in magnitude (it tends to |z|, and
/// for n past the largest of −a, −b, −c it only falls), the tail after a term t
/// with ratio ρ is at most |t| ρ / (1 − ρ). BG/NBD only calls it with
/// 0 ≤ z < 1 and positive a, b, c.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, Error> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && z.is_finite()) {
        return Err(Error::invalid("hyp2f1", "takes finite arguments"));
    }
    if z.abs() >= 1.0 {
        return Err(Error::invalid("hyp2f1.z", "must lie strictly between -1 and 1"));
    }
    if c <= 0.0 && c.fract() == 0.0 {
        return Err(Error::invalid("hyp2f1.c", "must not be zero or a negative integer"));
    }
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for n in 0..MAX_TERMS {
        let k = n as f64;
        let ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        term *= ratio;
        sum += term;
        if term == 0.0 {
            return Ok(sum);
        }
        let rho = ratio.abs();
        // Past every negative parameter the ratios only move towards |z| from above.
        let monotone = k + 1.0 > (-a).max(-b).max(-c);
        if monotone && rho < 1.0 && term.abs() * rho / (1.0 - rho) <= f64::EPSILON * sum.abs() {
            return Ok(sum);
        }
        if !sum.is_finite() {
            break;
        }
    }
    Err(Error::Numerical(format!("the series of 2F1({a}, {b}; {c}; {z}) did not converge")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!((got - want).abs() <= rel * want.abs(), "got {got}, want {want} (relative tolerance {rel})");
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        // Exact: Γ(1/2) = √π, Γ(10) = 9!, Γ(1) = Γ(2) = 1.
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-15);
        close(ln_gamma(10.0), 362_880f64.ln(), 1e-15);
        assert_eq!(ln_gamma(1.0), 0.0);
        assert_eq!(ln_gamma(2.0), 0.0);
        // Reference values from mpmath at 30 digits, rounded to f64.
        close(ln_gamma(0.243), 1.3180435846996699, 1e-14);
        close(ln_gamma(1.5), -0.12078223763524522, 1e-14);
        close(ln_gamma(7.3), 7.147892523022248, 1e-14);
        close(ln_gamma(100.5), 361.4355404677776, 1e-14);
        close(ln_gamma(1e-3), 6.907178885383853, 1e-14);
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        for z in [-0.9, -0.3, 0.0, 0.2, 0.5, 0.9, 0.99] {
            // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z.
            let want = if z == 0.0 { 1.0 } else { -(1.0_f64 - z).ln() / z };
            close(hyp2f1(1.0, 1.0, 2.0, z).unwrap(), want, 1e-13);
            // ₂F₁(a, b; b; z) = (1 − z)^(−a).
            close(hyp2f1(0.7, 2.5, 2.5, z).unwrap(), (1.0 - z).powf(-0.7), 1e-13);
        }
        // ₂F₁(1/2, 1/2; 3/2; z²) = arcsin(z) / z.
        let z = 0.8_f64;
        close(hyp2f1(0.5, 0.5, 1.5, z * z).unwrap(), z.asin() / z, 1e-13);
    }

    #[test]
    fn hyp2f1_matches_reference_values() {
        // Reference values from mpmath at 30 digits rounded to f64, with arguments of the kind BG/NBD makes.
        close(hyp2f1(2.243, 4.426, 5.219, 0.4711).unwrap(), 3.2652409040840227, 1e-13);
        close(hyp2f1(0.243, 2.426, 2.219, 0.8983).unwrap(), 1.9372021708785996, 1e-13);
        close(hyp2f1(9.243, 9.426, 10.219, 0.99).unwrap(), 8.662054215089899e+16, 1e-11);
        close(hyp2f1(0.5, 0.3, 1.7, -0.4).unwrap(), 0.9689523776641353, 1e-13);
        close(hyp2f1(12.243, 14.426, 14.219, 0.3).unwrap(), 84.07620900519444, 1e-13);
    }

    #[test]
    fn hyp2f1_refuses_arguments_outside_its_domain() {
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).unwrap_err().to_string().contains("hyp2f1.z"));
        assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).unwrap_err().to_string().contains("hyp2f1.c"));
        assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_err());
    }
}
