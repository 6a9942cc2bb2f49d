//! The engine's arithmetic that needs no I/O: holdout and A/B buckets, when a wait ends, anniversaries, payload tests, message variables, and the significance of a difference in conversion rates.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::*;

/// A stable number for a customer in a journey (and a salt such as a split's step id):
/// holdouts and variants depend on nothing else, so a customer always lands in the same arm.
pub fn bucket(journey_id: i64, salt: &str, customer_id: i64) -> u64 {
    // FNV-1a over the inputs, then the splitmix64 finaliser to spread the bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in journey_id.to_le_bytes().iter().chain(salt.as_bytes()).chain(customer_id.to_le_bytes().iter()) {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Whether a customer is in the journey's holdout.
pub fn in_holdout(journey_id: i64, customer_id: i64, percent: u8) -> bool {
    bucket(journey_id, "holdout", customer_id) % 10_000 < u64::from(percent) * 100
}

/// The variant of a split a customer falls in, by weight.
pub fn choose_variant<'a>(journey_id: i64, step_id: &str, customer_id: i64, variants: &'a [Variant]) -> &'a Variant {
    let total: u64 = variants.iter().map(|v| u64::from(v.weight)).sum::<u64>().max(1);
    let mut point = bucket(journey_id, step_id, customer_id) % total;
    for v in variants {
        if point < u64::from(v.weight) {
            return v;
        }
        point -= u64::from(v.weight);
    }
    &variants[variants.len() - 1]
}

/// The next `at` in `zone` at or after `from`.
pub fn next_time_of_day(zone: Tz, from: DateTime<Utc>, at: NaiveTime) -> DateTime<Utc> {
    let local = from.with_timezone(&zone).date_naive();
    for day in 0..3 {
        let date = local + Duration::days(day);
        // A time skipped by a DST jump is taken an hour later.
        let candidate = zone
            .from_local_datetime(&date.and_time(at))
            .earliest()
            .or_else(|| zone.from_local_datetime(&(date.and_time(at) + Duration::hours(1))).earliest());
        if let Some(c) = candidate.map(|c| c.with_timezone(&Utc))
            && c >= from
        {
            return c;
        }
    }
    from
}

impl Wait {
    /// When a wait that starts at `from` ends. `None` for a coupon-relative wait without a coupon.
    pub fn ends(&self, zone: Tz, from: DateTime<Utc>, coupon_expires: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        if let Some(days) = self.before_coupon_expires_days {
            return coupon_expires.map(|e| e - Duration::days(i64::from(days)));
        }
        let mut end = from
            + Duration::days(i64::from(self.days))
            + Duration::hours(i64::from(self.hours))
            + Duration::minutes(i64::from(self.minutes));
        if let Some(until) = &self.until
            && let Ok(at) = NaiveTime::parse_from_str(until, "%H:%M")
        {
            end = next_time_of_day(zone, end, at);
        }
        Some(end)
    }
}

/// The shop date on which customers whose date falls on `anniversary` enter: the date `offset_days` away.
pub fn entry_anniversary(today: NaiveDate, offset_days: i32) -> NaiveDate {
    // Entering `offset_days` from the anniversary means the anniversary is `-offset_days` from today.
    today - Duration::days(i64::from(offset_days))
}

/// Values along a dotted path; arrays on the way fan out.
fn values_at<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| values_at(i, path, out)),
        (_, None) => out.push(value),
        (Value::Object(map), Some((head, rest))) => {
            if let Some(v) = map.get(*head) {
                values_at(v, rest, out);
            }
        }
        _ => {}
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

impl FieldTest {
    /// Whether `payload` passes: any value at the path passes the operator (`ne`: none equals).
    pub fn holds(&self, payload: &Value) -> bool {
        use std::cmp::Ordering::*;
        let path: Vec<&str> = self.field.split('.').collect();
        let mut found = Vec::new();
        values_at(payload, &path, &mut found);
        found.retain(|v| !v.is_null());
        let any = |f: &dyn Fn(&Value) -> bool| found.iter().any(|v| f(v));
        match self.op {
            FieldOp::Exists => found.is_empty() != self.value.as_bool().unwrap_or(true),
            FieldOp::Eq => any(&|v| v == &self.value || compare(v, &self.value) == Some(Equal)),
            FieldOp::Ne => !any(&|v| v == &self.value || compare(v, &self.value) == Some(Equal)),
            FieldOp::Lt => any(&|v| compare(v, &self.value) == Some(Less)),
            FieldOp::Lte => any(&|v| matches!(compare(v, &self.value), Some(Less | Equal))),
            FieldOp::Gt => any(&|v| compare(v, &self.value) == Some(Greater)),
            FieldOp::Gte => any(&|v| matches!(compare(v, &self.value), Some(Greater | Equal))),
            FieldOp::In => {
                let list = self.value.as_array().cloned().unwrap_or_default();
                any(&|v| list.iter().any(|x| x == v || compare(v, x) == Some(Equal)))
            }
            FieldOp::Contains => any(&|v| match (v, &self.value) {
                (Value::String(s), Value::String(needle)) => s.contains(needle.as_str()),
                (Value::Array(items), needle) => items.contains(needle),
                _ => false,
            }),
        }
    }
}

/// Whether every test holds.
pub fn all_hold(tests: &[FieldTest], payload: &Value) -> bool {
    tests.iter().all(|t| t.holds(payload))
}

/// Fill `{{root.path}}` placeholders from `context`; a missing value is left empty.
///
/// Only scalars are written (strings, numbers, booleans): a placeholder resolving to an object or
/// an array renders nothing. Whether a placeholder reads personal data is decided by its path
/// ([`crate::personal::is_personal_placeholder`]), and a path that stops at an object holding a
/// personal field (`{{trigger}}`, `{{trigger.order}}`, a payload shaped unlike the one its author
/// expected) would otherwise copy that field unmarked: names, nicks and union ids are masked in
/// messages only when their variable is marked personal.
pub fn render(text: &str, context: &Value) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let path: Vec<&str> = after[..end].trim().split('.').collect();
        match value_at(context, &path) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            Some(Value::Null | Value::Object(_) | Value::Array(_)) | None => {}
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The first value at `path`, through lists on the way (`trigger.order.items.sku` is the first
/// item's); a path ending at a list gives the list itself, which [`render`] leaves empty.
fn value_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    match (value, path.split_first()) {
        (_, None) => Some(value),
        (Value::Array(items), Some(_)) => items.iter().find_map(|i| value_at(i, path)),
        (Value::Object(map), Some((head, rest))) => map.get(*head).and_then(|v| value_at(v, rest)),
        _ => None,
    }
}

/// The two-sided p-value of a two-proportion z-test (pooled): `x1` of `n1` against `x2` of `n2`.
/// `None` when a group is empty or the pooled rate is 0 or 1 (no variance to test).
pub fn two_proportion_p_value(x1: i64, n1: i64, x2: i64, n2: i64) -> Option<f64> {
    if n1 <= 0 || n2 <= 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if variance <= 0.0 {
        return None;
    }
    let z = (x1 / n1 - x2 / n2) / variance.sqrt();
    Some(libm::erfc(z.abs() / std::f64::consts::SQRT_2))
}
