//! Money. Amounts are integers in the currency's minor unit (fen for CNY)
//! everywhere in Kith; decimals appear only at the edges (CSV imports).

/// The largest amount of one order, line price, line discount or refund, in minor units
/// (10,000,000,000.00 in major units): far beyond any real order, and small enough that the
/// sums Kith keeps (a customer's spend, a shop's GMV) stay exact in 64 bits.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The largest quantity of one order line.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// The largest sum Kith keeps for one customer or one budget, in minor units: a customer's
/// total spent, a coupon template's or a journey's money budget. An order that would take a
/// customer's total past it is refused.
pub const MAX_TOTAL: i64 = 100_000_000_000_000_000;

/// The largest count a budget may name (coupons, messages).
pub const MAX_COUNT: i64 = 1_000_000_000;

/// Check that `value` lies in `min..=max`, naming `field` if not.
pub fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, crate::FieldError> {
    if (min..=max).contains(&value) { Ok(value) } else { Err(crate::FieldError::new(field, format!("must be between {min} and {max}"))) }
}

/// Parse a decimal amount in major units (`"199.5"`, `"¥1,299.00"`) into minor units.
pub fn parse_major_units(raw: &str) -> Result<i64, String> {
    let cleaned: String = raw.trim().trim_start_matches(['¥', '￥', '$']).chars().filter(|c| *c != ',').collect();
    if cleaned.is_empty() {
        return Err("is empty".into());
    }
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(frac) {
        return Err(format!("`{raw}` is not a decimal amount"));
    }
    if frac.len() > 2 {
        return Err(format!("`{raw}` has more than 2 decimal places"));
    }
    let whole: i64 = whole.parse().map_err(|_| format!("`{raw}` is too large"))?;
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let minor = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(|| format!("`{raw}` is too large"))?;
    Ok(if negative { -minor } else { minor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_units() {
        assert_eq!(parse_major_units("199"), Ok(19900));
        assert_eq!(parse_major_units("199.5"), Ok(19950));
        assert_eq!(parse_major_units(" ¥1,299.05 "), Ok(129905));
        assert_eq!(parse_major_units("-3.10"), Ok(-310));
        assert!(parse_major_units("1.234").is_err());
        assert!(parse_major_units("abc").is_err());
        assert!(parse_major_units("").is_err());
    }
}
