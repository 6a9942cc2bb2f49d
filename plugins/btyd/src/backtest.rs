//! Calibration against holdout, as in Fader, Hardie & Lee (2005) figure 5:
//! fit on the calibration period, predict each customer's repeat purchases in
//! the holdout period from their calibration history, and compare with what
//! they did, per number of calibration repeat purchases.

use chrono::NaiveDate;

use crate::summary::purchase_days_between;
use crate::{BgNbd, Error, Fit, TimeUnit, Transaction, summarize};

/// The paper's buckets: 0 to 6 repeat purchases in calibration, then 7 or more.
pub const OPEN_BUCKET: u32 = 7;

/// Customers with the same number of calibration repeat purchases.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// "0" … "6", "7+".
    pub label: String,
    pub customers: usize,
    /// Mean repeat purchases per customer in the holdout period.
    pub predicted: f64,
    pub actual: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    pub fit: Fit<BgNbd>,
    /// The holdout period's length in the model's time unit.
    pub holdout: f64,
    pub buckets: Vec<Bucket>,
    pub predicted_total: f64,
    pub actual_total: u64,
    /// (predicted − actual) / actual over all customers.
    pub total_error: f64,
    /// Mean over customers of |predicted − actual|.
    pub mean_absolute_error: f64,
}

/// Fits BG/NBD on transactions up to `calibration_end` and compares its
/// predictions with the purchases in (`calibration_end`, `holdout_end`].
pub fn backtest<K: Ord + Clone>(
    transactions: &[Transaction<K>],
    calibration_end: NaiveDate,
    holdout_end: NaiveDate,
    unit: TimeUnit,
) -> Result<Backtest, Error> {
    if holdout_end <= calibration_end {
        return Err(Error::invalid("holdout_end", "must come after the calibration end"));
    }
    let summaries = summarize(transactions, calibration_end, unit)?;
    let histories: Vec<_> = summaries.iter().map(|s| s.history).collect();
    let fit = BgNbd::fit(&histories)?;
    let holdout = unit.between(calibration_end, holdout_end);
    let actual = purchase_days_between(transactions, calibration_end, holdout_end);
    let mut sums = vec![(0usize, 0.0, 0u64); OPEN_BUCKET as usize + 1];
    let mut absolute = 0.0;
    for s in &summaries {
        let predicted = fit.params.conditional_expected_purchases(&s.history, holdout)?;
        let did = actual.get(&s.customer).copied().unwrap_or(0);
        let bucket = &mut sums[s.history.x.min(OPEN_BUCKET) as usize];
        bucket.0 += 1;
        bucket.1 += predicted;
        bucket.2 += u64::from(did);
        absolute += (predicted - f64::from(did)).abs();
    }
    let buckets = sums
        .iter()
        .enumerate()
        .map(|(i, &(n, predicted, did))| Bucket {
            label: if i as u32 == OPEN_BUCKET { format!("{OPEN_BUCKET}+") } else { i.to_string() },
            customers: n,
            predicted: if n == 0 { 0.0 } else { predicted / n as f64 },
            actual: if n == 0 { 0.0 } else { did as f64 / n as f64 },
        })
        .collect();
    let predicted_total: f64 = sums.iter().map(|b| b.1).sum();
    let actual_total: u64 = sums.iter().map(|b| b.2).sum();
    Ok(Backtest {
        fit,
        holdout,
        buckets,
        predicted_total,
        actual_total,
        total_error: (predicted_total - actual_total as f64) / actual_total.max(1) as f64,
        mean_absolute_error: absolute / summaries.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holdout_must_follow_the_calibration() {
        let end = NaiveDate::from_ymd_opt(1997, 9, 30).unwrap();
        let tx = [Transaction { customer: 1, date: end, value: 1.0 }];
        let err = backtest(&tx, end, end, TimeUnit::Weeks).unwrap_err();
        assert_eq!(err.to_string(), "`holdout_end` must come after the calibration end");
    }
}
