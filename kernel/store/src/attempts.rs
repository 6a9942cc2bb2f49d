//! What a plugin call leaves behind whether it succeeded or not (its log lines and call
//! record), and the policy for failed calls: shared by deliveries and runs (`plugins`) and by
//! connectors' sends (`messages`), which neither owns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kith_domain::plugin::LogLine;
use rusqlite::{Transaction, params};

use crate::{Result, to_ms};

/// Log lines and call records kept per shop and plugin; older ones are dropped.
const KEPT_LOGS: i64 = 1000;
const KEPT_CALLS: i64 = 1000;

/// What one attempt produced besides decisions: kept whether it succeeded or not.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub shop_id: i64,
    pub plugin_id: &'a str,
    pub logs: &'a [LogLine],
    pub duration: Duration,
    pub now: DateTime<Utc>,
}

/// When to retry, when to give up on a batch, when to trip the breaker.
#[derive(Debug, Clone, Copy)]
pub struct FailurePolicy {
    /// Attempts at one batch before it becomes a dead letter.
    pub max_attempts: i64,
    /// Consecutive failures that trip the breaker.
    pub breaker_threshold: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            max_attempts: 5,
            breaker_threshold: 10,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

impl FailurePolicy {
    /// Exponential backoff after the `attempt`-th failure (1-based).
    pub fn backoff(&self, attempt: i64) -> Duration {
        let factor = 2u32.saturating_pow(attempt.clamp(1, 31) as u32 - 1);
        self.backoff_base.saturating_mul(factor).min(self.backoff_max)
    }
}

/// Keep the log lines and the call record of an attempt.
pub(crate) fn record_attempt(tx: &Transaction<'_>, a: &Attempt<'_>, error: Option<&str>) -> Result<()> {
    let now = to_ms(a.now);
    let mut insert =
        tx.prepare_cached("INSERT INTO plugin_logs (shop_id, plugin_id, level, message, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for line in a.logs {
        insert.execute(params![a.shop_id, a.plugin_id, line.level.as_str(), line.message, now])?;
    }
    tx.prepare_cached("INSERT INTO plugin_calls (shop_id, plugin_id, duration_us, error, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![a.shop_id, a.plugin_id, a.duration.as_micros() as i64, error, now])?;
    for (table, kept) in [("plugin_logs", KEPT_LOGS), ("plugin_calls", KEPT_CALLS)] {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE shop_id = ?1 AND plugin_id = ?2 AND id <=
               (SELECT id FROM {table} WHERE shop_id = ?1 AND plugin_id = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)"
        ))?
        .execute(params![a.shop_id, a.plugin_id, kept])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = FailurePolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_secs(1));
        assert_eq!(policy.backoff(4), Duration::from_secs(8));
        assert_eq!(policy.backoff(40), Duration::from_secs(300));
    }
}
