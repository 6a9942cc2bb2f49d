//! Customer identifiers (the "Uni ID" kinds): parsing, normalisation, junk
//! rejection and masking.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of identifier a customer can be known by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// A phone number, stored in E.164.
    Phone,
    /// An e-mail address, trimmed and lower-cased.
    Email,
    /// A WeChat-style union id, kept as given (case matters).
    UnionId,
    /// A platform nickname (e.g. a Taobao nick).
    Nick,
    /// An id in another system, e.g. `external:erp`.
    External(String),
}

impl IdentityKind {
    /// Longest accepted value after normalisation.
    fn max_len(&self) -> usize {
        match self {
            IdentityKind::Phone => 32,
            IdentityKind::Email => 254,
            IdentityKind::UnionId | IdentityKind::External(_) => 128,
            IdentityKind::Nick => 64,
        }
    }

    /// Phone numbers and e-mail addresses are personal data, masked unless a key holds `pii:read`.
    pub fn is_pii(&self) -> bool {
        matches!(self, IdentityKind::Phone | IdentityKind::Email)
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityKind::Phone => f.write_str("phone"),
            IdentityKind::Email => f.write_str("email"),
            IdentityKind::UnionId => f.write_str("unionid"),
            IdentityKind::Nick => f.write_str("nick"),
            IdentityKind::External(source) => write!(f, "external:{source}"),
        }
    }
}

impl FromStr for IdentityKind {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "phone" => Ok(IdentityKind::Phone),
            "email" => Ok(IdentityKind::Email),
            "unionid" => Ok(IdentityKind::UnionId),
            "nick" => Ok(IdentityKind::Nick),
            other => match other.strip_prefix("external:") {
                Some(source)
                    if !source.is_empty()
                        && source.len() <= 32
                        && source.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') =>
                {
                    Ok(IdentityKind::External(source.to_owned()))
                }
                Some(_) => Err(IdentityError::BadSource),
                None => Err(IdentityError::UnknownKind(other.to_owned())),
            },
        }
    }
}

impl Serialize for IdentityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdentityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("unknown identifier kind `{0}`; expected phone, email, unionid, nick or external:<source>")]
    UnknownKind(String),
    #[error("external source must be 1-32 characters of a-z, 0-9, `_` or `-`")]
    BadSource,
    #[error("is empty")]
    Empty,
    #[error("is a placeholder value (`{0}`), not an identifier")]
    Placeholder(String),
    #[error("is all zeros")]
    AllZeros,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("is not a valid phone number for region {0}")]
    InvalidPhone(String),
    #[error("is not a valid e-mail address")]
    InvalidEmail,
    #[error("contains whitespace or control characters")]
    BadCharacters,
}

/// Values that exports and careless integrations put where an identifier should be.
const PLACEHOLDERS: &[&str] = &["null", "undefined", "none", "nil", "nan", "n/a", "-", "0"];

/// Normalise a raw identifier of `kind`; `region` is the shop's ISO 3166 country
/// code, used for phone numbers written without a country code.
pub fn normalise(kind: &IdentityKind, raw: &str, region: &str) -> Result<String, IdentityError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(IdentityError::Empty);
    }
    let lower = value.to_lowercase();
    if PLACEHOLDERS.contains(&lower.as_str()) {
        return Err(IdentityError::Placeholder(value.to_owned()));
    }
    let significant: Vec<char> = value.chars().filter(|c| c.is_alphanumeric()).collect();
    if !significant.is_empty() && significant.iter().all(|&c| c == '0') {
        return Err(IdentityError::AllZeros);
    }
    if value.chars().count() > kind.max_len() {
        return Err(IdentityError::TooLong(kind.max_len()));
    }
    if value.chars().any(crate::text::is_forbidden) {
        return Err(IdentityError::BadCharacters);
    }
    match kind {
        IdentityKind::Phone => normalise_phone(value, region),
        IdentityKind::Email => normalise_email(&lower),
        IdentityKind::UnionId | IdentityKind::External(_) => {
            if value.chars().any(char::is_whitespace) {
                return Err(IdentityError::BadCharacters);
            }
            Ok(value.to_owned())
        }
        IdentityKind::Nick => Ok(value.to_owned()),
    }
}

/// Phones this thread normalised lately, by region and value: a batch of events names the
/// same customer's phone many times over, and the parser and validator (regular expressions
/// behind a cache keyed by pattern) took 14 % of the HTTP workers' time while the large shop
/// was ingested (`perf`). Bounded: emptied when full.
const PHONES_REMEMBERED: usize = 4_096;

thread_local! {
    static PHONES: std::cell::RefCell<std::collections::HashMap<(String, String), Result<String, IdentityError>>> =
        std::cell::RefCell::default();
}

fn normalise_phone(value: &str, region: &str) -> Result<String, IdentityError> {
    let key = (region.to_owned(), value.to_owned());
    if let Some(known) = PHONES.with_borrow(|phones| phones.get(&key).cloned()) {
        return known;
    }
    let normalised = parse_phone(value, region);
    PHONES.with_borrow_mut(|phones| {
        if phones.len() >= PHONES_REMEMBERED {
            phones.clear();
        }
        phones.insert(key, normalised.clone());
    });
    normalised
}

fn parse_phone(value: &str, region: &str) -> Result<String, IdentityError> {
    let invalid = || IdentityError::InvalidPhone(region.to_owned());
    if !value.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.')) {
        return Err(invalid());
    }
    // The parser forgives junk a person never writes (`++86…`, a trailing `-`): a `+` only
    // first, the number ending in a digit, separators one at a time between digits.
    let after_plus = value.strip_prefix('+').unwrap_or(value);
    if after_plus.contains('+') || !value.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let separators = |c: char| matches!(c, '-' | ' ' | '.');
    if after_plus.starts_with(separators) || value.chars().zip(value.chars().skip(1)).any(|(a, b)| separators(a) && separators(b)) {
        return Err(invalid());
    }
    let country = region.parse::<phonenumber::country::Id>().map_err(|_| invalid())?;
    let number = phonenumber::parse(Some(country), value).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

fn normalise_email(lower: &str) -> Result<String, IdentityError> {
    if lower.chars().any(char::is_whitespace) {
        return Err(IdentityError::InvalidEmail);
    }
    let (local, domain) = lower.split_once('@').ok_or(IdentityError::InvalidEmail)?;
    let domain_ok =
        domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@') && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(IdentityError::InvalidEmail);
    }
    Ok(lower.to_owned())
}

/// True if `region` is a country code the phone normaliser knows.
pub fn is_known_region(region: &str) -> bool {
    region.len() == 2 && region.parse::<phonenumber::country::Id>().is_ok()
}

/// Mask a normalised value for display to keys without `pii:read`:
/// `+8613812345678` → `+86138****5678`, `alice@example.com` → `a***@example.com`.
/// Other kinds are not personal data and are returned as they are.
pub fn mask(kind: &IdentityKind, value: &str) -> String {
    match kind {
        IdentityKind::Phone => mask_phone(value),
        IdentityKind::Email => match value.split_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        },
        _ => value.to_owned(),
    }
}

fn mask_phone(value: &str) -> String {
    // Hide the four digits before the last four, the convention of Chinese shop back-ends.
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits <= 4 {
        return "*".repeat(value.chars().count());
    }
    let hide_from = digits.saturating_sub(8);
    let hide_to = digits - 4;
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                let i = seen;
                seen += 1;
                if i >= hide_from && i < hide_to { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(kind: &str, raw: &str) -> Result<String, String> {
        let kind: IdentityKind = kind.parse().map_err(|e: IdentityError| e.to_string())?;
        normalise(&kind, raw, "CN").map_err(|e| e.to_string())
    }

    #[test]
    fn normalisation_cases() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("phone", "13812345678", Ok("+8613812345678")),
            ("phone", " 138-1234-5678 ", Ok("+8613812345678")),
            ("phone", "+86 138 1234 5678", Ok("+8613812345678")),
            ("phone", "+1 650 253 0000", Ok("+16502530000")),
            ("phone", "12345", Err("is not a valid phone number for region CN")),
            ("phone", "138abc45678", Err("is not a valid phone number for region CN")),
            ("phone", "++8613800001234", Err("is not a valid phone number for region CN")),
            ("phone", "+86-138-0000-1234-", Err("is not a valid phone number for region CN")),
            ("phone", "+86--13800001234", Err("is not a valid phone number for region CN")),
            ("phone", "(010) 6552-9988", Ok("+861065529988")),
            ("nick", "alice\u{200b}", Err("contains whitespace or control characters")),
            ("unionid", "o\u{202e}ABC", Err("contains whitespace or control characters")),
            ("external:erp", "C\u{0}1", Err("contains whitespace or control characters")),
            ("phone", "00000000000", Err("is all zeros")),
            ("phone", "0", Err("is a placeholder value (`0`), not an identifier")),
            ("email", "  Alice@Example.COM ", Ok("alice@example.com")),
            ("email", "alice@localhost", Err("is not a valid e-mail address")),
            ("email", "@example.com", Err("is not a valid e-mail address")),
            ("email", "NULL", Err("is a placeholder value (`NULL`), not an identifier")),
            ("unionid", "oABC123xyz", Ok("oABC123xyz")),
            ("unionid", "undefined", Err("is a placeholder value (`undefined`), not an identifier")),
            ("unionid", "a b", Err("contains whitespace or control characters")),
            ("nick", "  小明的店  ", Ok("小明的店")),
            ("nick", "", Err("is empty")),
            ("nick", "   ", Err("is empty")),
            ("external:erp", "C-0001", Ok("C-0001")),
            ("external:ERP", "C-0001", Err("external source must be 1-32 characters of a-z, 0-9, `_` or `-`")),
            ("wechat", "x", Err("unknown identifier kind `wechat`; expected phone, email, unionid, nick or external:<source>")),
        ];
        for (kind, raw, expected) in cases {
            let got = norm(kind, raw);
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, expected, "{kind} {raw:?}");
        }
        assert_eq!(norm("nick", &"x".repeat(65)), Err("is longer than 64 characters".to_owned()));
    }

    #[test]
    fn a_remembered_phone_is_normalised_as_the_first_time_in_its_own_region() {
        let phone = |raw: &str, region: &str| normalise(&IdentityKind::Phone, raw, region).map_err(|e| e.to_string());
        for _ in 0..2 {
            assert_eq!(phone("6502530000", "US"), Ok("+16502530000".to_owned()));
            assert_eq!(phone("6502530000", "CN"), Err("is not a valid phone number for region CN".to_owned()));
            assert_eq!(phone("13812345678", "CN"), Ok("+8613812345678".to_owned()));
        }
        // More phones than are remembered: the memory empties and answers stay the same.
        for n in 0..(PHONES_REMEMBERED as u64 + 10) {
            assert_eq!(phone(&format!("138{:08}", n), "CN"), Ok(format!("+86138{:08}", n)));
        }
        assert!(PHONES.with_borrow(|phones| phones.len()) <= PHONES_REMEMBERED);
        assert_eq!(phone("6502530000", "US"), Ok("+16502530000".to_owned()));
    }

    #[test]
    fn masking() {
        assert_eq!(mask(&IdentityKind::Phone, "+8613812345678"), "+86138****5678");
        assert_eq!(mask(&IdentityKind::Email, "alice@example.com"), "a***@example.com");
        assert_eq!(mask(&IdentityKind::Nick, "bob"), "bob");
    }

    #[test]
    fn kinds_round_trip() {
        for k in ["phone", "email", "unionid", "nick", "external:taobao"] {
            assert_eq!(k.parse::<IdentityKind>().unwrap().to_string(), k);
        }
    }
}
