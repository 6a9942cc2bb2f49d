//! Segments on PostgreSQL: the segment language compiled to SQL, versioned definitions,
//! members, snapshots, daily counts, and the tracked membership behind
//! `segment.entered` / `segment.exited` events (kith-sqlite's `segments`, translated).
//!
//! A definition compiles to one boolean SQL expression over `customers c` whose values
//! are all bound parameters; windows and relative dates are resolved against the `now`
//! of the query, so results are exact at query time. Tracked membership
//! (`segment_members`) is decided by the core (`kith_core::segments`); this module
//! evaluates definitions for it.
//!
//! A definition compiles in one of two shapes, by its [`Reach`]: over the whole shop
//! (counts, pages, snapshots, sweeps) a tag or score condition is a set of customer ids
//! read once from a shop-wide index; over a few named customers (dirty ones, a
//! journey's branch) it is a lookup per customer, so nothing is read for the rest of
//! the shop.
//!
//! Values are compared as SQLite compares them, which the definitions were written
//! for: numbers by value and below any text, text by bytes. A profile column is text
//! (a number it is compared with is compared as its text, SQLite's text affinity); a
//! stat is a number (a text that reads as a number is that number on a column, SQLite's
//! numeric affinity); a JSON attribute is what its JSON type says (a boolean is 1 or 0,
//! an array or object its JSON text), never converted. PostgreSQL would refuse to
//! compare a number with a text, or fail on a bad cast: every comparison is written per
//! type, and a number is only cast from a JSON value whose type is `number`.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use kith_core::ports::LiveSegment;
use kith_domain::FieldError;
use kith_domain::model::Customer;
use kith_domain::segments::{
    self, Condition, CountRange, Item, Node, ProfileField, Scalar, ScoreTest, Segment, SegmentVersion, Snapshot, Stat, Test, Window,
};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::pg::{CoreResult as Result, Pg, get, millis, time};
use crate::rows::{CUSTOMER_COLUMNS, Records, load_records, row_to_customer};

const DAY_MS: i64 = 86_400_000;
/// How deep segments may refer to segments.
const MAX_REFERENCE_DEPTH: usize = 5;

/// A bound value of a compiled definition; written `?::TYPE` in its SQL, numbered
/// `$n` when the statement is run ([`numbered`]).
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
    Texts(Vec<String>),
    Ints(Vec<i64>),
}

impl Param {
    fn value(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Int(v) => v,
            Param::Text(v) => v,
            Param::Texts(v) => v,
            Param::Ints(v) => v,
        }
    }

    fn cast(&self) -> &'static str {
        match self {
            Param::Int(_) => "?::BIGINT",
            Param::Text(_) => "?::TEXT",
            Param::Texts(_) => "?::TEXT[]",
            Param::Ints(_) => "?::BIGINT[]",
        }
    }
}

/// A compiled definition: SQL over `customers c` and its parameters, in order.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// Parameters are written `?` (with their type): see [`numbered`].
    pub sql: String,
    pub params: Vec<Param>,
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

    fn bind(&mut self, value: Param) {
        self.sql.push_str(value.cast());
        self.params.push(value);
    }

    fn int(&mut self, value: i64) {
        self.bind(Param::Int(value));
    }

    fn text(&mut self, value: impl Into<String>) {
        self.bind(Param::Text(value.into()));
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
    fn scoped(&self, shop_id: i64) -> (String, Vec<Param>) {
        let mut params = vec![Param::Int(shop_id)];
        params.extend(self.params.iter().cloned());
        (format!("c.shop_id = ?::BIGINT AND c.merged_into IS NULL AND ({})", self.sql), params)
    }
}

/// `sql` with its `?` numbered `$1`, `$2` … in order (the compiler writes no other `?`).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Rows of built `sql` (written with `?`) with `params`.
fn query(pg: &Pg<'_>, sql: &str, params: &[Param]) -> Result<Vec<Row>> {
    let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::value).collect();
    pg.query_built(&numbered(sql), &values)
}

/// Run built `sql` (written with `?`) with `params`; how many rows it changed.
fn execute(pg: &Pg<'_>, sql: &str, params: &[Param]) -> Result<u64> {
    let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::value).collect();
    pg.execute_built(&numbered(sql), &values)
}

/// A scalar as SQLite's text of it (`CAST(x AS TEXT)`): a real keeps a `.0`.
fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::Text(s) => s.clone(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::Real(r) => real_text(*r),
        Scalar::Bool(b) => i64::from(*b).to_string(),
        Scalar::Date(d) => d.format("%Y-%m-%d").to_string(),
    }
}

fn real_text(r: f64) -> String {
    if r.is_finite() && r.fract() == 0.0 && r.abs() < 1e15 { format!("{r:.1}") } else { format!("{r}") }
}

/// Whether `text` is a number as SQLite's numeric affinity reads one.
fn numeric_text(text: &str) -> Option<String> {
    let t = text.trim();
    let plain = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && t.chars().any(|c| c.is_ascii_digit());
    (plain && t.parse::<f64>().is_ok_and(f64::is_finite)).then(|| t.to_owned())
}

/// What a compared value is, which decides how SQLite compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A text column: a number compared with it is compared as text.
    Text,
    /// A number; `affinity` when it is a column, where a text that reads as a number is
    /// compared as that number.
    Number { affinity: bool },
    /// A JSON value (`jsonb`, or NULL when missing): its own type, no conversion.
    Json,
}

/// A literal as SQLite compares it with a value of `kind`.
enum Literal {
    /// Its text as NUMERIC's input.
    Number(String),
    Text(String),
}

fn literal(kind: Kind, value: &Scalar) -> Literal {
    match (kind, value) {
        (Kind::Text, v) => Literal::Text(scalar_text(v)),
        (_, Scalar::Integer(i)) => Literal::Number(i.to_string()),
        (_, Scalar::Real(r)) => Literal::Number(format!("{r}")),
        (_, Scalar::Bool(b)) => Literal::Number(i64::from(*b).to_string()),
        (Kind::Number { affinity: true }, Scalar::Text(t)) => match numeric_text(t) {
            Some(n) => Literal::Number(n),
            None => Literal::Text(t.clone()),
        },
        (_, v) => Literal::Text(scalar_text(v)),
    }
}

/// Whether a number `op` a text holds (numbers sort below text); `number_first` when the
/// number is the left operand.
fn number_text(op: &str, number_first: bool) -> bool {
    let less = matches!(op, "<" | "<=");
    let greater = matches!(op, ">" | ">=");
    if number_first { less } else { greater }
}

fn truth(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// `value op literal`, as SQLite compares them: NULL when the value is missing.
fn compare(out: &mut Compiled, kind: Kind, expr: &dyn Fn(&mut Compiled), op: &str, value: &Scalar) {
    match (kind, literal(kind, value)) {
        (Kind::Json, literal) => {
            out.push("(CASE jsonb_typeof(");
            expr(out);
            out.push(")");
            match literal {
                Literal::Number(n) => {
                    out.push(" WHEN 'number' THEN (");
                    expr(out);
                    out.push(&format!(" #>> '{{}}')::NUMERIC {op} "));
                    out.text(n.clone());
                    out.push("::NUMERIC WHEN 'boolean' THEN (");
                    expr(out);
                    out.push(&format!(")::BOOLEAN::INT {op} "));
                    out.text(n);
                    out.push("::NUMERIC");
                    let c = truth(number_text(op, false));
                    out.push(&format!(" WHEN 'string' THEN {c} WHEN 'array' THEN {c} WHEN 'object' THEN {c} END)"));
                }
                Literal::Text(s) => {
                    out.push(" WHEN 'string' THEN (");
                    expr(out);
                    out.push(&format!(" #>> '{{}}') COLLATE \"C\" {op} "));
                    out.text(s.clone());
                    for json in ["array", "object"] {
                        out.push(&format!(" WHEN '{json}' THEN ("));
                        expr(out);
                        out.push(&format!(")::TEXT COLLATE \"C\" {op} "));
                        out.text(s.clone());
                    }
                    let c = truth(number_text(op, true));
                    out.push(&format!(" WHEN 'number' THEN {c} WHEN 'boolean' THEN {c} END)"));
                }
            }
        }
        (Kind::Number { .. }, Literal::Number(n)) => {
            out.push("(");
            expr(out);
            out.push(&format!(" {op} "));
            out.text(n);
            out.push("::NUMERIC)");
        }
        (Kind::Number { .. }, Literal::Text(_)) => {
            if number_text(op, true) {
                out.push("(");
                expr(out);
                out.push(" IS NOT NULL)");
            } else {
                out.push("FALSE");
            }
        }
        (Kind::Text, Literal::Text(s)) => {
            out.push("(");
            expr(out);
            out.push(&format!(" {op} "));
            out.text(s);
            out.push(")");
        }
        (Kind::Text, Literal::Number(_)) => unreachable!("a text column compares with text"),
    }
}

/// The value as SQLite's text of it (`instr`'s operand).
fn as_text(out: &mut Compiled, kind: Kind, expr: &dyn Fn(&mut Compiled)) {
    match kind {
        Kind::Text => expr(out),
        Kind::Number { .. } => {
            out.push("(");
            expr(out);
            out.push(")::TEXT");
        }
        Kind::Json => {
            out.push("(CASE jsonb_typeof(");
            expr(out);
            out.push(") WHEN 'string' THEN (");
            expr(out);
            out.push(" #>> '{}') WHEN 'number' THEN (");
            expr(out);
            out.push(" #>> '{}') WHEN 'boolean' THEN (");
            expr(out);
            out.push(")::BOOLEAN::INT::TEXT WHEN 'array' THEN (");
            expr(out);
            out.push(")::TEXT WHEN 'object' THEN (");
            expr(out);
            out.push(")::TEXT END)");
        }
    }
}

/// A test on the value `expr` writes, of `kind`.
fn generic(test: &Test, out: &mut Compiled, kind: Kind, expr: &dyn Fn(&mut Compiled)) {
    match test {
        Test::Eq(v) => compare(out, kind, expr, "=", v),
        // `IS NOT`: a missing value differs.
        Test::Ne(v) => {
            out.push("(NOT COALESCE(");
            compare(out, kind, expr, "=", v);
            out.push(", FALSE))");
        }
        Test::Lt(v) => compare(out, kind, expr, "<", v),
        Test::Lte(v) => compare(out, kind, expr, "<=", v),
        Test::Gt(v) => compare(out, kind, expr, ">", v),
        Test::Gte(v) => compare(out, kind, expr, ">=", v),
        Test::Between(a, b) => {
            out.push("(");
            compare(out, kind, expr, ">=", a);
            out.push(" AND ");
            compare(out, kind, expr, "<=", b);
            out.push(")");
        }
        Test::In(values) => {
            if values.is_empty() {
                out.push("FALSE");
                return;
            }
            out.push("(");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(" OR ");
                }
                compare(out, kind, expr, "=", v);
            }
            out.push(")");
        }
        Test::Contains(v) => {
            out.push("(strpos(");
            as_text(out, kind, expr);
            out.push(", ");
            out.text(scalar_text(v));
            out.push(") > 0)");
        }
        Test::Exists(exists) => match kind {
            Kind::Json => {
                out.push("(COALESCE(jsonb_typeof(");
                expr(out);
                out.push(if *exists { "), 'null') <> 'null')" } else { "), 'null') = 'null')" });
            }
            _ => {
                out.push("(");
                expr(out);
                out.push(if *exists { " IS NOT NULL)" } else { " IS NULL)" });
            }
        },
        // Relative dates only reach here on fields the parser refuses them for.
        Test::WithinLastDays(_) | Test::WithinNextDays(_) => out.push("FALSE"),
    }
}

/// Which customers a compiled definition will be evaluated for; it decides the shape
/// of the SQL, never its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Every customer of the shop. Conditions on tags and scores become `c.id IN
    /// (SELECT customer_id …)`: a set computed once from a shop-wide index
    /// (`tags_shop_tag`, `scores_shop_model`). Behaviours and purchases are looked up
    /// per customer in both reaches: their indexes lead with the customer.
    Shop,
    /// A few customers named by id (`c.id = ANY (…)`). Conditions are correlated
    /// lookups by customer id, which read nothing of other customers.
    Customers,
}

/// The shop's time zone (UTC if the stored name no longer parses).
fn zone(pg: &Pg<'_>, shop_id: i64) -> Result<Tz> {
    let row = pg.query_opt("SELECT time_zone FROM shops WHERE id = $1", &[&shop_id])?;
    match row {
        Some(row) => Ok(get::<String>(&row, 0)?.parse().unwrap_or(Tz::UTC)),
        None => Err(kith_core::Error::NotFound(format!("shop {shop_id}"))),
    }
}

fn invalid(reason: String) -> kith_core::Error {
    kith_core::Error::Invalid(FieldError::new("definition", reason))
}

/// What a definition is compiled against: the shop, its zone, the moment of evaluation.
pub(crate) struct Compiler<'a, 't> {
    pg: &'a Pg<'t>,
    shop_id: i64,
    zone: Tz,
    now: DateTime<Utc>,
    reach: Reach,
    /// Segments being expanded, to refuse cycles.
    stack: Vec<i64>,
}

impl<'a, 't> Compiler<'a, 't> {
    pub(crate) fn new(pg: &'a Pg<'t>, shop_id: i64, now: DateTime<Utc>, reach: Reach) -> Result<Compiler<'a, 't>> {
        Ok(Compiler { pg, shop_id, zone: zone(pg, shop_id)?, now, reach, stack: Vec::new() })
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
            Window::LastDays(days) => (millis(self.now) - i64::from(*days) * DAY_MS, millis(self.now) + 1),
            Window::Between(from, to) => (self.start_of(*from), self.start_of(to.succ_opt().unwrap_or(*to))),
        }
    }

    fn node(&mut self, node: &Node, out: &mut Compiled) -> Result<()> {
        match node {
            // SQLite's compiler puts the smallest of several tag and score sets of an `and`
            // first, as its planner drives the scan with the first; PostgreSQL's planner
            // orders the terms itself.
            Node::And(nodes) | Node::Or(nodes) => {
                let joiner = if matches!(node, Node::And(_)) { " AND " } else { " OR " };
                out.push("(");
                for (i, n) in nodes.iter().enumerate() {
                    if i > 0 {
                        out.push(joiner);
                    }
                    self.node(n, out)?;
                }
                if nodes.is_empty() {
                    out.push(truth(matches!(node, Node::And(_))));
                }
                out.push(")");
            }
            Node::Not(inner) => {
                // A condition on a missing value is NULL in SQL; NOT must still yield true or false.
                out.push("(NOT COALESCE(");
                self.node(inner, out)?;
                out.push(", FALSE))");
            }
            Node::Condition(c) => self.condition(c, out)?,
        }
        Ok(())
    }

    fn condition(&mut self, condition: &Condition, out: &mut Compiled) -> Result<()> {
        match condition {
            Condition::Profile { field, test } => self.profile(*field, test, out),
            Condition::Attribute { key, test } => {
                let key = key.clone();
                let json = move |out: &mut Compiled| {
                    out.push("(CASE WHEN strpos(c.attributes, '\\u0000') = 0 THEN c.attributes::jsonb END -> ");
                    out.text(key.clone());
                    out.push(")");
                };
                match test {
                    Test::Contains(value) => {
                        // An array holds the value (compared as SQLite compares JSON values),
                        // or a text holds it.
                        out.push("(CASE jsonb_typeof(");
                        json(out);
                        out.push(") WHEN 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements(");
                        json(out);
                        out.push(") j(v) WHERE ");
                        compare(out, Kind::Json, &|out: &mut Compiled| out.push("j.v"), "=", value);
                        out.push(") WHEN 'string' THEN strpos(");
                        json(out);
                        out.push(" #>> '{}', ");
                        out.text(scalar_text(value));
                        out.push(") > 0 ELSE FALSE END)");
                    }
                    _ => generic(test, out, Kind::Json, &json),
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
                let now = millis(self.now);
                let stat = *stat;
                let column = matches!(stat, Stat::TotalSpent | Stat::OrderCount | Stat::RefundCount | Stat::RefundAmount);
                let expr = move |out: &mut Compiled| {
                    match stat {
                    Stat::TotalSpent => out.push("c.total_spent"),
                    Stat::OrderCount => out.push("c.order_count"),
                    Stat::AverageOrderValue => out.push("(c.total_spent / NULLIF(c.order_count, 0))"),
                    Stat::DaysSinceFirstOrder | Stat::DaysSinceLastOrder => {
                        out.push("((");
                        out.int(now);
                        out.push(if stat == Stat::DaysSinceFirstOrder { " - c.first_order_at" } else { " - c.last_order_at" });
                        out.push(&format!(") / {DAY_MS})"));
                    }
                    Stat::RefundCount => out.push("c.refund_count"),
                    Stat::RefundAmount => out.push("c.refund_amount"),
                    Stat::Points => out.push(
                        "(SELECT COALESCE(SUM(p.points), 0)::BIGINT FROM points_ledger p WHERE p.shop_id = c.shop_id AND p.customer_id = c.id)",
                    ),
                }
                };
                generic(test, out, Kind::Number { affinity: column }, &expr);
            }
            Condition::Behaviour { kind, item, window, count } => {
                out.timed |= matches!(window, Window::LastDays(_));
                let (from, to) = self.window(window);
                let kind = *kind;
                // Looked up per customer whatever the reach (`behaviours_kind` leads with the customer).
                counted(out, *count, |out| {
                    out.push("FROM behaviours b WHERE b.customer_id = c.id AND b.shop_id = c.shop_id AND b.kind = ");
                    out.text(kind.as_str());
                    out.push(" AND b.occurred_at >= ");
                    out.int(from);
                    out.push(" AND b.occurred_at < ");
                    out.int(to);
                    item_filter(out, item, "b");
                });
            }
            Condition::Purchase { item, window, count, spent_at_least } => {
                out.timed |= matches!(window, Window::LastDays(_));
                let (from, to) = self.window(window);
                let orders = |out: &mut Compiled| {
                    out.push(
                        "FROM orders o WHERE o.customer_id = c.id AND o.shop_id = c.shop_id AND o.status <> 'refunded' AND o.paid_at >= ",
                    );
                    out.int(from);
                    out.push(" AND o.paid_at < ");
                    out.int(to);
                };
                let any_item = item.sku.is_none() && item.category.is_none();
                out.push("(");
                counted(out, *count, |out| {
                    orders(out);
                    if !any_item {
                        out.push(" AND EXISTS (SELECT 1 FROM order_items i WHERE i.shop_id = o.shop_id AND i.order_id = o.id");
                        item_filter(out, item, "i");
                        out.push(")");
                    }
                });
                if let Some(spent) = spent_at_least {
                    if any_item {
                        out.push(" AND (SELECT COALESCE(SUM(o.amount - o.refunded_amount), 0)::BIGINT ");
                        orders(out);
                    } else {
                        out.push(
                            " AND (SELECT COALESCE(SUM(i.quantity * i.unit_price - i.discount), 0)::BIGINT FROM order_items i \
                             WHERE i.shop_id = c.shop_id AND i.order_id IN (SELECT o.id ",
                        );
                        orders(out);
                        out.push(")");
                        item_filter(out, item, "i");
                    }
                    out.push(") >= ");
                    out.int(*spent);
                }
                out.push(")");
            }
            Condition::Segment(id) => {
                if self.stack.contains(id) {
                    return Err(invalid(format!("segment {id} refers back to itself through {:?}", self.stack)));
                }
                if self.stack.len() >= MAX_REFERENCE_DEPTH {
                    return Err(invalid(format!("segments may refer to segments at most {MAX_REFERENCE_DEPTH} levels deep")));
                }
                let Some((_, definition)) = current_definition(self.pg, self.shop_id, *id)? else {
                    return Err(invalid(format!("segment {id} does not exist in this shop")));
                };
                let node = segments::parse(&definition).map_err(|e| anyhow::anyhow!("stored segment {id} is invalid: {e}"))?;
                self.stack.push(*id);
                self.node(&node, out)?;
                self.stack.pop();
            }
        }
        Ok(())
    }

    /// A tag or score condition as a test on rows of its table: the table (`name
    /// alias`), its alias, how many rows must match, and the filter (` AND …`).
    fn set_filter(&self, condition: &Condition) -> Option<(&'static str, &'static str, CountRange, Compiled)> {
        let mut filter = Compiled::new(self.reach);
        match condition {
            Condition::Tag { tag, source, has } => {
                filter.push(" AND t.tag = ");
                filter.text(tag.clone());
                if let Some(source) = source {
                    filter.push(" AND t.source = ");
                    filter.text(source.clone());
                }
                let range = if *has { CountRange { min: 1, max: None } } else { CountRange { min: 0, max: Some(0) } };
                Some(("tags t", "t", range, filter))
            }
            Condition::Score { model, test } => {
                filter.push(" AND s.model = ");
                filter.text(model.clone());
                match test {
                    ScoreTest::Any => {}
                    ScoreTest::Label(codes) => label_test(&mut filter, codes),
                    ScoreTest::Value(test) => {
                        filter.push(" AND ");
                        generic(test, &mut filter, Kind::Number { affinity: true }, &|out: &mut Compiled| out.push("s.value"));
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
    /// `shop_id` and a `customer_id` column): that the rows `filter` keeps (its text
    /// starts with ` AND `) number within `range`. Over the shop, "some" and "none" are
    /// a set of ids (see [`Reach`]); otherwise a count per customer.
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
                out.int(self.shop_id);
                filter(out);
                out.push(")");
            }
            None => counted(out, range, |out| {
                out.push(&format!("FROM {table} WHERE {alias}.shop_id = c.shop_id AND {alias}.customer_id = c.id"));
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
                out.push("substr(c.birthday, 6, 5) = ANY (");
                out.bind(Param::Texts(anniversaries(&range)));
                out.push(")");
            }
            (ProfileField::CreatedAt, _) => {
                let day = |s: &Scalar| match s {
                    Scalar::Date(d) => *d,
                    _ => NaiveDate::MIN,
                };
                let next = |d: NaiveDate| self.start_of(d.succ_opt().unwrap_or(d));
                let cmp = |out: &mut Compiled, op: &str, ms: i64| {
                    out.push(&format!("c.created_at {op} "));
                    out.int(ms);
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
                        cmp(out, ">=", millis(self.now) - i64::from(*days) * DAY_MS);
                    }
                    Test::Exists(b) => out.push(truth(*b)),
                    // The parser allows no other operator on this field.
                    _ => out.push("FALSE"),
                }
            }
            _ => generic(test, out, Kind::Text, &|out: &mut Compiled| out.push(column)),
        }
    }
}

/// The first moment of `day` in `zone`, in milliseconds (the core's [`kith_core::metrics::start_of`]).
pub(crate) fn start_of(zone: Tz, day: NaiveDate) -> i64 {
    millis(kith_core::metrics::start_of(zone, day))
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
        out.text(sku.clone());
    }
    if let Some(category) = &item.category {
        out.push(&format!(" AND {alias}.category = "));
        out.text(category.clone());
    }
}

/// A score's label is one of `codes`: the code alone, or the code followed by `|`
/// and its display names (`important-value|重要价值|Important value`). Written as
/// an equality and a range per code, which `scores_shop_model` answers directly
/// (`code|` ≤ label < `code}`, `}` being the character after `|`; the column is
/// `COLLATE "C"`, byte order). A code that holds a `|` itself can only match whole.
fn label_test(out: &mut Compiled, codes: &[String]) {
    out.push(" AND (");
    for (i, code) in codes.iter().enumerate() {
        if i > 0 {
            out.push(" OR ");
        }
        out.push("s.label = ");
        out.text(code.clone());
        if !code.contains('|') {
            out.push(" OR (s.label >= ");
            out.text(format!("{code}|"));
            out.push(" AND s.label < ");
            out.text(format!("{code}}}"));
            out.push(")");
        }
    }
    if codes.is_empty() {
        out.push("FALSE");
    }
    out.push(")");
}

/// A score's value is within the top (or bottom) `percent` of the shop's values of `model`:
/// at least (at most) the ⌈n·percent/100⌉-th highest (lowest) of the n customers holding
/// it, so every customer tied at the threshold is in and the share may exceed `percent`.
/// The threshold is an uncorrelated subquery, computed once per statement whatever the
/// reach; `scores_shop_model_value` serves the shop's values of the model. (PostgreSQL
/// refuses a negative OFFSET, which SQLite reads as none: no value of the model at all.)
fn rank_test(out: &mut Compiled, shop_id: i64, model: &str, percent: u8, top: bool) {
    let (cmp, order) = if top { (">=", "DESC") } else { ("<=", "ASC") };
    out.push(&format!(" AND s.value {cmp} (SELECT r.value FROM scores r WHERE r.shop_id = "));
    out.int(shop_id);
    out.push(" AND r.model = ");
    out.text(model);
    out.push(&format!(" ORDER BY r.value {order} LIMIT 1 OFFSET (SELECT GREATEST((COUNT(*) * "));
    out.int(i64::from(percent));
    out.push(" + 99) / 100 - 1, 0) FROM scores n WHERE n.shop_id = ");
    out.int(shop_id);
    out.push(" AND n.model = ");
    out.text(model);
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
                    out.int(i64::from(min));
                    out.push(" AND ");
                    out.int(i64::from(max));
                }
                None => {
                    out.push(" >= ");
                    out.int(i64::from(min));
                }
            }
        }
    }
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The current version and definition of a live segment of the shop.
pub(crate) fn current_definition(pg: &Pg<'_>, shop_id: i64, segment_id: i64) -> Result<Option<(i64, Value)>> {
    version_row(pg, shop_id, segment_id, None)
}

/// `version` of a live segment (its current one when `None`) and its definition.
pub(crate) fn version_row(pg: &Pg<'_>, shop_id: i64, segment_id: i64, version: Option<i64>) -> Result<Option<(i64, Value)>> {
    let row = pg.query_opt(
        "SELECT v.version, v.definition FROM segments s
         JOIN segment_versions v ON v.shop_id = s.shop_id AND v.segment_id = s.id AND v.version = COALESCE($3::BIGINT, s.version)
         WHERE s.id = $1 AND s.shop_id = $2 AND s.deleted_at IS NULL",
        &[&segment_id, &shop_id, &version],
    )?;
    row.map(|r| Ok((get(&r, 0)?, parse_json(&get::<String>(&r, 1)?)))).transpose()
}

const SEGMENT_COLUMNS: &str = "s.id, s.name, s.description, s.version, v.definition, s.timed, s.created_at, s.updated_at,
     (SELECT COUNT(*) FROM segment_members m WHERE m.shop_id = s.shop_id AND m.segment_id = s.id)";

fn row_to_segment(r: &Row) -> Result<Segment> {
    Ok(Segment {
        id: get(r, 0)?,
        name: get(r, 1)?,
        description: get(r, 2)?,
        version: get(r, 3)?,
        definition: parse_json(&get::<String>(r, 4)?),
        depends_on_time: get::<i64>(r, 5)? != 0,
        created_at: time(get(r, 6)?)?,
        updated_at: time(get(r, 7)?)?,
        members: get(r, 8)?,
    })
}

pub(crate) fn find_segment(pg: &Pg<'_>, shop_id: i64, id: i64, at: Option<DateTime<Utc>>) -> Result<Option<Segment>> {
    let row = pg.query_opt(
        &format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments s JOIN segment_versions v ON v.shop_id = s.shop_id AND v.segment_id = s.id
               AND v.version = COALESCE((SELECT MAX(version) FROM segment_versions
                                         WHERE shop_id = s.shop_id AND segment_id = s.id AND created_at <= $3::BIGINT), s.version)
             WHERE s.id = $1 AND s.shop_id = $2 AND s.deleted_at IS NULL AND ($3::BIGINT IS NULL OR s.created_at <= $3::BIGINT)"
        ),
        &[&id, &shop_id, &at.map(millis)],
    )?;
    row.map(|r| row_to_segment(&r)).transpose()
}

/// Ids of the shop's active customers among `only` (all when `None`) that match `compiled`.
pub(crate) fn matching(pg: &Pg<'_>, shop_id: i64, compiled: &Compiled, only: Option<&[i64]>) -> Result<BTreeSet<i64>> {
    debug_assert_eq!(compiled.reach, if only.is_some() { Reach::Customers } else { Reach::Shop }, "compiled for other customers");
    let (filter, mut params) = compiled.scoped(shop_id);
    let mut sql = format!("SELECT c.id FROM customers c WHERE {filter}");
    if let Some(ids) = only {
        sql.push_str(" AND c.id = ANY (?::BIGINT[])");
        params.push(Param::Ints(ids.to_vec()));
    }
    query(pg, &sql, &params)?.iter().map(|r| get::<i64>(r, 0)).collect()
}

/// A page of the shop's active customers matching `compiled`, after id `after`.
fn page(pg: &Pg<'_>, shop_id: i64, compiled: &Compiled, after: i64, limit: usize) -> Result<Vec<Customer>> {
    let (filter, mut params) = compiled.scoped(shop_id);
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE {filter} AND c.id > ?::BIGINT ORDER BY c.id LIMIT ?::BIGINT");
    params.extend([Param::Int(after), Param::Int(limit as i64)]);
    let mut customers = query(pg, &sql, &params)?.iter().map(row_to_customer).collect::<Result<Vec<_>>>()?;
    load_records(pg, shop_id, &mut customers, Records::ALL)?;
    Ok(customers)
}

pub(crate) fn count(pg: &Pg<'_>, shop_id: i64, compiled: &Compiled) -> Result<i64> {
    let (filter, params) = compiled.scoped(shop_id);
    let rows = query(pg, &format!("SELECT COUNT(*) FROM customers c WHERE {filter}"), &params)?;
    get(&rows[0], 0)
}

/// The shop's live segments with their current definitions; one that no longer parses is logged and skipped.
pub(crate) fn live_segments(pg: &Pg<'_>, shop_id: i64) -> Result<Vec<LiveSegment>> {
    let rows = pg.query(
        "SELECT s.id, s.name, s.version, v.definition FROM segments s
         JOIN segment_versions v ON v.shop_id = s.shop_id AND v.segment_id = s.id AND v.version = s.version
         WHERE s.shop_id = $1 AND s.deleted_at IS NULL ORDER BY s.id",
        &[&shop_id],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, version, text): (i64, String, i64, String) = (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, get(&row, 3)?);
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
    pg: &Pg<'_>,
    shop_id: i64,
    name: &str,
    description: Option<&str>,
    timed: bool,
    definition: &Value,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<i64> {
    let at = millis(now);
    let row = pg.query_one(
        "INSERT INTO segments (shop_id, name, description, version, timed, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $5)
         RETURNING id",
        &[&shop_id, &name, &description, &i64::from(timed), &at],
    )?;
    let id: i64 = get(&row, 0)?;
    pg.execute(
        "INSERT INTO segment_versions (shop_id, segment_id, version, definition, created_at, created_by) VALUES ($1, $2, 1, $3, $4, $5)",
        &[&shop_id, &id, &definition.to_string(), &at, &created_by],
    )?;
    Ok(id)
}

/// Set a segment's name, description, version and `timed`.
#[allow(clippy::too_many_arguments, reason = "a segment's row")]
pub(crate) fn update_segment(
    pg: &Pg<'_>,
    shop_id: i64,
    id: i64,
    name: &str,
    description: Option<&str>,
    version: i64,
    timed: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    pg.execute(
        "UPDATE segments SET name = $3, description = $4, version = $5, timed = $6, updated_at = $7 WHERE id = $1 AND shop_id = $2",
        &[&id, &shop_id, &name, &description, &version, &i64::from(timed), &millis(now)],
    )?;
    Ok(())
}

/// Store a version of the shop's segment's definition (its shop is the segment's).
pub(crate) fn add_version(
    pg: &Pg<'_>,
    shop_id: i64,
    id: i64,
    version: i64,
    definition: &Value,
    now: DateTime<Utc>,
    created_by: &str,
) -> Result<()> {
    let inserted = pg.execute(
        "INSERT INTO segment_versions (shop_id, segment_id, version, definition, created_at, created_by)
         SELECT s.shop_id, s.id, $2::BIGINT, $3::TEXT, $4::BIGINT, $5::TEXT FROM segments s WHERE s.shop_id = $6 AND s.id = $1",
        &[&id, &version, &definition.to_string(), &millis(now), &created_by, &shop_id],
    )?;
    if inserted == 0 {
        // SQLite's foreign key refuses a version of no segment.
        return Err(kith_core::Error::Internal(anyhow::anyhow!("a version of segment {id} of shop {shop_id}, which does not exist")));
    }
    Ok(())
}

pub(crate) fn set_timed(pg: &Pg<'_>, shop_id: i64, id: i64, timed: bool) -> Result<()> {
    pg.execute("UPDATE segments SET timed = $2 WHERE shop_id = $3 AND id = $1", &[&id, &i64::from(timed), &shop_id])?;
    Ok(())
}

/// Mark a segment deleted and drop its tracked members.
pub(crate) fn delete_segment(pg: &Pg<'_>, shop_id: i64, id: i64, now: DateTime<Utc>) -> Result<()> {
    pg.execute("UPDATE segments SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND shop_id = $2", &[&id, &shop_id, &millis(now)])?;
    pg.execute("DELETE FROM segment_members WHERE shop_id = $2 AND segment_id = $1", &[&id, &shop_id])?;
    Ok(())
}

pub(crate) fn list_segments(pg: &Pg<'_>, shop_id: i64) -> Result<Vec<Segment>> {
    pg.query(
        &format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments s
             JOIN segment_versions v ON v.shop_id = s.shop_id AND v.segment_id = s.id AND v.version = s.version
             WHERE s.shop_id = $1 AND s.deleted_at IS NULL ORDER BY s.id"
        ),
        &[&shop_id],
    )?
    .iter()
    .map(row_to_segment)
    .collect()
}

pub(crate) fn segment_versions(pg: &Pg<'_>, shop_id: i64, id: i64) -> Result<Vec<SegmentVersion>> {
    pg.query(
        "SELECT version, definition, created_at, created_by FROM segment_versions WHERE shop_id = $2 AND segment_id = $1 ORDER BY version",
        &[&id, &shop_id],
    )?
    .iter()
    .map(|r| {
        Ok(SegmentVersion {
            version: get(r, 0)?,
            definition: parse_json(&get::<String>(r, 1)?),
            created_at: time(get(r, 2)?)?,
            created_by: get(r, 3)?,
        })
    })
    .collect()
}

/// The shop's active customers matching `node` now: how many (when `with_count`) and the
/// first `limit` after `after`, compiled once for both.
#[allow(clippy::too_many_arguments, reason = "the definition and the page's bounds")]
pub(crate) fn audience(
    pg: &Pg<'_>,
    shop_id: i64,
    node: &Node,
    segment: Option<i64>,
    after: i64,
    limit: usize,
    with_count: bool,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, Vec<Customer>)> {
    let compiled = Compiler::new(pg, shop_id, now, Reach::Shop)?.compile(node, segment)?;
    let total = if with_count { Some(count(pg, shop_id, &compiled)?) } else { None };
    Ok((total, page(pg, shop_id, &compiled, after, limit)?))
}

/// Freeze who matches `node` now as a new snapshot of the segment: its id and size.
pub(crate) fn take_snapshot(
    pg: &Pg<'_>,
    shop_id: i64,
    id: i64,
    version: i64,
    node: &Node,
    now: DateTime<Utc>,
    taken_by: &str,
) -> Result<(i64, i64)> {
    let compiled = Compiler::new(pg, shop_id, now, Reach::Shop)?.compile(node, Some(id))?;
    let row = pg.query_one(
        "INSERT INTO segment_snapshots (shop_id, segment_id, version, size, taken_at, taken_by) VALUES ($1, $2, $3, 0, $4, $5)
         RETURNING id",
        &[&shop_id, &id, &version, &millis(now), &taken_by],
    )?;
    let snapshot: i64 = get(&row, 0)?;
    let (filter, scoped) = compiled.scoped(shop_id);
    let sql = format!(
        "INSERT INTO segment_snapshot_members (shop_id, snapshot_id, customer_id) SELECT c.shop_id, ?::BIGINT, c.id FROM customers c WHERE {filter}"
    );
    let mut params = vec![Param::Int(snapshot)];
    params.extend(scoped);
    let size = execute(pg, &sql, &params)? as i64;
    pg.execute("UPDATE segment_snapshots SET size = $3 WHERE shop_id = $1 AND id = $2", &[&shop_id, &snapshot, &size])?;
    Ok((snapshot, size))
}

fn row_to_snapshot(r: &Row) -> Result<Snapshot> {
    Ok(Snapshot {
        id: get(r, 0)?,
        segment_id: get(r, 1)?,
        version: get(r, 2)?,
        size: get(r, 3)?,
        taken_at: time(get(r, 4)?)?,
        taken_by: get(r, 5)?,
    })
}

pub(crate) fn snapshot_row(pg: &Pg<'_>, shop_id: i64, segment_id: i64, id: i64) -> Result<Option<Snapshot>> {
    pg.query_opt(
        "SELECT id, segment_id, version, size, taken_at, taken_by FROM segment_snapshots WHERE id = $1 AND shop_id = $2 AND segment_id = $3",
        &[&id, &shop_id, &segment_id],
    )?
    .map(|r| row_to_snapshot(&r))
    .transpose()
}

pub(crate) fn list_snapshots(pg: &Pg<'_>, shop_id: i64, id: i64) -> Result<Vec<Snapshot>> {
    pg.query(
        "SELECT id, segment_id, version, size, taken_at, taken_by FROM segment_snapshots WHERE shop_id = $1 AND segment_id = $2
         ORDER BY id DESC",
        &[&shop_id, &id],
    )?
    .iter()
    .map(row_to_snapshot)
    .collect()
}

/// A page of the shop's snapshot's members with their data as it is now.
pub(crate) fn snapshot_members(pg: &Pg<'_>, shop_id: i64, snapshot: i64, after: i64, limit: usize) -> Result<Vec<Customer>> {
    let rows = pg.query(
        &format!(
            "SELECT {CUSTOMER_COLUMNS} FROM segment_snapshot_members m JOIN customers c ON c.shop_id = m.shop_id AND c.id = m.customer_id
             WHERE m.shop_id = $4 AND c.shop_id = $4 AND m.snapshot_id = $1 AND m.customer_id > $2 ORDER BY m.customer_id LIMIT $3"
        ),
        &[&snapshot, &after, &(limit as i64), &shop_id],
    )?;
    let mut customers = rows.iter().map(row_to_customer).collect::<Result<Vec<_>>>()?;
    load_records(pg, shop_id, &mut customers, Records::ALL)?;
    Ok(customers)
}

/// The shop's segment's recorded daily counts up to `to`, by day.
pub(crate) fn segment_counts(pg: &Pg<'_>, shop_id: i64, id: i64, to: NaiveDate) -> Result<Vec<(NaiveDate, i64)>> {
    pg.query(
        "SELECT day, members FROM segment_counts WHERE shop_id = $3 AND segment_id = $1 AND day <= $2 ORDER BY day",
        &[&id, &to.to_string(), &shop_id],
    )?
    .iter()
    .map(|r| {
        let day: String = get(r, 0)?;
        let day = day.parse::<NaiveDate>().map_err(|e| anyhow::anyhow!("a stored day is not a date ({day}): {e}"))?;
        Ok((day, get(r, 1)?))
    })
    .collect()
}
