//! Money. Amounts are integers in the currency's minor unit (fen for CNY)
//! everywhere in Kith; decimals appear only at the edges (CSV imports).

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
