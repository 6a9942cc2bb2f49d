//! Per-customer summaries from transactions: the (x, tₓ, T) of BG/NBD and the
//! mean repeat order value of Gamma-Gamma.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::Error;

/// The unit the models measure time in; the fitted α and γ depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Days,
    Weeks,
}

impl TimeUnit {
    /// Days in one unit.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Days => 1.0,
            TimeUnit::Weeks => 7.0,
        }
    }

    /// Units in an average month (365.25 / 12 days), the step of the CLV's discounting.
    pub fn per_month(self) -> f64 {
        365.25 / 12.0 / self.days()
    }

    /// The span from `from` to `to` in this unit.
    pub fn between(self, from: NaiveDate, to: NaiveDate) -> f64 {
        (to - from).num_days() as f64 / self.days()
    }
}

/// One paid order.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction<K> {
    pub customer: K,
    pub date: NaiveDate,
    pub value: f64,
}

/// What BG/NBD knows of a customer: `x` repeat purchases (days with a
/// purchase after the first one), `t_x` the time of the last purchase since
/// the first, `t` the customer's age (first purchase to the end of observation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    pub x: u32,
    pub t_x: f64,
    pub t: f64,
}

impl History {
    /// Checks the invariants the formulas rely on: 0 ≤ tₓ ≤ T, finite, tₓ = 0 without repeats.
    pub fn validate(&self) -> Result<(), Error> {
        if !(self.t.is_finite() && self.t >= 0.0) {
            return Err(Error::invalid("T", format!("must be a finite age of 0 or more, not {}", self.t)));
        }
        if !(self.t_x.is_finite() && self.t_x >= 0.0 && self.t_x <= self.t) {
            return Err(Error::invalid("t_x", format!("must lie between 0 and T = {}, not {}", self.t, self.t_x)));
        }
        if self.x == 0 && self.t_x != 0.0 {
            return Err(Error::invalid("t_x", "must be 0 for a customer without repeat purchases"));
        }
        Ok(())
    }
}

/// One customer at the end of the observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary<K> {
    pub customer: K,
    pub first_purchase: NaiveDate,
    pub last_purchase: NaiveDate,
    pub history: History,
    /// Mean value of the repeat purchases (each day's orders summed); `None` without repeats.
    pub monetary: Option<f64>,
}

/// Summarises every customer whose first purchase is on or before `end`;
/// later transactions are ignored. Orders on the same day count as one
/// purchase whose value is their sum, as in Fader, Hardie & Lee's CDNOW data.
pub fn summarize<K: Ord + Clone>(transactions: &[Transaction<K>], end: NaiveDate, unit: TimeUnit) -> Result<Vec<Summary<K>>, Error> {
    let mut days: BTreeMap<&K, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for (i, t) in transactions.iter().enumerate() {
        if !t.value.is_finite() {
            return Err(Error::invalid(format!("transactions[{i}].value"), "must be a finite number"));
        }
        if t.date <= end {
            *days.entry(&t.customer).or_default().entry(t.date).or_default() += t.value;
        }
    }
    Ok(days
        .into_iter()
        .filter_map(|(customer, days)| {
            let (&first, _) = days.first_key_value()?;
            let (&last, _) = days.last_key_value()?;
            let repeats: Vec<f64> = days.values().skip(1).copied().collect();
            let x = repeats.len() as u32;
            let monetary = (x > 0).then(|| repeats.iter().sum::<f64>() / f64::from(x));
            Some(Summary {
                customer: customer.clone(),
                first_purchase: first,
                last_purchase: last,
                history: History { x, t_x: unit.between(first, last), t: unit.between(first, end) },
                monetary,
            })
        })
        .collect())
}

/// Days with a purchase in (`after`, `until`] per customer, for a holdout period.
pub fn purchase_days_between<K: Ord + Clone>(transactions: &[Transaction<K>], after: NaiveDate, until: NaiveDate) -> BTreeMap<K, u32> {
    let mut days: BTreeMap<&K, std::collections::BTreeSet<NaiveDate>> = BTreeMap::new();
    for t in transactions.iter().filter(|t| t.date > after && t.date <= until) {
        days.entry(&t.customer).or_default().insert(t.date);
    }
    days.into_iter().map(|(k, d)| (k.clone(), d.len() as u32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn same_day_orders_count_once_and_later_ones_are_ignored() {
        let tx = vec![
            Transaction { customer: "a", date: day(2024, 1, 1), value: 10.0 },
            Transaction { customer: "a", date: day(2024, 1, 8), value: 5.0 },
            Transaction { customer: "a", date: day(2024, 1, 8), value: 7.0 },
            Transaction { customer: "a", date: day(2024, 1, 15), value: 30.0 },
            Transaction { customer: "a", date: day(2024, 3, 1), value: 99.0 },
            Transaction { customer: "b", date: day(2024, 1, 29), value: 3.0 },
            Transaction { customer: "c", date: day(2024, 2, 1), value: 3.0 },
        ];
        let s = summarize(&tx, day(2024, 1, 29), TimeUnit::Weeks).unwrap();
        assert_eq!(s.len(), 2, "c bought after the end");
        assert_eq!(s[0].history, History { x: 2, t_x: 2.0, t: 4.0 });
        assert_eq!(s[0].monetary, Some(21.0), "the mean of 12 (two orders on one day) and 30");
        assert_eq!(s[1].history, History { x: 0, t_x: 0.0, t: 0.0 });
        assert_eq!(s[1].monetary, None);
        let days = summarize(&tx, day(2024, 1, 29), TimeUnit::Days).unwrap();
        assert_eq!(days[0].history, History { x: 2, t_x: 14.0, t: 28.0 });
        let holdout = purchase_days_between(&tx, day(2024, 1, 29), day(2024, 12, 31));
        assert_eq!(holdout.get("a"), Some(&1));
        assert_eq!(holdout.get("c"), Some(&1));
    }

    #[test]
    fn a_value_that_is_not_a_number_is_refused_by_its_index() {
        let tx = vec![
            Transaction { customer: 1, date: day(2024, 1, 1), value: 1.0 },
            Transaction { customer: 1, date: day(2024, 1, 2), value: f64::NAN },
        ];
        let err = summarize(&tx, day(2024, 2, 1), TimeUnit::Days).unwrap_err();
        assert_eq!(err.to_string(), "`transactions[1].value` must be a finite number");
    }

    #[test]
    fn impossible_histories_are_refused() {
        assert!(History { x: 1, t_x: 5.0, t: 4.0 }.validate().unwrap_err().to_string().contains("`t_x`"));
        assert!(History { x: 0, t_x: 1.0, t: 4.0 }.validate().is_err());
        assert!(History { x: 0, t_x: 0.0, t: -1.0 }.validate().unwrap_err().to_string().contains("`T`"));
        assert!(History { x: 3, t_x: 2.0, t: 4.0 }.validate().is_ok());
    }
}
