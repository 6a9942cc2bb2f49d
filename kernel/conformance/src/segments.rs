//! Segments through the core: a backend's evaluation of definitions (its own query language:
//! SQL on SQLite) against a plain evaluation written here, over a shop of fifty customers
//! with varied profiles, attributes, tags, stats, scores, behaviours and purchases in
//! windows, points and tiers, all written through the core (ingest, tags, the ledger,
//! plugin deliveries); and tracked membership: a change to a customer makes one
//! `segment.entered` or `segment.exited` after a refresh, and a segment that depends on
//! time moves on a sweep as the clock moves.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use kith_core::delivery::{self, Attempt, Effects};
use kith_core::ledger;
use kith_core::segments::{self as core_segments};
use kith_core::tags::{self, Removable, Source, TagRemoval, TagWrite};
use kith_core::{Actor, Error, Storage, StorageExt};
use kith_domain::loyalty::PointsAdjustment;
use kith_domain::model::OutcomeStatus;
use kith_domain::plugin::Decision;
use kith_domain::segments::{Condition, CountRange, Item, Node, ProfileField, Scalar, ScoreTest, Stat, Test, Window};
use serde_json::{Value, json};

use crate::{Backend, Factory, day};

const DAY_MS: i64 = 86_400_000;
const CUSTOMERS: usize = 50;
/// The plugin that writes the shop's scores and tiers.
const MODEL: &str = "rfm";
const CATALOGUE: [(&str, &str, i64); 4] = [("A", "tea", 5000), ("B", "tea", 8000), ("C", "snack", 3000), ("D", "snack", 2000)];
const KINDS: [&str; 3] = ["view", "cart", "favorite"];
const LABELS: [&str; 3] = ["important-value|重要价值|Important value", "important-keep|重要保持", "general"];

/// The moment the shop is evaluated at.
fn now() -> DateTime<Utc> {
    day(60, 3)
}

/// A small deterministic generator (xorshift), so the shop is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
struct Order {
    paid_at: DateTime<Utc>,
    /// (sku, category, quantity, unit price)
    items: Vec<(&'static str, &'static str, i64, i64)>,
    refunded: bool,
}

impl Order {
    fn amount(&self) -> i64 {
        self.items.iter().map(|(_, _, q, p)| q * p).sum()
    }
}

#[derive(Debug, Clone, Default)]
struct Person {
    id: i64,
    phone: String,
    city: Option<&'static str>,
    gender: Option<&'static str>,
    birthday: Option<NaiveDate>,
    vip_level: Option<i64>,
    channels: Vec<&'static str>,
    /// (tag, source)
    tags: BTreeSet<(String, String)>,
    /// model → (value, label)
    scores: BTreeMap<String, (f64, Option<String>)>,
    tier: Option<String>,
    /// (kind, sku, category, at)
    behaviours: Vec<(&'static str, &'static str, &'static str, DateTime<Utc>)>,
    orders: Vec<Order>,
    /// The points balance: the adjustments made.
    points: i64,
}

/// The loyalty scheme that sets tiers.
const SCHEME: &str = "scheme";

/// A plugin of `kind` requesting `capability`.
fn manifest(id: &str, kind: &str, capability: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"1.0.0\"\nkind = \"{kind}\"\napi-version = \"0.2.0\"\n\
         description = \"Stands in for a plugin\"\nvendor = \"Kith\"\ncapabilities = [\"{capability}\"]\n"
    )
}

/// A shop built through the core, with what it was built from.
struct Shop {
    backend: Box<dyn Backend>,
    shop: i64,
    people: Vec<Person>,
    /// Saved segments' definitions, for references.
    saved: BTreeMap<i64, Node>,
    /// The plugins' delivery cursors.
    cursors: BTreeMap<&'static str, i64>,
}

fn parse(definition: &Value) -> Node {
    kith_domain::segments::parse(definition).unwrap_or_else(|e| panic!("{definition}: {e:?}"))
}

fn identities(p: &Person) -> Value {
    json!([{"kind": "phone", "value": p.phone}])
}

fn order_event(p: &Person, id: &str, order: &Order) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|(sku, category, q, price)| json!({"sku": sku, "category": category, "quantity": q, "unit_price": price}))
        .collect();
    json!({"id": format!("e-{id}"), "type": "order.paid", "identities": identities(p),
           "order": {"id": id, "amount": order.amount(), "paid_at": order.paid_at.to_rfc3339(), "items": items}})
}

impl Shop {
    fn storage(&self) -> &dyn Storage {
        self.backend.storage()
    }

    /// Fifty customers of every kind, written through the core.
    fn build(factory: &dyn Factory) -> Shop {
        let backend = factory.fresh();
        let shop = backend.create_shop("Segment shop", "Asia/Shanghai");
        backend.enable_plugin(shop, &manifest(MODEL, "scoring-model", "scores:write"));
        backend.enable_plugin(shop, &manifest(SCHEME, "loyalty-scheme", "tiers:write"));
        let mut rng = Rng(0x5eed_cafe_f00d);
        let now = now();
        let mut people = Vec::new();
        let mut events = Vec::new();
        for i in 0..CUSTOMERS {
            let mut p = Person {
                phone: format!("1380000{i:04}"),
                city: [Some("杭州"), Some("上海"), Some("北京"), None][rng.below(4) as usize],
                gender: [Some("female"), Some("male"), None][rng.below(3) as usize],
                birthday: (rng.below(3) != 0).then(|| {
                    NaiveDate::from_ymd_opt(1970 + rng.below(35) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32).unwrap()
                }),
                vip_level: Some(rng.below(6) as i64).filter(|v| *v > 0),
                channels: ["tmall", "wechat", "douyin"].into_iter().filter(|_| rng.below(2) == 0).collect(),
                ..Person::default()
            };
            let mut profile = json!({"name": format!("C{i:02}")});
            if let Some(city) = p.city {
                profile["city"] = json!(city);
            }
            if let Some(gender) = p.gender {
                profile["gender"] = json!(gender);
            }
            if let Some(birthday) = p.birthday {
                profile["birthday"] = json!(birthday.to_string());
            }
            let mut attributes = json!({"channels": p.channels});
            if let Some(level) = p.vip_level {
                attributes["vip_level"] = json!(level);
            }
            profile["attributes"] = attributes;
            events.push(json!({"id": format!("u{i}"), "type": "customer.upsert", "identities": identities(&p), "profile": profile}));
            for o in 0..rng.below(5) {
                let paid_at = now - Duration::days(rng.below(90) as i64) - Duration::hours(1 + rng.below(23) as i64);
                let items = (0..1 + rng.below(2))
                    .map(|_| {
                        let (sku, category, price) = CATALOGUE[rng.below(4) as usize];
                        (sku, category, 1 + rng.below(3) as i64, price)
                    })
                    .collect();
                let order = Order { paid_at, items, refunded: rng.below(8) == 0 };
                let id = format!("T{i}-{o}");
                events.push(order_event(&p, &id, &order));
                if order.refunded {
                    events.push(json!({"id": format!("r-{id}"), "type": "order.refunded",
                        "refund": {"order_id": id, "amount": order.amount(), "refunded_at": (paid_at + Duration::hours(1)).to_rfc3339()}}));
                }
                p.orders.push(order);
            }
            for b in 0..rng.below(6) {
                let (sku, category, _) = CATALOGUE[rng.below(4) as usize];
                let kind = KINDS[rng.below(3) as usize];
                let at = now - Duration::days(rng.below(60) as i64) - Duration::minutes(1 + rng.below(600) as i64);
                events.push(json!({"id": format!("b{i}-{b}"), "type": "behaviour", "identities": identities(&p),
                    "occurred_at": at.to_rfc3339(), "behaviour": {"kind": kind, "sku": sku, "category": category}}));
                p.behaviours.push((kind, sku, category, at));
            }
            people.push(p);
        }
        let report = backend.ingest(shop, events, now - Duration::minutes(30));
        let mut outcomes = report.outcomes.iter();
        for p in &mut people {
            // The upsert comes first of each customer's events.
            let outcome = outcomes.next().unwrap();
            assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
            p.id = outcome.customer_id.unwrap();
            let rest = p.orders.len() + p.orders.iter().filter(|o| o.refunded).count() + p.behaviours.len();
            for outcome in outcomes.by_ref().take(rest) {
                assert_eq!(outcome.status, OutcomeStatus::Accepted, "{outcome:?}");
            }
        }
        let mut shop = Shop { backend, shop, people, saved: BTreeMap::new(), cursors: BTreeMap::new() };

        // Tags by hand and by a plugin, points, scores and tiers.
        let (mut scores, mut tiers) = (Vec::new(), Vec::new());
        for i in 0..CUSTOMERS {
            let id = shop.people[i].id;
            if rng.below(4) == 0 {
                shop.tag(i, "vip", Source::Manual, true);
            }
            if rng.below(5) == 0 {
                shop.tag(i, "vip", Source::Plugin("lifecycle"), true);
            }
            if rng.below(3) == 0 {
                shop.tag(i, "lapsed", Source::Plugin("lifecycle"), true);
            }
            if rng.below(2) == 0 {
                let adj = PointsAdjustment {
                    points: 1 + rng.below(500) as i64,
                    reason: "welcome".into(),
                    idempotency_key: format!("w{i}"),
                    expires_at: None,
                };
                ledger::adjust(shop.storage(), shop.shop, id, &adj, &Actor::cli("conformance"), now - Duration::minutes(20)).unwrap();
                shop.people[i].points += adj.points;
            }
            if rng.below(10) < 7 {
                // Values on a grid of halves, so that some ranks have ties.
                let value = rng.below(200) as f64 / 2.0;
                let label = LABELS[rng.below(3) as usize];
                scores.push(Decision::SetScore {
                    customer_id: id,
                    model: MODEL.into(),
                    value,
                    label: Some(label.into()),
                    explanation: "r, f and m".into(),
                });
                shop.people[i].scores.insert(MODEL.into(), (value, Some(label.into())));
            }
            if rng.below(3) == 0 {
                let tier = ["gold", "silver"][rng.below(2) as usize];
                tiers.push(Decision::ChangeTier { customer_id: id, tier: tier.into(), reason: "spent".into() });
                shop.people[i].tier = Some(tier.into());
            }
        }
        shop.decide(MODEL, &scores, now - Duration::minutes(10));
        shop.decide(SCHEME, &tiers, now - Duration::minutes(10));
        shop
    }

    /// Set (`add`) or remove the customer's tag of `source` through the core's tag writer.
    fn tag(&mut self, i: usize, tag: &str, source: Source<'_>, add: bool) {
        let (shop_id, customer_id) = (self.shop, self.people[i].id);
        let at = now() - Duration::minutes(25);
        self.storage()
            .write(|tx| {
                if add {
                    let w = TagWrite { shop_id, customer_id, tag, source, reason: None, at, chain: 1 };
                    tags::add(tx, &w).map(|_| ())
                } else {
                    let r = TagRemoval { shop_id, customer_id, tag, which: Removable::Of(source), reason: None, at, chain: 1 };
                    tags::remove(tx, &r).map(|_| ())
                }
            })
            .unwrap();
        let row = (tag.to_owned(), source.name().into_owned());
        if add {
            self.people[i].tags.insert(row);
        } else {
            self.people[i].tags.remove(&row);
        }
    }

    /// Commit a plugin's decisions as its next delivery.
    fn decide(&mut self, plugin: &'static str, decisions: &[Decision], at: DateTime<Utc>) {
        let attempt = Attempt { shop_id: self.shop, plugin_id: plugin, logs: &[], duration: StdDuration::from_millis(1), now: at };
        let effects = Effects { decisions, kv_writes: &[], chain: None };
        let cursor = *self.cursors.get(plugin).unwrap_or(&0);
        delivery::commit_delivery(self.storage(), &attempt, cursor, cursor + 1, &effects).unwrap();
        self.cursors.insert(plugin, cursor + 1);
    }

    /// Save a segment through the backend; kept for references.
    fn save(&mut self, name: &str, definition: Value) -> i64 {
        let id = self.backend.create_segment(self.shop, name, definition.clone(), now());
        self.saved.insert(id, parse(&definition));
        id
    }

    /// The backend's members of `node` at `at`, among `only` when given.
    fn members(&self, node: &Node, only: Option<&[i64]>, at: DateTime<Utc>) -> kith_core::Result<BTreeSet<i64>> {
        self.storage().read(|tx| tx.segments().members(self.shop, node, None, only, at))
    }

    fn tracked(&self, segment: i64) -> BTreeSet<i64> {
        self.storage().read(|tx| tx.segments().tracked(self.shop, segment, None)).unwrap()
    }

    /// What the evaluation here says of `node` at `at`, from what the shop was built of.
    fn expected(&self, node: &Node, at: DateTime<Utc>) -> BTreeSet<i64> {
        let eval = Eval { shop: self, now: at };
        self.people.iter().filter(|p| eval.node(p, node)).map(|p| p.id).collect()
    }

    /// Refresh until no changed customer is left; the customers processed.
    fn refresh(&self, at: DateTime<Utc>) -> usize {
        let mut total = 0;
        loop {
            let pass = core_segments::refresh(self.storage(), 7, at).unwrap();
            assert!(pass.failed.is_empty(), "{:?}", pass.failed);
            if pass.processed == 0 {
                return total;
            }
            total += pass.processed;
        }
    }

    /// The shop's segment events as (type, segment, reason).
    fn segment_events(&self) -> Vec<(String, i64, String)> {
        self.backend
            .events(self.shop)
            .into_iter()
            .filter(|(t, _)| t.starts_with("segment."))
            .map(|(t, p)| (t, p["segment_id"].as_i64().unwrap(), p["reason"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// A value as SQL compares it.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Int(i64),
    Real(f64),
    Text(String),
}

fn scalar(s: &Scalar) -> V {
    match s {
        Scalar::Text(t) => V::Text(t.clone()),
        Scalar::Integer(i) => V::Int(*i),
        Scalar::Real(r) => V::Real(*r),
        Scalar::Bool(b) => V::Int(i64::from(*b)),
        Scalar::Date(d) => V::Text(d.to_string()),
    }
}

/// SQL's order: numbers by value, below text; text by bytes.
fn compare(a: &V, b: &V) -> Ordering {
    let number = |v: &V| match v {
        V::Int(i) => Some(*i as f64),
        V::Real(r) => Some(*r),
        V::Text(_) => None,
    };
    match (a, b) {
        (V::Text(x), V::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::Text(_), _) => Ordering::Greater,
        (_, V::Text(_)) => Ordering::Less,
        _ => number(a).unwrap().partial_cmp(&number(b).unwrap()).unwrap(),
    }
}

fn text(v: &V) -> String {
    match v {
        V::Int(i) => i.to_string(),
        V::Real(r) => r.to_string(),
        V::Text(t) => t.clone(),
    }
}

/// A test on a value that may be missing: a comparison with nothing is false, except
/// `ne` (missing included) and `exists`.
fn test(t: &Test, value: Option<V>) -> bool {
    let cmp = |s: &Scalar| value.as_ref().map(|v| compare(v, &scalar(s)));
    match t {
        Test::Eq(s) => cmp(s) == Some(Ordering::Equal),
        Test::Ne(s) => cmp(s) != Some(Ordering::Equal),
        Test::Lt(s) => cmp(s) == Some(Ordering::Less),
        Test::Lte(s) => matches!(cmp(s), Some(Ordering::Less | Ordering::Equal)),
        Test::Gt(s) => cmp(s) == Some(Ordering::Greater),
        Test::Gte(s) => matches!(cmp(s), Some(Ordering::Greater | Ordering::Equal)),
        Test::Between(a, b) => {
            matches!(cmp(a), Some(Ordering::Greater | Ordering::Equal)) && matches!(cmp(b), Some(Ordering::Less | Ordering::Equal))
        }
        Test::In(list) => list.iter().any(|s| cmp(s) == Some(Ordering::Equal)),
        Test::Contains(s) => value.as_ref().is_some_and(|v| text(v).contains(&text(&scalar(s)))),
        Test::Exists(b) => value.is_some() == *b,
        Test::WithinLastDays(_) | Test::WithinNextDays(_) => panic!("not used by these cases"),
    }
}

fn within(range: CountRange, n: usize) -> bool {
    n as u64 >= u64::from(range.min) && range.max.is_none_or(|max| n as u64 <= u64::from(max))
}

fn item_matches(item: &Item, sku: &str, category: &str) -> bool {
    item.sku.as_deref().is_none_or(|s| s == sku) && item.category.as_deref().is_none_or(|c| c == category)
}

/// The plain evaluation of a definition for one customer.
struct Eval<'a> {
    shop: &'a Shop,
    now: DateTime<Utc>,
}

impl Eval<'_> {
    /// `[from, to)` of a window; the shop's days are Shanghai's (UTC+8, no daylight saving).
    fn window(&self, window: &Window) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = |d: NaiveDate| {
            FixedOffset::east_opt(8 * 3600).unwrap().from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap()).unwrap().with_timezone(&Utc)
        };
        match window {
            Window::LastDays(days) => (self.now - Duration::days(i64::from(*days)), self.now + Duration::milliseconds(1)),
            Window::Between(from, to) => (start(*from), start(to.succ_opt().unwrap())),
        }
    }

    fn node(&self, p: &Person, node: &Node) -> bool {
        match node {
            Node::And(nodes) => nodes.iter().all(|n| self.node(p, n)),
            Node::Or(nodes) => nodes.iter().any(|n| self.node(p, n)),
            Node::Not(inner) => !self.node(p, inner),
            Node::Condition(c) => self.condition(p, c),
        }
    }

    fn condition(&self, p: &Person, c: &Condition) -> bool {
        match c {
            Condition::Profile { field, test: t } => {
                let value = match field {
                    ProfileField::Name => Some(format!("C{:02}", self.shop.people.iter().position(|q| q.id == p.id).unwrap())),
                    ProfileField::Gender => p.gender.map(str::to_owned),
                    ProfileField::City => p.city.map(str::to_owned),
                    ProfileField::Province => None,
                    ProfileField::Tier => p.tier.clone(),
                    ProfileField::Birthday => p.birthday.map(|d| d.to_string()),
                    ProfileField::CreatedAt => panic!("not used by these cases"),
                };
                test(t, value.map(V::Text))
            }
            Condition::Attribute { key, test: t } => match (key.as_str(), t) {
                ("channels", Test::Contains(s)) => p.channels.iter().any(|ch| V::Text((*ch).into()) == scalar(s)),
                ("vip_level", t) => test(t, p.vip_level.map(V::Int)),
                _ => panic!("not used by these cases"),
            },
            Condition::Tag { tag, source, has } => {
                p.tags.iter().any(|(t, s)| t == tag && source.as_ref().is_none_or(|src| src == s)) == *has
            }
            Condition::Stat { stat, test: t } => {
                // A fully refunded order no longer counts as an order; its amount is refunded.
                let (kept, refunded): (Vec<&Order>, Vec<&Order>) = p.orders.iter().partition(|o| !o.refunded);
                let spent: i64 = kept.iter().map(|o| o.amount()).sum();
                let count = kept.len() as i64;
                let days = |at: Option<DateTime<Utc>>| at.map(|at| V::Int((self.now - at).num_milliseconds() / DAY_MS));
                let value = match stat {
                    Stat::TotalSpent => Some(V::Int(spent)),
                    Stat::OrderCount => Some(V::Int(count)),
                    Stat::AverageOrderValue => (count != 0).then(|| V::Int(spent / count)),
                    Stat::DaysSinceFirstOrder => days(kept.iter().map(|o| o.paid_at).min()),
                    Stat::DaysSinceLastOrder => days(kept.iter().map(|o| o.paid_at).max()),
                    Stat::RefundCount => Some(V::Int(refunded.len() as i64)),
                    Stat::RefundAmount => Some(V::Int(refunded.iter().map(|o| o.amount()).sum())),
                    Stat::Points => Some(V::Int(p.points)),
                };
                test(t, value)
            }
            Condition::Score { model, test: t } => {
                let Some((value, label)) = p.scores.get(model) else { return false };
                match t {
                    ScoreTest::Any => true,
                    ScoreTest::Label(codes) => label
                        .as_deref()
                        .is_some_and(|l| codes.iter().any(|code| l == code || (!code.contains('|') && l.starts_with(&format!("{code}|"))))),
                    ScoreTest::Value(t) => test(t, Some(V::Real(*value))),
                    ScoreTest::TopPercent(percent) | ScoreTest::BottomPercent(percent) => {
                        // At least the ⌈n·percent/100⌉-th highest (lowest) value of the shop's n.
                        let top = matches!(t, ScoreTest::TopPercent(_));
                        let mut values: Vec<f64> = self.shop.people.iter().filter_map(|q| q.scores.get(model).map(|s| s.0)).collect();
                        values.sort_by(|a, b| if top { b.total_cmp(a) } else { a.total_cmp(b) });
                        let rank = (values.len() * usize::from(*percent)).div_ceil(100);
                        let threshold = values[rank - 1];
                        if top { *value >= threshold } else { *value <= threshold }
                    }
                }
            }
            Condition::Behaviour { kind, item, window, count } => {
                let (from, to) = self.window(window);
                let n = p
                    .behaviours
                    .iter()
                    .filter(|(k, sku, category, at)| *k == kind.as_str() && item_matches(item, sku, category) && *at >= from && *at < to)
                    .count();
                within(*count, n)
            }
            Condition::Purchase { item, window, count, spent_at_least } => {
                let (from, to) = self.window(window);
                let any_item = item.sku.is_none() && item.category.is_none();
                let in_window: Vec<&Order> = p.orders.iter().filter(|o| !o.refunded && o.paid_at >= from && o.paid_at < to).collect();
                let n = in_window.iter().filter(|o| any_item || o.items.iter().any(|(s, c, _, _)| item_matches(item, s, c))).count();
                let spent: i64 = in_window
                    .iter()
                    .flat_map(|o| o.items.iter())
                    .filter(|(s, c, _, _)| item_matches(item, s, c))
                    .map(|(_, _, q, price)| q * price)
                    .sum();
                within(*count, n) && spent_at_least.is_none_or(|least| spent >= least)
            }
            Condition::Segment(id) => self.node(p, &self.shop.saved[id]),
        }
    }
}

/// Definitions of every kind of condition, nested; `{ref}` is replaced by a saved segment's id.
fn definitions(reference: i64) -> Vec<(&'static str, Value)> {
    let last30 = json!({"last_days": 30});
    vec![
        ("city =", json!({"profile": "city", "op": "eq", "value": "杭州"})),
        ("city ≠ (missing included)", json!({"profile": "city", "op": "ne", "value": "杭州"})),
        ("city in", json!({"profile": "city", "op": "in", "value": ["上海", "北京"]})),
        ("no city", json!({"profile": "city", "op": "exists", "value": false})),
        ("gender", json!({"profile": "gender", "op": "eq", "value": "female"})),
        ("born before 1990", json!({"profile": "birthday", "op": "lt", "value": "1990-01-01"})),
        ("tier", json!({"profile": "tier", "op": "eq", "value": "gold"})),
        ("any tier", json!({"profile": "tier", "op": "exists", "value": true})),
        ("attribute ≥", json!({"attribute": "vip_level", "op": "gte", "value": 3})),
        ("attribute ≠ (missing included)", json!({"attribute": "vip_level", "op": "ne", "value": 3})),
        ("attribute between", json!({"attribute": "vip_level", "op": "between", "value": [2, 4]})),
        ("array attribute contains", json!({"attribute": "channels", "op": "contains", "value": "wechat"})),
        ("has tag", json!({"tag": "vip"})),
        ("has tag by hand", json!({"tag": "vip", "source": "manual"})),
        ("has not tag", json!({"tag": "lapsed", "has": false})),
        ("total spent", json!({"stat": "total_spent", "op": "gte", "value": 20000})),
        ("never ordered", json!({"stat": "order_count", "op": "eq", "value": 0})),
        ("aov between", json!({"stat": "aov", "op": "between", "value": [6000, 15000]})),
        ("days since last order", json!({"stat": "days_since_last_order", "op": "lte", "value": 20})),
        ("days since first order", json!({"stat": "days_since_first_order", "op": "gt", "value": 60})),
        ("refunded", json!({"stat": "refund_count", "op": "gt", "value": 0})),
        ("refund amount", json!({"stat": "refund_amount", "op": "gte", "value": 8000})),
        ("points", json!({"stat": "points", "op": "gte", "value": 200})),
        ("rfm group", json!({"score": MODEL, "label": "important-value"})),
        ("rfm groups", json!({"score": MODEL, "label": ["important-keep", "general"]})),
        ("rfm value", json!({"score": MODEL, "op": "gte", "value": 50})),
        ("rfm top 20 %", json!({"score": MODEL, "top_percent": 20})),
        ("rfm top 15 %", json!({"score": MODEL, "top_percent": 15})),
        ("rfm bottom 10 %", json!({"score": MODEL, "bottom_percent": 10})),
        ("rfm bottom 33 %", json!({"score": MODEL, "bottom_percent": 33})),
        ("no rfm", json!({"not": {"score": MODEL}})),
        ("viewed twice in 30 days", json!({"behaviour": "view", "window": last30, "at_least": 2})),
        ("carted A in 14 days", json!({"behaviour": "cart", "sku": "A", "window": {"last_days": 14}})),
        (
            "favourited tea at most once in 60 days",
            json!({"behaviour": "favorite", "category": "tea", "window": {"last_days": 60}, "at_most": 1}),
        ),
        ("viewed in a fortnight of dates", json!({"behaviour": "view", "window": {"between": ["2026-04-10", "2026-04-23"]}})),
        (
            "bought A, not B in 30 days",
            json!({"and": [{"purchase": {"sku": "A"}, "window": last30}, {"not": {"purchase": {"sku": "B"}, "window": last30}}]}),
        ),
        ("bought tea twice in 60 days", json!({"purchase": {"category": "tea"}, "window": {"last_days": 60}, "at_least": 2})),
        ("did not buy in 30 days", json!({"purchase": {}, "window": last30, "at_most": 0})),
        ("spent 200 yuan in 90 days", json!({"purchase": {}, "window": {"last_days": 90}, "spent_at_least": 20000})),
        ("spent 60 yuan on C in 90 days", json!({"purchase": {"sku": "C"}, "window": {"last_days": 90}, "spent_at_least": 6000})),
        ("bought in March", json!({"purchase": {}, "window": {"between": ["2026-03-01", "2026-03-31"]}})),
        (
            "nested and / or / not",
            json!({"or": [
                {"and": [{"profile": "city", "op": "eq", "value": "上海"}, {"tag": "vip"}]},
                {"not": {"or": [{"stat": "order_count", "op": "gt", "value": 1}, {"score": MODEL, "op": "lt", "value": 30}]}}
            ]}),
        ),
        (
            "tags, scores and a purchase in one and",
            json!({"and": [{"tag": "vip"}, {"score": MODEL}, {"tag": "lapsed", "has": false}, {"purchase": {}, "window": {"last_days": 90}}]}),
        ),
        ("a segment", json!({"segment": reference})),
        ("a segment and gender", json!({"and": [{"segment": reference}, {"profile": "gender", "op": "eq", "value": "male"}]})),
        ("not a segment", json!({"not": {"segment": reference}})),
    ]
}

pub fn segments_match_a_plain_evaluation_of_the_definition(factory: &dyn Factory) {
    let mut shop = Shop::build(factory);
    let reference = shop.save("top or vip", json!({"or": [{"score": MODEL, "top_percent": 20}, {"tag": "vip"}]}));
    let everyone: BTreeSet<i64> = shop.people.iter().map(|p| p.id).collect();
    // Every fifth customer: the shape a backend may use for a few named customers.
    let few: Vec<i64> = everyone.iter().copied().step_by(5).collect();
    let mut failures = Vec::new();
    for (name, definition) in definitions(reference) {
        let node = parse(&definition);
        let expected = shop.expected(&node, now());
        assert!(
            !expected.is_empty() && expected.len() < everyone.len(),
            "{name}: the shop should tell members from others ({} of {})",
            expected.len(),
            everyone.len()
        );
        let got = shop.members(&node, None, now()).unwrap();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, the backend says {got:?}"));
        }
        let count = shop.storage().read(|tx| tx.segments().count(shop.shop, &node, now())).unwrap();
        if count != expected.len() as i64 {
            failures.push(format!("{name}: {} members, the backend counts {count}", expected.len()));
        }
        let among = shop.members(&node, Some(&few), now()).unwrap();
        let expected_among: BTreeSet<i64> = expected.iter().copied().filter(|id| few.contains(id)).collect();
        if among != expected_among {
            failures.push(format!("{name} among a few: expected {expected_among:?}, the backend says {among:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A saved segment's members are its definition's; a reference to another shop's
    // segment, or to none, is refused by name.
    assert_eq!(shop.tracked(reference), shop.expected(&shop.saved[&reference], now()));
    let other = shop.backend.create_shop("Other shop", "Asia/Shanghai");
    let elsewhere = shop.backend.create_segment(other, "elsewhere", json!({"tag": "vip"}), now());
    for id in [elsewhere, elsewhere + 1000] {
        let err = shop.members(&parse(&json!({"segment": id})), None, now()).unwrap_err();
        assert!(matches!(&err, Error::Invalid(e) if e.field == "definition"), "{err:?}");
    }
}

pub fn segments_a_change_moves_membership_once_after_a_refresh(factory: &dyn Factory) {
    let mut shop = Shop::build(factory);
    let vip = shop.save("vip", json!({"tag": "vip"}));
    let tea = shop.save("tea in 30 days", json!({"purchase": {"category": "tea"}, "window": {"last_days": 30}}));
    let high = shop.save("rfm ≥ 90", json!({"score": MODEL, "op": "gte", "value": 90}));
    let top = shop.save("top 20 % not lapsed", json!({"and": [{"score": MODEL, "top_percent": 20}, {"tag": "lapsed", "has": false}]}));
    let at = now() + Duration::minutes(1);
    // Saving is the baseline: the changes that built the shop move no one, and log nothing.
    shop.refresh(at);
    assert_eq!(shop.segment_events(), [], "a new segment's first members enter without events");
    for id in [vip, tea, high, top] {
        assert_eq!(shop.tracked(id), shop.expected(&shop.saved[&id], at), "segment {id}");
    }

    // A tag added: one entry, then nothing more; removed: one exit.
    let x = shop.people.iter().position(|p| !p.tags.iter().any(|(t, _)| t == "vip")).unwrap();
    let x_id = shop.people[x].id;
    shop.tag(x, "vip", Source::Manual, true);
    assert_eq!(shop.refresh(at), 1);
    assert_eq!(shop.segment_events(), [("segment.entered".to_owned(), vip, "change".to_owned())]);
    assert!(shop.tracked(vip).contains(&x_id));
    assert_eq!(shop.refresh(at), 0, "nothing changed since");
    assert_eq!(shop.segment_events().len(), 1);
    shop.tag(x, "vip", Source::Manual, false);
    shop.refresh(at);
    assert_eq!(shop.segment_events()[1..], [("segment.exited".to_owned(), vip, "change".to_owned())]);
    assert!(!shop.tracked(vip).contains(&x_id));

    // A change no segment reads moves no one.
    shop.tag(x, "newsletter", Source::Manual, true);
    shop.refresh(at);
    assert_eq!(shop.segment_events().len(), 2);

    // An order of tea: one entry into the tea buyers.
    let y = shop.people.iter().position(|p| !shop.tracked(tea).contains(&p.id)).unwrap();
    let order = Order { paid_at: at - Duration::hours(2), items: vec![("B", "tea", 1, 8000)], refunded: false };
    let report = shop.backend.ingest(shop.shop, vec![order_event(&shop.people[y], "T-new", &order)], at);
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Accepted, "{:?}", report.outcomes[0]);
    shop.people[y].orders.push(order);
    shop.refresh(at);
    let events = shop.segment_events();
    assert!(events[2..].contains(&("segment.entered".to_owned(), tea, "change".to_owned())), "{events:?}");
    assert!(shop.tracked(tea).contains(&shop.people[y].id));

    // A score raised: one entry into the high scorers.
    let z = shop.people.iter().position(|p| p.scores.get(MODEL).is_some_and(|s| s.0 < 90.0)).unwrap();
    let z_id = shop.people[z].id;
    let raised = Decision::SetScore { customer_id: z_id, model: MODEL.into(), value: 99.5, label: None, explanation: "moved up".into() };
    shop.decide(MODEL, &[raised], at);
    shop.people[z].scores.insert(MODEL.into(), (99.5, None));
    let before = shop.segment_events().len();
    shop.refresh(at);
    let events = shop.segment_events();
    assert!(events[before..].contains(&("segment.entered".to_owned(), high, "change".to_owned())), "{events:?}");
    assert!(shop.tracked(high).contains(&z_id));

    // A refresh follows the changed customers only; a sweep brings the rank in line for everyone.
    core_segments::sweep(shop.storage(), Duration::hours(1), 100, at + Duration::minutes(2)).unwrap();
    for id in [vip, tea, high, top] {
        assert_eq!(shop.tracked(id), shop.expected(&shop.saved[&id], at + Duration::minutes(2)), "segment {id}");
    }
    // Every entry and exit was logged once: what the events say is what is tracked.
    let mut from_events: BTreeMap<i64, i64> = BTreeMap::new();
    for (kind, segment, _) in shop.segment_events() {
        *from_events.entry(segment).or_default() += if kind == "segment.entered" { 1 } else { -1 };
    }
    assert_eq!(from_events.get(&vip).copied().unwrap_or_default(), 0);
    assert_eq!(from_events.get(&high).copied().unwrap_or_default(), 1);
}

pub fn segments_a_sweep_moves_time_based_segments_as_the_clock_moves(factory: &dyn Factory) {
    let mut shop = Shop::build(factory);
    let recent = shop.save("bought in 30 days", json!({"purchase": {}, "window": {"last_days": 30}}));
    let lapsed = shop.save("ordered, not for 45 days", json!({"stat": "days_since_last_order", "op": "gt", "value": 45}));
    let vip = shop.save("vip", json!({"tag": "vip"}));
    shop.refresh(now());
    let first = core_segments::sweep(shop.storage(), Duration::hours(1), 100, now()).unwrap();
    assert_eq!(first.processed, 3, "never swept: all due");
    assert_eq!(shop.segment_events(), [], "nothing moved yet");

    let mut at = now();
    let recent_at_first = shop.tracked(recent).len();
    let mut previous: BTreeMap<i64, BTreeSet<i64>> = [recent, lapsed, vip].into_iter().map(|id| (id, shop.tracked(id))).collect();
    for step in 1..=4 {
        // Within the sweep's period nothing is due.
        let early = core_segments::sweep(shop.storage(), Duration::hours(1), 100, at + Duration::minutes(30)).unwrap();
        assert_eq!(early.processed, 0);
        at += Duration::days(6);
        let before = shop.segment_events().len();
        let pass = core_segments::sweep(shop.storage(), Duration::hours(1), 100, at).unwrap();
        assert_eq!(pass.processed, 3);
        assert!(pass.failed.is_empty(), "{:?}", pass.failed);
        let events = shop.segment_events()[before..].to_vec();
        for id in [recent, lapsed, vip] {
            let now_in = shop.tracked(id);
            assert_eq!(now_in, shop.expected(&shop.saved[&id], at), "segment {id} after step {step}");
            let entered = events.iter().filter(|(k, s, r)| k == "segment.entered" && *s == id && r == "time").count();
            let exited = events.iter().filter(|(k, s, r)| k == "segment.exited" && *s == id && r == "time").count();
            assert_eq!(entered, now_in.difference(&previous[&id]).count(), "segment {id} after step {step}");
            assert_eq!(exited, previous[&id].difference(&now_in).count(), "segment {id} after step {step}");
            previous.insert(id, now_in);
        }
        assert!(events.iter().all(|(_, s, _)| *s != vip), "a segment that does not depend on time stays");
    }
    assert!(shop.segment_events().len() >= 4, "time moved customers out of the recent buyers and into the lapsed");
    assert!(previous[&recent].len() < recent_at_first, "24 days on, fewer bought in the last 30 days");
}

/// Ingest refuses attributes holding U+0000 (JSON text `\u0000`, which PostgreSQL cannot
/// read as `jsonb`); a customer whose stored attributes hold one all the same (written by
/// an earlier Kith) leaves segments on attributes working for every other customer of
/// the shop: the segment is counted, refreshed and listed without an error.
pub fn segments_an_attribute_holding_a_nul_character_stops_no_other_customer(factory: &dyn Factory) {
    use kith_core::prelude::*;
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("nul", "Asia/Shanghai");
    let at = day(1, 0);
    let upsert = |id: &str, phone: &str, attributes: Value| {
        json!({"id": id, "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}],
               "profile": {"attributes": attributes}})
    };
    // Ingest refuses NUL in attributes, which PostgreSQL's jsonb cannot hold while
    // SQLite's JSON can.
    let refused = backend.ingest(shop, vec![upsert("u0", "13800000001", json!({"vip_level": 3, "note": "a\u{0}b"}))], at);
    assert_eq!((refused.accepted, refused.rejected), (0, 1));
    assert_eq!(refused.outcomes[0].field.as_deref(), Some("profile.attributes.note"));
    let report = backend.ingest(
        shop,
        vec![
            upsert("u1", "13800000001", json!({"vip_level": 3})),
            upsert("u2", "13800000002", json!({"vip_level": 3})),
            upsert("u3", "13800000003", json!({"vip_level": 1})),
        ],
        at,
    );
    assert_eq!(report.accepted, 3);
    let customer = |i: usize| report.outcomes[i].customer_id.expect("an accepted event names its customer");
    // A value an earlier Kith stored (or a copy from such a database) holds one: it must
    // not stop the segment for the shop's other customers.
    let stored = kith_core::ports::ProfileRow {
        name: None,
        gender: None,
        birthday: None,
        province: None,
        city: None,
        attributes: r#"{"vip_level":3,"note":"a\u0000b"}"#.into(),
    };
    s.write(|tx| tx.ingest_writer().set_profile(shop, customer(0), &stored)).unwrap();
    let vip = backend.create_segment(shop, "vip ≥ 3", json!({"attribute": "vip_level", "op": "gte", "value": 3}), at);
    s.refresh_segments(100, at).unwrap();
    let audience = core_segments::Audience::Segment { id: vip, version: None };
    let (_, count, page) = s.audience_page(shop, &audience, 0, 100, true, at).expect("the segment is read");
    let members: Vec<i64> = page.iter().map(|c| c.id).collect();
    assert!(members.contains(&customer(1)), "{members:?}");
    assert!(!members.contains(&customer(2)), "{members:?}");
    assert_eq!(count, Some(members.len() as i64));
    assert_eq!(s.get_segment(shop, vip, None).unwrap().members as usize, members.len());
}

/// The segments' ports asked with another shop's id about a segment or snapshot of this
/// shop: reads find nothing, writes change nothing, and the rows read back with their own
/// shop are as they were.
pub fn segments_ports_answer_only_within_the_shop(factory: &dyn Factory) {
    use kith_core::prelude::*;
    let backend = factory.fresh();
    let s = backend.storage();
    let shop = backend.create_shop("Ours", "Asia/Shanghai");
    let other = backend.create_shop("Theirs", "Asia/Shanghai");
    let at = day(1, 0);
    let upsert = |phone: &str| {
        json!({"id": format!("u-{phone}"), "type": "customer.upsert", "identities": [{"kind": "phone", "value": phone}],
               "profile": {"name": phone}})
    };
    let ann = backend.ingest(shop, vec![upsert("13800000001")], at).outcomes[0].customer_id.expect("Ann is accepted");
    let bea = backend.ingest(other, vec![upsert("13800000001")], at).outcomes[0].customer_id.expect("Bea is accepted");
    // Everyone without the tag: each shop's customer is its segment's member.
    let everyone = json!({"tag": "vip", "has": false});
    let ours = backend.create_segment(shop, "Everyone", everyone.clone(), at);
    let theirs = backend.create_segment(other, "Everyone", everyone.clone(), at);
    let snapshot = s.snapshot_segment(shop, ours, &Actor::cli("conformance"), at).unwrap().id;
    let to = day(30, 0).date_naive();
    let state = |tx: &dyn kith_core::ports::ReadTx| -> kith_core::Result<Option<Option<i64>>> {
        Ok(tx.segments().due(day(100, 0), day(100, 0), 100)?.into_iter().find(|d| d.segment_id == ours).map(|d| d.state))
    };
    let read = |shop_id: i64| {
        s.read(|tx| {
            let r = tx.segments();
            Ok((
                r.tracked(shop_id, ours, None)?,
                r.tracked(shop_id, ours, Some(&[ann, bea]))?,
                r.versions(shop_id, ours)?,
                r.snapshot_members(shop_id, snapshot, 0, 10)?.into_iter().map(|c| c.id).collect::<Vec<_>>(),
                r.counts(shop_id, ours, to)?,
            ))
        })
        .unwrap()
    };
    let before = read(shop);
    let (tracked, among, versions, frozen, counts) = before.clone();
    assert_eq!(tracked, BTreeSet::from([ann]));
    assert_eq!(among, BTreeSet::from([ann]));
    assert_eq!(versions.len(), 1);
    assert_eq!(frozen, [ann]);
    assert!(!counts.is_empty(), "the first members' count is recorded");
    assert_eq!(s.read(|tx| tx.segments().tracked(other, theirs, None)).unwrap(), BTreeSet::from([bea]));
    let state_before = s.read(state).unwrap();
    let segment_before = s.get_segment(shop, ours, None).unwrap();

    // Asked with the other shop, the reads find nothing.
    let (tracked, among, versions, frozen, counts) = read(other);
    assert!(tracked.is_empty(), "tracked: {tracked:?}");
    assert!(among.is_empty(), "tracked among: {among:?}");
    assert!(versions.is_empty(), "versions: {versions:?}");
    assert!(frozen.is_empty(), "snapshot_members: {frozen:?}");
    assert!(counts.is_empty(), "counts: {counts:?}");

    // Writes with the other shop change nothing of this one's.
    let later = day(2, 0);
    s.write(|tx| {
        let w = tx.segments_writer();
        w.enter(other, ours, bea, later)?;
        w.exit(other, ours, ann)?;
        w.record_count(other, ours, later.date_naive(), 5)?;
        w.record_count(other, ours, day(1, 0).date_naive(), 5)?;
        w.swept(other, ours, None, later)?;
        w.set_timed(other, ours, true)?;
        Ok(())
    })
    .unwrap();
    assert!(
        s.write(|tx| tx.segments_writer().add_version(other, ours, 2, &json!({"tag": "stolen"}), later, "thief")).is_err(),
        "a version of another shop's segment"
    );
    assert_eq!(read(shop), before, "members, versions, snapshot and counts are as they were");
    assert_eq!(s.read(state).unwrap(), state_before, "the sweep state is as it was");
    assert_eq!(s.get_segment(shop, ours, None).unwrap(), segment_before);
}
