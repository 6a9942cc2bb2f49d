//! The segment language: a JSON tree of `and` / `or` / `not` over conditions on
//! a customer's profile, attributes, tags, stats, scores, behaviours and
//! purchases. [`parse`] validates a definition into a [`Node`], pointing at the
//! faulty node on error (`definition.and[1].op`); the store compiles the tree
//! to SQL with bound parameters. Nothing here reads a clock: windows and
//! relative dates are resolved by the store at query time.
//!
//! ```json
//! {"and": [
//!   {"purchase": {"sku": "A"}, "window": {"last_days": 30}},
//!   {"not": {"purchase": {"sku": "B"}, "window": {"last_days": 30}}},
//!   {"profile": "city", "op": "in", "value": ["杭州", "上海"]}
//! ]}
//! ```

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::FieldError;
use crate::ingest::BehaviourKind;

/// Deepest nesting of `and` / `or` / `not` a definition may have.
pub const MAX_DEPTH: usize = 12;
/// Most nodes in one definition.
pub const MAX_NODES: usize = 200;
/// Most values in one `in` list.
pub const MAX_LIST: usize = crate::text::MAX_ITEMS;
/// Longest window or relative date, in days.
pub const MAX_DAYS: u32 = 3660;

/// A validated definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Condition(Condition),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A profile field.
    Profile { field: ProfileField, test: Test },
    /// A custom attribute (`customers.attributes`).
    Attribute { key: String, test: Test },
    /// Holds (or not) a tag, from any source or from one.
    Tag { tag: String, source: Option<String>, has: bool },
    /// A purchase statistic or the points balance.
    Stat { stat: Stat, test: Test },
    /// A model's score: held at all, its label (by code), or its value.
    Score { model: String, test: ScoreTest },
    /// Behaviour events of a kind in a window, counted.
    Behaviour { kind: BehaviourKind, item: Item, window: Window, count: CountRange },
    /// Orders in a window (not fully refunded) holding the item, counted; or the money spent on them.
    Purchase { item: Item, window: Window, count: CountRange, spent_at_least: Option<i64> },
    /// Member of another segment of the shop (its definition in force now).
    Segment(i64),
}

/// Which products a behaviour or purchase condition looks at; both empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub sku: Option<String>,
    pub category: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    Name,
    Gender,
    Province,
    City,
    Tier,
    Birthday,
    CreatedAt,
}

impl ProfileField {
    const ALL: [(&'static str, ProfileField); 7] = [
        ("name", ProfileField::Name),
        ("gender", ProfileField::Gender),
        ("province", ProfileField::Province),
        ("city", ProfileField::City),
        ("tier", ProfileField::Tier),
        ("birthday", ProfileField::Birthday),
        ("created_at", ProfileField::CreatedAt),
    ];

    fn kind(self) -> ValueKind {
        match self {
            ProfileField::Birthday => ValueKind::Birthday,
            ProfileField::CreatedAt => ValueKind::Instant,
            _ => ValueKind::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    TotalSpent,
    OrderCount,
    AverageOrderValue,
    DaysSinceFirstOrder,
    DaysSinceLastOrder,
    RefundCount,
    RefundAmount,
    Points,
}

impl Stat {
    const ALL: [(&'static str, Stat); 8] = [
        ("total_spent", Stat::TotalSpent),
        ("order_count", Stat::OrderCount),
        ("aov", Stat::AverageOrderValue),
        ("days_since_first_order", Stat::DaysSinceFirstOrder),
        ("days_since_last_order", Stat::DaysSinceLastOrder),
        ("refund_count", Stat::RefundCount),
        ("refund_amount", Stat::RefundAmount),
        ("points", Stat::Points),
    ];
}

/// A time window, resolved against the clock when the segment is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last N days up to now (N × 24 hours).
    LastDays(u32),
    /// From the start of the first date to the end of the second, in the shop's time zone.
    Between(NaiveDate, NaiveDate),
}

/// How many matching events a condition needs: at least `min`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRange {
    pub min: u32,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScoreTest {
    /// Holds any score of the model.
    Any,
    /// The label is one of these codes (the label itself or its part before the first `|`).
    Label(Vec<String>),
    Value(Test),
    /// The value is among the highest N % (1–100) of the shop's customers holding the model's
    /// score: at least the value of the ⌈n·N/100⌉-th highest, so ties at the threshold are in.
    TopPercent(u8),
    /// The value is among the lowest N %, ties at the threshold included.
    BottomPercent(u8),
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Integer(i64),
    Real(f64),
    Bool(bool),
    Date(NaiveDate),
}

/// A test on one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Eq(Scalar),
    /// Differs, or has no value.
    Ne(Scalar),
    Lt(Scalar),
    Lte(Scalar),
    Gt(Scalar),
    Gte(Scalar),
    /// Inclusive on both ends.
    Between(Scalar, Scalar),
    In(Vec<Scalar>),
    /// Text holding the string, or a JSON array holding the value.
    Contains(Scalar),
    Exists(bool),
    /// A date within the last N days (for birthdays: the anniversary).
    WithinLastDays(u32),
    /// A birthday whose anniversary falls within the next N days, today included.
    WithinNextDays(u32),
}

/// What kind of value a field holds, which decides its operators and how values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Text,
    Number,
    /// A `YYYY-MM-DD` date whose anniversaries matter.
    Birthday,
    /// A moment, compared with dates in the shop's zone.
    Instant,
    /// A custom attribute: text, number, boolean or array.
    Any,
}

impl Node {
    /// Ids of the segments this definition refers to, directly.
    pub fn segments(&self) -> Vec<i64> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Segment(id) = c {
                out.push(*id);
            }
        });
        out
    }

    /// Whether membership can change with time alone (windows, days since, relative
    /// dates), so that a periodic sweep must re-evaluate it. Referenced segments are
    /// the caller's to check.
    pub fn depends_on_time(&self) -> bool {
        let mut timed = false;
        self.walk(&mut |c| {
            timed |= matches!(
                c,
                Condition::Stat { stat: Stat::DaysSinceFirstOrder | Stat::DaysSinceLastOrder, .. }
                    | Condition::Profile { test: Test::WithinLastDays(_) | Test::WithinNextDays(_), .. }
                    | Condition::Behaviour { window: Window::LastDays(_), .. }
                    | Condition::Purchase { window: Window::LastDays(_), .. }
            );
        });
        timed
    }

    /// Models this definition ranks customers by (`top_percent`, `bottom_percent`): membership
    /// then depends on other customers' scores too, so a change of any customer's score of
    /// such a model may move others in or out. Referenced segments are the caller's to check.
    pub fn ranked_models(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&mut |c| {
            if let Condition::Score { model, test: ScoreTest::TopPercent(_) | ScoreTest::BottomPercent(_) } = c {
                out.push(model.clone());
            }
        });
        out
    }

    /// Where the definition, rooted at `path`, reads personal data (see [`crate::personal`]), by
    /// node path: a key without `pii:read` may not write it, or a preview or a count would tell it
    /// what it may not read. That is a test on the name, on a personal attribute
    /// (`receiver_mobile`, `收货人`) or on the birthday other than its presence or its anniversary
    /// (`within_next_days`, as birthday campaigns use: the day of the year, never the date); and a
    /// test on a custom attribute that could find out a phone or e-mail written in free text
    /// ([`narrows_free_text`]).
    pub fn personal_references(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.personal_at(path, &mut out);
        out
    }

    fn personal_at(&self, path: &str, out: &mut Vec<String>) {
        match self {
            Node::And(nodes) | Node::Or(nodes) => {
                let op = if matches!(self, Node::And(_)) { "and" } else { "or" };
                nodes.iter().enumerate().for_each(|(i, n)| n.personal_at(&format!("{path}.{op}[{i}]"), out));
            }
            Node::Not(node) => node.personal_at(&format!("{path}.not"), out),
            Node::Condition(Condition::Profile { field, test }) => {
                let allowed = match field {
                    ProfileField::Name => matches!(test, Test::Exists(_)),
                    ProfileField::Birthday => {
                        matches!(test, Test::Exists(_) | Test::WithinLastDays(_) | Test::WithinNextDays(_))
                    }
                    _ => true,
                };
                if !allowed {
                    out.push(format!("{path}.profile"));
                }
            }
            Node::Condition(Condition::Attribute { key, test }) => {
                if crate::personal::is_personal_attribute(key) && !matches!(test, Test::Exists(_)) {
                    out.push(format!("{path}.attribute"));
                } else if narrows_free_text(test) {
                    out.push(format!("{path}.value"));
                }
            }
            Node::Condition(_) => {}
        }
    }

    fn walk(&self, f: &mut impl FnMut(&Condition)) {
        match self {
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| n.walk(f)),
            Node::Not(node) => node.walk(f),
            Node::Condition(c) => f(c),
        }
    }
}

/// Whether a test on free text (a custom attribute, an event payload's field) could find out a
/// phone or an e-mail address written in it, which masking hides on every read, so that a key
/// without `pii:read` may not write it:
///
/// - `contains`: a text holding a string steps through anything written in it (three digits at a
///   time, or an address's letters), and a number is matched as its digits;
/// - an ordering test (`lt`, `lte`, `gt`, `gte`, `between`) on text other than a date or a time
///   (ISO 8601), or on a number where mobile numbers lie (`1[3-9]` and 9 digits, with or without
///   `86`): a search by halves;
/// - an `eq`, `ne` or `in` whose value is itself a phone or an e-mail address, as text or as a
///   number (a whole-number real counts as the integer it equals).
///
/// Matching free text against its masked form would allow these safely; until then they need
/// `pii:read`.
pub fn narrows_free_text(test: &Test) -> bool {
    match test {
        Test::Contains(_) => true,
        Test::Lt(v) | Test::Lte(v) | Test::Gt(v) | Test::Gte(v) => !orderable(v),
        Test::Between(a, b) => !orderable(a) || !orderable(b),
        Test::Eq(v) | Test::Ne(v) => is_reach(v),
        Test::In(values) => values.iter().any(is_reach),
        Test::Exists(_) | Test::WithinLastDays(_) | Test::WithinNextDays(_) => false,
    }
}

/// A number as the integer it equals, if it is one.
fn whole(v: &Scalar) -> Option<i64> {
    match v {
        Scalar::Integer(n) => Some(*n),
        Scalar::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(*r as i64),
        _ => None,
    }
}

/// Whether an ordering bound tells nothing of a phone or an address: a date or a time as text,
/// a number outside the ranges of mobile numbers.
fn orderable(v: &Scalar) -> bool {
    let mobile = |n: f64| (13.0e9..20.0e9).contains(&n) || (8613.0e9..8620.0e9).contains(&n);
    match v {
        Scalar::Text(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() || DateTime::parse_from_rfc3339(t).is_ok(),
        Scalar::Integer(n) => !mobile(*n as f64),
        Scalar::Real(r) => !mobile(r.abs()),
        Scalar::Bool(_) | Scalar::Date(_) => true,
    }
}

/// Whether a compared value is itself a phone or an e-mail address.
fn is_reach(v: &Scalar) -> bool {
    match (v, whole(v)) {
        (Scalar::Text(t), _) => crate::personal::mask_free_text(t) != *t,
        (_, Some(n)) => {
            let digits = n.unsigned_abs().to_string();
            crate::personal::mask_free_text(&digits) != digits
        }
        _ => false,
    }
}

/// Validate a definition; errors name the faulty node under `definition`.
pub fn parse(value: &Value) -> Result<Node, FieldError> {
    let mut parser = Parser { nodes: 0 };
    parser.node(value, "definition", 0)
}

struct Parser {
    nodes: usize,
}

fn err(path: &str, reason: impl Into<String>) -> FieldError {
    FieldError::new(path, reason)
}

fn one_of<T: Copy>(table: &[(&str, T)], name: &str, path: &str, what: &str) -> Result<T, FieldError> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        err(path, format!("unknown {what} `{name}`; expected one of {}", names.join(", ")))
    })
}

const CONDITION_KEYS: [&str; 8] = ["profile", "attribute", "tag", "stat", "score", "behaviour", "purchase", "segment"];

impl Parser {
    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Result<Node, FieldError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(err(path, format!("a definition holds at most {MAX_NODES} nodes")));
        }
        if depth > MAX_DEPTH {
            return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(map) = value else {
            return Err(err(path, "must be an object: `and`, `or`, `not` or a condition"));
        };
        for op in ["and", "or"] {
            if let Some(children) = map.get(op) {
                only_keys(map, &[op], path)?;
                let at = format!("{path}.{op}");
                let Value::Array(children) = children else { return Err(err(&at, "must be an array of nodes")) };
                if children.is_empty() {
                    return Err(err(&at, "must hold at least one node"));
                }
                let nodes = children
                    .iter()
                    .enumerate()
                    .map(|(i, child)| self.node(child, &format!("{at}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if op == "and" { Node::And(nodes) } else { Node::Or(nodes) });
            }
        }
        if let Some(child) = map.get("not") {
            only_keys(map, &["not"], path)?;
            return Ok(Node::Not(Box::new(self.node(child, &format!("{path}.not"), depth + 1)?)));
        }
        let present: Vec<&str> = CONDITION_KEYS.iter().copied().filter(|k| map.contains_key(*k)).collect();
        match present.as_slice() {
            [kind] => Ok(Node::Condition(condition(kind, map, path)?)),
            [] => Err(err(path, format!("expected `and`, `or`, `not` or a condition ({})", CONDITION_KEYS.join(", ")))),
            many => Err(err(path, format!("holds {} conditions at once; combine them with `and`", many.join(" and ")))),
        }
    }
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), FieldError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(&format!("{path}.{k}"), format!("unknown field; expected {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn text<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Ok(Some(s)),
        Some(_) => Err(err(&format!("{path}.{key}"), "must be a non-empty string of at most 200 bytes")),
    }
}

fn required_text<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, FieldError> {
    text(map, key, path)?.ok_or_else(|| err(&format!("{path}.{key}"), "is required"))
}

fn count(map: &Map<String, Value>, key: &str, path: &str, max: u64) -> Result<Option<u32>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= max)
            .map(|n| Some(n as u32))
            .ok_or_else(|| err(&format!("{path}.{key}"), format!("must be a whole number from 0 to {max}"))),
    }
}

fn condition(kind: &str, map: &Map<String, Value>, path: &str) -> Result<Condition, FieldError> {
    match kind {
        "profile" => {
            only_keys(map, &["profile", "op", "value"], path)?;
            let name = required_text(map, "profile", path)?;
            let field = one_of(&ProfileField::ALL, name, &format!("{path}.profile"), "profile field")?;
            Ok(Condition::Profile { field, test: test(map, path, field.kind())? })
        }
        "attribute" => {
            only_keys(map, &["attribute", "op", "value"], path)?;
            let key = required_text(map, "attribute", path)?;
            if key.contains(['"', '\\']) {
                return Err(err(&format!("{path}.attribute"), "must not hold quotes or backslashes"));
            }
            Ok(Condition::Attribute { key: key.to_owned(), test: test(map, path, ValueKind::Any)? })
        }
        "tag" => {
            only_keys(map, &["tag", "source", "has"], path)?;
            let has = match map.get("has") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(err(&format!("{path}.has"), "must be true or false")),
            };
            Ok(Condition::Tag {
                tag: required_text(map, "tag", path)?.to_owned(),
                source: text(map, "source", path)?.map(str::to_owned),
                has,
            })
        }
        "stat" => {
            only_keys(map, &["stat", "op", "value"], path)?;
            let name = required_text(map, "stat", path)?;
            let stat = one_of(&Stat::ALL, name, &format!("{path}.stat"), "stat")?;
            Ok(Condition::Stat { stat, test: test(map, path, ValueKind::Number)? })
        }
        "score" => {
            only_keys(map, &["score", "label", "op", "value", "top_percent", "bottom_percent"], path)?;
            let model = required_text(map, "score", path)?.to_owned();
            // One test per condition: the label, the value (`op`), or a rank.
            let tests: Vec<&str> = ["label", "op", "top_percent", "bottom_percent"].into_iter().filter(|k| map.contains_key(*k)).collect();
            if let [first, second, ..] = tests.as_slice() {
                let shown = |k: &str| if k == "op" { "the value (`op`)".to_owned() } else { format!("`{k}`") };
                return Err(err(
                    &format!("{path}.{first}"),
                    format!("test one of the label, the value (`op`) or a rank, not both {} and {}", shown(first), shown(second)),
                ));
            }
            let test = match tests.first().copied() {
                Some("label") => match map.get("label") {
                    Some(Value::String(code)) if !code.is_empty() => ScoreTest::Label(vec![code.clone()]),
                    Some(Value::Array(codes)) if !codes.is_empty() && codes.len() <= MAX_LIST => ScoreTest::Label(
                        codes
                            .iter()
                            .enumerate()
                            .map(|(i, c)| {
                                c.as_str()
                                    .filter(|c| !c.is_empty())
                                    .map(str::to_owned)
                                    .ok_or_else(|| err(&format!("{path}.label[{i}]"), "must be a non-empty string"))
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(err(&format!("{path}.label"), "must be a label code or a non-empty array of codes")),
                },
                Some("op") => ScoreTest::Value(test(map, path, ValueKind::Number)?),
                Some(rank) => {
                    if map.contains_key("value") {
                        return Err(err(&format!("{path}.value"), format!("does not go with `{rank}`")));
                    }
                    let percent = map
                        .get(rank)
                        .and_then(Value::as_u64)
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| err(&format!("{path}.{rank}"), "must be a whole number of percent from 1 to 100"))?
                        as u8;
                    if rank == "top_percent" { ScoreTest::TopPercent(percent) } else { ScoreTest::BottomPercent(percent) }
                }
                None => {
                    if map.contains_key("value") {
                        return Err(err(&format!("{path}.op"), "is required with `value`"));
                    }
                    ScoreTest::Any
                }
            };
            Ok(Condition::Score { model, test })
        }
        "behaviour" => {
            only_keys(map, &["behaviour", "sku", "category", "window", "at_least", "at_most"], path)?;
            let name = required_text(map, "behaviour", path)?;
            let kinds: Vec<(&str, BehaviourKind)> = BehaviourKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
            let kind = one_of(&kinds, name, &format!("{path}.behaviour"), "behaviour")?;
            Ok(Condition::Behaviour {
                kind,
                item: Item { sku: text(map, "sku", path)?.map(str::to_owned), category: text(map, "category", path)?.map(str::to_owned) },
                window: window(map, path)?,
                count: count_range(map, path)?,
            })
        }
        "purchase" => {
            only_keys(map, &["purchase", "window", "at_least", "at_most", "spent_at_least"], path)?;
            let at = format!("{path}.purchase");
            let Some(Value::Object(item)) = map.get("purchase") else {
                return Err(err(&at, "must be an object: {} for any product, or {\"sku\": …} / {\"category\": …}"));
            };
            only_keys(item, &["sku", "category"], &at)?;
            let spent_at_least = match map.get("spent_at_least") {
                None => None,
                Some(v) => Some(
                    v.as_i64()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| err(&format!("{path}.spent_at_least"), "must be an amount in minor units, 0 or more"))?,
                ),
            };
            Ok(Condition::Purchase {
                item: Item { sku: text(item, "sku", &at)?.map(str::to_owned), category: text(item, "category", &at)?.map(str::to_owned) },
                window: window(map, path)?,
                count: count_range(map, path)?,
                spent_at_least,
            })
        }
        "segment" => {
            only_keys(map, &["segment"], path)?;
            let id = map
                .get("segment")
                .and_then(Value::as_i64)
                .filter(|id| *id > 0)
                .ok_or_else(|| err(&format!("{path}.segment"), "must be a segment id"))?;
            Ok(Condition::Segment(id))
        }
        _ => Err(err(path, format!("unknown condition `{kind}`"))),
    }
}

fn count_range(map: &Map<String, Value>, path: &str) -> Result<CountRange, FieldError> {
    let min = count(map, "at_least", path, 1_000_000)?;
    let max = count(map, "at_most", path, 1_000_000)?;
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(err(&format!("{path}.at_most"), format!("must be at least `at_least` ({min})"))),
        (None, Some(max)) => Ok(CountRange { min: 0, max: Some(max) }),
        (min, max) => Ok(CountRange { min: min.unwrap_or(1), max }),
    }
}

fn window(map: &Map<String, Value>, path: &str) -> Result<Window, FieldError> {
    let at = format!("{path}.window");
    let Some(Value::Object(w)) = map.get("window") else {
        return Err(err(&at, "is required: {\"last_days\": N} or {\"between\": [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]}"));
    };
    if let Some(days) = count(w, "last_days", &at, u64::from(MAX_DAYS))? {
        only_keys(w, &["last_days"], &at)?;
        if days == 0 {
            return Err(err(&format!("{at}.last_days"), "must be at least 1"));
        }
        return Ok(Window::LastDays(days));
    }
    if let Some(between) = w.get("between") {
        only_keys(w, &["between"], &at)?;
        let at = format!("{at}.between");
        let (from, to) = date_pair(between, &at)?;
        return Ok(Window::Between(from, to));
    }
    Err(err(&at, "expected `last_days` or `between`"))
}

fn date(value: &Value, path: &str) -> Result<NaiveDate, FieldError> {
    value.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).ok_or_else(|| err(path, "must be a date written YYYY-MM-DD"))
}

fn date_pair(value: &Value, path: &str) -> Result<(NaiveDate, NaiveDate), FieldError> {
    match value {
        Value::Array(pair) if pair.len() == 2 => {
            let (from, to) = (date(&pair[0], &format!("{path}[0]"))?, date(&pair[1], &format!("{path}[1]"))?);
            if from > to {
                return Err(err(&format!("{path}[1]"), "must not be before the first date"));
            }
            Ok((from, to))
        }
        _ => Err(err(path, "must be two dates, [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")),
    }
}

const OPS: [&str; 12] =
    ["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "contains", "exists", "within_last_days", "within_next_days"];

/// Read `op` and `value` for a field of `kind`.
fn test(map: &Map<String, Value>, path: &str, kind: ValueKind) -> Result<Test, FieldError> {
    let op_path = format!("{path}.op");
    let value_path = format!("{path}.value");
    let op = required_text(map, "op", path)?;
    if !OPS.contains(&op) {
        return Err(err(&op_path, format!("unknown operator `{op}`; expected one of {}", OPS.join(", "))));
    }
    let value = map.get("value").ok_or_else(|| err(&value_path, "is required"))?;
    let allowed: &[&str] = match kind {
        ValueKind::Text => &["eq", "ne", "in", "contains", "exists"],
        ValueKind::Number => &["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "exists"],
        ValueKind::Birthday => &["eq", "lt", "lte", "gt", "gte", "between", "exists", "within_last_days", "within_next_days"],
        ValueKind::Instant => &["lt", "lte", "gt", "gte", "between", "exists", "within_last_days"],
        ValueKind::Any => &["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "contains", "exists"],
    };
    if !allowed.contains(&op) {
        return Err(err(&op_path, format!("`{op}` does not apply to this field; use one of {}", allowed.join(", "))));
    }
    let scalar = |v: &Value, at: &str| scalar(v, at, kind);
    Ok(match op {
        "exists" => Test::Exists(value.as_bool().ok_or_else(|| err(&value_path, "must be true or false"))?),
        "within_last_days" | "within_next_days" => {
            let days = value
                .as_u64()
                .filter(|d| (1..=u64::from(MAX_DAYS)).contains(d))
                .ok_or_else(|| err(&value_path, format!("must be a number of days from 1 to {MAX_DAYS}")))? as u32;
            if op == "within_last_days" { Test::WithinLastDays(days) } else { Test::WithinNextDays(days) }
        }
        "between" => {
            let Value::Array(pair) = value else { return Err(err(&value_path, "must be two values, [low, high]")) };
            if pair.len() != 2 {
                return Err(err(&value_path, "must be two values, [low, high]"));
            }
            let (low, high) = (scalar(&pair[0], &format!("{value_path}[0]"))?, scalar(&pair[1], &format!("{value_path}[1]"))?);
            Test::Between(low, high)
        }
        "in" => {
            let Value::Array(items) = value else { return Err(err(&value_path, "must be an array")) };
            if items.is_empty() || items.len() > MAX_LIST {
                return Err(err(&value_path, format!("must hold 1 to {MAX_LIST} values")));
            }
            Test::In(items.iter().enumerate().map(|(i, v)| scalar(v, &format!("{value_path}[{i}]"))).collect::<Result<_, _>>()?)
        }
        "contains" => Test::Contains(scalar(value, &value_path)?),
        _ => {
            let v = scalar(value, &value_path)?;
            match op {
                "eq" => Test::Eq(v),
                "ne" => Test::Ne(v),
                "lt" => Test::Lt(v),
                "lte" => Test::Lte(v),
                "gt" => Test::Gt(v),
                _ => Test::Gte(v),
            }
        }
    })
}

fn scalar(value: &Value, path: &str, kind: ValueKind) -> Result<Scalar, FieldError> {
    match kind {
        ValueKind::Text => match value {
            Value::String(s) => {
                crate::text::check_free(path, s, crate::text::MAX_TEXT)?;
                Ok(Scalar::Text(s.clone()))
            }
            _ => Err(err(path, "must be a string")),
        },
        ValueKind::Number => match value {
            Value::Number(n) => Ok(number(n)),
            _ => Err(err(path, "must be a number")),
        },
        ValueKind::Birthday | ValueKind::Instant => Ok(Scalar::Date(date(value, path)?)),
        ValueKind::Any => match value {
            Value::String(s) => {
                crate::text::check_free(path, s, crate::text::MAX_TEXT)?;
                Ok(Scalar::Text(s.clone()))
            }
            Value::Number(n) => Ok(number(n)),
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            _ => Err(err(path, "must be a string, a number or a boolean")),
        },
    }
}

fn number(n: &serde_json::Number) -> Scalar {
    match n.as_i64() {
        Some(i) => Scalar::Integer(i),
        None => Scalar::Real(n.as_f64().unwrap_or_default()),
    }
}

/// A segment as the API shows it, with the definition of its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// Starts at 1; each change of the definition adds one.
    pub version: i64,
    /// The definition of `version` (at `at` when read with `?at=`).
    #[schema(value_type = Object)]
    pub definition: Value,
    /// Members as tracked for entry and exit events: updated when a customer's data
    /// changes and, for time-based definitions and ranks (`top_percent`), at each sweep
    /// (a rank's also soon after a plugin writes that model's scores: at most a minute later).
    pub members: i64,
    /// Whether membership can change with time alone (windows, days since, relative dates).
    pub depends_on_time: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client sends to create or replace a segment.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// A definition in the segment language (see the API description).
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// One version of a segment's definition, in force from `created_at` until the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SegmentVersion {
    pub version: i64,
    #[schema(value_type = Object)]
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    /// Who saved it: a key id or `cli`.
    pub created_by: String,
}

/// A segment's membership frozen at `taken_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    pub id: i64,
    pub segment_id: i64,
    /// The segment version evaluated.
    pub version: i64,
    pub size: i64,
    pub taken_at: DateTime<Utc>,
    pub taken_by: String,
}

/// Members at the end of a day in the shop's time zone (or now, for today).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DailyCount {
    pub day: NaiveDate,
    pub members: i64,
}

/// Validate a segment's name and description.
pub fn check_input(input: &SegmentInput) -> Result<Node, FieldError> {
    crate::check_name(&input.name, input.description.as_deref())?;
    parse(&input.definition)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(definition: Value) -> FieldError {
        parse(&definition).expect_err("refused")
    }

    #[test]
    fn the_seed_combination_parses() {
        let node = parse(&json!({"and": [
            {"purchase": {"sku": "A"}, "window": {"last_days": 30}},
            {"not": {"purchase": {"sku": "B"}, "window": {"last_days": 30}}}
        ]}))
        .unwrap();
        let Node::And(parts) = &node else { panic!("{node:?}") };
        assert!(matches!(&parts[1], Node::Not(_)));
        assert!(node.depends_on_time());
        let fixed = parse(&json!({"behaviour": "view", "window": {"between": ["2026-01-01", "2026-01-31"]}, "at_most": 0})).unwrap();
        assert!(!fixed.depends_on_time());
        assert_eq!(
            fixed,
            Node::Condition(Condition::Behaviour {
                kind: BehaviourKind::View,
                item: Item::default(),
                window: Window::Between(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
                count: CountRange { min: 0, max: Some(0) },
            })
        );
        assert_eq!(parse(&json!({"or": [{"segment": 3}, {"not": {"segment": 4}}]})).unwrap().segments(), vec![3, 4]);
    }

    #[test]
    fn errors_point_at_the_faulty_node() {
        let cases = [
            (json!([]), "definition", "must be an object"),
            (json!({}), "definition", "expected `and`"),
            (json!({"and": []}), "definition.and", "at least one"),
            (
                json!({"and": [{"stat": "total_spent", "op": "gte", "value": 1}, {"stat": "spend", "op": "gte", "value": 1}]}),
                "definition.and[1].stat",
                "unknown stat `spend`",
            ),
            (json!({"or": [{"not": {"profile": "city", "op": "gte", "value": "x"}}]}), "definition.or[0].not.op", "does not apply"),
            (json!({"profile": "city", "op": "like", "value": "x"}), "definition.op", "unknown operator `like`"),
            (json!({"profile": "city", "op": "eq"}), "definition.value", "is required"),
            (json!({"profile": "birthday", "op": "within_next_days", "value": 0}), "definition.value", "from 1"),
            (json!({"stat": "order_count", "op": "in", "value": [1, "two"]}), "definition.value[1]", "must be a number"),
            (json!({"behaviour": "view"}), "definition.window", "is required"),
            (json!({"behaviour": "view", "window": {"between": ["2026-02-01", "2026-01-01"]}}), "definition.window.between[1]", "before"),
            (json!({"behaviour": "view", "window": {"last_days": 7}, "at_least": 3, "at_most": 2}), "definition.at_most", "at least"),
            (json!({"purchase": {"color": "red"}, "window": {"last_days": 7}}), "definition.purchase.color", "unknown field"),
            (json!({"tag": "vip", "stat": "points"}), "definition", "combine them"),
            (json!({"tag": "vip", "colour": 1}), "definition.colour", "unknown field"),
            (json!({"score": "rfm", "label": "a", "op": "gt", "value": 1}), "definition.label", "not both"),
            (json!({"segment": "x"}), "definition.segment", "segment id"),
            (json!({"attribute": "a\"b", "op": "exists", "value": true}), "definition.attribute", "quotes"),
        ];
        for (definition, field, reason) in cases {
            let e = refused(definition.clone());
            assert_eq!(e.field, field, "{definition}: {e}");
            assert!(e.reason.contains(reason), "{definition}: {e}");
        }
    }

    /// A rank among the shop's scores: `top_percent` or `bottom_percent`, 1 to 100, alone.
    #[test]
    fn score_ranks_parse_and_name_the_node() {
        let top = parse(&json!({"and": [
            {"score": "predict.churn_risk", "op": "gte", "value": 0.7},
            {"score": "predict.clv", "top_percent": 20}
        ]}))
        .unwrap();
        let Node::And(parts) = &top else { panic!("{top:?}") };
        assert_eq!(parts[1], Node::Condition(Condition::Score { model: "predict.clv".into(), test: ScoreTest::TopPercent(20) }));
        assert_eq!(top.ranked_models(), vec!["predict.clv"]);
        assert!(!top.depends_on_time(), "a rank moves with other customers' scores, not with time");
        let bottom = parse(&json!({"not": {"score": "predict.aov", "bottom_percent": 100}})).unwrap();
        assert_eq!(
            bottom,
            Node::Not(Box::new(Node::Condition(Condition::Score { model: "predict.aov".into(), test: ScoreTest::BottomPercent(100) })))
        );
        assert_eq!(bottom.ranked_models(), vec!["predict.aov"]);
        assert!(parse(&json!({"score": "predict.clv", "op": "gte", "value": 1})).unwrap().ranked_models().is_empty());

        let cases = [
            (json!({"score": "predict.clv", "top_percent": 0}), "definition.top_percent", "from 1 to 100"),
            (json!({"score": "predict.clv", "top_percent": 101}), "definition.top_percent", "from 1 to 100"),
            (json!({"score": "predict.clv", "top_percent": 12.5}), "definition.top_percent", "whole number"),
            (json!({"score": "predict.clv", "top_percent": "20"}), "definition.top_percent", "whole number"),
            (json!({"score": "predict.clv", "bottom_percent": -5}), "definition.bottom_percent", "from 1 to 100"),
            (json!({"score": "predict.clv", "top_percent": 20, "bottom_percent": 20}), "definition.top_percent", "not both"),
            (json!({"score": "predict.clv", "op": "gte", "value": 1, "top_percent": 20}), "definition.op", "not both"),
            (json!({"score": "predict.clv", "label": "high", "bottom_percent": 20}), "definition.label", "not both"),
            (json!({"score": "predict.clv", "top_percent": 20, "value": 3}), "definition.value", "does not go with `top_percent`"),
            (
                json!({"and": [{"tag": "vip"}, {"score": "predict.clv", "top_percent": 200}]}),
                "definition.and[1].top_percent",
                "from 1 to 100",
            ),
            (json!({"score": "predict.clv", "top": 20}), "definition.top", "unknown field"),
        ];
        for (definition, field, reason) in cases {
            let e = refused(definition.clone());
            assert_eq!(e.field, field, "{definition}: {e}");
            assert!(e.reason.contains(reason), "{definition}: {e}");
        }
    }

    #[test]
    fn size_is_bounded() {
        let mut deep = json!({"tag": "x"});
        for _ in 0..=MAX_DEPTH {
            deep = json!({"not": deep});
        }
        assert!(refused(deep).reason.contains("deeper"));
        let wide = json!({"or": vec![json!({"tag": "x"}); MAX_NODES]});
        assert!(refused(wide).reason.contains("at most"));
    }

    /// What a key without `pii:read` may not write: tests on personal fields, and values that
    /// could narrow a phone written in free text; everything else is its to write.
    #[test]
    fn personal_references_name_the_node() {
        let refs = |definition: Value| parse(&definition).unwrap().personal_references("definition");
        let refused = [
            (json!({"profile": "name", "op": "contains", "value": "Li"}), "definition.profile"),
            (json!({"profile": "birthday", "op": "eq", "value": "1990-05-01"}), "definition.profile"),
            (json!({"profile": "birthday", "op": "lt", "value": "1990-05-01"}), "definition.profile"),
            (json!({"attribute": "receiver_mobile", "op": "eq", "value": "13812345678"}), "definition.attribute"),
            (json!({"attribute": "收货人", "op": "in", "value": ["李明"]}), "definition.attribute"),
            (json!({"attribute": "note", "op": "contains", "value": "1381"}), "definition.value"),
            (json!({"attribute": "note", "op": "contains", "value": "138 1"}), "definition.value"),
            (json!({"attribute": "note", "op": "gt", "value": "call 13"}), "definition.value"),
            (json!({"attribute": "note", "op": "gte", "value": "ming.l"}), "definition.value"),
            (json!({"attribute": "note", "op": "contains", "value": "vip 2"}), "definition.value"),
            (json!({"attribute": "note", "op": "contains", "value": 1381234}), "definition.value"),
            (json!({"attribute": "qq", "op": "in", "value": [1, 13810005678.0]}), "definition.value"),
            (json!({"attribute": "qq", "op": "lt", "value": 8613900000000.0}), "definition.value"),
            (json!({"attribute": "note", "op": "contains", "value": "ming@"}), "definition.value"),
            (json!({"attribute": "note", "op": "eq", "value": "+86 138 1234 5678"}), "definition.value"),
            (json!({"attribute": "qq", "op": "eq", "value": 13812345678_i64}), "definition.value"),
            (json!({"attribute": "qq", "op": "gt", "value": 13812345678_i64}), "definition.value"),
            (json!({"attribute": "note", "op": "between", "value": ["a", "a1234"]}), "definition.value"),
        ];
        for (condition, at) in refused {
            let wrapped = json!({"and": [{"tag": "vip"}, {"not": condition.clone()}]});
            let found = refs(wrapped);
            let want = at.replacen("definition", "definition.and[1].not", 1);
            assert_eq!(found, vec![want], "{condition}");
        }
        for allowed in [
            json!({"profile": "name", "op": "exists", "value": true}),
            json!({"profile": "birthday", "op": "within_next_days", "value": 7}),
            json!({"profile": "birthday", "op": "within_last_days", "value": 30}),
            json!({"profile": "birthday", "op": "exists", "value": false}),
            json!({"attribute": "receiver_mobile", "op": "exists", "value": true}),
            json!({"profile": "city", "op": "in", "value": ["杭州", "上海"]}),
            json!({"attribute": "vip_level", "op": "gte", "value": 3}),
            json!({"attribute": "order_no", "op": "eq", "value": "2024110512345678"}),
            json!({"attribute": "member_no", "op": "in", "value": [20241105123_i64, 12.5]}),
            json!({"attribute": "vip_expires", "op": "lt", "value": "2027-01-01"}),
            json!({"attribute": "seen_at", "op": "between", "value": ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00+08:00"]}),
            json!({"attribute": "last_login_ms", "op": "gt", "value": 1_733_000_000_000_i64}),
            json!({"attribute": "qq", "op": "gt", "value": 12_999_999_999_i64}),
            json!({"profile": "city", "op": "contains", "value": "州"}),
            json!({"stat": "total_spent", "op": "gte", "value": 100_000_000_000_i64}),
            json!({"score": "predict.clv", "op": "gte", "value": 1_500_000_000.0}),
            json!({"profile": "created_at", "op": "gte", "value": "2024-01-01"}),
        ] {
            assert_eq!(refs(allowed.clone()), Vec::<String>::new(), "{allowed}");
        }
    }
}
