//! The minimum data a shop needs before the models are fitted, with reasons a
//! merchant can read when it falls short.

use crate::{Summary, TimeUnit};

/// Thresholds; the defaults follow what Klaviyo asks of a shop for its
/// predictive analytics (500 buyers, 180 days of history, some repeat buyers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinimumData {
    pub buyers: usize,
    pub repeat_buyers: usize,
    /// Days from the earliest first purchase to the end of observation.
    pub history_days: f64,
}

impl Default for MinimumData {
    fn default() -> Self {
        MinimumData { buyers: 500, repeat_buyers: 100, history_days: 180.0 }
    }
}

/// Why the data is not enough.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Shortfall {
    #[error("too few buyers: {have}, at least {need} are needed")]
    TooFewBuyers { have: usize, need: usize },
    #[error("too few repeat buyers: {have} bought more than once, at least {need} are needed")]
    TooFewRepeatBuyers { have: usize, need: usize },
    #[error("too short a history: {have:.0} days since the first purchase, at least {need:.0} are needed")]
    HistoryTooShort { have: f64, need: f64 },
}

/// Every rule the summaries break; empty when the models may be fitted.
pub fn check_minimum_data<K>(summaries: &[Summary<K>], unit: TimeUnit, rules: &MinimumData) -> Vec<Shortfall> {
    let mut short = Vec::new();
    let buyers = summaries.len();
    if buyers < rules.buyers {
        short.push(Shortfall::TooFewBuyers { have: buyers, need: rules.buyers });
    }
    let repeat = summaries.iter().filter(|s| s.history.x > 0).count();
    if repeat < rules.repeat_buyers {
        short.push(Shortfall::TooFewRepeatBuyers { have: repeat, need: rules.repeat_buyers });
    }
    let days = summaries.iter().map(|s| s.history.t).fold(0.0_f64, f64::max) * unit.days();
    if days < rules.history_days {
        short.push(Shortfall::HistoryTooShort { have: days, need: rules.history_days });
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::History;
    use chrono::NaiveDate;

    fn customer(x: u32, t: f64) -> Summary<u32> {
        let d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let history = History { x, t_x: if x > 0 { t / 2.0 } else { 0.0 }, t };
        Summary { customer: 0, first_purchase: d, last_purchase: d, history, monetary: (x > 0).then_some(10.0) }
    }

    #[test]
    fn each_rule_gives_its_reason() {
        let rules = MinimumData { buyers: 3, repeat_buyers: 2, history_days: 180.0 };
        let ok = vec![customer(1, 30.0), customer(2, 10.0), customer(0, 1.0)];
        assert_eq!(check_minimum_data(&ok, TimeUnit::Weeks, &rules), vec![]);
        let short = vec![customer(1, 20.0), customer(0, 10.0)];
        let reasons: Vec<String> = check_minimum_data(&short, TimeUnit::Weeks, &rules).iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "too few buyers: 2, at least 3 are needed",
                "too few repeat buyers: 1 bought more than once, at least 2 are needed",
                "too short a history: 140 days since the first purchase, at least 180 are needed",
            ]
        );
    }
}
