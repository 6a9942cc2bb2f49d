//! Maximum likelihood by argmin's Nelder–Mead over log-parameters, so every
//! parameter stays positive without constraints.

use argmin::core::{CostFunction, Executor, State, TerminationReason, TerminationStatus};
use argmin::solver::neldermead::NelderMead;

use crate::Error;

/// A fitted model with what the merchant is shown about the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<P> {
    pub params: P,
    /// The maximised log-likelihood (natural log).
    pub log_likelihood: f64,
    /// Whether the optimiser stopped on its tolerance rather than its iteration
    /// limit, at a point where no parameter ran off towards 0 or infinity (as
    /// it does when the data cannot identify the model, e.g. without any repeat buyer).
    pub converged: bool,
    pub iterations: u64,
    /// How many customers the model was fitted over.
    pub customers: usize,
}

/// Iterations each Nelder–Mead run may take.
const MAX_ITERS: u64 = 20_000;
/// A log-parameter beyond this (a parameter below e^-25 or above e^25, about
/// 7·10¹⁰) means the likelihood has no interior maximum.
const LOG_BOUND: f64 = 25.0;
/// Stop when the standard deviation of the simplex's values falls below this
/// (log-likelihoods of thousands of customers are in the thousands)...
const SD_TOLERANCE: f64 = 1e-10;
/// ... or below this share of the objective's size at the start: a sum over tens of
/// thousands of customers (hundreds of thousands in size) carries rounding noise above
/// 1e-10, which an absolute tolerance never gets under, and the run went to its
/// iteration limit without converging.
const RELATIVE_SD_TOLERANCE: f64 = 1e-12;

struct Objective<'a, F>(&'a F);

impl<F: Fn(&[f64]) -> f64> CostFunction for Objective<'_, F> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, argmin::core::Error> {
        let v = (self.0)(theta);
        // A point where the likelihood is undefined is simply the worst point.
        Ok(if v.is_nan() { f64::INFINITY } else { v })
    }
}

pub(crate) struct Minimum {
    pub theta: Vec<f64>,
    pub value: f64,
    pub converged: bool,
    pub iterations: u64,
}

fn nelder_mead<F: Fn(&[f64]) -> f64>(f: &F, start: &[f64], step: f64) -> Result<Minimum, Error> {
    let mut simplex = vec![start.to_vec()];
    for i in 0..start.len() {
        let mut v = start.to_vec();
        v[i] += step;
        simplex.push(v);
    }
    let size = f(start).abs();
    let tolerance = if size.is_finite() { SD_TOLERANCE.max(RELATIVE_SD_TOLERANCE * size) } else { SD_TOLERANCE };
    let solver = NelderMead::new(simplex).with_sd_tolerance(tolerance).map_err(|e| Error::Numerical(e.to_string()))?;
    let result = Executor::new(Objective(f), solver)
        .configure(|state| state.max_iters(MAX_ITERS))
        .timer(false)
        .run()
        .map_err(|e| Error::Numerical(format!("the optimiser failed: {e}")))?;
    let state = result.state();
    let theta = state.get_best_param().cloned().ok_or_else(|| Error::Numerical("the optimiser found no point".into()))?;
    let converged = matches!(state.get_termination_status(), TerminationStatus::Terminated(TerminationReason::SolverConverged));
    Ok(Minimum { theta, value: state.get_best_cost(), converged, iterations: state.get_iter() })
}

/// Minimises `f` from `start`: a first run with a wide simplex, then a
/// restart with a narrow one around its best point, the usual guard against
/// Nelder–Mead stalling on a collapsed simplex. Converged means the restart
/// met its tolerance.
pub(crate) fn minimise<F: Fn(&[f64]) -> f64>(f: &F, start: &[f64]) -> Result<Minimum, Error> {
    let first = nelder_mead(f, start, 1.0)?;
    let second = nelder_mead(f, &first.theta, 0.05)?;
    if !second.value.is_finite() {
        return Err(Error::Numerical("the likelihood is not finite anywhere the optimiser looked".into()));
    }
    let inside = second.theta.iter().all(|t| t.abs() < LOG_BOUND);
    Ok(Minimum { iterations: first.iterations + second.iterations, converged: second.converged && inside, ..second })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_bowl() {
        let f = |t: &[f64]| (t[0] - 1.5).powi(2) + 3.0 * (t[1] + 0.5).powi(2) + 2.0;
        let m = minimise(&f, &[0.0, 0.0]).unwrap();
        assert!(m.converged);
        assert!((m.theta[0] - 1.5).abs() < 1e-4 && (m.theta[1] + 0.5).abs() < 1e-4, "{:?}", m.theta);
        assert!((m.value - 2.0).abs() < 1e-9);
    }
}
