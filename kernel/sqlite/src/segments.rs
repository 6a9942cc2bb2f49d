//! Segments: the segment language compiled to SQL, versioned definitions,
//! members, snapshots, daily counts, and the tracked membership behind
//! `segment.entered` / `segment.exited` events.
//!
//! A definition compiles to one boolean SQL expression over `customers c`
//! whose values are all bound parameters; windows and relative dates are
//! resolved against the `now` of the query, so results are exact at query
//! time. Tracked membership (`segment_members`) is decided by the core
//! (`kith_core::segments`): its writers mark customers whose data changed
//! (`segment_dirty`), [`kith_core::segments::refresh`] re-evaluates them, and
//! [`kith_core::segments::sweep`] re-evaluates time-based definitions whole and
//! records the daily counts; this module evaluates definitions for it.
//!
//! A definition compiles in one of two shapes, by its [`Reach`]: over the
//! whole shop (counts, pages, snapshots, sweeps) a tag or score condition
//! is a set of customer ids read once from a shop-wide index; over a few
//! named customers (dirty ones, a journey's branch) it is a lookup per
//! customer, so nothing is read for the rest of the shop.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use kith_domain::FieldError;
use kith_domain::model::Customer;
use kith_domain::segments::{
    self, Condition, CountRange, Item, Node, ProfileField, Scalar, ScoreTest, Segment, SegmentVersion, Snapshot, Stat, Test, Window,
};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::{Value, json};

use crate::customers::{CUSTOMER_COLUMNS, load_records, row_to_customer};
use kith_core::ports::LiveSegment;

use crate::{Result, StoreError, from_ms, json_text, parse_json, shops, to_ms};

const DAY_MS: i64 = 86_400_000;
/// How deep segments may refer to segments.
const MAX_REFERENCE_DEPTH: usize = 5;

/// A compiled definition: SQL over `customers c` and its parameters, in order.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub sql: String,
    pub params: Vec<Sql>,
    /// Membership can change with time alone (here or in a referenced segment).
    pub timed: bool,
    /// Score models it ranks customers by (`top_percent`, `bottom_percent`, here or in a
    /// referenced segment): membership moves with any customer's score of these.
    pub ranked: BTreeSet<String>,
    /// The customers it was compiled to be evaluated for.
    pub reach: Reach,
}

impl Compiled {
    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn bind(&mut self, value: impl Into<Sql>) {
        self.sql.push('?');
        self.params.push(value.into());
    }

    fn new(reach: Reach) -> Compiled {
        Compiled { sql: String::new(), params: Vec::new(), timed: false, ranked: BTreeSet::new(), reach }
    }

    fn append(&mut self, other: &Compiled) {
        self.sql.push_str(&other.sql);
        self.params.extend(other.params.iter().cloned());
        self.timed |= other.timed;
        self.ranked.extend(other.ranked.iter().cloned());
    }

    /// The shop's active customers that match, as a `WHERE` clause over `customers c`
    /// and its parameters, to which a caller may append more conditions.
    fn scoped(&self, shop_id: i64) -> (String, Vec<Sql>) {
        let mut params = vec![Sql::Integer(shop_id)];
        params.extend(self.params.iter().cloned());
        (format!("c.shop_id = ? AND c.merged_into IS NULL AND ({})", self.sql), params)
    }
}

fn scalar(value: &Scalar) -> Sql {
    match value {
        Scalar::Text(s) => Sql::Text(s.clone()),
        Scalar::Integer(i) => Sql::Integer(*i),
        Scalar::Real(r) => Sql::Real(*r),
        Scalar::Bool(b) => Sql::Integer(i64::from(*b)),
        Scalar::Date(d) => Sql::Text(d.format("%Y-%m-%d").to_string()),
    }
}

pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> Sql {
    Sql::Text(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()))
}

/// Which customers a compiled definition will be evaluated for; it decides the
/// shape of the SQL, never its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every customer of the shop. Conditions on tags and scores become
    /// `c.id IN (SELECT customer_id …)`: a set computed once from a shop-wide
    /// index (`tags_shop_tag`, `scores_shop_model`), which SQLite also walks to
    /// drive the outer scan when it is the first such term of an `and`. Looked
    /// up per customer instead, a condition costs an index seek for every
    /// customer of the shop. Behaviours and purchases are looked up per
    /// customer in both reaches: their indexes lead with the customer.
    Shop,
    /// A few customers named by id (`c.id IN (…)` or `c.id = ?`). Conditions are
    /// correlated lookups by customer id, which read nothing of other customers.
    Customers,
}

/// What a definition is compiled against: the shop, its zone, the moment of evaluation.
pub(crate) struct Compiler<'a> {
    conn: &'a Connection,
    shop_id: i64,
    zone: Tz,
    now: DateTime<Utc>,
    reach: Reach,
    /// Segments being expanded, to refuse cycles.
    stack: Vec<i64>,
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(conn: &'a Connection, shop_id: i64, now: DateTime<Utc>, reach: Reach) -> Result<Compiler<'a>> {
        Ok(Compiler { conn, shop_id, zone: shops::zone(conn, shop_id)?, now, reach, stack: Vec::new() })
    }

    /// Compile `node`; `segment` is the segment it belongs to, if saved.
    pub(crate) fn compile(&mut self, node: &Node, segment: Option<i64>) -> Result<Compiled> {
        self.stack = segment.into_iter().collect();
        let mut out = Compiled::new(self.reach);
        self.node(node, &mut out)?;
        Ok(out)
    }

    fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.zone).date_naive()
    }

    fn start_of(&self, day: NaiveDate) -> i64 {
        start_of(self.zone, day)
    }

    fn window(&self, window: &Window) -> (i64, i64) {
        match window {
            Window::LastDays(days) => (to_ms(self.now) - i64::from(*days) * DAY_MS, to_ms(self.now) + 1),
            Window::Between(from, to) => (self.start_of(*from), self.start_of(to.succ_opt().unwrap_or(*to))),
        }
    }

    fn node(&mut self, node: &Node, out: &mut Compiled) -> Result<()> {
        match node {
            Node::And(nodes) if self.reach == Reach::Shop => self.and_over_shop(nodes, out)?,
            Node::And(nodes) | Node::Or(nodes) => {
                let joiner = if matches!(node, Node::And(_)) { " AND " } else { " OR " };
                out.push("(");
                for (i, n) in nodes.iter().enumerate() {
                    if i > 0 {
                        out.push(joiner);
                    }
                    self.node(n, out)?;
                }
                out.push(")");
            }
            Node::Not(inner) => {
                // A condition on a missing value is NULL in SQL; NOT must still yield true or false.
                out.push("(NOT COALESCE(");
                self.node(inner, out)?;
                out.push(", 0))");
            }
            Node::Condition(c) => self.condition(c, out)?,
        }
        Ok(())
    }

    fn condition(&mut self, condition: &Condition, out: &mut Compiled) -> Result<()> {
        match condition {
            Condition::Profile { field, test } => self.profile(*field, test, out),
            Condition::Attribute { key, test } => {
                let path = format!("$.\"{key}\"");
                match test {
                    Test::Contains(value) => {
                        out.push("(CASE json_type(c.attributes, ");
                        out.bind(path.clone());
                        out.push(") WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(c.attributes, ");
                        out.bind(path.clone());
                        out.push(") j WHERE j.value = ");
                        out.bind(scalar(value));
                        out.push(") WHEN 'text' THEN instr(json_extract(c.attributes, ");
                        out.bind(path);
                        out.push("), ");
                        out.bind(scalar(value));
                        out.push(") > 0 ELSE 0 END)");
                    }
                    _ => {
                        let expr = |out: &mut Compiled| {
                            out.push("json_extract(c.attributes, ");
                            out.bind(path.clone());
                            out.push(")");
                        };
                        generic(test, out, expr);
                    }
                }
            }
            Condition::Tag { .. } | Condition::Score { .. } => {
                let (table, alias, range, filter) = self.set_filter(condition).expect("tags and scores have a set filter");
                self.related(out, range, table, alias, |out| out.append(&filter));
            }
            Condition::Stat { stat, test } => {
                if matches!(stat, Stat::DaysSinceFirstOrder | Stat::DaysSinceLastOrder) {
                    out.timed = true;
                }
                let now = to_ms(self.now);
                let stat = *stat;
                generic(test, out, |out| match stat {
                    Stat::TotalSpent => out.push("c.total_spent"),
                    Stat::OrderCount => out.push("c.order_count"),
                    Stat::AverageOrderValue => out.push("(c.total_spent / NULLIF(c.order_count, 0))"),
                    Stat::DaysSinceFirstOrder | Stat::DaysSinceLastOrder => {
                        out.push("((");
                        out.bind(now);
                        out.push(if stat == Stat::DaysSinceFirstOrder { " - c.first_order_at" } else { " - c.last_order_at" });
                        out.push(&format!(") / {DAY_MS})"));
                    }
                    Stat::RefundCount => out.push("c.refund_count"),
                    Stat::RefundAmount => out.push("c.refund_amount"),
                    Stat::Points => out.push("(SELECT COALESCE(SUM(p.points), 0) FROM points_ledger p WHERE p.customer_id = c.id)"),
                });
            }
            Condition::Behaviour { kind, item, window, count } => {
                out.timed |= matches!(window, Window::LastDays(_));
                let (from, to) = self.window(window);
                let kind = *kind;
                // Looked up per customer whatever the reach (`behaviours_kind` leads with the
                // customer): a shop-wide index by kind would serve the whole shop's set, but
                // it made a history import, written customer by customer, 7–29 % slower.
                counted(out, *count, |out| {
                    out.push("FROM behaviours b WHERE b.customer_id = c.id AND b.kind = ");
                    out.bind(kind.as_str().to_owned());
                    out.push(" AND b.occurred_at >= ");
                    out.bind(from);
                    out.push(" AND b.occurred_at < ");
                    out.bind(to);
                    item_filter(out, item, "b");
                });
            }
            Condition::Purchase { item, window, count, spent_at_least } => {
                out.timed |= matches!(window, Window::LastDays(_));
                let (from, to) = self.window(window);
                let orders = |out: &mut Compiled| {
                    out.push("FROM orders o WHERE o.customer_id = c.id AND o.status <> 'refunded' AND o.paid_at >= ");
                    out.bind(from);
                    out.push(" AND o.paid_at < ");
                    out.bind(to);
                };
                let any_item = item.sku.is_none() && item.category.is_none();
                out.push("(");
                counted(out, *count, |out| {
                    orders(out);
                    if !any_item {
                        out.push(" AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id");
                        item_filter(out, item, "i");
                        out.push(")");
                    }
                });
                if let Some(spent) = spent_at_least {
                    if any_item {
                        out.push(" AND (SELECT COALESCE(SUM(o.amount - o.refunded_amount), 0) ");
                        orders(out);
                    } else {
                        out.push(" AND (SELECT COALESCE(SUM(i.quantity * i.unit_price - i.discount), 0) FROM order_items i WHERE i.order_id IN (SELECT o.id ");
                        orders(out);
                        out.push(")");
                        item_filter(out, item, "i");
                    }
                    out.push(") >= ");
                    out.bind(*spent);
                }
                out.push(")");
            }
            Condition::Segment(id) => {
                if self.stack.contains(id) {
                    return Err(StoreError::Invalid(FieldError::new(
                        "definition",
                        format!("segment {id} refers back to itself through {:?}", self.stack),
                    )));
                }
                if self.stack.len() >= MAX_REFERENCE_DEPTH {
                    return Err(StoreError::Invalid(FieldError::new(
                        "definition",
                        format!("segments may refer to segments at most {MAX_REFERENCE_DEPTH} levels deep"),
                    )));
                }
                let Some((_, definition)) = current_definition(self.conn, self.shop_id, *id)? else {
                    return Err(StoreError::Invalid(FieldError::new("definition", format!("segment {id} does not exist in this shop"))));
                };
                let node = segments::parse(&definition).map_err(|e| anyhow::anyhow!("stored segment {id} is invalid: {e}"))?;
                self.stack.push(*id);
                self.node(&node, out)?;
                self.stack.pop();
            }
        }
        Ok(())
    }

    /// An `and` over the whole shop. SQLite drives the outer loop with the first
    /// set (`c.id IN (…)`) of the conjunction and probes the others, so with two
    /// sets or more the smallest goes first: each is counted from its index
    /// range, which costs less than building it (a tag on 70 % of a million
    /// customers and an RFM group of 11 %: 0.49 s first, about 0.2 s second).
    fn and_over_shop(&mut self, nodes: &[Node], out: &mut Compiled) -> Result<()> {
        let mut parts = Vec::with_capacity(nodes.len());
        for node in nodes {
            let mut part = Compiled::new(self.reach);
            self.node(node, &mut part)?;
            let set = match node {
                Node::Condition(c) => self.set_filter(c).filter(|(_, _, range, _)| *range == CountRange { min: 1, max: None }),
                _ => None,
            };
            parts.push((set, None, part));
        }
        if parts.iter().filter(|(set, _, _)| set.is_some()).count() >= 2 {
            for (set, size, _) in &mut parts {
                if let Some((table, alias, _, filter)) = set.take() {
                    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {alias}.shop_id = ?{}", filter.sql);
                    let params = std::iter::once(Sql::Integer(self.shop_id)).chain(filter.params);
                    *size = Some(self.conn.prepare_cached(&sql)?.query_row(params_from_iter(params), |r| r.get::<_, i64>(0))?);
                }
            }
            // Stable: the sets by size, then the other conditions in their order.
            parts.sort_by_key(|(_, size, _)| size.unwrap_or(i64::MAX));
        }
        out.push("(");
        for (i, (_, _, part)) in parts.iter().enumerate() {
            if i > 0 {
                out.push(" AND ");
            }
            out.append(part);
        }
        out.push(")");
        Ok(())
    }

    /// A tag or score condition as a test on rows of its table: the table (`name
    /// alias`), its alias, how many rows must match, and the filter (` AND …`).
    fn set_filter(&self, condition: &Condition) -> Option<(&'static str, &'static str, CountRange, Compiled)> {
        let mut filter = Compiled::new(self.reach);
        match condition {
            Condition::Tag { tag, source, has } => {
                filter.push(" AND t.tag = ");
                filter.bind(tag.clone());
                if let Some(source) = source {
                    filter.push(" AND t.source = ");
                    filter.bind(source.clone());
                }
                let range = if *has { CountRange { min: 1, max: None } } else { CountRange { min: 0, max: Some(0) } };
                Some(("tags t", "t", range, filter))
            }
            Condition::Score { model, test } => {
                filter.push(" AND s.model = ");
                filter.bind(model.clone());
                match test {
                    ScoreTest::Any => {}
                    ScoreTest::Label(codes) => label_test(&mut filter, codes),
                    ScoreTest::Value(test) => {
                        filter.push(" AND ");
                        generic(test, &mut filter, |out| out.push("s.value"));
                    }
                    ScoreTest::TopPercent(percent) | ScoreTest::BottomPercent(percent) => {
                        filter.ranked.insert(model.clone());
                        rank_test(&mut filter, self.shop_id, model, *percent, matches!(test, ScoreTest::TopPercent(_)));
                    }
                }
                Some(("scores s", "s", CountRange { min: 1, max: None }, filter))
            }
            _ => None,
        }
    }

    /// A condition on the customer's rows of `table` (written `name alias`, with a
    /// `shop_id` and a `customer_id` column): that the rows `filter` keeps (its
    /// text starts with ` AND `) number within `range`. Over the shop, "some" and
    /// "none" are a set of ids (see [`Reach`]); otherwise a count per customer.
    fn related(&self, out: &mut Compiled, range: CountRange, table: &str, alias: &str, filter: impl Fn(&mut Compiled)) {
        let set = match (self.reach, range) {
            (Reach::Shop, CountRange { min: 1, max: None }) => Some("c.id IN "),
            (Reach::Shop, CountRange { min: 0, max: Some(0) }) => Some("c.id NOT IN "),
            _ => None,
        };
        match set {
            Some(test) => {
                out.push(test);
                out.push(&format!("(SELECT {alias}.customer_id FROM {table} WHERE {alias}.shop_id = "));
                out.bind(self.shop_id);
                filter(out);
                out.push(")");
            }
            None => counted(out, range, |out| {
                out.push(&format!("FROM {table} WHERE {alias}.customer_id = c.id"));
                filter(out);
            }),
        }
    }

    fn profile(&self, field: ProfileField, test: &Test, out: &mut Compiled) {
        let column = match field {
            ProfileField::Name => "c.name",
            ProfileField::Gender => "c.gender",
            ProfileField::Province => "c.province",
            ProfileField::City => "c.city",
            ProfileField::Tier => "c.tier",
            ProfileField::Birthday => "c.birthday",
            ProfileField::CreatedAt => "c.created_at",
        };
        match (field, test) {
            (ProfileField::Birthday, Test::WithinNextDays(days) | Test::WithinLastDays(days)) => {
                out.timed = true;
                let today = self.today();
                let range: Vec<NaiveDate> = if matches!(test, Test::WithinNextDays(_)) {
                    today.iter_days().take(*days as usize + 1).collect()
                } else {
                    (0..=i64::from(*days)).rev().map(|d| today - Duration::days(d)).collect()
                };
                out.push("substr(c.birthday, 6, 5) IN (SELECT value FROM json_each(");
                out.bind(json_list(&anniversaries(&range)));
                out.push("))");
            }
            (ProfileField::CreatedAt, _) => {
                let day = |s: &Scalar| match s {
                    Scalar::Date(d) => *d,
                    _ => NaiveDate::MIN,
                };
                let next = |d: NaiveDate| self.start_of(d.succ_opt().unwrap_or(d));
                let cmp = |out: &mut Compiled, op: &str, ms: i64| {
                    out.push(&format!("c.created_at {op} "));
                    out.bind(ms);
                };
                match test {
                    Test::Lt(d) => cmp(out, "<", self.start_of(day(d))),
                    Test::Lte(d) => cmp(out, "<", next(day(d))),
                    Test::Gt(d) => cmp(out, ">=", next(day(d))),
                    Test::Gte(d) => cmp(out, ">=", self.start_of(day(d))),
                    Test::Between(a, b) => {
                        out.push("(");
                        cmp(out, ">=", self.start_of(day(a)));
                        out.push(" AND ");
                        cmp(out, "<", next(day(b)));
                        out.push(")");
                    }
                    Test::WithinLastDays(days) => {
                        out.timed = true;
                        cmp(out, ">=", to_ms(self.now) - i64::from(*days) * DAY_MS);
                    }
                    Test::Exists(b) => out.push(if *b { "1" } else { "0" }),
                    // The parser allows no other operator on this field.
                    _ => out.push("0"),
                }
            }
            _ => generic(test, out, |out| out.push(column)),
        }
    }
}

/// The first moment of `day` in `zone`, in milliseconds (the core's [`kith_core::metrics::start_of`]).
pub(crate) fn start_of(zone: Tz, day: NaiveDate) -> i64 {
    to_ms(kith_core::metrics::start_of(zone, day))
}

/// The `MM-DD` anniversaries in `days`; 29 February birthdays are celebrated on the 28th in other years.
pub(crate) fn anniversaries(days: &[NaiveDate]) -> Vec<String> {
    let mut out: Vec<String> = days.iter().map(|d| d.format("%m-%d").to_string()).collect();
    for d in days {
        let leap = NaiveDate::from_ymd_opt(d.format("%Y").to_string().parse().unwrap_or(2000), 2, 29).is_some();
        if !leap && d.format("%m-%d").to_string() == "02-28" {
            out.push("02-29".into());
        }
    }
    out
}

fn item_filter(out: &mut Compiled, item: &Item, alias: &str) {
    if let Some(sku) = &item.sku {
        out.push(&format!(" AND {alias}.sku = "));
        out.bind(sku.clone());
    }
    if let Some(category) = &item.category {
        out.push(&format!(" AND {alias}.category = "));
        out.bind(category.clone());
    }
}

/// A score's label is one of `codes`: the code alone, or the code followed by `|`
/// and its display names (`important-value|重要价值|Important value`). Written as
/// an equality and a range per code, which `scores_shop_model` answers directly
/// (`code|` ≤ label < `code}`, `}` being the character after `|`). A code that
/// holds a `|` itself can only match whole.
fn label_test(out: &mut Compiled, codes: &[String]) {
    out.push(" AND (");
    for (i, code) in codes.iter().enumerate() {
        if i > 0 {
            out.push(" OR ");
        }
        out.push("s.label = ");
        out.bind(code.clone());
        if !code.contains('|') {
            out.push(" OR (s.label >= ");
            out.bind(format!("{code}|"));
            out.push(" AND s.label < ");
            out.bind(format!("{code}}}"));
            out.push(")");
        }
    }
    out.push(")");
}

/// A score's value is within the top (or bottom) `percent` of the shop's values of `model`:
/// at least (at most) the ⌈n·percent/100⌉-th highest (lowest) of the n customers holding
/// it, so every customer tied at the threshold is in and the share may exceed `percent`.
/// The threshold is an uncorrelated subquery, computed once per statement whatever the
/// reach; `scores_shop_model` serves the shop's values of the model.
fn rank_test(out: &mut Compiled, shop_id: i64, model: &str, percent: u8, top: bool) {
    let (cmp, order) = if top { (">=", "DESC") } else { ("<=", "ASC") };
    out.push(&format!(" AND s.value {cmp} (SELECT r.value FROM scores r WHERE r.shop_id = "));
    out.bind(shop_id);
    out.push(" AND r.model = ");
    out.bind(model.to_owned());
    out.push(&format!(" ORDER BY r.value {order} LIMIT 1 OFFSET (SELECT (COUNT(*) * "));
    out.bind(i64::from(percent));
    out.push(" + 99) / 100 - 1 FROM scores n WHERE n.shop_id = ");
    out.bind(shop_id);
    out.push(" AND n.model = ");
    out.bind(model.to_owned());
    out.push("))");
}

/// A count of rows `from` writes (a `FROM … WHERE …` clause) within `range`.
fn counted(out: &mut Compiled, range: CountRange, from: impl Fn(&mut Compiled)) {
    match range {
        CountRange { min: 1, max: None } => {
            out.push("EXISTS (SELECT 1 ");
            from(out);
            out.push(")");
        }
        CountRange { min: 0, max: Some(0) } => {
            out.push("NOT EXISTS (SELECT 1 ");
            from(out);
            out.push(")");
        }
        CountRange { min, max } => {
            out.push("(SELECT COUNT(*) ");
            from(out);
            out.push(")");
            match max {
                Some(max) => {
                    out.push(" BETWEEN ");
                    out.bind(i64::from(min));
                    out.push(" AND ");
                    out.bind(i64::from(max));
                }
                None => {
                    out.push(" >= ");
                    out.bind(i64::from(min));
                }
            }
        }
    }
}

/// A test on the value `expr` writes.
fn generic(test: &Test, out: &mut Compiled, expr: impl Fn(&mut Compiled)) {
    let binary = |out: &mut Compiled, op: &str, value: &Scalar| {
        expr(out);
        out.push(&format!(" {op} "));
        out.bind(scalar(value));
    };
    match test {
        Test::Eq(v) => binary(out, "=", v),
        Test::Ne(v) => binary(out, "IS NOT", v),
        Test::Lt(v) => binary(out, "<", v),
        Test::Lte(v) => binary(out, "<=", v),
        Test::Gt(v) => binary(out, ">", v),
        Test::Gte(v) => binary(out, ">=", v),
        Test::Between(a, b) => {
            out.push("(");
            binary(out, "BETWEEN", a);
            out.push(" AND ");
            out.bind(scalar(b));
            out.push(")");
        }
        Test::In(values) => {
            expr(out);
            out.push(" IN (SELECT value FROM json_each(");
            let list: Vec<Value> = values
                .iter()
                .map(|v| match v {
                    Scalar::Text(s) => json!(s),
                    Scalar::Integer(i) => json!(i),
                    Scalar::Real(r) => json!(r),
                    Scalar::Bool(b) => json!(i64::from(*b)),
                    Scalar::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
                })
                .collect();
            out.bind(json_list(&list));
            out.push("))");
        }
        Test::Contains(v) => {
            out.push("instr(");
            expr(out);
            out.push(", ");
            out.bind(scalar(v));
            out.push(") > 0");
        }
        Test::Exists(true) => {
            expr(out);
            out.push(" IS NOT NULL");
        }
        Test::Exists(false) => {
            expr(out);
            out.push(" IS NULL");
        }
        // Relative dates only reach here on fields the parser refuses them for.
        Test::WithinLastDays(_) | Test::WithinNextDays(_) => out.push("0"),
    }
}

/// The current version and definition of a live segment of the shop.
pub(crate) fn current_definition(conn: &Connection, shop_id: i64, segment_id: i64) -> Result<Option<(i64, Value)>> {
    Ok(conn
        .prepare_cached(
            "SELECT s.version, v.definition FROM segments s JOIN segment_versions v ON v.segment_id = s.id AND v.version = s.version
             WHERE s.id = ?1 AND s.shop_id = ?2 AND s.deleted_at IS NULL",
        )?
        .query_row([segment_id, shop_id], |r| Ok((r.get(0)?, parse_json(&r.get::<_, String>(1)?))))
        .optional()?)
}

/// `version` of a live segment (its current one when `None`) and its definition.
pub(crate) fn version_row(conn: &Connection, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<Option<(i64, Value)>> {
    let row: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT v.version, v.definition FROM segments s JOIN segment_versions v ON v.segment_id = s.id AND v.version = COALESCE(?3, s.version)
             WHERE s.id = ?1 AND s.shop_id = ?2 AND s.deleted_at IS NULL",
        )?
        .query_row(params![segment_id, shop_id, version], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(version, text)| (version, parse_json(&text))))
}

const SEGMENT_COLUMNS: &str = "s.id, s.name, s.description, s.version, v.definition, s.timed, s.created_at, s.updated_at,
     (SELECT COUNT(*) FROM segment_members m WHERE m.segment_id = s.id)";

fn row_to_segment(r: &rusqlite::Row<'_>) -> rusqlite::Result<Segment> {
    Ok(Segment {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        version: r.get(3)?,
        definition: parse_json(&r.get::<_, String>(4)?),
        depends_on_time: r.get(5)?,
        created_at: from_ms(r.get(6)?),
        updated_at: from_ms(r.get(7)?),
        members: r.get(8)?,
    })
}

pub(crate) fn find_segment(conn: &Connection, shop_id: i64, id: i64, at: Option<DateTime<Utc>>) -> Result<Option<Segment>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments s JOIN segment_versions v ON v.segment_id = s.id
           AND v.version = COALESCE((SELECT MAX(version) FROM segment_versions WHERE segment_id = s.id AND created_at <= ?3), s.version)
         WHERE s.id = ?1 AND s.shop_id = ?2 AND s.deleted_at IS NULL AND (?3 IS NULL OR s.created_at <= ?3)"
        ))?
        .query_row(params![id, shop_id, at.map(to_ms)], row_to_segment)
        .optional()?)
}

/// Whether one customer of the shop matches `node` now (journeys' conditions).
pub(crate) fn customer_matches(conn: &Connection, shop_id: i64, node: &Node, customer_id: i64, now: DateTime<Utc>) -> Result<bool> {
    let compiled = Compiler::new(conn, shop_id, now, Reach::Customers)?.compile(node, None)?;
    Ok(!matching(conn, shop_id, &compiled, Some(&[customer_id]))?.is_empty())
}

/// Check that `node` compiles in this shop (its segments exist, no cycle); the error names `field`.
pub(crate) fn check_node(conn: &Connection, shop_id: i64, node: &Node, field: &str, now: DateTime<Utc>) -> Result<()> {
    match Compiler::new(conn, shop_id, now, Reach::Customers)?.compile(node, None) {
        Ok(_) => Ok(()),
        Err(StoreError::Invalid(e)) => Err(StoreError::Invalid(FieldError::new(field, e.reason))),
        Err(other) => Err(other),
    }
}

/// Ids of the shop's active customers among `only` (all when `None`) that match `compiled`.
pub(crate) fn matching(conn: &Connection, shop_id: i64, compiled: &Compiled, only: Option<&[i64]>) -> Result<BTreeSet<i64>> {
    debug_assert_eq!(compiled.reach, if only.is_some() { Reach::Customers } else { Reach::Shop }, "compiled for other customers");
    let (filter, mut params) = compiled.scoped(shop_id);
    let mut sql = format!("SELECT c.id FROM customers c WHERE {filter}");
    if let Some(ids) = only {
        sql.push_str(" AND c.id IN (SELECT value FROM json_each(?))");
        params.push(json_list(ids));
    }
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt.query_map(params_from_iter(params), |r| r.get(0))?.collect::<rusqlite::Result<BTreeSet<i64>>>()?;
    Ok(ids)
}

/// A page of the shop's active customers matching `compiled`, after id `after`.
fn page(conn: &Connection, shop_id: i64, compiled: &Compiled, after: i64, limit: usize) -> Result<Vec<Customer>> {
    let (filter, mut params) = compiled.scoped(shop_id);
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE {filter} AND c.id > ? ORDER BY c.id LIMIT ?");
    params.extend([Sql::Integer(after), Sql::Integer(limit as i64)]);
    let mut stmt = conn.prepare(&sql)?;
    let mut customers = stmt.query_map(params_from_iter(params), row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load_records(conn, shop_id, &mut customers)?;
    Ok(customers)
}

pub(crate) fn count(conn: &Connection, shop_id: i64, compiled: &Compiled) -> Result<i64> {
    let (filter, params) = compiled.scoped(shop_id);
    Ok(conn.prepare(&format!("SELECT COUNT(*) FROM customers c WHERE {filter}"))?.query_row(params_from_iter(params), |r| r.get(0))?)
}

/// The shop's live segments with their current definitions; one that no longer parses is logged and skipped.
pub(crate) fn live_segments(conn: &Connection, shop_id: i64) -> Result<Vec<LiveSegment>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.name, s.version, v.definition FROM segments s
         JOIN segment_versions v ON v.segment_id = s.id AND v.version = s.version
         WHERE s.shop_id = ?1 AND s.deleted_at IS NULL ORDER BY s.id",
    )?;
    let rows = stmt.query_map([shop_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, version, text): (i64, String, i64, String) = row?;
        match segments::parse(&parse_json(&text)) {
            Ok(node) => out.push(LiveSegment { id, name, version, node }),
            Err(e) => tracing::error!(segment = id, error = %e, "stored segment definition is invalid; skipped"),
        }
    }
    Ok(out)
}

/// A new segment at version 1 with its first definition; its id.
#[allow(clippy::too_many_arguments, reason = "a segment's row and its first version's")]
pub(crate) fn insert_segment(
    tx: &Connection,
    shop_id: i64,
    name: &str,
    description: Option<&str>,
    timed: bool,
    definition: &Value,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<i64> {
    let at = to_ms(now);
    tx.execute(
        "INSERT INTO segments (shop_id, name, description, version, timed, created_at, updated_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5)",
        params![shop_id, name, description, timed, at],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO segment_versions (segment_id, version, definition, created_at, created_by) VALUES (?1, 1, ?2, ?3, ?4)",
        params![id, json_text(definition), at, created_by],
    )?;
    Ok(id)
}

/// Set a segment's name, description, version and `timed`.
#[allow(clippy::too_many_arguments, reason = "a segment's row")]
pub(crate) fn update_segment(
    tx: &Connection,
    shop_id: i64,
    id: i64,
    name: &str,
    description: Option<&str>,
    version: i64,
    timed: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.execute(
        "UPDATE segments SET name = ?3, description = ?4, version = ?5, timed = ?6, updated_at = ?7 WHERE id = ?1 AND shop_id = ?2",
        params![id, shop_id, name, description, version, timed, to_ms(now)],
    )?;
    Ok(())
}

/// Store a version of the shop's segment's definition (its shop is the segment's).
pub(crate) fn add_version(
    tx: &Connection,
    shop_id: i64,
    id: i64,
    version: i64,
    definition: &Value,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<()> {
    let inserted = tx.execute(
        "INSERT INTO segment_versions (segment_id, version, definition, created_at, created_by)
         SELECT s.id, ?2, ?3, ?4, ?5 FROM segments s WHERE s.id = ?1 AND s.shop_id = ?6",
        params![id, version, json_text(definition), to_ms(now), created_by, shop_id],
    )?;
    if inserted == 0 {
        // As the foreign key refuses a version of no segment.
        return Err(anyhow::anyhow!("a version of segment {id} of shop {shop_id}, which does not exist").into());
    }
    Ok(())
}

pub(crate) fn set_timed(tx: &Connection, shop_id: i64, id: i64, timed: bool) -> Result<()> {
    tx.prepare_cached("UPDATE segments SET timed = ?2 WHERE id = ?1 AND shop_id = ?3")?.execute(params![id, timed, shop_id])?;
    Ok(())
}

/// Mark a segment deleted and drop its tracked members.
pub(crate) fn delete_segment(tx: &Connection, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<()> {
    tx.execute("UPDATE segments SET deleted_at = ?3, updated_at = ?3 WHERE id = ?1 AND shop_id = ?2", params![id, shop_id, to_ms(now)])?;
    // The members' shop is their segment's.
    tx.execute(
        "DELETE FROM segment_members WHERE segment_id = ?1 AND EXISTS (SELECT 1 FROM segments s WHERE s.id = ?1 AND s.shop_id = ?2)",
        [id, shop_id],
    )?;
    Ok(())
}

pub(crate) fn list_segments(conn: &Connection, shop_id: i64) -> Result<Vec<Segment>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments s JOIN segment_versions v ON v.segment_id = s.id AND v.version = s.version
         WHERE s.shop_id = ?1 AND s.deleted_at IS NULL ORDER BY s.id"
    ))?;
    Ok(stmt.query_map([shop_id], row_to_segment)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn segment_versions(conn: &Connection, shop_id: i64, id: i64) -> Result<Vec<SegmentVersion>> {
    // The versions' shop is their segment's.
    let mut stmt = conn.prepare_cached(
        "SELECT v.version, v.definition, v.created_at, v.created_by FROM segment_versions v JOIN segments s ON s.id = v.segment_id
         WHERE v.segment_id = ?1 AND s.shop_id = ?2 ORDER BY v.version",
    )?;
    let rows = stmt.query_map([id, shop_id], |r| {
        Ok(SegmentVersion {
            version: r.get(0)?,
            definition: parse_json(&r.get::<_, String>(1)?),
            created_at: from_ms(r.get(2)?),
            created_by: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The shop's active customers matching `node` now: how many (when `with_count`) and the
/// first `limit` after `after`, compiled once for both.
#[allow(clippy::too_many_arguments, reason = "the definition and the page's bounds")]
pub(crate) fn audience(
    conn: &Connection,
    shop_id: i64,
    node: &Node,
    segment: Option<i64>,
    after: i64,
    limit: usize,
    with_count: bool,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, Vec<Customer>)> {
    let compiled = Compiler::new(conn, shop_id, now, Reach::Shop)?.compile(node, segment)?;
    let total = if with_count { Some(count(conn, shop_id, &compiled)?) } else { None };
    Ok((total, page(conn, shop_id, &compiled, after, limit)?))
}

/// Freeze who matches `node` now as a new snapshot of the segment: its id and size.
pub(crate) fn take_snapshot(
    tx: &Connection,
    shop_id: i64,
    id: i64,
    version: i64,
    node: &Node,
    now: DateTime<Utc>,
    taken_by: &str,
) -> Result<(i64, i64)> {
    let compiled = Compiler::new(tx, shop_id, now, Reach::Shop)?.compile(node, Some(id))?;
    tx.execute(
        "INSERT INTO segment_snapshots (shop_id, segment_id, version, size, taken_at, taken_by) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
        params![shop_id, id, version, to_ms(now), taken_by],
    )?;
    let snapshot = tx.last_insert_rowid();
    let (filter, scoped) = compiled.scoped(shop_id);
    let sql = format!("INSERT INTO segment_snapshot_members (snapshot_id, customer_id) SELECT ?, c.id FROM customers c WHERE {filter}");
    let mut params = vec![Sql::Integer(snapshot)];
    params.extend(scoped);
    let size = tx.prepare(&sql)?.execute(params_from_iter(params))?;
    tx.execute("UPDATE segment_snapshots SET size = ?2 WHERE id = ?1 AND shop_id = ?3", params![snapshot, size as i64, shop_id])?;
    Ok((snapshot, size as i64))
}

pub(crate) fn list_snapshots(conn: &Connection, shop_id: i64, id: i64) -> Result<Vec<Snapshot>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, segment_id, version, size, taken_at, taken_by FROM segment_snapshots WHERE shop_id = ?1 AND segment_id = ?2 ORDER BY id DESC",
    )?;
    Ok(stmt.query_map([shop_id, id], row_to_snapshot)?.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A page of the shop's snapshot's members with their data as it is now.
pub(crate) fn snapshot_members(conn: &Connection, shop_id: i64, snapshot: i64, after: i64, limit: usize) -> Result<Vec<Customer>> {
    // The members' shop is their snapshot's.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM segment_snapshot_members m JOIN segment_snapshots n ON n.id = m.snapshot_id
           JOIN customers c ON c.id = m.customer_id AND c.shop_id = n.shop_id
         WHERE m.snapshot_id = ?1 AND n.shop_id = ?4 AND m.customer_id > ?2 ORDER BY m.customer_id LIMIT ?3"
    ))?;
    let mut customers =
        stmt.query_map(params![snapshot, after, limit as i64, shop_id], row_to_customer)?.collect::<rusqlite::Result<Vec<_>>>()?;
    load_records(conn, shop_id, &mut customers)?;
    Ok(customers)
}

/// The shop's segment's recorded daily counts up to `to`, by day.
pub(crate) fn segment_counts(conn: &Connection, shop_id: i64, id: i64, to: NaiveDate) -> Result<Vec<(NaiveDate, i64)>> {
    // The counts' shop is their segment's.
    let rows = conn
        .prepare_cached(
            "SELECT n.day, n.members FROM segment_counts n JOIN segments s ON s.id = n.segment_id
             WHERE n.segment_id = ?1 AND s.shop_id = ?3 AND n.day <= ?2 ORDER BY n.day",
        )?
        .query_map(params![id, to.to_string(), shop_id], |r| {
            let day: String = r.get(0)?;
            let day = day
                .parse::<NaiveDate>()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
            Ok((day, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// After a write changed scores of `models` in the shop, mark the segments that rank
/// customers by one of them (directly or through a referenced segment) for a sweep, which
/// re-evaluates them whole: a customer's rank moves with everyone else's score, which the
/// per-customer marks of `segment_dirty` cannot follow. A segment not swept for
/// [`kith_core::segments::RANK_SWEEP_GAP`] is swept on the next pass; one swept since waits for the gap to
/// pass, so a run writing scores batch after batch costs a whole re-evaluation a minute,
/// not one a batch.
///
/// A mark is `swept_at` negated (the last sweep's time, below zero), one lower at each
/// further mark: a sweep that read the segment before a mark sees that it changed and
/// leaves it marked. Other writes that move scores (merges, erasure) are caught by the
/// hourly sweep.
pub(crate) fn ranks_moved(tx: &Connection, shop_id: i64, models: &BTreeSet<String>, now: DateTime<Utc>) -> Result<()> {
    // Most shops rank by nothing: one look at the definitions' text before parsing them.
    let ranking: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM segments s JOIN segment_versions v ON v.segment_id = s.id AND v.version = s.version
             WHERE s.shop_id = ?1 AND s.deleted_at IS NULL AND instr(v.definition, '_percent') > 0)",
        )?
        .query_row([shop_id], |r| r.get(0))?;
    if models.is_empty() || !ranking {
        return Ok(());
    }
    for segment in live_segments(tx, shop_id)? {
        // Compiled per customer for its `ranked` alone, which reads nothing of the shop.
        let Ok(compiled) = Compiler::new(tx, shop_id, now, Reach::Customers)?.compile(&segment.node, Some(segment.id)) else { continue };
        if compiled.ranked.iter().any(|m| models.contains(m)) {
            tx.prepare_cached(
                "UPDATE segments SET swept_at = CASE WHEN swept_at < 0 THEN swept_at - 1 ELSE -COALESCE(swept_at, 0) - 1 END
                 WHERE id = ?1 AND shop_id = ?2",
            )?
            .execute([segment.id, shop_id])?;
        }
    }
    Ok(())
}

fn row_to_snapshot(r: &rusqlite::Row<'_>) -> rusqlite::Result<Snapshot> {
    Ok(Snapshot {
        id: r.get(0)?,
        segment_id: r.get(1)?,
        version: r.get(2)?,
        size: r.get(3)?,
        taken_at: from_ms(r.get(4)?),
        taken_by: r.get(5)?,
    })
}

pub(crate) fn snapshot_row(conn: &Connection, shop_id: i64, segment_id: i64, id: i64) -> Result<Option<Snapshot>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, segment_id, version, size, taken_at, taken_by FROM segment_snapshots WHERE id = ?1 AND shop_id = ?2 AND segment_id = ?3",
        )?
        .query_row([id, shop_id, segment_id], row_to_snapshot)
        .optional()?)
}
