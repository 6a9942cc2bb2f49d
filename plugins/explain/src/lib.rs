//! Numbers in the explanations and reasons the first-party plugins write,
//! which merchants read: money in major units with the shop's currency
//! (`CNY 11.77`, never `1177.0`), and every comparison printed with the
//! precision it needs, so that a value below an average never reads as equal
//! to it (`F 2 < average 2.004`, not `2.0 < average 2.0`).

/// Extra decimals a comparison may take beyond its usual precision before
/// two different values are printed as they are, even if they look equal.
const MAX_EXTRA_DECIMALS: usize = 6;

/// Decimal places of a currency's minor unit (ISO 4217): 2 unless listed.
pub fn minor_digits(currency: &str) -> usize {
    match currency.to_ascii_uppercase().as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF"
        | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

fn fixed(value: f64, decimals: usize, trim: bool) -> String {
    let text = format!("{value:.decimals$}");
    if !trim || !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `value` and what it is compared with, at `decimals` places, or more when
/// two different values would print the same: rounding never makes a value
/// below another read as equal (and, rounding being monotonic, never as
/// above). With `trim`, trailing zeros go (`3`, `2.5`).
pub fn pair(value: f64, other: f64, decimals: usize, trim: bool) -> (String, String) {
    let mut places = decimals;
    while value != other && places < decimals + MAX_EXTRA_DECIMALS && format!("{value:.places$}") == format!("{other:.places$}") {
        places += 1;
    }
    (fixed(value, places, trim), fixed(other, places, trim))
}

/// A measure such as an order count or an average of them: at most 2
/// decimals, trailing zeros removed (`3`, `2.96`).
pub fn number(value: f64) -> String {
    fixed(value, 2, true)
}

/// Two measures compared: as `number`, with more decimals where they would
/// otherwise read the same.
pub fn numbers(value: f64, other: f64) -> (String, String) {
    pair(value, other, 2, true)
}

/// Days, to a tenth, trailing zeros removed (`12`, `55.3`).
pub fn days(value: f64) -> String {
    fixed(value, 1, true)
}

/// Two durations in days compared: as `days`, with more decimals where they
/// would otherwise read the same.
pub fn days_pair(value: f64, other: f64) -> (String, String) {
    pair(value, other, 1, true)
}

fn with_currency(amount: String, currency: &str) -> String {
    if currency.is_empty() { amount } else { format!("{currency} {amount}") }
}

fn major(minor: f64, currency: &str) -> f64 {
    minor / 10f64.powi(minor_digits(currency) as i32)
}

/// An amount in minor units, in major units with the currency's code:
/// `money(1177.0, "USD")` is `USD 11.77`. Without a currency, the number alone.
pub fn money(minor: f64, currency: &str) -> String {
    with_currency(fixed(major(minor, currency), minor_digits(currency), false), currency)
}

/// Two amounts in minor units compared, as `money`, with more decimals where
/// they would otherwise read the same (an average of cents may fall between two).
pub fn money_pair(minor: f64, other: f64, currency: &str) -> (String, String) {
    let (a, b) = pair(major(minor, currency), major(other, currency), minor_digits(currency), false);
    (with_currency(a, currency), with_currency(b, currency))
}

/// Like `money_pair` for three amounts printed together: all three at the
/// precision that tells the first two apart.
pub fn money_triple(minor: f64, other: f64, third: f64, currency: &str) -> (String, String, String) {
    let (a, b) = pair(major(minor, currency), major(other, currency), minor_digits(currency), false);
    let places = b.split_once('.').map_or(0, |(_, frac)| frac.len());
    (with_currency(a, currency), with_currency(b, currency), with_currency(fixed(major(third, currency), places, false), currency))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_in_major_units_with_the_currency() {
        assert_eq!(money(1177.0, "USD"), "USD 11.77");
        assert_eq!(money(10608.0, "CNY"), "CNY 106.08");
        assert_eq!(money(-150.0, "CNY"), "CNY -1.50");
        assert_eq!(money(5.0, "CNY"), "CNY 0.05");
        assert_eq!(money(1500.0, "JPY"), "JPY 1500");
        assert_eq!(money(1500.0, "KWD"), "KWD 1.500");
        assert_eq!(money(1177.0, ""), "11.77");
    }

    #[test]
    fn a_value_below_another_never_reads_as_equal() {
        assert_eq!(numbers(3.0, 2.955), ("3".to_owned(), "2.96".to_owned()), "an average keeps two decimals");
        assert_eq!(numbers(2.0, 2.004), ("2".to_owned(), "2.004".to_owned()));
        assert_eq!(numbers(2.0, 2.0), ("2".to_owned(), "2".to_owned()));
        assert_eq!(days_pair(12.04, 12.0), ("12.04".to_owned(), "12".to_owned()));
        assert_eq!(money_pair(10608.0, 10608.4, "USD"), ("USD 106.080".to_owned(), "USD 106.084".to_owned()));
        assert_eq!(money_pair(1177.0, 10608.0, "USD"), ("USD 11.77".to_owned(), "USD 106.08".to_owned()));
        let (a, b, c) = money_triple(20001.0, 20000.8, 10000.4, "CNY");
        assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("CNY 200.010", "CNY 200.008", "CNY 100.004"));
        assert_eq!(numbers(1.0, 1.000_000_1), ("1".to_owned(), "1.0000001".to_owned()), "up to 6 more decimals");
    }
}
